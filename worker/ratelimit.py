"""Graduated recovery: after an outage, send the backlog to Plex slowly at first.

A Plex that has just restarted is still warming caches and scanning; 1,000 queued edits at full
speed could knock it over again. `RecoveryRamp` says how many jobs per second are allowed at a
given moment after recovery (2, then 5, then 10, then unlimited, one step a minute by default);
`RateLimiter` spaces jobs to that rate.

Where the ramp lives: every drain is a new process, so the ramp's start (`recovered_at`) and its
error count (`ramp_errors`) are kept in `circuit_breaker.json`, next to the state they belong to.
The breaker sets `recovered_at` when it closes after an outage and clears it when it opens;
`RecoveryRamp.from_breaker(breaker)` continues the ramp, and `ramp.save_to(breaker)` stores a
restart or an error count.
"""
from __future__ import annotations

import time

DEFAULT_RATES = (2.0, 5.0, 10.0)
DEFAULT_STEP_SECONDS = 60.0


class RecoveryRamp:
    """Allowed jobs per second at time t after recovery; None means unlimited.

    `rates[0]` for the first `step_seconds` after `started_at`, `rates[1]` for the next step,
    and so on; after the last step there is no limit. Without a `started_at` (no recent
    outage) there is no limit at all.
    """

    def __init__(self, rates=DEFAULT_RATES, step_seconds: float = DEFAULT_STEP_SECONDS,
                 started_at: float | None = None, errors_in_ramp: int = 0):
        self.rates = tuple(float(r) for r in rates)
        if any(r <= 0 for r in self.rates):
            raise ValueError("ramp rates must be positive jobs per second")
        if step_seconds <= 0:
            raise ValueError("step_seconds must be positive")
        self.step_seconds = float(step_seconds)
        self.started_at = started_at
        self.errors_in_ramp = int(errors_in_ramp)

    @classmethod
    def from_breaker(cls, breaker, rates=DEFAULT_RATES, step_seconds: float = DEFAULT_STEP_SECONDS):
        """The ramp as stored with the breaker (`recovered_at`, `ramp_errors`)."""
        return cls(rates, step_seconds, breaker.recovered_at, breaker.ramp_errors)

    def save_to(self, breaker) -> None:
        """Store this ramp's start and error count with the breaker for the next process."""
        breaker.save_ramp(self.started_at, self.errors_in_ramp)

    @property
    def duration(self) -> float:
        """Seconds from the start of the ramp to the end of its last limited step."""
        return self.step_seconds * len(self.rates)

    def rate_at(self, now: float):
        """Jobs per second allowed at `now`, or None for no limit."""
        if self.started_at is None or not self.rates:
            return None
        elapsed = max(0.0, now - self.started_at)  # a clock set back stays on the first step
        step = int(elapsed // self.step_seconds)
        return self.rates[step] if step < len(self.rates) else None

    def active(self, now: float) -> bool:
        """Is the drain still being held back at `now`?"""
        return self.rate_at(now) is not None

    def record_error(self, now: float) -> None:
        """Count a failed job; only errors while the ramp is active count."""
        if self.active(now):
            self.errors_in_ramp += 1

    def back_off(self, now: float) -> None:
        """Errors are rising: start again from the slowest step (the error count is kept)."""
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
