"""Retry timing: capped exponential backoff with full jitter (pure functions)."""

from __future__ import annotations

BASE_DELAY = 5.0  # seconds before the first retry, on average
MAX_DELAY = 3600.0  # never wait more than an hour between attempts


def backoff_bounds(attempt: int, base: float = BASE_DELAY, cap: float = MAX_DELAY) -> tuple:
    """The (low, high) window in seconds for the retry after failed attempt number `attempt` (1-based)."""
    attempt = max(1, int(attempt))
    high = min(cap, base * (2 ** min(attempt - 1, 30)))
    return (high / 2.0, high)


def backoff_delay(attempt: int, base: float = BASE_DELAY, cap: float = MAX_DELAY, rand=None) -> float:
    """Seconds to wait before retrying: uniform in `backoff_bounds` ("equal jitter").

    Half the window is fixed so retries always back off; the other half is random so that many
    jobs failing together (Plex went down) do not come back in lock-step.
    """
    if rand is None:
        import random  # not at the top: the hook imports this module but never retries

        rand = random.random
    low, high = backoff_bounds(attempt, base, cap)
    return low + (high - low) * rand()


# The furthest ahead PlexSync ever schedules anything: a retry (MAX_DELAY), a lease (300 s), the
# breaker's next probe (at most an hour), a paused drain's next look (a minute).
MAX_AHEAD = MAX_DELAY


def effective_time(when, now: float, limit: float = MAX_AHEAD) -> float:
    """`when`, or `now` when `when` lies further ahead than anything PlexSync schedules.

    Retry times, lease ends and probe times are wall-clock times. After a clock that ran ahead
    (a day, a year) is corrected they would hold work back for that long; no delay PlexSync sets
    is longer than `limit`, so such a time can only be the old clock's and counts as now.
    """
    return now if when - now > limit else when
