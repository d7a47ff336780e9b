"""Long drains hand over to a fresh drain before Stash's session cookie expires.

The session cookie Stash gives a task stops working after Stash's max session age (1 h by
default; pkg/session/session.go), and a Sync All of a large library runs longer than that. So a
drain that has run for half the session age finishes its batch, gives the rest back to the queue
and asks Stash for a new "Process Queue" (the request the hook makes, with its still valid
cookie); the new task starts with a fresh cookie and carries on. Nothing is lost or done twice:
the jobs left are simply pending. The age is asked of Stash once (`configuration.general.
maxSessionAge`), and only by a drain that has already run CHECK_AFTER seconds.
"""

from __future__ import annotations

from stashplugin import log
from worker.attach import Attachment
from worker.failures import Stop

CHECK_AFTER = 5.0  # seconds of running before a drain asks Stash for the session age
FRACTION = 0.5  # hand over after this part of the session age
DEFAULT_AGE = 3600.0  # Stash's default, when it cannot say
_QUERY = "query PlexSyncSessionAge { configuration { general { maxSessionAge } } }"


def session_age(stash) -> float:
    """Stash's max session age in seconds (its default when Stash cannot say)."""
    from stashplugin.stash import StashError

    try:
        data = stash.query(_QUERY)
    except StashError as exc:
        log.debug("Could not read Stash's session age (%s); assuming %d s" % (exc, DEFAULT_AGE))
        return DEFAULT_AGE
    general = (data.get("configuration") or {}).get("general") or {}
    age = general.get("maxSessionAge")
    return (
        float(age) if isinstance(age, (int, float)) and not isinstance(age, bool) and age > 0 else DEFAULT_AGE
    )


class HandOver(Attachment):
    """Decides, for one drain, when it should hand over to a fresh one."""

    def __init__(self, ctx, started_at: float):
        self.ctx = ctx
        self.started_at = started_at
        self.age = None

    def due(self, now: float) -> bool:
        elapsed = now - self.started_at
        if elapsed < CHECK_AFTER:
            return False
        if self.age is None:
            self.age = session_age(self.ctx.stash)
        return elapsed >= self.age * FRACTION

    def after_batch(self, drain):
        """Before Stash's session cookie expires: the rest goes to a fresh drain."""
        if self.due(drain.clock()):
            return Stop("handed over to a fresh drain", handed_over=True)
        return None


def request_fresh_drain(ctx) -> bool:
    """Ask Stash for the drain that continues this one; False when it could not be asked."""
    from stashplugin.drain_request import ask_stash_to_drain
    from sync.drain_marker import DrainMarker

    marker = DrainMarker(ctx.data_dir)
    if not marker.claim_request():
        return True  # a hook asked for one meanwhile, or a drain already runs
    problem = ask_stash_to_drain(ctx.server_connection)
    if problem:
        marker.withdraw()
        log.warning("PlexSync could not hand over to a fresh drain (%s)." % problem)
        return False
    log.info("Handed over to a fresh drain before Stash's session expires; it continues with the queue.")
    return True
