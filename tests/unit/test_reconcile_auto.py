"""The automatic reconciliation inside a drain: it never stops the drain and never hammers a failure."""

from __future__ import annotations

from reconcile import schedule
from reconcile.tasks import reconcile_if_due
from stashplugin.settings import Settings
from stashplugin.stash import StashError
from stashplugin.task import TaskContext
from sync.queue import MemoryQueue

NOW = 1_700_000_000.0


class BrokenStash:
    def __init__(self):
        self.requests = 0
        self.calls = 0

    def scenes_page(self, *args, **kwargs):
        self.calls += 1
        raise StashError("Stash did not answer at http://127.0.0.1:9999 (ConnectionError); is Stash running?")


class FakeDrain:
    """The attributes of worker.drain.Drain that the automatic reconciliation uses."""

    def __init__(self, data_dir, **raw):
        self.settings = Settings.from_raw(dict(raw, data_dir=data_dir))
        self.ctx = TaskContext({"PluginDir": data_dir}, {}, self.settings, BrokenStash())
        self.ctx._queue = MemoryQueue()
        self.data_dir = data_dir
        self.clock = lambda: NOW
        self.marker = type("Marker", (), {"heartbeat": lambda self: None})()
        self.report = type("Report", (), {"stash_requests": 0, "plex_requests": 0})()


def test_a_failed_automatic_reconciliation_is_logged_kept_and_not_retried_at_once(tmp_path, capsys):
    drain = FakeDrain(str(tmp_path), reconcile_interval="hourly")
    assert reconcile_if_due(drain) is None
    record = schedule.read_record(str(tmp_path))
    assert record["last_attempt_at"] == NOW and "Stash did not answer" in record["last_error"]
    assert "Automatic reconciliation failed" in capsys.readouterr().err
    assert reconcile_if_due(drain) is None
    assert drain.ctx.stash.calls == 1, "not due again until an interval has passed"


def test_interval_never_costs_no_work(tmp_path):
    drain = FakeDrain(str(tmp_path), reconcile_interval="never")
    assert reconcile_if_due(drain) is None
    assert drain.ctx.stash.calls == 0 and schedule.read_record(str(tmp_path)) == {}


def test_on_by_default_daily_at_the_cheap_scope(tmp_path):
    drain = FakeDrain(str(tmp_path))
    assert reconcile_if_due(drain) is None  # due: it ran (and met the broken Stash)
    assert drain.ctx.stash.calls == 1
    assert (drain.settings.reconcile_interval, drain.settings.reconcile_scope) == ("daily", "7d+")
