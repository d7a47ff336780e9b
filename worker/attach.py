"""Work that runs inside a drain attaches here (like dramatiq's middleware).

The drain calls each attachment's hooks at fixed points and knows nothing else about it:
`before_drain(drain)` once, with the drain lock held, before anything else (a drain continuing
one that handed over to it, worker/handover.py); `before_pass(drain)` once Plex may be sent to,
before the queue is leased (the automatic reconciliation, reconcile/tasks.py);
`after_change(drain, rest)` after each change of a batch that has `rest` more to go, and
`after_batch(drain)` after each batch, either returning a `worker.failures.Stop` to end the
drain (the hand-over; the batch's unprocessed changes go back to the queue); and
`after_drain(ctx, report)` once the drain lock is released, before the summary (the
hand-over's request for a fresh drain, then `WatcherStart`, worker/watcher.py).
"""

from __future__ import annotations


class Attachment:
    """No-op hooks; an attachment overrides the ones it needs."""

    def before_drain(self, drain) -> None:
        return None

    def before_pass(self, drain) -> None:
        return None

    def after_change(self, drain, rest: int):
        return None

    def after_batch(self, drain):
        return None

    def after_drain(self, ctx, report) -> None:
        return None
