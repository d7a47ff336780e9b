"""The gate: may this drain send to Plex now, and if not, when next?

It alone owns the circuit breaker (worker/breaker.py), the health probe (worker/health.py), the
recovery pace (worker/ratelimit.py) and the backoff after a failed connection, and it is the only
place a success or a failure toward Plex is recorded (pybreaker's `call()` idea). The drain asks
it before it sends, tells it how each attempt went, and gets back a `Stop` (worker/failures.py)
when Plex is down or refused the token.
"""

from __future__ import annotations

import time

from stashplugin import log
from sync.backoff import backoff_delay
from worker.breaker import CLOSED, HALF_OPEN, OPEN, LogListener, OutageListener, breaker_for, describe_failure
from worker.errors import PLEX_UNREACHABLE, SyncFailure
from worker.failures import TOKEN_REFUSED, Stop, token_refused
from worker.health import ProbeRecord, probe
from worker.outages import OutageHistory, plain_duration
from worker.ratelimit import RateLimiter, RecoveryRamp


def _clock_text(when) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when or 0))


class Gate:
    """Breaker, probe, recovery pace and connection backoff of one drain."""

    def __init__(self, settings, data_dir, queue, clock=time.time, sleep=time.sleep):
        self.settings = settings
        self.data_dir = data_dir
        self.queue = queue
        self.clock = clock
        self.outages = OutageHistory(data_dir)
        self.breaker = breaker_for(
            settings,
            data_dir,
            clock=clock,
            listeners=[LogListener(), OutageListener(self.outages, self.waiting)],
        )
        self.ramp = RecoveryRamp.from_breaker(
            self.breaker, rates=settings.recovery_rate_steps, step_seconds=settings.recovery_step_seconds
        )
        self.limiter = RateLimiter(sleep=sleep)
        self.hold_until = 0.0  # no new attempt to connect to Plex before this (a failed connection's backoff)
        self.hold_reason = ""
        self.probe_requests = 0  # requests the health probe made (counted apart from plexapi's)

    # -- questions -------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self.breaker.state

    @property
    def closed(self) -> bool:
        return self.breaker.state == CLOSED

    def may_try_now(self) -> bool:
        """Has a failed connection's backoff run out?"""
        return self.clock() >= self.hold_until

    def waiting(self) -> int:
        """Changes not yet in Plex (pending, waiting for a retry, in flight): an outage's toll."""
        summary = self.queue.summary()
        return summary.pending + summary.waiting + summary.inflight

    # -- before sending --------------------------------------------------------------------
    def open_for_sending(self) -> Stop | None:
        """Breaker and health probe: None when this drain may send to Plex, else why not."""
        state = self.breaker.state
        if state == OPEN:
            when = self.breaker.next_probe_at
            log.info(
                "Plex is down (%s); %d change(s) wait safely. Next check at %s."
                % (self.breaker.last_reason or "no answer", self.waiting(), _clock_text(when))
            )
            return Stop("Plex is down; next check at %s" % _clock_text(when))
        if state == HALF_OPEN:
            return self._probe()
        return None

    def _probe(self) -> Stop | None:
        s = self.settings
        self.breaker.allow_request()  # OPEN -> HALF_OPEN is recorded and logged
        result = probe(s.plex_url, s.plex_token, s.connect_timeout, s.read_timeout, not s.skip_tls_verify)
        self.probe_requests += 2 if result.reachable else 1
        ProbeRecord(self.data_dir).record(result, self.clock())
        if result.healthy:
            self._recovered()
            return None
        failure = result.failure() if callable(getattr(result, "failure", None)) else result.failure
        if token_refused(failure):
            return TOKEN_REFUSED
        self.breaker.record_failure(failure or SyncFailure(PLEX_UNREACHABLE, "probe failed"))
        return Stop("Plex is still down; next check at %s" % _clock_text(self.breaker.next_probe_at))

    def _recovered(self) -> None:
        down_since = self.breaker.down_since
        self.breaker.record_success()
        self.ramp = self.ramp.__class__(self.ramp.rates, self.ramp.step_seconds, self.breaker.recovered_at)
        waiting = self.queue.summary()
        log.info(
            "Plex is back%s; %d change(s) waiting — syncing"
            % (
                " after %s" % plain_duration(self.clock() - down_since) if down_since else "",
                waiting.pending + waiting.waiting,
            )
        )

    def pace(self) -> None:
        """Wait as long as the recovery ramp asks before the next change."""
        rate = self.ramp.rate_at(self.clock())
        if rate is not None:
            self.limiter.wait(rate)

    # -- after an attempt ------------------------------------------------------------------
    def succeeded(self, seconds: float) -> None:
        """A change Plex took: the breaker closes; a quick answer raises the recovery pace."""
        self.breaker.record_success()
        if self.ramp.observe(self.clock(), seconds):
            self.ramp.save_to(self.breaker)
            log.info("Plex keeps up after the outage: sending at full speed again")

    def connection_failed(self, failure) -> Stop | None:
        """Connecting to Plex failed: back off while the breaker is closed, else stop."""
        self.breaker.record_failure(failure)
        reason = "Plex could not be reached (%s)" % failure.detail
        stop = None
        if self.breaker.state == CLOSED:
            # Not yet an outage: try again after a backoff (waited for in the drain's linger when short).
            self.hold_until = self.clock() + backoff_delay(self.breaker.failure_count)
            self.hold_reason = reason
        else:
            stop = Stop(reason)
        log.warning(
            "%s; %d change(s) stay queued. %s" % (reason, self.queue.summary().pending, failure.advice)
        )
        return stop

    def outage_failure(self, failure):
        """Count a failure that says Plex is down; returns (when to retry the job, Stop or None).

        A retry time of None means the queue's usual backoff."""
        self.breaker.record_failure(failure)
        now = self.clock()
        if self.breaker.state == CLOSED:
            if not self.ramp.active(now):
                return None, None
            # Errors while ramping up: start again from the slowest step; if they keep coming
            # (a Plex that flaps, failing between successes), pause sync again.
            self.ramp.record_error(now)
            if not self.ramp.should_reopen(self.breaker.threshold):
                self.ramp.back_off(now)
                self.ramp.save_to(self.breaker)
                return None, None
            self.breaker.trip(
                "%s; %d errors while sync was resuming"
                % (describe_failure(failure), self.ramp.errors_in_ramp)
            )
        # The job is not at fault: it is due again when Plex may be probed again, so the drain that
        # finds Plex back sends it at once instead of leaving it to wait out its backoff.
        return self.breaker.next_probe_at, Stop("Plex stopped answering")

    def held(self) -> Stop | None:
        """At the end of a drain: the backoff still running after a failed connection, as a stop."""
        if self.hold_until > self.clock():
            return Stop("%s; trying again at %s" % (self.hold_reason, _clock_text(self.hold_until)))
        return None
