"""Tasks that tidy the queue: clear pending jobs, the dead-letter queue, old entries, caches."""
from __future__ import annotations

from stashplugin import log


def clear_pending_queue(ctx) -> dict:
    """Clear Pending Queue (destructive): drop every change waiting to be synced."""
    removed = ctx.queue().clear_pending()
    log.info("Cleared the pending queue: %d change(s) dropped. Run 'Reconcile Now' to find anything that still differs." % removed
             if removed else "The pending queue was already empty.")
    return {"cleared": removed}
