"""Who drains, and has one been asked for? (the de-duplication of drain requests)

A burst of 500 hooks must request one drain, not 500; a drain already running must pick up
jobs enqueued while it runs; and no job may be stranded by the race "a job lands just as the
drainer decides the queue is empty". The rules:

* The running drainer holds `drain.lock` (released by the OS if it dies, even on SIGKILL) and
  keeps `drain_request.json` fresh (a heartbeat) while it works.
* A hook, *after* its enqueue is durable, requests a drain unless one is covered
  (`claim_request`). Hooks and the drainer's last look serialise on `drain_request.lock`: a hook
  waits its turn (a few milliseconds at most) rather than assume that whoever holds the lock
  covers its job, because the holder may have decided from a marker read before the job existed.
* Before the drainer stops, it clears the marker and *then* looks at the queue once more, both
  under `drain_request.lock` (`clear_and_look`). A hook reads the marker either before that (the
  marker says "running"; the last look comes after the hook's enqueue and sees its job) or after
  it (no marker: the hook requests a new drain). Nothing waits for a next edit.
* A "running" marker counts only while its drainer holds `drain.lock`: a drain killed by Stash's
  Cancel (SIGKILL) releases the lock at once, and the next hook requests a new drain at once.
  While the lock is held a running drain covers every job, however old its heartbeat.
* A "requested" marker nobody turned into a running drain for `STALE_AFTER` seconds (Stash runs
  one job at a time; a scan may hold the queue for an hour) no longer holds hooks back; the hook
  then looks at Stash's job queue before it asks again (stashplugin/drain_request.py), so a long
  Stash job never collects a second waiting "Process Queue".
* A drain that stops with a retry still to come (a change that failed, a refused connection)
  leaves an "idle" marker with `retry_at`; it holds nobody back, and the first invocation after
  `retry_at` asks for a drain (`retry_due`) - a hook for an ignored edit included.
* A drain that finds sync paused exits at once and leaves a "paused" marker: for PAUSE_RECHECK
  seconds it holds hooks back, then the first invocation asks again - a drain reads the settings
  fresh, so switching 'Pause sync' off is noticed within a minute of the next Stash activity,
  and at once by any task (a task reads the settings too, and ends the pause: `end_pause`).
* Every time read here passes `effective_time`: a time further ahead than anything PlexSync
  schedules (a clock stepped back) counts as now.
"""

from __future__ import annotations

import json
import os
import time

from sync.backoff import effective_time
from sync.lock import FileLock
from sync.store import atomic_write_bytes, read_json_quiet

MARKER_NAME = "drain_request.json"
DRAIN_LOCK_NAME = "drain.lock"
STALE_AFTER = 120.0  # seconds: a queued Stash task normally starts well within this
PAUSE_RECHECK = 60.0  # seconds a paused drain holds requests back
CLAIM_WAIT = 5.0  # a hook waits at most this for drain_request.lock (held for milliseconds)
RUNNING = "running"
REQUESTED = "requested"
IDLE = "idle"  # no drain running or requested; `retry_at` says when one is next wanted
PAUSED = "paused"  # a drain found sync paused; `retry_at` says when to look again
NEW = "new"  # claim_request: no drain covers the job; ask Stash for one
STALE = "stale"  # claim_request: an earlier request went stale; look at Stash's job queue first


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def retry_due(marker: dict, now: float) -> bool:
    """Does this marker (as read, e.g. by `read_json_quiet`) say a drain is wanted by `now`?"""
    retry_at = marker.get("retry_at")
    return (
        marker.get("state") in (IDLE, PAUSED) and _number(retry_at) and now >= effective_time(retry_at, now)
    )


class DrainMarker:
    def __init__(self, data_dir: str, clock=time.time):
        self.data_dir = data_dir
        self.path = os.path.join(data_dir, MARKER_NAME)
        self.lock = FileLock(os.path.join(data_dir, "drain_request.lock"))
        self.clock = clock

    def read(self) -> dict:
        """The marker, or {} when there is none or it cannot be read (no lock: a peek)."""
        return read_json_quiet(self.path)

    def covering(self, now: float | None = None) -> str:
        """Why a new request would be a duplicate ("" when it would not): a drain is running,
        one was requested moments ago, or a paused drain asked not to be started again yet."""
        now = self.clock() if now is None else now
        value = self.read()
        state, stamp = value.get("state"), value.get("at")
        if state == RUNNING:
            return RUNNING if drain_running(self.data_dir) else ""
        if state == REQUESTED and _number(stamp) and 0 <= now - stamp < STALE_AFTER:
            return REQUESTED
        if state == PAUSED and not retry_due(value, now):
            return PAUSED
        return ""

    def is_fresh(self, now: float | None = None) -> bool:
        """Is a drain running or requested (so a new request would be a duplicate)?"""
        return bool(self.covering(now))

    def claim_request(self) -> str:
        """After an enqueue: "" when a running drain, a fresh request or a pause covers the job;
        otherwise the request is recorded and the answer says how to make it: NEW (ask Stash for
        a drain) or STALE (an earlier request never started: look at Stash's job queue first).
        """
        if not self.lock.acquire(timeout=CLAIM_WAIT):
            return NEW  # held for seconds (a very slow disk): a duplicate beats a stranded job
        try:
            value = self.read()
            if self.covering():
                return ""
            kind = STALE if value.get("state") == REQUESTED else NEW
            self._write(REQUESTED)
            return kind
        finally:
            self.lock.release()

    def heartbeat(self) -> None:
        """The running drainer says it is alive (hooks then skip their request)."""
        self._write(RUNNING)

    def clear(self) -> None:
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
        except PermissionError:
            # Windows: a hook has the file open this instant. An empty "idle" marker holds nobody
            # back either (os.replace retries past the reader); a hook then requests a new drain.
            self._write(IDLE)

    def clear_and_look(self, look) -> bool:
        """The drainer's last step: clear the marker and call `look()` (is work due?) as one step
        for the hooks, so none decides from a marker read before its job was visible."""
        self.lock.acquire()
        try:
            self.clear()
            return bool(look())
        finally:
            self.lock.release()

    def remember_retry(self, retry_at: float) -> None:
        """A stopped drain leaves the time of its next retry (see the module's rules). Skipped when
        a hook has requested a new drain meanwhile: that request must stand."""
        self._leave(IDLE, retry_at)

    def remember_pause(self) -> None:
        """A drain found sync paused: no new drain for PAUSE_RECHECK seconds, then look again."""
        self._leave(PAUSED, self.clock() + PAUSE_RECHECK)

    def end_pause(self) -> None:
        """Sync is known not to be paused (a task read the settings): a "paused" marker no longer
        holds requests back."""
        if not self.lock.acquire(timeout=CLAIM_WAIT):
            return
        try:
            if self.read().get("state") == PAUSED:
                self.clear()
        finally:
            self.lock.release()

    def _leave(self, state: str, retry_at: float) -> None:
        if not self.lock.acquire(timeout=CLAIM_WAIT):
            return
        try:
            if self.read().get("state") not in (None, IDLE, PAUSED):
                return
            self._write(state, retry_at=float(retry_at))
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
