"""View Queue Status: one short block a person can read at a glance, and the same as JSON."""
from __future__ import annotations

import time

from stashplugin import log
from sync.store import quarantined_files


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 90:
        return "%d s" % seconds
    if seconds < 5400:
        return "%d min" % round(seconds / 60)
    if seconds < 172800:
        return "%.1f h" % (seconds / 3600)
    return "%.1f days" % (seconds / 86400)


def collect_status(ctx, now: float | None = None) -> dict:
    now = now if now is not None else time.time()
    summary = ctx.queue().summary()
    return {
        "queue": {
            "pending": summary.pending,
            "waiting_for_retry": summary.waiting,
            "in_flight": summary.inflight,
            "dead_lettered": summary.dead,
            "dead_by_reason": summary.dead_by_class,
            "oldest_pending_age_seconds": round(now - summary.oldest_pending_at, 1) if summary.oldest_pending_at else None,
            "next_retry_at": summary.next_due_at or None,
        },
        "quarantined_files": quarantined_files(ctx.data_dir),
        "paused": bool(ctx.settings.pause_sync),
    }


def render_status(status: dict) -> str:
    q = status["queue"]
    lines = ["PlexSync status"]
    waiting = q["pending"] + q["waiting_for_retry"] + q["in_flight"]
    line = "  Queue: %d pending, %d in flight, %d waiting for retry" % (q["pending"], q["in_flight"], q["waiting_for_retry"])
    if q["oldest_pending_age_seconds"] is not None and waiting:
        line += " (oldest %s)" % _age(q["oldest_pending_age_seconds"])
    lines.append(line)
    if q["dead_lettered"]:
        reasons = ", ".join("%s %d" % (k or "unknown", v) for k, v in sorted(q["dead_by_reason"].items()))
        lines.append("  Dead-lettered: %d (%s)" % (q["dead_lettered"], reasons))
    else:
        lines.append("  Dead-lettered: none")
    if status["quarantined_files"]:
        lines.append("  DAMAGED FILES moved aside: %s" % ", ".join(status["quarantined_files"]))
    if status["paused"]:
        lines.append("  Sync is paused ('Pause sync' setting): changes are queued, nothing is sent to Plex.")
    action = next_action(status)
    lines.append("  Action: %s" % action if action else "  All good: nothing to do.")
    return "\n".join(lines)


def next_action(status: dict) -> str:
    """The one thing the user should do, or "" when all is well."""
    if status["quarantined_files"]:
        return ("a damaged state file was moved aside (readable jobs were kept); look at it in the data folder, "
                "then delete it to clear this warning")
    if status["paused"]:
        return "switch off 'Pause sync' to send queued changes to Plex"
    if status["queue"]["dead_lettered"]:
        return "read the dead-letter reasons above, fix the cause, then run 'Recover Outage Jobs' or 'Clear Dead Letter Queue'"
    return ""


def view_queue_status(ctx) -> dict:
    """View Queue Status: log the block and return the same facts as JSON."""
    status = collect_status(ctx)
    log.info(render_status(status))
    return status
