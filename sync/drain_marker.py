"""Who drains, and has one been asked for? (the de-duplication of drain requests)

A burst of 500 hooks must request one drain, not 500; a drain already running must pick up
jobs enqueued while it runs; and no job may be stranded by the race "a job lands just as the
drainer decides the queue is empty". The rules:

* The running drainer holds `drain.lock` (released by the OS if it dies, even on SIGKILL) and
  keeps `drain_request.json` fresh (a heartbeat) while it works.
* A hook, *after* its enqueue is durable, requests a drain unless the marker is fresh
  (`should_request`). Concurrent hooks serialise on `drain_request.lock` with a zero timeout:
  the one that gets it decides, the others know a decision is being made and skip.
* Before the drainer stops, it clears the marker and *then* looks at the queue once more.
  Either the late job is seen by that last look, or the hook that enqueued it finds no marker
  and requests a new drain: one of the two always happens, so nothing waits for a next edit.
* A marker nobody refreshed for `STALE_AFTER` seconds (a requested task that never started,
  e.g. it was cancelled) no longer holds hooks back.
* A drain that stops with a retry still to come (a change that failed, a refused connection)
  leaves an "idle" marker with `retry_at`; it holds nobody back, and the first invocation after
  `retry_at` asks for a drain (`retry_due`) - a hook for an ignored edit included.
"""
from __future__ import annotations

import json
import os
import time

from sync.lock import FileLock
from sync.store import atomic_write_bytes

MARKER_NAME = "drain_request.json"
DRAIN_LOCK_NAME = "drain.lock"
STALE_AFTER = 120.0  # seconds: a queued Stash task normally starts well within this
IDLE = "idle"        # no drain running or requested; `retry_at` says when one is next wanted


def retry_due(marker: dict, now: float) -> bool:
    """Does this marker (as read, e.g. by `read_json_quiet`) say a retry is due by `now`?"""
    retry_at = marker.get("retry_at")
    return marker.get("state") == IDLE and isinstance(retry_at, (int, float)) and now >= retry_at


class DrainMarker:
    def __init__(self, data_dir: str, clock=time.time):
        self.data_dir = data_dir
        self.path = os.path.join(data_dir, MARKER_NAME)
        self.lock = FileLock(os.path.join(data_dir, "drain_request.lock"))
        self.clock = clock

    def read(self) -> dict:
        try:
            with open(self.path, "rb") as fh:
                value = json.loads(fh.read().decode("utf-8"))
            return value if isinstance(value, dict) else {}
        except (OSError, ValueError, UnicodeDecodeError):
            return {}

    def is_fresh(self, now: float | None = None) -> bool:
        """Is a drain running or requested (so a new request would be a duplicate)?"""
        now = self.clock() if now is None else now
        value = self.read()
        stamp = value.get("at")
        return (value.get("state") != IDLE and isinstance(stamp, (int, float)) and 0 <= now - stamp < STALE_AFTER)

    def claim_request(self) -> bool:
        """True when this caller should send a drain request (and it has been recorded).

        False when a fresh request or a running drain already covers the caller's job, or when
        another process is deciding right now.
        """
        if not self.lock.acquire(timeout=0):
            return False
        try:
            if self.is_fresh():
                return False
            self._write("requested")
            return True
        finally:
            self.lock.release()

    def heartbeat(self) -> None:
        """The running drainer says it is alive (hooks then skip their request)."""
        self._write("running")

    def clear(self) -> None:
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass

    def remember_retry(self, retry_at: float) -> None:
        """A stopped drain leaves the time of its next retry (see the module's rules). Skipped when
        a hook has requested a new drain meanwhile: that request must stand."""
        if not self.lock.acquire(timeout=0):
            return
        try:
            if os.path.exists(self.path):
                return
            self._write(IDLE, retry_at=float(retry_at))
        finally:
            self.lock.release()

    def withdraw(self) -> None:
        """A request that could not be delivered: let the next hook try again."""
        self.clear()

    def _write(self, state: str, **extra) -> None:
        value = {"state": state, "at": self.clock(), "pid": os.getpid()}
        value.update(extra)
        data = json.dumps(value).encode("utf-8")
        atomic_write_bytes(self.path, data)


def drain_lock(data_dir: str) -> FileLock:
    return FileLock(os.path.join(data_dir, DRAIN_LOCK_NAME))


def drain_running(data_dir: str) -> bool:
    """Is a drainer alive right now? (a zero-wait try of its lock)"""
    lock = drain_lock(data_dir)
    if lock.acquire(timeout=0):
        lock.release()
        return False
    return True
