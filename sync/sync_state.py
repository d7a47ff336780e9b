"""Per scene, when it was last synced and a hash of what was written: `sync_state.jsonl`.

Reconciliation compares it with Stash (`updated_at` newer than the last sync, or a different
hash of the metadata Stash would produce now) to find changes no hook reported. The drain
records results in memory and appends them once per batch to a journal (`sync.journal_map`),
so a batch writes a few kilobytes however large the library is. The old whole-file
`sync_state.json` is migrated on first use.
"""

from __future__ import annotations

import os

from sync.journal_map import JournalMap, read_legacy_json
from sync.store import PendingWrites

FILE_NAME = "sync_state.jsonl"
LEGACY_NAME = "sync_state.json"


class SyncState:
    def __init__(self, data_dir: str, on_corrupt=None, write_only: bool = False):
        """`write_only`: for a process that records many syncs and reads none (no map in memory)."""
        legacy = os.path.join(data_dir, LEGACY_NAME)
        self.journal = JournalMap(
            os.path.join(data_dir, FILE_NAME),
            on_corrupt=on_corrupt,
            legacy=(legacy, lambda path: read_legacy_json(path, on_corrupt)),
            keep=not write_only,
        )
        self._pending = PendingWrites(self.journal.put_many)

    def record(self, scene_id, desired_hash: str, stash_updated_at, synced_at: float) -> None:
        """Remember a successful sync (written to disk by `flush`)."""
        self._pending.note(
            str(scene_id), {"hash": desired_hash, "updated_at": stash_updated_at, "synced_at": synced_at}
        )

    def flush(self) -> None:
        """Append the recorded syncs (one fsync'd write)."""
        self._pending.flush()

    def read(self) -> dict:
        """scene id -> {"hash", "updated_at", "synced_at"}."""
        return self.journal.items()

    def get(self, scene_id):
        """One scene's entry, or None."""
        return self.journal.get(str(scene_id))

    def forget(self, scene_ids) -> None:
        self.journal.delete_many(str(s) for s in scene_ids)
