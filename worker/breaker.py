"""The circuit breaker: stop sending work to a Plex that is down, and notice when it is back.

A state machine in the manner of pybreaker: the three states are small classes, every
transition goes through `CircuitBreaker._move`, persistence sits behind a storage object and
logging is a listener.

    CLOSED    --N consecutive outage failures-->  OPEN
    OPEN      --open period elapsed (lazily)-->   HALF_OPEN
    HALF_OPEN --success-->                        CLOSED  (the recovery ramp starts)
    HALF_OPEN --outage failure-->                 OPEN    (open period x2, capped)
    CLOSED    --`trip`: N errors in one recovery ramp-->  OPEN  (a Plex that flaps while recovering)

Only failures whose error class says Plex is down (`SyncFailure.outage`) count; a 401, an
ambiguous match or a file not yet in Plex says nothing about Plex being up or down and leaves the
breaker untouched.

Every invocation is a new process, so the state lives in `circuit_breaker.json`. Each change is a
read-modify-write under the file's cross-process lock, taken with timeout 0: when another process
holds it the save is skipped (the change is kept in memory only) instead of waiting (only drains
and tasks write this file; the hook only reads it). The same file also holds the start of the
recovery ramp (`recovered_at`, `ramp_errors`; see worker/ratelimit.py) so that each new drain
process continues the ramp.

`read_breaker_cheap` in sync/breaker_file.py reads the state without a lock or a write, importing
only the standard library and `sync`; it is the hook's one way to read this file
(`plexsync.drain_wanted`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from stashplugin import log
from sync.backoff import effective_time
from sync.breaker_file import CLOSED, FILE_NAME, HALF_OPEN, OPEN, number
from sync.store import JsonFile
from worker.errors import PLEX_STARTING, PLEX_TIMEOUT, PLEX_UNAVAILABLE, PLEX_UNREACHABLE, SyncFailure
from worker.outages import plain_duration

STATES = (CLOSED, OPEN, HALF_OPEN)
MAX_PAUSE = 60.0  # seconds: the longest pause between checks, as the settings promise

# How each outage class reads in a log line ("Plex unreachable (connection refused) 5 times").
_FAILURE_WORDS = {
    PLEX_UNREACHABLE: "Plex unreachable",
    PLEX_TIMEOUT: "Plex did not answer in time",
    PLEX_UNAVAILABLE: "Plex answered with a server error",
    PLEX_STARTING: "Plex is still starting",
}


def describe_failure(failure: SyncFailure) -> str:
    """One short phrase for a failure, e.g. "Plex unreachable (connection refused)"."""
    words = _FAILURE_WORDS.get(failure.error_class, failure.error_class.replace("_", " "))
    return "%s (%s)" % (words, failure.detail) if failure.detail else words


def _blank() -> dict:
    return {
        "state": CLOSED,
        "failure_count": 0,
        "opened_at": None,
        "open_seconds": None,
        "next_probe_at": None,
        "down_since": None,
        "reopen_count": 0,
        "last_reason": "",
        "last_error_class": "",
        "changed_at": None,
        "recovered_at": None,
        "ramp_errors": 0,
    }


def _clean(raw, warn: bool = False) -> dict:
    """Coerce whatever was read into a well-formed record; garbage values fall back to CLOSED.

    With `warn`, a record that had to be thrown away is reported (once, when first read).
    """
    data = _blank()
    if not isinstance(raw, dict):
        return data
    for key in ("opened_at", "open_seconds", "next_probe_at", "down_since", "changed_at", "recovered_at"):
        data[key] = number(raw.get(key))
    for key in ("failure_count", "reopen_count", "ramp_errors"):
        value = number(raw.get(key))
        data[key] = max(0, int(value)) if value is not None else 0
    for key in ("last_reason", "last_error_class"):
        data[key] = raw.get(key) if isinstance(raw.get(key), str) else ""
    state = raw.get("state", CLOSED)
    if state in (OPEN, HALF_OPEN) and (data["opened_at"] is None or data["next_probe_at"] is None):
        state = None  # an OPEN without its times cannot be honoured
    if state not in STATES:
        if warn and raw:
            log.warning(
                "%s held an unknown breaker state (%r); starting CLOSED" % (FILE_NAME, raw.get("state"))
            )
        data.update(_blank())
        return data
    data["state"] = state
    return data


# -- storage -------------------------------------------------------------------------------


class MemoryBreakerStorage:
    """Breaker state in memory, for tests. Set `busy = True` to act like a lock held elsewhere."""

    def __init__(self, data: dict | None = None):
        self.data = dict(data or {})
        self.busy = False
        self.saves = 0

    def read(self) -> dict:
        """The stored record (a copy)."""
        return dict(self.data)

    def update(self, fn):
        """Apply `fn(record) -> record` and store it; None (skipped) while `busy`."""
        if self.busy:
            return None
        self.data = dict(fn(self.read()))
        self.saves += 1
        return dict(self.data)


class FileBreakerStorage:
    """Breaker state in `<data_dir>/circuit_breaker.json`, shared by every process.

    A file that cannot be parsed is moved aside by JsonFile and reported as a warning; one that
    cannot be read at all (permissions) is reported too. Either way the breaker starts CLOSED.
    """

    def __init__(self, data_dir: str):
        self.path = os.path.join(data_dir, FILE_NAME)
        self.file = JsonFile(self.path, default={}, on_corrupt=self._corrupt, on_error=self._unusable)

    @property
    def lock_path(self) -> str:
        return self.file.lock.path

    @staticmethod
    def _corrupt(exc) -> None:
        log.warning("%s; the circuit breaker starts CLOSED" % exc)

    @staticmethod
    def _unusable(problem) -> None:
        log.warning(
            "%s; %s"
            % (
                problem,
                "the breaker state is kept for this run only"
                if problem.saving
                else "the circuit breaker starts CLOSED",
            )
        )

    def read(self) -> dict:
        """The stored record, or {} (CLOSED) when the file is missing, corrupt or unreadable."""
        return self.file.read()

    def update(self, fn):
        """Read-modify-write under the lock, or None at once when another process holds it."""
        return self.file.update(fn, timeout=0)


# -- states --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    """What listeners are told: from, to, when, and why."""

    old: str  # CLOSED, OPEN or HALF_OPEN
    new: str
    at: float
    reason: str
    failure_count: int
    open_seconds: float
    down_since: float | None

    def __repr__(self):
        return "Transition(%s -> %s, %r)" % (self.old, self.new, self.reason)


class _ClosedState:
    name = CLOSED

    def allow(self, cb, data, now):
        return True

    def success(self, cb, data, now):
        data["failure_count"] = 0

    def failure(self, cb, data, failure, now):
        data["failure_count"] += 1
        if data["failure_count"] >= cb.threshold:
            cb._move(data, OPEN, now)


class _OpenState:
    name = OPEN

    def allow(self, cb, data, now):
        if now >= effective_time(data["next_probe_at"], now):
            cb._move(data, HALF_OPEN, now)
            return True
        return False

    def success(self, cb, data, now):
        # Any answer from Plex (a Health Check, a job that was already in flight) proves it is up.
        cb._move(data, CLOSED, now)

    def failure(self, cb, data, failure, now):
        pass  # already paused; a late failure must not lengthen the pause


class _HalfOpenState:
    name = HALF_OPEN

    def allow(self, cb, data, now):
        return True

    def success(self, cb, data, now):
        cb._move(data, CLOSED, now)

    def failure(self, cb, data, failure, now):
        cb._move(data, OPEN, now)


_STATE_OBJECTS = {CLOSED: _ClosedState(), OPEN: _OpenState(), HALF_OPEN: _HalfOpenState()}


class CircuitBreaker:
    """Decides whether a request may go to Plex, from the outcomes of earlier ones.

    `storage` is a FileBreakerStorage or MemoryBreakerStorage; the state is read from it once,
    here. `open_seconds` is the first pause; each failed probe doubles it, up to
    `max_open_seconds`. `clock` returns wall time (the state is shared across processes).
    `listeners` get `state_change(breaker, transition)`.
    """

    def __init__(
        self,
        storage,
        threshold: int = 5,
        open_seconds: float = 60.0,
        max_open_seconds: float = 300.0,
        clock=time.time,
        listeners=(),
    ):
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.storage = storage
        self.threshold = int(threshold)
        self.open_seconds = float(open_seconds)
        self.max_open_seconds = max(float(max_open_seconds), self.open_seconds)
        self.clock = clock
        self.listeners = list(listeners)
        self._data = _clean(storage.read(), warn=True)
        self._pending = []

    # -- reading -------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the stored state (another process may have changed it)."""
        self._data = _clean(self.storage.read(), warn=True)

    def state_at(self, now: float) -> str:
        """The state at `now`: an OPEN breaker whose pause is over reads as HALF_OPEN."""
        state = self._data["state"]
        if state == OPEN and now >= effective_time(self._data["next_probe_at"], now):
            return HALF_OPEN
        return state

    @property
    def state(self) -> str:
        """CLOSED, OPEN or HALF_OPEN, now."""
        return self.state_at(self.clock())

    @property
    def opened_at(self):
        return self._data["opened_at"]

    @property
    def next_probe_at(self):
        """When Plex may be asked again (None while CLOSED)."""
        return self._data["next_probe_at"] if self._data["state"] != CLOSED else None

    @property
    def down_since(self):
        """When the current (or last) outage opened the breaker; re-opens keep the first time."""
        return self._data["down_since"]

    @property
    def failure_count(self) -> int:
        return self._data["failure_count"]

    @property
    def last_reason(self) -> str:
        return self._data["last_reason"]

    @property
    def last_error_class(self) -> str:
        return self._data["last_error_class"]

    @property
    def recovered_at(self):
        """When the breaker last closed after an outage: the start of the recovery ramp."""
        return self._data["recovered_at"]

    @property
    def ramp_errors(self) -> int:
        return self._data["ramp_errors"]

    def snapshot(self) -> dict:
        """The stored record as a plain dict (for status reports)."""
        return dict(self._data)

    # -- events --------------------------------------------------------------------------
    def allow_request(self) -> bool:
        """May a request go to Plex now? CLOSED yes, OPEN no, HALF_OPEN yes (it is the probe)."""
        now = self.clock()
        if self._data["state"] == OPEN and now < effective_time(self._data["next_probe_at"], now):
            return False  # the common "still paused" answer costs no write
        if self._data["state"] != OPEN:
            return True
        result = []
        self._apply(lambda cb, data, t: result.append(_STATE_OBJECTS[data["state"]].allow(cb, data, t)), now)
        return result[-1] if result else True

    def record_success(self) -> None:
        """Plex answered. Closes an OPEN/HALF_OPEN breaker and resets the failure count."""
        if self._data["state"] == CLOSED and self._data["failure_count"] == 0:
            return  # nothing to change: no write per successful job
        self._apply(lambda cb, data, t: _STATE_OBJECTS[data["state"]].success(cb, data, t))

    def record_failure(self, failure, detail: str = "") -> None:
        """A request failed. `failure` is a SyncFailure or an error class name.

        Only outage classes count toward opening; anything else is ignored.
        """
        if not isinstance(failure, SyncFailure):
            failure = SyncFailure(str(failure), detail)
        if not failure.outage:
            return
        reason = log.redact(describe_failure(failure))[:300]

        def event(cb, data, now):
            data["last_reason"] = reason
            data["last_error_class"] = failure.error_class
            _STATE_OBJECTS[data["state"]].failure(cb, data, failure, now)

        self._apply(event)

    def trip(self, reason: str) -> None:
        """Open a CLOSED breaker now, whatever the consecutive-failure count: the drain does this
        when errors keep coming back during the recovery ramp although some jobs succeed."""
        reason = log.redact(reason)[:300]

        def event(cb, data, now):
            if data["state"] == CLOSED:
                data["last_reason"] = reason
                data["failure_count"] = 0  # the reason says how many; not "N times in a row"
                cb._move(data, OPEN, now)

        self._apply(event)

    def save_ramp(self, started_at, errors: int) -> None:
        """Store the recovery ramp's start and error count (see worker/ratelimit.RecoveryRamp)."""

        def event(cb, data, now):
            data["recovered_at"] = started_at
            data["ramp_errors"] = int(errors)

        self._apply(event)

    # -- the one place where the state changes --------------------------------------------
    def _move(self, data: dict, new: str, now: float) -> None:
        old = data["state"]
        if new == OPEN:
            if old == HALF_OPEN:
                period = min((data["open_seconds"] or self.open_seconds) * 2, self.max_open_seconds)
                data["reopen_count"] += 1
            else:
                period = self.open_seconds
                data["reopen_count"] = 0
                data["down_since"] = now
            if data["down_since"] is None:
                data["down_since"] = now
            data.update(
                opened_at=now,
                open_seconds=period,
                next_probe_at=now + period,
                recovered_at=None,
                ramp_errors=0,
            )
        elif new == CLOSED:
            data.update(failure_count=0, reopen_count=0, recovered_at=now, ramp_errors=0)
        data["state"] = new
        data["changed_at"] = now
        self._pending.append(
            Transition(
                old,
                new,
                now,
                data["last_reason"],
                data["failure_count"],
                data["open_seconds"],
                data["down_since"],
            )
        )

    def _apply(self, event, now: float | None = None) -> None:
        now = self.clock() if now is None else now

        def change(stored):
            self._pending = []
            data = _clean(stored)
            event(self, data, now)
            return data

        saved = self.storage.update(change)
        if saved is None:
            # Another process holds the file: act on the change in this process, unsaved.
            log.debug("circuit breaker: file busy, change not saved")
            saved = change(dict(self._data))
        self._data = _clean(saved)
        transitions, self._pending = self._pending, []
        for transition in transitions:
            for listener in self.listeners:
                try:
                    listener.state_change(self, transition)
                except Exception as exc:  # a listener must never break the sync
                    log.debug("breaker listener failed: %s" % exc)


