"""Tasks about Plex's availability: Health Check, Outage Summary, Recover Outage Jobs."""

from __future__ import annotations

import time

from stashplugin import log
from stashplugin.task import TaskError
from sync.breaker_file import CLOSED, HALF_OPEN, OPEN
from sync.jobs import DEAD
from worker.breaker import LogListener, OutageListener, breaker_for
from worker.errors import DEFAULT_RECOVERABLE
from worker.health import ProbeRecord, probe
from worker.outages import OutageHistory, render_summary


def _clock(ts) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _probe(ctx):
    """Probe Plex once and let the circuit breaker hear the answer; returns (result, breaker).

    A probe is evidence like any other: a healthy Plex ends a pause at once (the drain request
    every task makes when it ends then sends what waits, instead of waiting for the next
    scheduled check), and a Plex that is down counts toward pausing sync like a failed job.
    """
    s = ctx.settings
    result = probe(s.plex_url, s.plex_token, s.connect_timeout, s.read_timeout, not s.skip_tls_verify)
    ProbeRecord(ctx.data_dir).record(result, time.time())
    queue = ctx.queue()

    def waiting() -> int:
        summary = queue.summary()
        return summary.pending + summary.waiting + summary.inflight

    listeners = [LogListener(), OutageListener(OutageHistory(ctx.data_dir), waiting)]
    breaker = breaker_for(s, ctx.data_dir, listeners=listeners)
    if result.healthy:
        breaker.record_success()
    elif result.outage:
        breaker.record_failure(result.failure())
    return result, breaker


def health_check(ctx) -> dict:
    """Health Check: is Plex reachable and ready, how fast, and what PlexSync is doing about it."""
    result, breaker = _probe(ctx)
    summary = ctx.queue().summary()
    lines = [
        "PlexSync health check",
        "  " + result.describe(),
        "  Sync: %s"
        % {
            CLOSED: "running normally",
            OPEN: "paused because Plex was down",
            HALF_OPEN: "about to check Plex again",
        }[breaker.state],
    ]
    if breaker.next_probe_at:
        lines.append("  Next automatic check: %s" % _clock(breaker.next_probe_at))
    lines.append(
        "  Queue: %d pending, %d waiting for retry, %d in flight, %d dead-lettered"
        % (summary.pending, summary.waiting, summary.inflight, summary.dead)
    )
    output = {"plex": result.to_dict(), "breaker": breaker.snapshot(), "queue": summary.to_dict()}
    if result.healthy:
        log.info("\n".join(lines))
        return output
    # The first thing a new user runs: a Plex that cannot be used is a warning and the task's error,
    # with the likely cause in the user's words (queued changes wait safely meanwhile).
    advice = result.advice(ctx.settings.plex_url)
    lines.append("  Action: %s Queued changes wait safely." % advice)
    log.warning("\n".join(lines))
    raise TaskError(advice, output)


def outage_summary(ctx) -> dict:
    """Outage Summary: each recorded outage plus MTTR, MTBF and availability."""
    summary = OutageHistory(ctx.data_dir).summary()
    log.info(render_summary(summary))
    return summary


def recover_outage_jobs(ctx) -> dict:
    """Recover Outage Jobs: move dead-lettered changes that failed because Plex was down back to
    the queue, once Plex is healthy. Idempotent: a second run finds nothing more to move."""
    result, _breaker = _probe(ctx)
    if not result.healthy:
        raise TaskError(
            "Plex is not healthy yet (%s); run Recover Outage Jobs again once it is." % result.describe()
        )
    classes = set(DEFAULT_RECOVERABLE) | set(ctx.settings.recover_classes)
    queue = ctx.queue()
    dead = [j for j in queue.jobs(DEAD) if j.error_class in classes]
    if not dead:
        log.info("No dead-lettered changes from outages (%s) to recover." % ", ".join(sorted(classes)))
        return {"recovered": 0, "skipped_deleted": 0, "skipped_queued": 0}
    queued = {j.scene_id for j in queue.jobs() if j.state != DEAD}
    existing = ctx.stash.find_scenes([j.scene_id for j in dead])
    to_move, deleted, already = [], [], []
    for job in dead:
        if job.scene_id not in existing:
            deleted.append(job.scene_id)
        elif job.scene_id in queued:
            already.append(job.scene_id)
        else:
            to_move.append(job.id)
    moved = queue.requeue(to_move, source="recover")
    log.info(
        "Recovered %d dead-lettered change(s) into the queue; skipped %d deleted in Stash and %d already queued."
        % (moved, len(deleted), len(already))
    )
    return {"recovered": moved, "skipped_deleted": len(deleted), "skipped_queued": len(already)}
