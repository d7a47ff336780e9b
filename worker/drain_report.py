"""What one drain did: the summary line of Process Queue and the task's JSON output.

A drain that hands over to a fresh one (worker/handover.py) is one drain in several Stash jobs:
the fresh job's report continues the earlier parts' (`continue_from`), so its one summary and
its progress bar cover the whole drain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

COUNTS = (
    "synced",
    "unchanged",
    "skipped",
    "failed",
    "dead_lettered",
    "deleted",
    "plex_requests",
    "stash_requests",
)
DONE = COUNTS[:6]  # the counts of changes processed (the rest count requests)


@dataclass
class DrainReport:
    """What one drain did; logged as the summary line and returned as the task's output."""

    synced: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    dead_lettered: int = 0
    deleted: int = 0
    plex_requests: int = 0
    stash_requests: int = 0
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    stopped: str = ""  # why the drain stopped early ("" = queue empty)
    next_retry_at: float | None = None
    error: str = ""
    handed_over: bool = False  # a fresh drain continues (worker/handover.py)
    parts: int = 1  # Stash jobs this drain ran in (one more per hand-over)
    earlier: dict = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))  # the parts before this job's
    progress_from: float = 0.0  # where the progress bar stood when this job took over
    progress: float = 0.0  # where it stands now (it never goes back)

    @property
    def seconds(self) -> float:
        return round((self.ended_at or time.time()) - self.started_at, 2)

    @property
    def processed(self) -> int:
        return sum(getattr(self, name) for name in DONE)

    @property
    def processed_here(self) -> int:
        """Changes processed by this Stash job alone (what its progress bar measures)."""
        return self.processed - sum(self.earlier[name] for name in DONE)

    def counts(self) -> dict:
        return {name: getattr(self, name) for name in COUNTS}

    def own_counts(self) -> dict:
        """This job's part alone: what it adds to the sync totals (earlier parts added theirs)."""
        return {name: getattr(self, name) - self.earlier[name] for name in COUNTS}

    def continue_from(self, started_at: float, counts: dict, parts: int, progress: float) -> None:
        """This job continues a drain that handed over: its counts, start and bar carry on."""
        self.started_at = started_at
        for name in COUNTS:
            value = int(counts.get(name, 0))
            setattr(self, name, getattr(self, name) + value)
            self.earlier[name] += value
        self.parts = parts + 1
        self.progress_from = self.progress = max(self.progress, progress)

    def bar_at(self, fraction: float) -> float:
        """Where the progress bar stands when this job has done `fraction` of its work: it
        fills what the earlier parts left, so it starts where they stopped and never goes back
        (a pass that finds more work than the last one does not lower it either)."""
        fraction = min(1.0, max(0.0, fraction))
        self.progress = max(self.progress, self.progress_from + (1.0 - self.progress_from) * fraction)
        return self.progress

    def to_dict(self) -> dict:
        out = {
            k: getattr(self, k)
            for k in COUNTS + ("started_at", "ended_at", "stopped", "next_retry_at", "handed_over", "parts")
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
        if self.parts > 1:
            text += " (%d Stash jobs, each with a fresh Stash session)" % self.parts
        if self.next_retry_at:
            text += "; next retry at %s" % time.strftime("%H:%M:%S", time.localtime(self.next_retry_at))
        if self.stopped:
            text += " (stopped: %s)" % self.stopped
        return text
