"""When the automatic reconciliation is due, and how cheaply every invocation finds out."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import plexsync
from reconcile import schedule
from stashplugin.settings import HOOK_KEYS, SPEC, Settings, SettingsError
from tests.conftest import ROOT, child_env

NOW = 1_700_000_000.0
HOUR = 3600.0


def test_never_is_never_due():
    assert schedule.is_due({}, "never", "all", NOW) is False


def test_a_schedule_that_never_ran_is_due_at_once():
    assert schedule.is_due({}, "daily", "all", NOW) is True


@pytest.mark.parametrize(
    "interval, ago, due",
    [
        ("hourly", 59 * 60, False),
        ("hourly", HOUR, True),
        ("daily", 23 * HOUR, False),
        ("daily", 24 * HOUR, True),
        ("weekly", 6 * 24 * HOUR, False),
        ("weekly", 7 * 24 * HOUR, True),
    ],
)
def test_due_once_the_interval_has_passed(interval, ago, due):
    record = {"finished": {"all": NOW - ago}}
    assert schedule.is_due(record, interval, "all", NOW) is due


def test_a_run_over_all_scenes_covers_narrower_scopes_but_not_the_reverse():
    record = {"finished": {"all": NOW - 60}}
    assert schedule.is_due(record, "hourly", "24h", NOW) is False
    record = {"finished": {"24h": NOW - 60}}
    assert schedule.is_due(record, "hourly", "all", NOW) is True
    assert schedule.is_due(record, "hourly", "24h", NOW) is False


def test_a_failed_attempt_waits_a_whole_interval():
    record = {"finished": {"all": NOW - 10 * HOUR}, "last_attempt_at": NOW - 60}
    assert schedule.is_due(record, "hourly", "all", NOW) is False


def test_a_time_far_in_the_future_does_not_block_the_schedule():
    assert schedule.is_due({"finished": {"all": NOW + 30 * 86400}}, "daily", "all", NOW) is True


@pytest.mark.parametrize("interval", ["hourly", "daily", "weekly"])
@pytest.mark.parametrize("field", ["finished", "last_attempt_at"])
def test_after_a_clock_that_ran_a_day_ahead_is_corrected_reconciliation_is_due_at_once(interval, field):
    """The last run or attempt was stamped by a clock a day fast: once the clock is set right, the
    schedule does not wait that day (the queue's rule for a clock step), whatever the interval."""
    stamp = NOW + 24 * HOUR
    record = {"finished": {"all": stamp}} if field == "finished" else {"last_attempt_at": stamp}
    assert schedule.is_due(record, interval, "all", NOW) is True


def test_a_stamp_a_few_seconds_ahead_is_a_run_that_just_happened():
    """Another process's clock a little ahead is a recent run, not a clock step: not due yet."""
    assert schedule.is_due({"finished": {"all": NOW + 5}}, "hourly", "all", NOW) is False
    assert schedule.is_due({"last_attempt_at": NOW + 5}, "daily", "all", NOW) is False


def test_record_run_keeps_the_report_and_partial_runs_do_not_count(tmp_path):
    data = str(tmp_path)
    summary = {
        "last_run_at": NOW,
        "duration_seconds": 1.5,
        "scope": "all",
        "gaps": {"stale": 2},
        "enqueued": 2,
    }
    schedule.record_run(data, summary, complete=True)
    schedule.record_run(data, dict(summary, last_run_at=NOW + 10, scope="all"), complete=False)
    record = schedule.read_record(data)
    assert record["last_run_at"] == NOW + 10 and record["gaps"] == {"stale": 2} and record["enqueued"] == 2
    assert record["finished"] == {"all": NOW}
    assert schedule.auto_due(data, "hourly", "all", NOW + HOUR) is True
    assert schedule.auto_due(data, "hourly", "all", NOW + HOUR - 1) is False


def test_a_damaged_record_counts_as_never_run(tmp_path):
    (tmp_path / schedule.FILE_NAME).write_bytes(b"{not json")
    assert schedule.auto_due(str(tmp_path), "daily", "all", NOW) is True


def test_a_due_reconciliation_makes_any_invocation_ask_for_a_drain(tmp_path):
    data = str(tmp_path)
    assert plexsync.drain_wanted(data, False, NOW) is False
    assert plexsync.drain_wanted(data, False, NOW, reconcile_interval="daily") is True
    schedule.record_run(data, {"last_run_at": NOW - 60, "scope": "all"}, complete=True)
    assert plexsync.drain_wanted(data, False, NOW, reconcile_interval="daily") is False


def test_while_plex_is_down_a_due_reconciliation_asks_for_no_drain(tmp_path):
    data = str(tmp_path)
    with open(os.path.join(data, "circuit_breaker.json"), "w") as fh:
        json.dump({"state": "open", "next_probe_at": NOW + 60}, fh)
    assert plexsync.drain_wanted(data, False, NOW, reconcile_interval="hourly") is False


def test_the_due_check_imports_nothing_heavy():
    code = (
        "import sys, reconcile.schedule as s; s.auto_due('.', 'daily', 'all', 0); "
        "heavy = [m for m in ('plexapi', 'requests', 'worker', 'reconcile.scan', 'urllib3') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=child_env(), capture_output=True, text=True
    )
    assert out.stdout.strip() == "[]", out.stderr


def test_reconcile_settings_default_to_daily_at_the_cheap_scope_and_reach_the_hook():
    s = Settings.from_raw({})
    assert (s.reconcile_interval, s.reconcile_scope) == ("daily", "7d+")
    assert "reconcile_interval" in HOOK_KEYS and "reconcile_scope" in HOOK_KEYS
    assert (
        Settings.from_raw({"reconcile_interval": " Weekly ", "reconcile_scope": "7D"}).reconcile_interval
        == "weekly"
    )


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("reconcile_interval", "monthly", "enter never, hourly, daily or weekly"),
        ("reconcile_scope", "1y", "enter all, 24h, 7d or 7d+"),
    ],
)
def test_a_bad_reconcile_setting_says_what_to_enter(name, value, words):
    with pytest.raises(SettingsError) as err:
        Settings.from_raw({name: value})
    assert words in str(err.value) and SPEC[name][2] in str(err.value)


def test_the_hook_falls_back_to_the_default_on_a_bad_value():
    assert Settings.from_raw({"reconcile_interval": "monthly"}, strict=False).reconcile_interval == "daily"
