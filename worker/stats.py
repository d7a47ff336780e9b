"""`stats.json`: sync totals and the last drain's figures, for the status report."""

from __future__ import annotations

import os

from stashplugin import log
from sync.store import JsonFile

FILE_NAME = "stats.json"
COUNTERS = ("synced", "unchanged", "skipped", "failed", "dead_lettered", "deleted")


class SyncStats:
    def __init__(self, data_dir: str):
        self.file = JsonFile(os.path.join(data_dir, FILE_NAME), on_corrupt=lambda exc: log.warning(str(exc)))

    def read(self) -> dict:
        return self.file.read()

    def peek(self) -> dict:
        """The figures read quietly, for the status report ({} when missing or damaged)."""
        return self.file.peek()

    def record_run(self, run: dict, counted: dict | None = None) -> None:
        """Add one drain's figures to the totals and keep it as the last run.

        `counted` (default `run`) is what the totals add: a drain that continues one that handed
        over to it (worker/handover.py) reports the whole drain but adds only its own part."""
        counted = run if counted is None else counted

        def change(value):
            totals = value.get("totals")
            totals = dict(totals) if isinstance(totals, dict) else {}
            for name in COUNTERS:
                old = totals.get(name, 0)
                old = (
                    old if isinstance(old, int) and not isinstance(old, bool) and old >= 0 else 0
                )  # damaged: restart
                totals[name] = old + int(counted.get(name, 0))
            jobs = int(counted.get("synced", 0)) + int(counted.get("unchanged", 0))
            if jobs:
                value["last_sync_at"] = run.get("ended_at")
            value["totals"] = totals
            value["last_run"] = run
            return value

        self.file.update(change, timeout=5.0)
