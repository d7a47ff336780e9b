"""Graduated recovery: the ramp's rates over time, backing off, and the token bucket (fake clock)."""
from __future__ import annotations

import pytest

from worker.breaker import CircuitBreaker, FileBreakerStorage, MemoryBreakerStorage
from worker.ratelimit import RateLimiter, RecoveryRamp


class FakeTime:
    """A clock whose sleep moves it forward; records every sleep."""

    def __init__(self, t=500.0):
        self.t = t
        self.sleeps = []

    def clock(self):
        return self.t

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.t += seconds


# -- the ramp ------------------------------------------------------------------------------

def test_ramp_steps_up_each_minute_then_lets_go():
    ramp = RecoveryRamp(rates=(2, 5, 10), step_seconds=60, started_at=1000)
    assert [ramp.rate_at(t) for t in (1000, 1059.9, 1060, 1119, 1120, 1179, 1180, 5000)] == \
        [2, 2, 5, 5, 10, 10, None, None]
    assert ramp.active(1179) and not ramp.active(1180)
    assert ramp.duration == 180


def test_no_recent_outage_means_no_limit():
    assert RecoveryRamp().rate_at(12345) is None


def test_clock_set_back_stays_on_the_slowest_step():
    assert RecoveryRamp(started_at=1000).rate_at(900) == 2


def test_back_off_starts_again_from_the_slowest_step_and_keeps_the_error_count():
    ramp = RecoveryRamp(rates=(2, 5, 10), step_seconds=60, started_at=1000)
    ramp.record_error(1130)
    ramp.back_off(1130)
    assert ramp.rate_at(1130) == 2 and ramp.rate_at(1190) == 5
    assert ramp.errors_in_ramp == 1


def test_errors_after_the_ramp_do_not_count():
    ramp = RecoveryRamp(rates=(2,), step_seconds=60, started_at=1000)
    ramp.record_error(1010)
    ramp.record_error(2000)
    assert ramp.errors_in_ramp == 1


def test_enough_errors_during_the_ramp_say_reopen():
    ramp = RecoveryRamp(started_at=1000)
    for t in range(1000, 1004):
        ramp.record_error(t)
    assert not ramp.should_reopen(5)
    ramp.record_error(1004)
    assert ramp.should_reopen(5)
    assert not ramp.should_reopen(0)  # 0 switches re-opening off


@pytest.mark.parametrize("rates,step", [((2, 0), 60), ((2, -1), 60), ((2,), 0)])
def test_nonsense_ramp_settings_are_refused(rates, step):
    with pytest.raises(ValueError):
        RecoveryRamp(rates=rates, step_seconds=step)


def test_closing_the_breaker_starts_a_ramp_the_next_process_continues(tmp_path):
    t = [1000.0]
    clock = lambda: t[0]  # noqa: E731
    breaker = CircuitBreaker(FileBreakerStorage(str(tmp_path)), threshold=1, open_seconds=60, clock=clock)
    breaker.record_failure("plex_unreachable")
    t[0] = 1060.0
    breaker.allow_request()
    breaker.record_success()
    t[0] = 1100.0  # a new drain process, 40 s into the ramp
    later = CircuitBreaker(FileBreakerStorage(str(tmp_path)), clock=clock)
    ramp = RecoveryRamp.from_breaker(later, rates=(2, 5, 10), step_seconds=60)
    assert ramp.started_at == 1060.0 and ramp.rate_at(t[0]) == 2
    ramp.record_error(t[0])
    ramp.back_off(t[0])
    ramp.save_to(later)
    t[0] = 1170.0  # another process after the back-off: second step
    again = RecoveryRamp.from_breaker(CircuitBreaker(FileBreakerStorage(str(tmp_path)), clock=clock))
    assert again.started_at == 1100.0 and again.errors_in_ramp == 1 and again.rate_at(t[0]) == 5


def test_no_ramp_without_an_outage():
    breaker = CircuitBreaker(MemoryBreakerStorage())
    assert RecoveryRamp.from_breaker(breaker).rate_at(1e9) is None


# -- the token bucket ----------------------------------------------------------------------

def jobs_per_window(times, window=1.0):
    """The most jobs that started within any `window` seconds."""
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


def test_first_job_goes_at_once():
    fake = FakeTime()
    assert RateLimiter(fake.clock, fake.sleep).wait(2) == 0
    assert fake.sleeps == []


def test_jobs_are_spaced_to_the_rate():
    fake = FakeTime()
    limiter = RateLimiter(fake.clock, fake.sleep)
    starts = []
    for _ in range(20):
        limiter.wait(2)
        starts.append(fake.t)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(gap == pytest.approx(0.5) for gap in gaps)
    assert jobs_per_window(starts) <= 3


def test_slow_jobs_are_not_held_back_further():
    fake = FakeTime()
    limiter = RateLimiter(fake.clock, fake.sleep)
    limiter.wait(2)
    fake.t += 0.7  # the job itself took longer than 1/rate
    assert limiter.wait(2) == 0


def test_an_idle_pause_does_not_save_up_a_burst():
    fake = FakeTime()
    limiter = RateLimiter(fake.clock, fake.sleep)
    limiter.wait(5)
    fake.t += 60
    starts = []
    for _ in range(10):
        limiter.wait(5)
        starts.append(fake.t)
    assert jobs_per_window(starts) <= 6


def test_a_larger_burst_allows_that_many_at_once():
    fake = FakeTime()
    limiter = RateLimiter(fake.clock, fake.sleep, burst=3)
    for _ in range(3):
        assert limiter.wait(1) == 0
    assert limiter.wait(1) == pytest.approx(1.0)


def test_rate_follows_the_ramp_and_then_stops_waiting():
    fake = FakeTime(t=1000.0)
    ramp = RecoveryRamp(rates=(2, 5), step_seconds=10, started_at=1000.0)
    limiter = RateLimiter(fake.clock, fake.sleep)
    starts = []
    while fake.t < 1030:
        limiter.wait(ramp.rate_at(fake.t))
        starts.append(fake.t)
        fake.t += 0.01  # each job takes 10 ms
    first = [t for t in starts if t < 1010]
    second = [t for t in starts if 1010 <= t < 1020]
    free = [t for t in starts if t >= 1020]
    assert len(first) <= 2 * 10 + 1
    assert len(second) <= 5 * 10 + 1
    assert len(free) >= 900  # unlimited: only the jobs' own 10 ms each
    assert jobs_per_window(first) <= 3 and jobs_per_window(second) <= 6


def test_no_limit_never_sleeps():
    fake = FakeTime()
    limiter = RateLimiter(fake.clock, fake.sleep)
    for _ in range(100):
        assert limiter.wait(None) == 0
    assert fake.sleeps == []


def test_zero_rate_is_refused():
    fake = FakeTime()
    with pytest.raises(ValueError):
        RateLimiter(fake.clock, fake.sleep).wait(0)
