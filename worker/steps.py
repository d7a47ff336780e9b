"""The steps of a drain's loop (worker/drain.py): take back what a killed drain left in flight;
for one leased batch connect to Plex once, fetch the batch's scenes from Stash, drop what no
setting syncs, then for each job filter, match, write, and put it aside to be acknowledged with
the batch (`flush_batch`), or nack as worker/failures.py's table says. A step returns a `Stop`
when the drain must end (worker/failures.py), else None; the loop acts on it."""

from __future__ import annotations

import time

from stashplugin import log
from sync.jobs import DEAD, INFLIGHT
from worker.errors import STASH_UNREACHABLE, SyncFailure, classify
from worker.failures import TOKEN_REFUSED, Stop, decide, token_refused
from worker.filtered import kept_out

END_PASS = Stop("")  # the pass ends without stopping the drain (a failed connection's backoff)


def connect(drain, jobs) -> Stop | None:
    """Connect to Plex once per drain; a failure gives the batch back (END_PASS: backing off)."""
    if drain.server is not None:
        return None
    from sync.sync_state import SyncState
    from worker.matcher import Matcher
    from worker.plex import connect as connect_plex
    from worker.plex_writer import PlexWriter, PosterMemo

    try:
        drain.server, drain.counter = connect_plex(drain.settings)
    except Exception as exc:  # noqa: BLE001 - classified below
        failure = classify(exc)
        for job in jobs:
            drain.queue.release(job)
        if token_refused(failure):
            return TOKEN_REFUSED
        return drain.gate.connection_failed(failure) or END_PASS
    # Not a success for the breaker: a Plex still loading its database answers "/" and then
    # fails every library request. Only a synced job or a deep health probe proves Plex is up.
    drain.matcher = Matcher(drain.server, drain.settings, drain.data_dir)
    # The memo is fsync'd once per batch, before the batch's jobs are acknowledged (Drain.flush_state).
    memo = PosterMemo(drain.data_dir, batched=True)
    drain.writer = PlexWriter(drain.server, drain.settings, image_source=drain.ctx.stash.image, memo=memo)
    drain.sync_state = SyncState(drain.data_dir)
    return None


def reclaim_abandoned(drain) -> int:
    """Give back the jobs a stopped drain left in flight (Stash's Cancel is a SIGKILL).

    Call with `drain.lock` held: only the lock holder leases, so any lease still running was
    taken by a drain that is gone, and waiting for it to expire would hold those changes back
    for the lease's length (worker/drain.py LEASE_SECONDS). Returns how many jobs were given back.
    """
    now = drain.clock()
    abandoned = [
        j
        for j in drain.queue.jobs(INFLIGHT)
        if j.lease_until > now and str(j.lease_owner).startswith("drain-")
    ]
    for job in abandoned:
        drain.queue.release(job)
    if abandoned:
        log.info("Picked up %d change(s) left in flight by a drain that was stopped." % len(abandoned))
    return len(abandoned)


def flush_batch(drain) -> None:
    """Make what the finished jobs wrote durable, then acknowledge them in one fsync'd write.

    Per batch, not per job: one fsync each for the memo, the sync state and the queue instead of
    two per job. A SIGKILL before the acknowledgement leaves the jobs in flight; the next drain
    takes them back and finds Plex already up to date: nothing lost, some work done twice."""
    if drain.writer is not None and hasattr(drain.writer.memo, "flush"):
        drain.writer.memo.flush()
    drain.filtered.flush()
    if drain.sync_state is not None:
        drain.sync_state.flush()
    if drain.matcher is not None and hasattr(drain.matcher, "flush"):
        drain.matcher.flush()
    finished, drain.finished = drain.finished, []
    drain.queue.ack_many(finished)


def fetch_scenes(drain, jobs):
    """(None, the batch's scenes by id), or (a stop, None) when Stash did not answer."""
    from stashplugin.stash import StashError

    stash = drain.ctx.stash
    try:
        before = stash.requests
        scenes = stash.find_scenes([j.scene_id for j in jobs])
        drain.report.stash_requests += stash.requests - before
        return None, scenes
    except StashError as exc:
        for job in jobs:
            drain.queue.nack(
                job, STASH_UNREACHABLE, log.redact(str(exc))[:300], max_retries=drain.settings.max_retries
            )
        drain.report.failed += len(jobs)
        log.warning("%s The change(s) are retried." % exc)
        return Stop("Stash did not answer"), None


