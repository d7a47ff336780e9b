"""Tasks that tidy the queue: clear pending jobs, the dead-letter queue, old entries, caches."""

from __future__ import annotations

from stashplugin import log
from stashplugin.task import TaskError
from worker.matcher import remove_match_cache
from worker.plex_index import remove_index


def clear_pending_queue(ctx) -> dict:
    """Clear Pending Queue (destructive): drop every change waiting to be synced."""
    removed = ctx.queue().clear_pending()
    log.info(
        "Cleared the pending queue: %d change(s) dropped. Run 'Reconcile Now' to find anything that still differs."
        % removed
        if removed
        else "The pending queue was already empty."
    )
    return {"cleared": removed}


def clear_dead_letter_queue(ctx) -> dict:
    """Clear Dead Letter Queue (destructive): forget every change that failed for good."""
    removed = ctx.queue().clear_dead()
    log.info(
        "Cleared the dead-letter queue: %d entr%s removed." % (removed, "y" if removed == 1 else "ies")
        if removed
        else "The dead-letter queue was already empty."
    )
    return {"cleared": removed}


def purge_old_dead_letters(ctx) -> dict:
    """Purge Old DLQ Entries (destructive): remove dead-letter entries older than `days` (default 30)."""
    raw = ctx.args.get("days", 30)
    try:
        days = float(raw)
        if not 0 <= days <= 36500:
            raise ValueError
    except (TypeError, ValueError):
        raise TaskError("Purge Old DLQ Entries needs 'days' as a number of days (0-36500), got %r." % (raw,))
    removed = ctx.queue().purge_dead(days * 86400)
    log.info(
        "Removed %d dead-letter entr%s older than %g days." % (removed, "y" if removed == 1 else "ies", days)
    )
    return {"purged": removed, "days": days}


def clear_match_cache(ctx) -> dict:
    """Clear Match Cache: forget remembered Stash-to-Plex matches and the Plex path index.

    Not destructive to metadata: the next sync matches every scene again (a few paged requests).
    """
    removed = remove_match_cache(ctx.data_dir) + remove_index(ctx.data_dir)
    log.info(
        "Cleared the match cache; scenes are matched to Plex again on their next sync."
        if removed
        else "The match cache was already empty."
    )
    return {"removed": removed}
