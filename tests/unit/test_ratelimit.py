"""Graduated recovery: the ramp's rates over time, backing off, and the token bucket (fake clock)."""

from __future__ import annotations

import pytest

from tests.clock import FakeClock
from worker.breaker import CircuitBreaker, FileBreakerStorage, MemoryBreakerStorage
from worker.ratelimit import RateLimiter, RecoveryRamp

# -- the ramp ------------------------------------------------------------------------------


def _climb(ramp, now, seconds=0.05, jobs=1):
    for _ in range(jobs):
        ended = ramp.observe(now, seconds)
    return ended


def test_pace_starts_at_the_first_value_and_climbs_while_plex_answers_quickly():
    ramp = RecoveryRamp(rates=(2, 5, 10), step_seconds=60, started_at=1000)
    assert ramp.rate_at(1000) == 2
    _climb(ramp, 1001, jobs=5)
    assert 2 < ramp.rate_at(1001) < 10
    _climb(ramp, 1002, jobs=30)
    assert ramp.rate_at(1002) == 10, "the setting's last value is the upper bound"


def test_a_plex_that_keeps_up_at_the_upper_bound_ends_the_ramp():
    ramp = RecoveryRamp(rates=(2, 5, 10), step_seconds=60, started_at=1000)
    ended = [ramp.observe(1001, 0.05) for _ in range(200)]
    assert ended.count(True) == 1 and ramp.rate_at(1002) is None and ramp.started_at is None


def test_a_slow_answer_halves_the_pace_at_once():
    ramp = RecoveryRamp(rates=(2, 5, 10), step_seconds=60, started_at=1000)
    _climb(ramp, 1001, jobs=16)
    assert ramp.rate_at(1001) == 10
    ramp.observe(1002, 3.0)  # 60 times slower than the fastest answer, and over a second
    assert ramp.rate_at(1002) == 5
    ramp.observe(1002, 3.0)
    assert ramp.rate_at(1002) == 2.5


def test_quick_answers_are_not_slow_however_they_compare():
    ramp = RecoveryRamp(rates=(2, 10), step_seconds=60, started_at=1000)
    ramp.observe(1001, 0.001)
    ramp.observe(1001, 0.5)  # 500 times the fastest, but half a second: not slow
    assert ramp.rate_at(1001) == 3.0


def test_however_plex_answers_the_ramp_lets_go_after_its_longest_protection():
    ramp = RecoveryRamp(rates=(2, 5, 10), step_seconds=60, started_at=1000)
    assert ramp.active(1179) and not ramp.active(1180)
    assert ramp.rate_at(1180) is None and ramp.duration == 180


def test_no_recent_outage_means_no_limit():
    assert RecoveryRamp().rate_at(12345) is None


def test_no_rates_means_no_ramp():
    ramp = RecoveryRamp(rates=(), started_at=1000)
    assert ramp.rate_at(1000) is None and not ramp.observe(1000, 0.1)


def test_clock_set_back_stays_in_the_ramp():
    assert RecoveryRamp(started_at=1000).rate_at(900) == 2


def test_an_error_halves_the_pace_restarts_the_protection_and_keeps_the_error_count():
    ramp = RecoveryRamp(rates=(2, 5, 10), step_seconds=60, started_at=1000)
    _climb(ramp, 1130, jobs=16)
    ramp.record_error(1130)
    ramp.back_off(1130)
    assert ramp.rate_at(1130) == 5 and ramp.active(1300)
    assert ramp.errors_in_ramp == 1
    ramp.back_off(1131)
    ramp.back_off(1131)
    ramp.back_off(1131)
    assert ramp.rate_at(1131) == 1.0, "never below one change a second (or the first value if lower)"


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
    clock = FakeClock(1000.0)
    breaker = CircuitBreaker(FileBreakerStorage(str(tmp_path)), threshold=1, open_seconds=60, clock=clock)
    breaker.record_failure("plex_unreachable")
    clock.t = 1060.0
    breaker.allow_request()
    breaker.record_success()
    clock.t = 1100.0  # a new drain process, 40 s into the ramp
    later = CircuitBreaker(FileBreakerStorage(str(tmp_path)), clock=clock)
    ramp = RecoveryRamp.from_breaker(later, rates=(2, 5, 10), step_seconds=60)
    assert ramp.started_at == 1060.0 and ramp.rate_at(clock.t) == 2
    ramp.record_error(clock.t)
    ramp.back_off(clock.t)
    ramp.save_to(later)
    clock.t = 1170.0  # another process after the back-off: still protected, from the first value
    again = RecoveryRamp.from_breaker(CircuitBreaker(FileBreakerStorage(str(tmp_path)), clock=clock))
    assert again.started_at == 1100.0 and again.errors_in_ramp == 1 and again.rate_at(clock.t) == 2
    assert any(again.observe(clock.t, 0.05) for _ in range(200))
    again.save_to(later)
    last = RecoveryRamp.from_breaker(CircuitBreaker(FileBreakerStorage(str(tmp_path)), clock=clock))
    assert last.rate_at(clock.t) is None, "a ramp that ended stays ended for the next process"


