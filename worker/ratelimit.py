"""Graduated recovery: after an outage, send the backlog at a pace that follows how Plex answers.

A Plex that has just restarted may still be warming caches and scanning; 1,000 queued edits at
full speed could knock it over again, while a Plex back from a 10-second blip can take them at
once. So the pace follows Plex, not the clock (additive increase, multiplicative decrease, as
TCP does): `RecoveryRamp` starts at the first value of the 'Recovery ramp' setting, adds
INCREASE jobs/s for every change Plex takes quickly and without error, halves at once on an
error or a slow answer, and never exceeds the setting's last value, which is the upper bound.
Once Plex has kept up at that bound for CLEAN_SECONDS' worth of changes the ramp ends and the
drain runs unlimited. However Plex answers, the ramp ends `step_seconds` x the number of values
after its start (3 minutes by default; an error starts that time again): the longest protection,
as before. `RateLimiter` spaces jobs to the pace.

Where the ramp lives: every drain is a new process, so the ramp's start (`recovered_at`) and its
error count (`ramp_errors`) are kept in `circuit_breaker.json`, next to the state they belong to.
The breaker sets `recovered_at` when it closes after an outage and clears it when it opens;
`RecoveryRamp.from_breaker(breaker)` continues the ramp (a new process starts again from the
first value, and climbs in seconds when Plex answers well), and `ramp.save_to(breaker)` stores
a restart, an error count, or the end of the ramp.
"""

from __future__ import annotations

import time

DEFAULT_RATES = (2.0, 5.0, 10.0)
DEFAULT_STEP_SECONDS = 60.0
INCREASE = 0.5  # jobs/s added per change Plex took quickly and without error
DECREASE = 0.5  # the pace is multiplied by this on an error or a slow answer
CLEAN_SECONDS = 2.0  # at the upper bound for this many seconds' worth of changes: ramp over
SLOW_FACTOR = 4.0  # an answer this many times slower than the fastest of the ramp is slow...
SLOW_FLOOR = 1.0  # ...when it also takes longer than this many seconds


class RecoveryRamp:
    """Allowed jobs per second after an outage (None: unlimited), following Plex's answers.

    Without a `started_at` (no recent outage) or without rates there is no limit at all.
    `observe(now, seconds)` reports a change Plex took (how long it took); `record_error` and
    `back_off` report an outage-class failure during the ramp.
    """

    def __init__(
        self,
        rates=DEFAULT_RATES,
        step_seconds: float = DEFAULT_STEP_SECONDS,
        started_at: float | None = None,
        errors_in_ramp: int = 0,
    ):
        self.rates = tuple(float(r) for r in rates)
        if any(r <= 0 for r in self.rates):
            raise ValueError("ramp rates must be positive jobs per second")
        if step_seconds <= 0:
            raise ValueError("step_seconds must be positive")
        self.step_seconds = float(step_seconds)
        self.started_at = started_at
        self.errors_in_ramp = int(errors_in_ramp)
        self.pace = self.rates[0] if self.rates else None
        self.top = max(self.rates) if self.rates else None
        self.floor = min(1.0, self.rates[0]) if self.rates else None
        self.fastest = None  # the quickest answer seen in this ramp (seconds)
        self.clean = 0  # changes taken at the upper bound in a row

    @classmethod
    def from_breaker(cls, breaker, rates=DEFAULT_RATES, step_seconds: float = DEFAULT_STEP_SECONDS):
        """The ramp as stored with the breaker (`recovered_at`, `ramp_errors`)."""
        return cls(rates, step_seconds, breaker.recovered_at, breaker.ramp_errors)

    def save_to(self, breaker) -> None:
        """Store this ramp's start (None once it is over) and error count for the next process."""
        breaker.save_ramp(self.started_at, self.errors_in_ramp)

    @property
    def duration(self) -> float:
        """The longest a ramp holds the drain back: seconds from its start (or last error)."""
        return self.step_seconds * len(self.rates)

    def rate_at(self, now: float):
        """Jobs per second allowed at `now`, or None for no limit."""
        if not self.active(now):
            return None
        return self.pace

    def active(self, now: float) -> bool:
        """Is the drain still being held back at `now`? (a clock set back stays in the ramp)"""
        if self.started_at is None or not self.rates:
            return False
        return now - self.started_at < self.duration

    def observe(self, now: float, seconds: float) -> bool:
        """Plex took a change in `seconds`: raise the pace, or lower it when that was slow.

        Returns True when this ended the ramp (Plex kept up at the upper bound); the caller then
        stores it (`save_to`) so the next drain process runs unlimited too.
        """
        if not self.active(now):
            return False
        first = self.fastest is None
        self.fastest = seconds if first else min(self.fastest, seconds)
        if not first and seconds > max(SLOW_FLOOR, SLOW_FACTOR * self.fastest):
            self.pace = max(self.floor, self.pace * DECREASE)
            self.clean = 0
            return False
        if self.pace < self.top:
            self.pace = min(self.top, self.pace + INCREASE)
            return False
        self.clean += 1
        if self.clean >= self.top * CLEAN_SECONDS:
            self.started_at = None
            return True
        return False

    def record_error(self, now: float) -> None:
        """Count a failed job; only errors while the ramp is active count."""
        if self.active(now):
            self.errors_in_ramp += 1

    def back_off(self, now: float) -> None:
        """An error: halve the pace at once, and the longest protection starts again from now."""
        if self.rates:
            self.pace = max(self.floor, (self.pace or self.rates[0]) * DECREASE)
        self.clean = 0
        self.started_at = now

    def should_reopen(self, threshold: int) -> bool:
        """Have `threshold` errors happened during the ramp? Then the drain re-opens the breaker."""
        return threshold > 0 and self.errors_in_ramp >= threshold


class RateLimiter:
    """A token bucket: `wait(rate)` returns once a job may start at `rate` jobs per second.

    With `burst` 1 (the default) jobs are spaced at least 1/rate apart, so no second ever holds
    more than `rate` jobs (plus the first). `clock` is monotonic time and `sleep` sleeps; tests
    pass fakes.
    """

    def __init__(self, clock=time.monotonic, sleep=time.sleep, burst: float = 1.0):
        self.clock = clock
        self.sleep = sleep
        self.capacity = max(1.0, float(burst))
        self._tokens = self.capacity
        self._last = None

    def _refill(self, now: float, rate: float) -> None:
        if self._last is not None:
            self._tokens = min(self.capacity, self._tokens + max(0.0, now - self._last) * rate)
        self._last = now

    def wait(self, rate) -> float:
        """Block until one job may go at `rate` jobs/s (None: no limit); returns seconds slept."""
        now = self.clock()
        if rate is None:
            self._tokens, self._last = self.capacity, now
            return 0.0
        if rate <= 0:
            raise ValueError("rate must be positive, or None for no limit")
        self._refill(now, rate)
        slept = 0.0
        if self._tokens < 1.0:
            slept = (1.0 - self._tokens) / rate
            self.sleep(slept)
            self._refill(self.clock(), rate)
            # A sleep that woke a hair early still lets this job go; the bucket restarts empty.
            self._tokens = max(self._tokens, 1.0)
        self._tokens -= 1.0
        return slept
