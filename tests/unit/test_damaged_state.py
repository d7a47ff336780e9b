"""Damaged but parseable state files never stop a drain."""

from __future__ import annotations

import json
import os
import time

from stashplugin.settings import Settings
from stashplugin.task import TaskContext
from worker.stats import SyncStats


def test_stats_with_wrong_types_restart_their_totals(tmp_path):
    (tmp_path / "stats.json").write_text(json.dumps({"totals": {"synced": "x", "failed": -3}, "last_run": 5}))
    SyncStats(str(tmp_path)).record_run({"synced": 2, "failed": 1, "ended_at": 10.0})
    totals = SyncStats(str(tmp_path)).read()["totals"]
    assert totals["synced"] == 2 and totals["failed"] == 1


def test_stats_whose_totals_are_not_an_object(tmp_path):
    (tmp_path / "stats.json").write_text(json.dumps({"totals": "x"}))
    SyncStats(str(tmp_path)).record_run({"unchanged": 4, "ended_at": 10.0})
    assert SyncStats(str(tmp_path)).read()["totals"]["unchanged"] == 4


def test_a_task_removes_temp_files_a_killed_write_left_but_not_one_being_written(tmp_path):
    """A write killed between its temp file and the replace leaves `<name>.tmp-<pid>-<hex>`; the
    next task removes it once it is older than any write takes, and keeps a fresh one (a write
    in progress in another process)."""
    data = tmp_path / "data"
    data.mkdir()
    stale, fresh = data / "stats.json.tmp-4242-abcdef", data / "queue.jsonl.tmp-4343-012345"
    stale.write_bytes(b'{"half":')
    fresh.write_bytes(b'{"being":')
    two_hours_ago = time.time() - 2 * 3600
    os.utime(str(stale), (two_hours_ago, two_hours_ago))
    ctx = TaskContext({"PluginDir": str(tmp_path)}, {}, Settings.from_raw({"data_dir": str(data)}))
    assert ctx.ensure_data_dir() == str(data)
    assert not stale.exists() and fresh.exists()