def test_no_ramp_without_an_outage():
    breaker = CircuitBreaker(MemoryBreakerStorage())
    assert RecoveryRamp.from_breaker(breaker).rate_at(1e9) is None


# -- the token bucket ----------------------------------------------------------------------


def jobs_per_window(times, window=1.0):
    """The most jobs that started within any `window` seconds."""
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


def test_first_job_goes_at_once():
    clock = FakeClock(500.0)
    assert RateLimiter(clock, clock.sleep).wait(2) == 0
    assert clock.sleeps == []


def test_jobs_are_spaced_to_the_rate():
    clock = FakeClock(500.0)
    limiter = RateLimiter(clock, clock.sleep)
    starts = []
    for _ in range(20):
        limiter.wait(2)
        starts.append(clock.t)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(gap == pytest.approx(0.5) for gap in gaps)
    assert jobs_per_window(starts) <= 3


def test_slow_jobs_are_not_held_back_further():
    clock = FakeClock(500.0)
    limiter = RateLimiter(clock, clock.sleep)
    limiter.wait(2)
    clock.t += 0.7  # the job itself took longer than 1/rate
    assert limiter.wait(2) == 0


def test_an_idle_pause_does_not_save_up_a_burst():
    clock = FakeClock(500.0)
    limiter = RateLimiter(clock, clock.sleep)
    limiter.wait(5)
    clock.t += 60
    starts = []
    for _ in range(10):
        limiter.wait(5)
        starts.append(clock.t)
    assert jobs_per_window(starts) <= 6


def test_a_larger_burst_allows_that_many_at_once():
    clock = FakeClock(500.0)
    limiter = RateLimiter(clock, clock.sleep, burst=3)
    for _ in range(3):
        assert limiter.wait(1) == 0
    assert limiter.wait(1) == pytest.approx(1.0)


def test_rate_follows_the_ramp_and_then_stops_waiting():
    clock = FakeClock(1000.0)
    ramp = RecoveryRamp(rates=(2, 10), step_seconds=60, started_at=1000.0)
    limiter = RateLimiter(clock, clock.sleep)
    starts = []
    while clock.t < 1030:
        limiter.wait(ramp.rate_at(clock.t))
        starts.append(clock.t)
        clock.t += 0.01  # each job takes 10 ms
        ramp.observe(clock.t, 0.01)
    limited = [t for t in starts if ramp_was_on(t, starts)]
    assert jobs_per_window(starts[:3]) <= 3, "it starts gently"
    assert max(jobs_per_window(limited), 1) <= 11, "never above the upper bound while it ramps"
    assert len(starts) >= 2000, "then unlimited: only the jobs' own 10 ms each"
    assert starts[-1] - starts[0] > 29


def ramp_was_on(t, starts):
    """Jobs started while the limiter still spaced them (gaps of more than the jobs' own 10 ms)."""
    i = starts.index(t)
    return i + 1 < len(starts) and starts[i + 1] - t > 0.011


def test_no_limit_never_sleeps():
    clock = FakeClock(500.0)
    limiter = RateLimiter(clock, clock.sleep)
    for _ in range(100):
        assert limiter.wait(None) == 0
    assert clock.sleeps == []


def test_zero_rate_is_refused():
    clock = FakeClock(500.0)
    with pytest.raises(ValueError):
        RateLimiter(clock, clock.sleep).wait(0)
