"""The hand-over record: one drain in several Stash jobs sums up as one, and a stale or damaged
record never reaches a later drain's figures."""

from __future__ import annotations

import json
import os
import socket
import time

from stashplugin.settings import Settings
from stashplugin.task import TaskContext
from sync.queue import MemoryQueue
from worker.drain_report import DrainReport
from worker.handover import (
    NOT_REQUESTED,
    RECORD_NAME,
    VALID_FOR,
    HandOver,
    late_summary,
    record_of,
    take_back,
    take_record,
    write_record,
)
from worker.stats import SyncStats

NOW = 1_700_000_000.0


def new_report(started_at: float = NOW - 60) -> DrainReport:
    report = DrainReport()
    report.started_at = started_at
    return report


def part(report: DrainReport, synced: int, unchanged: int = 0, failed: int = 0) -> DrainReport:
    report.synced += synced
    report.unchanged += unchanged
    report.failed += failed
    report.plex_requests += synced + unchanged
    return report


def hand_over(data_dir: str, report: DrainReport, at: float) -> None:
    report.ended_at = at
    write_record(data_dir, record_of(report, at))


def continue_drain(data_dir: str, now: float) -> DrainReport:
    """What the next drain does first (HandOver.before_drain), without a drain around it."""
    report = new_report(now)
    record, stale = take_record(data_dir, now)
    assert stale is None
    report.continue_from(record["started_at"], record["counts"], record["parts"], record["progress"])
    return report


def test_three_jobs_sum_up_as_one_drain_timed_from_the_first(tmp_path):
    data = str(tmp_path)
    first = part(new_report(NOW), synced=70, unchanged=5)
    first.bar_at(0.4)
    hand_over(data, first, NOW + 1800)

    second = continue_drain(data, NOW + 1801)
    assert not os.path.exists(os.path.join(data, RECORD_NAME)), "taken, not left for a later drain"
    part(second, synced=60, failed=2)
    hand_over(data, second, NOW + 3600)

    third = continue_drain(data, NOW + 3602)
    part(third, synced=10)
    third.ended_at = NOW + 3700

    assert (third.synced, third.unchanged, third.failed, third.plex_requests) == (140, 5, 2, 145)
    assert third.parts == 3 and third.seconds == 3700.0
    assert third.own_counts()["synced"] == 10 and third.processed_here == 10
    assert third.line().startswith("Process Queue: 140 synced, 5 unchanged, 0 skipped, 2 failed")
    assert "3 Stash jobs" in third.line() and "stopped" not in third.line()
    assert third.to_dict()["parts"] == 3


def test_the_sync_totals_count_each_job_once_and_the_last_run_is_the_whole_drain(tmp_path):
    data = str(tmp_path)
    first = part(new_report(), synced=70)
    SyncStats(data).record_run(first.to_dict(), counted=first.own_counts())
    hand_over(data, first, NOW)
    second = part(continue_drain(data, NOW + 1), synced=30)
    SyncStats(data).record_run(second.to_dict(), counted=second.own_counts())
    stats = SyncStats(data).read()
    assert stats["totals"]["synced"] == 100
    assert stats["last_run"]["synced"] == 100 and stats["last_run"]["parts"] == 2


def test_the_progress_bar_starts_where_the_last_job_stopped_and_never_goes_back(tmp_path):
    data = str(tmp_path)
    first = new_report()
    shown = [first.bar_at(f) for f in (0.1, 0.25, 0.5)]
    hand_over(data, first, NOW)
    second = continue_drain(data, NOW + 1)
    assert second.progress == 0.5
    # Its own work fills what was left: half of its work done is three quarters of the drain.
    shown += [second.bar_at(0.5)]
    assert shown[-1] == 0.75
    # A second pass finding more work than the first makes its own fraction smaller: the bar waits.
    shown += [second.bar_at(0.2), second.bar_at(0.9)]
    assert shown == sorted(shown) and shown[-1] == 0.95


