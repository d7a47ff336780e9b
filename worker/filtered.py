"""`filtered.json`: the scenes the filter settings keep out of Plex, with why, for View Queue Status.

The filters ('Only organized scenes', 'Only scenes with a StashDB id', 'Never sync scenes with
these tags') are decided by `metadata.filter_reason`; this module remembers the outcome per scene,
so the status report counts scenes (not attempts) and a scene that passes again stops counting.
The drain notes outcomes in memory and writes the file once per batch, only when something changed.
"""

from __future__ import annotations

import os

from sync.store import JsonFile, PendingWrites
from worker.metadata import filter_reason

FILE_NAME = "filtered.json"


class FilteredScenes:
    """scene id -> filter reason (a key of `metadata.FILTER_WORDS`)."""

    def __init__(self, data_dir: str, on_corrupt=None):
        self.file = JsonFile(os.path.join(data_dir, FILE_NAME), default={}, on_corrupt=on_corrupt)
        self._known = None
        self._changes = PendingWrites(self._save)

    def _current(self) -> dict:
        if self._known is None:
            self._known = _reasons(self.file.read())
        return self._known

    def note(self, scene_id, reason: str) -> None:
        """Remember that `scene_id` is kept out for `reason` ("" = it passes)."""
        sid = str(scene_id)
        if self._current().get(sid, "") != (reason or ""):
            self._changes.note(sid, reason or "")
            self._known[sid] = reason or ""

    def flush(self) -> None:
        """Write the outcomes noted since the last flush (nothing when none changed)."""
        self._changes.flush()

    def _save(self, changes: dict) -> None:
        def change(value):
            value = _reasons(value)
            for sid, reason in changes.items():
                if reason:
                    value[sid] = reason
                else:
                    value.pop(sid, None)
            return value

        self.file.update(change, timeout=30.0)

    def counts(self) -> dict:
        """reason -> number of scenes kept out for it now."""
        out = {}
        for reason in self._current().values():
            if reason:
                out[reason] = out.get(reason, 0) + 1
        return out


def _reasons(value) -> dict:
    """The file's entries that are scene -> reason; anything else in it (a hand edit, damage
    JSON still parses) is dropped, as the next write would drop it."""
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str) and v}


def kept_out(job, scene: dict, settings, filtered: FilteredScenes) -> str:
    """Why a filter setting keeps this job's scene out of Plex ("" = write it), remembered for
    View Queue Status."""
    reason = filter_reason(scene, settings)
    filtered.note(job.scene_id, reason)
    return reason
