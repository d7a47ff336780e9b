"""Outage history: when Plex was down, why, for how long, and how many changes waited.

`outages.json` holds {"outages": [{"start", "end", "cause", "jobs_affected"}, ...]}, oldest
first, at most the last 30 (older ones are dropped). Times are Unix seconds; `end` is null while
the outage is still going on. The Outage Summary task shows `render_summary(summary(now))`.
"""

from __future__ import annotations

import os
import time

from stashplugin import log
from sync.store import JsonFile

FILE_NAME = "outages.json"
MAX_OUTAGES = 30


def plain_duration(seconds) -> str:
    """A duration as a person says it: "45 s", "14 min", "2.5 h", "3.1 days"."""
    seconds = max(0.0, float(seconds or 0))
    if seconds < 90:
        return "%d s" % round(seconds)
    if seconds < 5400:
        return "%d min" % round(seconds / 60)
    if seconds < 172800:
        return "%.1f h" % (seconds / 3600)
    return "%.1f days" % (seconds / 86400)


def _valid(entry) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("start"), (int, float))
        and (entry.get("end") is None or isinstance(entry.get("end"), (int, float)))
    )


class OutageHistory:
    """The last `cap` outages in `<data_dir>/outages.json`.

    Writes take the file's lock; `start`/`end` wait up to `lock_timeout` seconds (they run in a
    drain or task) and `note_job_affected` never waits. A write that cannot get the lock is
    skipped and returns None. The breaker's `OutageListener` calls `start` and `end`, giving `end`
    the number of changes waiting as "jobs affected"; nothing in the plugin calls
    `note_job_affected` (the hook does not).
    """

    def __init__(self, data_dir: str, cap: int = MAX_OUTAGES, lock_timeout: float = 2.0):
        self.cap = int(cap)
        self.lock_timeout = lock_timeout
        self.file = JsonFile(
            os.path.join(data_dir, FILE_NAME),
            default={"outages": []},
            on_corrupt=lambda exc: log.warning("%s; the outage history starts empty" % exc),
            on_error=lambda problem: log.warning(str(problem)),
        )

    def outages(self) -> list:
        """Every recorded outage, oldest first (copies)."""
        raw = self.file.read().get("outages")
        return [dict(e) for e in raw if _valid(e)] if isinstance(raw, list) else []

    def _update(self, fn, timeout):
        """Run `fn(items) -> result` on the stored list under the lock; None when skipped."""
        results = []

        def change(value):
            raw = value.get("outages")
            items = [e for e in raw if _valid(e)] if isinstance(raw, list) else []
            results.append(fn(items))
            return {"outages": items[-self.cap :]}

        saved = self.file.update(change, timeout=timeout)
        return results[-1] if saved is not None else None

    def start(self, cause: str, at: float | None = None):
        """Record that an outage began; while one is open this changes nothing. Returns it."""
        at = time.time() if at is None else at

        def fn(items):
            if items and items[-1].get("end") is None:
                return dict(items[-1])
            entry = {"start": at, "end": None, "cause": log.redact(cause or "")[:300], "jobs_affected": 0}
            items.append(entry)
            return dict(entry)

        return self._update(fn, self.lock_timeout)

    def end(self, at: float | None = None, jobs_affected: int | None = None):
        """Close the open outage at `at`; `jobs_affected` replaces the running count when given.

        Returns the closed outage, or None when none was open.
        """
        at = time.time() if at is None else at

        def fn(items):
            if not items or items[-1].get("end") is not None:
                return None
            entry = items[-1]
            entry["end"] = max(at, entry["start"])
            if jobs_affected is not None:
                entry["jobs_affected"] = int(jobs_affected)
            return dict(entry)

        return self._update(fn, self.lock_timeout)

    def note_job_affected(self, count: int = 1):
        """Count `count` changes queued during the open outage (never waits for the lock)."""

        def fn(items):
            if not items or items[-1].get("end") is not None:
                return None
            items[-1]["jobs_affected"] = int(items[-1].get("jobs_affected") or 0) + count
            return items[-1]["jobs_affected"]

        return self._update(fn, 0)

    def current(self):
        """The outage going on now, or None."""
        items = self.outages()
        return items[-1] if items and items[-1].get("end") is None else None

    def last(self):
        """The most recent outage that has ended, or None."""
        ended = [e for e in self.outages() if e.get("end") is not None]
        return ended[-1] if ended else None

    def summary(self, now: float | None = None) -> dict:
        """Each recorded outage plus MTTR, MTBF and availability (see `summarize`)."""
        return summarize(self.outages(), time.time() if now is None else now)


