"""The View Queue Status task: worker/status.py's report with the last reconciliation in it.

`reconcile.json` belongs to reconcile/schedule.py, a floor above worker/, so the status module
cannot read it; this task reads it through its owner and hands it down.
"""

from __future__ import annotations

from reconcile.schedule import read_record
from worker.status import view_queue_status as show_status


def view_queue_status(ctx) -> dict:
    """View Queue Status: log the block and return the same facts as JSON."""
    return show_status(ctx, reconcile=read_record(ctx.data_dir))
