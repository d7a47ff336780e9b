"""What a failed job means for the drain: one table, one pure function.

`decide(failure, job, settings)` turns a classified failure (worker/errors.py) into an `Action`:
give the job back and stop the drain with a message, skip it, or nack it (retry at a time the gate
chooses for an outage, dead-letter when permanent or out of retries). The table is
`worker.errors.ERROR_CLASSES` (whether a class is transient, says Plex is down, and what a drain
does with it); nothing in the drain compares error classes, it asks this function.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.errors import NOT_FOUND, SETTINGS, STOP, TRACE

UNAUTHORIZED_ERROR = (
    "Plex refused the token (HTTP 401): set a valid 'Plex token' in PlexSync's settings, "
    "then run Process Queue; no queued change was lost."
)


@dataclass(frozen=True)
class Stop:
    """Why a drain stops early: the line the user reads, and the task's error when it failed."""

    message: str
    error: str = ""
    handed_over: bool = False  # a fresh drain continues (worker/handover.py)


TOKEN_REFUSED = Stop("Plex refused the token", UNAUTHORIZED_ERROR)


@dataclass(frozen=True)
class Action:
    """What to do with one failed job."""

    stop: Stop | None = None  # give the job back and stop the drain
    scan: bool = False  # ask Plex to scan the new file's folder first
    skip: bool = False  # ack it as skipped
    traceback: bool = False  # log the traceback at debug level
    outage: bool = False  # the gate counts it and says when to retry
    permanent: bool = False  # dead-letter at once


def token_refused(failure) -> bool:
    """Does this failure mean Plex refused the token (stop everything, keep every job)?"""
    return failure is not None and failure.action == STOP


def decide(failure, job, settings) -> Action:
    """The action for one failed job (pure: reads nothing, writes nothing)."""
    kind = failure.action
    if kind == STOP:
        return Action(stop=TOKEN_REFUSED)
    if kind == SETTINGS:
        # Every job would fail the same way: keep them all and say which setting to fix.
        error = "%s (%s)" % (failure.advice, failure.detail)
        return Action(stop=Stop("a setting does not fit this Plex server", error))
    skip = kind == NOT_FOUND and bool(settings.skip_not_found)
    return Action(
        scan=kind == NOT_FOUND,
        skip=skip,
        traceback=kind == TRACE,
        outage=failure.outage and not skip,
        permanent=not failure.transient,
    )