def summarize(outages: list, now: float) -> dict:
    """The arithmetic of the Outage Summary, over the recorded window only.

    With outages o_1..o_n (oldest first; start s_i, end e_i, e_i = None while going on):
      duration d_i  = (e_i or now) - s_i                       (an open outage counts up to now)
      window        = now - s_1                                (0 when nothing is recorded)
      downtime      = sum of d_i
      MTTR          = mean of d_i over the ended outages        (None when none has ended)
      MTBF          = mean of (s_{i+1} - e_i) for i = 1..n-1    (None with fewer than 2 outages)
      availability  = 1 - downtime / window                    (None when window is 0)
    The window begins with an outage, so availability is a lower bound of the true figure.
    Negative durations or gaps (a clock set back) count as 0.
    """
    rows = []
    for o in outages:
        end = o.get("end")
        rows.append(
            {
                "start": o["start"],
                "end": end,
                "ongoing": end is None,
                "duration_seconds": max(0.0, (end if end is not None else now) - o["start"]),
                "cause": o.get("cause") or "",
                "jobs_affected": int(o.get("jobs_affected") or 0),
            }
        )
    window = max(0.0, now - rows[0]["start"]) if rows else 0.0
    downtime = sum(r["duration_seconds"] for r in rows)
    ended = [r["duration_seconds"] for r in rows if not r["ongoing"]]
    gaps = [max(0.0, b["start"] - a["end"]) for a, b in zip(rows, rows[1:]) if a["end"] is not None]
    return {
        "count": len(rows),
        "window_seconds": window,
        "downtime_seconds": downtime,
        "mttr_seconds": sum(ended) / len(ended) if ended else None,
        "mtbf_seconds": sum(gaps) / len(gaps) if gaps else None,
        "availability": max(0.0, 1.0 - downtime / window) if window > 0 else None,
        "ongoing": bool(rows and rows[-1]["ongoing"]),
        "outages": rows,
    }


def render_summary(summary: dict) -> str:
    """Short text for the Outage Summary task, newest outage last."""
    n = summary["count"]
    if not n:
        return "No Plex outages recorded."
    parts = [
        "%d outage%s in the last %s" % (n, "" if n == 1 else "s", plain_duration(summary["window_seconds"]))
    ]
    if summary["mttr_seconds"] is not None:
        parts.append("mean time to recovery %s" % plain_duration(summary["mttr_seconds"]))
    if summary["mtbf_seconds"] is not None:
        parts.append("mean time between outages %s" % plain_duration(summary["mtbf_seconds"]))
    if summary["availability"] is not None:
        parts.append("availability %.2f%%" % (summary["availability"] * 100))
    lines = ["; ".join(parts) + "."]
    for row in summary["outages"]:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["start"]))
        length = ("going on for %s" if row["ongoing"] else "%s") % plain_duration(row["duration_seconds"])
        waited = "%d change%s waited" % (row["jobs_affected"], "" if row["jobs_affected"] == 1 else "s")
        lines.append("  %s  %s  %s  (%s)" % (when, length, row["cause"] or "cause unknown", waited))
    if summary["ongoing"]:
        lines.append("Plex is down now; queued changes will be sent when it answers again.")
    return "\n".join(lines)
