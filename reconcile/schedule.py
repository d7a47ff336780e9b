"""When is the automatic reconciliation due, and `reconcile.json`: what the last one found.

Every invocation, the hook included, may ask `auto_due`, so reading is one small file and the
standard library only. Writing happens in tasks and drains (atomic, under the file's lock).

`reconcile.json`:
    {"last_run_at", "duration_seconds", "scope", "only", "trigger", "gaps": {type: n},
     "ambiguous", "enqueued", "scenes_checked", "plex_items", "requests": {"stash", "plex"},
     "finished": {scope: epoch},        # last complete run per scope (all gap types)
     "last_attempt_at", "last_error"}   # the automatic run's last try, successful or not
"""

from __future__ import annotations

import os

from sync.backoff import effective_time
from sync.store import JsonFile, read_json_quiet

FILE_NAME = "reconcile.json"

INTERVALS = {"never": None, "hourly": 3600.0, "daily": 86400.0, "weekly": 7 * 86400.0}
# scope -> how far back in Stash's `updated_at` it looks (None: every scene).
SCOPES = {"24h": 86400.0, "7d": 7 * 86400.0, "all": None, "7d+": 7 * 86400.0}
# Scopes that also look at every other scene, but only for an empty or missing Plex item (the
# listing shows both; no full item is read for them): cheap enough to run daily.
WIDE_SCOPES = ("7d+",)
_WIDTH = {"24h": 1, "7d": 2, "7d+": 2, "all": 3}


def read_record(data_dir: str) -> dict:
    """`reconcile.json` as a dict; {} when it is missing or unreadable (it is only a report)."""
    return read_json_quiet(os.path.join(data_dir, FILE_NAME))


def last_covering_run(record: dict, scope: str):
    """When a complete reconciliation last finished whose scope includes `scope` (None: never).

    A run over every scene covers the 24-hour and 7-day scopes too; a "missing metadata only"
    run or a preview covers nothing (they are not recorded under `finished`).
    """
    finished = record.get("finished")
    if not isinstance(finished, dict):
        return None
    want = _WIDTH.get(scope, _WIDTH["all"])
    times = [t for s, t in finished.items() if _WIDTH.get(s, 0) >= want and isinstance(t, (int, float))]
    return max(times) if times else None


def is_due(record: dict, interval: str, scope: str, now: float) -> bool:
    """Pure due check: is an automatic reconciliation of `scope` every `interval` due at `now`?

    Due when none has finished within the interval and none was attempted within it (a failed
    attempt waits a whole interval, so a broken Stash or Plex is not hammered). A time stamp
    further ahead than anything PlexSync schedules (`sync.backoff.effective_time`, the queue's rule
    for a clock stepped back) can only be the old clock's: it counts as due rather than blocking
    for as long as the clock was off.
    """
    seconds = INTERVALS.get(interval)
    if not seconds:
        return False
    stamps = [last_covering_run(record, scope), record.get("last_attempt_at")]
    stamps = [t for t in stamps if isinstance(t, (int, float))]
    if not stamps:
        return True
    last = max(stamps)
    if effective_time(last, now) != last:
        return True
    return now - last >= seconds


def auto_due(data_dir: str, interval: str, scope: str, now: float) -> bool:
    """The check every invocation makes: one small file read, nothing when `interval` is never."""
    if not INTERVALS.get(interval) or not os.path.isdir(data_dir):
        return False  # never, or PlexSync never ran here yet: the first enqueue or task sets it up
    return is_due(read_record(data_dir), interval, scope, now)


def _update(data_dir: str, change) -> dict:
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    return JsonFile(os.path.join(data_dir, FILE_NAME)).update(change, timeout=30.0) or {}


def record_attempt(data_dir: str, now: float) -> None:
    """Note that an automatic reconciliation starts now (so a failing one is not retried at once)."""

    def change(value):
        value["last_attempt_at"] = now
        return value

    _update(data_dir, change)


def record_failure(data_dir: str, message: str) -> None:
    """Keep the reason the last automatic reconciliation failed (shown with the record)."""

    def change(value):
        value["last_error"] = message[:300]
        return value

    _update(data_dir, change)


def record_run(data_dir: str, summary: dict, complete: bool) -> dict:
    """Store a finished reconciliation's summary; `complete` runs (all gap types) count for the schedule."""

    def change(value):
        value.update(summary)
        value["last_error"] = ""
        if complete:
            finished = value.get("finished") if isinstance(value.get("finished"), dict) else {}
            finished[summary.get("scope") or "all"] = summary["last_run_at"]
            value["finished"] = finished
        return value

    return _update(data_dir, change)