def test_a_record_the_fresh_drain_did_not_take_up_in_time_is_not_merged(tmp_path):
    data = str(tmp_path)
    first = part(new_report(NOW - 600), synced=40)
    hand_over(data, first, NOW)
    record, stale = take_record(data, NOW + VALID_FOR + 1)  # e.g. Process Queue run by hand later
    assert record is None and stale["counts"]["synced"] == 40
    assert not os.path.exists(os.path.join(data, RECORD_NAME)), "removed, not found again"
    assert take_record(data, NOW + VALID_FOR + 2) == (None, None)
    line = late_summary(stale)
    assert line.startswith("Process Queue: 40 synced") and " in 600.0 s" in line
    assert "did not start within 10 minutes" in line


def test_a_record_from_the_future_is_stale_and_one_just_written_is_fresh(tmp_path):
    data = str(tmp_path)
    hand_over(data, new_report(NOW + 3000), NOW + 3600)  # the clock was set back an hour since
    assert take_record(data, NOW)[0] is None
    hand_over(data, new_report(), NOW)
    assert take_record(data, NOW)[0] is not None


def test_a_damaged_or_foreign_record_is_ignored_and_removed(tmp_path, capsys):
    data = str(tmp_path)
    path = os.path.join(data, RECORD_NAME)
    for content in (
        '{"version": 1, "written_at": ',  # cut short
        json.dumps({"version": 2, "written_at": NOW}),
        json.dumps(dict(record_of(new_report(), NOW), counts={"synced": -3})),
        json.dumps(dict(record_of(new_report(), NOW), progress=1.5)),
    ):
        with open(path, "w") as fh:
            fh.write(content)
        assert take_record(data, NOW) == (None, None)
        assert not os.path.exists(path)


def test_a_record_taken_by_a_drain_that_started_meanwhile_is_not_taken_back(tmp_path):
    data = str(tmp_path)
    record = record_of(part(new_report(), synced=3), NOW)
    write_record(data, record)
    assert take_back(data, record) and not os.path.exists(os.path.join(data, RECORD_NAME))
    write_record(data, record)
    take_record(data, NOW + 1)  # the fresh drain started before the request's answer came
    assert not take_back(data, record)


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_when_stash_cannot_be_asked_for_a_fresh_drain_the_drain_ends_as_any_stopped_drain(tmp_path, capsys):
    data = str(tmp_path)
    settings = Settings.from_raw({"data_dir": data})
    ctx = TaskContext({"PluginDir": data, "Host": "127.0.0.1", "Port": _closed_port()}, {}, settings)
    ctx._queue = MemoryQueue()
    report = part(new_report(), synced=50)
    report.handed_over = True
    report.stopped = "handed over to a fresh drain"
    HandOver(ctx, NOW).after_drain(ctx, report)
    assert not report.handed_over and report.stopped == NOT_REQUESTED
    assert not os.path.exists(os.path.join(data, RECORD_NAME)), "no record for a drain nobody continues"
    err = capsys.readouterr().err
    assert "could not hand over to a fresh drain: Stash could not be reached" in err
    assert "continues in a fresh Stash job" not in err
    assert "(stopped: %s)" % NOT_REQUESTED in report.line()


class _SessionAgeStash:
    """Answers the one query HandOver asks: Stash's max session age (1 h, Stash's default)."""

    def query(self, _query):
        return {"configuration": {"general": {"maxSessionAge": 3600}}}


def test_a_drain_is_timed_and_hands_over_from_when_stash_started_the_task(tmp_path):
    """Stash's session cookie dates from the task's start: a first run that spent 31 minutes
    installing plexapi has less than half its session left, so the drain hands over after its
    first batch, and its summary counts those minutes too."""
    from worker.drain import Drain

    data = str(tmp_path)
    settings = Settings.from_raw({"data_dir": data})
    started = time.time() - 31 * 60
    ctx = TaskContext({"PluginDir": data}, {}, settings, _SessionAgeStash(), started_at=started)
    drain = Drain(ctx)
    (handover,) = [a for a in drain.attachments if isinstance(a, HandOver)]
    assert handover.due(time.time())
    assert drain.report.seconds >= 31 * 60

    ctx = TaskContext({"PluginDir": data}, {}, settings, _SessionAgeStash())
    (handover,) = [a for a in Drain(ctx).attachments if isinstance(a, HandOver)]
    assert not handover.due(time.time() + 60), "a task that started a minute ago keeps its drain"