def breaker_for(settings, data_dir: str, listeners=(), clock=time.time) -> CircuitBreaker:
    """The breaker as the user's settings shape it; every process builds its own from the file."""
    return CircuitBreaker(
        FileBreakerStorage(data_dir),
        threshold=settings.breaker_threshold,
        open_seconds=settings.breaker_open_seconds,
        max_open_seconds=max(MAX_PAUSE, settings.breaker_open_seconds),
        clock=clock,
        listeners=listeners,
    )


class OutageListener:
    """Keeps the outage history (worker/outages.py) in step with the breaker.

    An outage starts when the breaker opens and ends when it closes; `waiting()`, when given,
    says how many changes were waiting then (the outage's "jobs affected").
    """

    def __init__(self, history, waiting=None):
        self.history = history
        self.waiting = waiting

    def state_change(self, breaker, t: Transition) -> None:
        if t.new == OPEN and t.old == CLOSED:
            self.history.start(t.reason or "Plex did not answer", t.at)
        elif t.new == CLOSED and t.old != CLOSED:
            self.history.end(t.at, jobs_affected=self.waiting() if self.waiting is not None else None)


class LogListener:
    """Logs every transition once, in plain words, through Stash's log."""

    def state_change(self, breaker, t: Transition) -> None:
        if t.new == OPEN and t.old == HALF_OPEN:
            log.warning(
                "Plex still not answering: %s — pausing sync for %s"
                % (t.reason or "no answer", plain_duration(t.open_seconds))
            )
        elif t.new == OPEN:
            times = " %d times in a row" % t.failure_count if t.failure_count > 1 else ""
            log.warning(
                "%s%s — pausing sync for %s; changes keep being queued"
                % (t.reason or "Plex failed", times, plain_duration(t.open_seconds))
            )
        elif t.new == HALF_OPEN:
            log.info("Sync pause is over — checking whether Plex answers again")
        elif t.new == CLOSED:
            if t.down_since is not None:
                log.info("Plex answered again after %s — resuming sync" % plain_duration(t.at - t.down_since))
            else:
                log.info("Plex answered again — resuming sync")