def without_unsynced(drain, jobs) -> list:
    """Drop the jobs none of whose fields the settings sync now (the hook keeps every edit a
    setting could sync, since its copy of the settings may be stale: stashplugin/hook.py)."""
    from stashplugin.hook import synced_fields

    keep = []
    for job in jobs:
        if synced_fields(job.fields, drain.settings):
            keep.append(job)
            continue
        drain.ack_later(job)
        drain.report.skipped += 1
        log.debug(
            "Scene %s: nothing to send (%s not synced by the current settings)"
            % (job.scene_id, ", ".join(job.fields))
        )
    return keep


def process(drain, job, scene) -> Stop | None:
    from stashplugin.stash import StashError

    sid = job.scene_id
    if scene is None:
        drain.ack_later(job)
        drain.report.deleted += 1
        log.info("Scene %s no longer exists in Stash; its queued change was dropped." % sid)
        return None
    for file in scene.get("files") or ():
        log.add_path(file.get("path"))  # hidden whole in logs when 'obfuscate_paths' is on
    title = scene.get("title") or (scene.get("files") or [{}])[0].get("basename") or sid
    if _kept_out(drain, job, scene, title):
        return None
    started = time.monotonic()
    try:
        result = _write(drain, scene)
    except (SyncFailure, StashError, Exception) as exc:  # noqa: BLE001 - every path is classified
        return _failed(drain, job, scene, title, exc)
    drain.ack_later(job)
    drain.gate.succeeded(time.monotonic() - started)
    drain.sync_state.record(sid, result.desired_hash, scene.get("updated_at"), drain.clock())
    if result.unchanged:
        drain.report.unchanged += 1
        log.debug('Scene %s "%s": Plex already up to date' % (sid, title))
    else:
        drain.report.synced += 1
        log.info('Synced scene %s "%s" to Plex (%s)' % (sid, title, ", ".join(result.changed) or "artwork"))
    return None


def _kept_out(drain, job, scene, title) -> bool:
    """A scene a filter setting keeps out of Plex: ack its change as skipped."""
    from worker.metadata import FILTER_WORDS

    reason = kept_out(job, scene, drain.settings, drain.filtered)
    if not reason:
        return False
    drain.ack_later(job)
    drain.report.skipped += 1
    log.info(
        'Scene %s "%s" skipped (%s); it is left as it is in Plex.'
        % (job.scene_id, title, FILTER_WORDS[reason])
    )
    return True


def _write(drain, scene):
    from plexapi.exceptions import NotFound

    match = drain.matcher.match(scene)
    log.debug("Scene %s matches Plex item %s (%s)" % (scene.get("id"), match.rating_key, match.how))
    try:
        return drain.writer.sync(scene, match.rating_key)
    except NotFound:
        # The cached item is gone (deleted or re-added under a new key): match again once.
        drain.matcher.invalidate(str(scene["id"]))
        match = drain.matcher.match(scene)
        return drain.writer.sync(scene, match.rating_key)


def _failed(drain, job, scene, title, exc) -> Stop | None:
    failure = classify(exc)
    action = decide(failure, job, drain.settings)  # worker/failures.py's table
    sid = job.scene_id
    if action.traceback:
        import traceback

        log.debug(traceback.format_exc())
    if action.stop is not None:
        drain.queue.release(job)
        return action.stop
    if action.scan:
        drain.scans.scan_if_new(job, scene, drain.matcher, drain.server)
    if action.skip:
        drain.ack_later(job)
        drain.report.skipped += 1
        log.info('Scene %s "%s" is not in Plex; skipped (\'Skip scenes not in Plex\' is on).' % (sid, title))
        return None
    message = log.redact(str(failure))[:500]
    retry_at, stop = drain.gate.outage_failure(failure) if action.outage else (None, None)
    outcome = drain.queue.nack(
        job,
        failure.error_class,
        message,
        max_retries=drain.settings.max_retries,
        permanent=action.permanent,
        retry_at=retry_at,
    )
    if outcome == DEAD:
        drain.report.dead_lettered += 1
        log.warning('Scene %s "%s" moved to the dead-letter queue: %s' % (sid, title, message))
    else:
        drain.report.failed += 1
        log.info('Scene %s "%s" will be retried: %s' % (sid, title, message))
    return stop
