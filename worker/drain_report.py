"""What one drain did: the summary line of Process Queue and the task's JSON output."""

from __future__ import annotations

import time


class DrainReport:
    """What one drain did; logged as the summary line and returned as the task's output."""

    def __init__(self):
        self.synced = 0
        self.unchanged = 0
        self.skipped = 0
        self.failed = 0
        self.dead_lettered = 0
        self.deleted = 0
        self.plex_requests = 0
        self.stash_requests = 0
        self.started_at = time.time()
        self.ended_at = None
        self.stopped = ""  # why the drain stopped early ("" = queue empty)
        self.next_retry_at = None
        self.error = ""
        self.handed_over = False  # a fresh drain continues (worker/handover.py)

    @property
    def seconds(self) -> float:
        return round((self.ended_at or time.time()) - self.started_at, 2)

    @property
    def processed(self) -> int:
        return self.synced + self.unchanged + self.skipped + self.failed + self.dead_lettered + self.deleted

    def to_dict(self) -> dict:
        out = {
            k: getattr(self, k)
            for k in (
                "synced",
                "unchanged",
                "skipped",
                "failed",
                "dead_lettered",
                "deleted",
                "plex_requests",
                "stash_requests",
                "started_at",
                "ended_at",
                "stopped",
                "next_retry_at",
                "handed_over",
            )
        }
        out["seconds"] = self.seconds
        return out

    def line(self) -> str:
        text = "Process Queue: %d synced, %d unchanged, %d skipped, %d failed, %d dead-lettered in %.1f s" % (
            self.synced,
            self.unchanged,
            self.skipped + self.deleted,
            self.failed,
            self.dead_lettered,
            self.seconds,
        )
        if self.next_retry_at:
            text += "; next retry at %s" % time.strftime("%H:%M:%S", time.localtime(self.next_retry_at))
        if self.handed_over:
            text += "; a fresh drain continues"
        elif self.stopped:
            text += " (stopped: %s)" % self.stopped
        return text
