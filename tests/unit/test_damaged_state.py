"""Damaged but parseable state files never stop a drain."""
from __future__ import annotations

import json

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
