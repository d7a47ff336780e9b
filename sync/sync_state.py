"""`sync_state.json`: per scene, when it was last synced and a hash of what was written.

Reconciliation compares it with Stash (`updated_at` newer than the last sync, or a different
hash of the metadata Stash would produce now) to find changes no hook reported. The drain
records results in memory and writes the file once per batch (atomic replace).
"""
from __future__ import annotations

import os

from sync.store import JsonFile

FILE_NAME = "sync_state.json"


class SyncState:
    def __init__(self, data_dir: str, on_corrupt=None):
        self.file = JsonFile(os.path.join(data_dir, FILE_NAME), on_corrupt=on_corrupt)
        self._pending = {}

    def record(self, scene_id, desired_hash: str, stash_updated_at, synced_at: float) -> None:
        """Remember a successful sync (written to disk by `flush`)."""
        self._pending[str(scene_id)] = {"hash": desired_hash, "updated_at": stash_updated_at, "synced_at": synced_at}

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}

        def change(value):
            value.update(pending)
            return value

        self.file.update(change, timeout=30.0)

    def read(self) -> dict:
        """scene id -> {"hash", "updated_at", "synced_at"}."""
        return self.file.read()

    def forget(self, scene_ids) -> None:
        ids = {str(s) for s in scene_ids}

        def change(value):
            return {k: v for k, v in value.items() if k not in ids}

        self.file.update(change, timeout=30.0)
