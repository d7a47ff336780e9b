"""Process Queue: drain every due job into Plex, gently and safely.

One drainer at a time (`drain.lock`); a second exits quietly. The drain consults the circuit
breaker first: while Plex is known to be down nothing is sent but the health probe, and when the
probe says Plex is back the breaker closes and the backlog goes out at the recovery ramp's rate.
The breaker, the probe and the pace are the gate's (worker/gate.py); what a failure means is
worker/failures.py's table; work that runs inside a drain attaches through worker/attach.py.
Jobs are leased in batches (the next drain takes back at once what a SIGKILLed one held), their
scenes fetched from Stash in one small query per batch, matched, diffed and written, then
acknowledged together once what they wrote is durable, or nacked with a classified error. See
docs/ARCHITECTURE.md ("The flow of a change").
"""

from __future__ import annotations

import os
import time

from stashplugin import log
from stashplugin.task import TaskError
from sync.drain_marker import DrainMarker, drain_lock
from worker import steps
from worker.batch_read import prefetch_batch
from worker.drain_report import DrainReport
from worker.entities import EntityExpander
from worker.failures import Stop
from worker.filtered import FilteredScenes
from worker.gate import Gate
from worker.handover import HandOver
from worker.new_scenes import NewSceneScans
from worker.stats import SyncStats
from worker.watcher import WatcherStart

BATCH_SIZE = 100  # jobs leased together: one Stash query, one Plex read, one acknowledgement
FLUSH_SECONDS = 1.0  # a slower batch (the recovery pace) acknowledges what it finished this often
LEASE_SECONDS = 300.0
HEARTBEAT_SECONDS = 5.0
LINGER_SECONDS = 1.0  # how long an emptied drain waits for the next change of a burst
LINGER_POLL_SECONDS = 0.1
RETRY_WAIT_SECONDS = 10.0  # a retry due within this is waited for; a later one is left to the next invocation
DRAIN_LOCK_WAIT = 2.0  # a second drainer waits this long for drain.lock before it exits

__all__ = ["Drain", "DrainReport", "process_queue"]


class Drain:
    """Everything one drain process needs, built once (one Plex connection, one Stash session)."""

    def __init__(self, ctx, clock=time.time, sleep=time.sleep, attachments=()):
        self.ctx = ctx
        self.settings = ctx.settings
        self.queue = ctx.queue()
        self.data_dir = ctx.data_dir
        self.clock = clock
        self.report = DrainReport(started_at=ctx.started_at)  # the whole Stash job, imports and all
        self.gate = Gate(self.settings, self.data_dir, self.queue, clock=clock, sleep=sleep)
        self._sleep = sleep
        self.marker = DrainMarker(self.data_dir, clock=clock)
        self._last_heartbeat = 0.0
        self._total = 1
        self.server = None
        self.counter = None
        self.matcher = None
        self.writer = None
        self.sync_state = None
        self.finished, self.flushed_at = [], clock()  # jobs to acknowledge (`ack_later`), and when last done
        self.filtered = FilteredScenes(self.data_dir)
        self.scans = NewSceneScans(self.settings)
        self.entities = EntityExpander(self)
        self.attachments = [HandOver(ctx, ctx.started_at), *attachments, WatcherStart()]

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> DrainReport:
        self._heartbeat(force=True)
        for attachment in self.attachments:
            attachment.before_drain(self)  # a drain that handed over to this one: carry it on
        stop = None
        try:
            stop = self._remember_retry(self._passes())
        finally:
            self._finish(stop)
        return self.report

    def _passes(self) -> Stop | None:
        while True:
            stop = self._drain_due()
            if stop is None and self._linger():
                continue
            # Clear the marker, then look once more, as one step for the hooks: a hook that
            # enqueued after our last lease either is seen here or finds no marker and
            # requests a new drain (sync/drain_marker.py).
            more = self._work_now if stop is None else (lambda: False)
            if not self.marker.clear_and_look(more):
                return stop
            self._heartbeat(force=True)

    def _linger(self) -> bool:
        """Wait a moment for more work before stopping; True when some is due.

        A bulk edit in Stash runs its hooks one after another, a few per second. Without this
        pause the drain would often empty the queue between two hooks, stop, and the next hook
        would queue a new drain: a burst would cost a Stash job per gap instead of one. The
        marker stays fresh meanwhile, so the hooks of the burst do not ask for another drain.

        A retry due within RETRY_WAIT_SECONDS (a change that failed once, a connection that was
        refused once) is waited for too, so one hiccup of Plex does not leave a change behind
        until the next edit; a later one is remembered for the next invocation (`_remember_retry`).
        """
        now = self.clock()
        self._has_due()
        deadline = now + LINGER_SECONDS
        soon = [
            t
            for t in (self.report.next_retry_at, self.gate.hold_until)
            if t and t - now <= RETRY_WAIT_SECONDS
        ]
        if soon:
            deadline = max(deadline, max(soon) + LINGER_POLL_SECONDS)
            log.debug("Waiting %.0f s for a retry before stopping" % (deadline - now))
        polls = int((deadline - now) / LINGER_POLL_SECONDS) + 2  # bounded even if the clock stands still
        self._heartbeat(force=True)
        while polls > 0 and self.clock() < deadline:
            if self._work_now():
                return True
            self._sleep(LINGER_POLL_SECONDS)
            self._heartbeat()
            polls -= 1
        return False

    def _work_now(self) -> bool:
        """Is a job due and may Plex be tried now?"""
        return self.gate.may_try_now() and self._has_due()

    def _has_due(self) -> bool:
        summary = self.queue.summary()
        self.report.next_retry_at = summary.next_due_at or None
        return summary.pending > 0

    def _remember_retry(self, stop: Stop | None) -> Stop | None:
        """Leave the time of the next retry where every invocation looks (the drain marker), so
        the first hook or task after it asks for a drain, even an edit PlexSync ignores.

        Not while Plex is known to be down (the breaker's next probe plays that part) or after a
        stop by a setting the user must fix (a drain then would only fail again). While paused, a
        "paused" marker holds new drains back for a minute instead. Returns the drain's stop."""
        if self.settings.pause_sync:
            self.marker.remember_pause()  # hooks queue but do not start a drain for a minute
            return stop
        if (stop is not None and stop.error) or not self.gate.closed:
            return stop
        now = self.clock()
        stop = stop or self.gate.held()
        due = self._has_due()
        when = [t for t in (self.report.next_retry_at, self.gate.hold_until if due else 0) if t and t > now]
        if when:
            self.marker.remember_retry(min(when))
        return stop

    def _drain_due(self) -> Stop | None:
        if self.settings.pause_sync:
            self.queue.compact_if_due()  # hooks keep appending while paused; nothing else compacts
            log.info(
                "Sync is paused: %d change(s) stay queued until 'Pause sync' is switched off."
                % self.queue.summary().pending
            )
            return Stop("sync is paused ('Pause sync' setting)")
        stop = self.gate.open_for_sending()
        if stop is not None:
            return stop
        for attachment in self.attachments:
            attachment.before_pass(self)  # the automatic reconciliation, when due: its gaps are drained below
        summary = self.queue.summary()
        self._total = max(1, summary.pending)
        log.debug(
            "Process Queue: %d due, %d waiting for retry, %d dead-lettered; breaker %s"
            % (summary.pending, summary.waiting, summary.dead, self.gate.state)
        )
        while True:
            jobs = self.queue.lease(BATCH_SIZE, LEASE_SECONDS, owner="drain-%d" % os.getpid())
            if not jobs:
                return None
            stop = self._batch(jobs)
            if stop is not None:
                return stop if stop.message else None

    def _batch(self, jobs) -> Stop | None:
        try:
            stop = self._batch_jobs(jobs)
        finally:
            self._flush_state()  # then the batch's finished jobs are acknowledged, in one write
        if stop is not None:
            return stop
        for attachment in self.attachments:
            stop = attachment.after_batch(self)
            if stop is not None:
                return stop
        return None

    def _batch_jobs(self, jobs) -> Stop | None:
        jobs = self.entities.expand(jobs)  # "tag 17 changed" -> its scenes, queued (worker/entities.py)
        jobs = steps.without_unsynced(self, jobs)
        if not jobs:
            return None
        stop = steps.connect(self, jobs)
        if stop is None:
            stop, scenes = steps.fetch_scenes(self, jobs)
        if stop is not None:
            return stop
        prefetch_batch(self, jobs, scenes)  # the batch's Plex items in one request, not one each
        for index, job in enumerate(jobs):
            self.gate.pace()
            stop = steps.process(self, job, scenes.get(job.scene_id))
            self._heartbeat()
            done = self.report.processed_here
            self._total = max(self._total, done + 1)
            log.progress(self.report.bar_at(done / float(self._total)))
            left = len(jobs) - index - 1
            if stop is None and left:
                stop = self._after_change(left)  # the hand-over, however slow the batch
            if stop is not None:
                for rest in jobs[index + 1 :]:
                    self.queue.release(rest)
                return stop
        return None

    def _after_change(self, rest: int) -> Stop | None:
        for attachment in self.attachments:
            stop = attachment.after_change(self, rest)
            if stop is not None:
                return stop
        return None

    # -- bookkeeping ---------------------------------------------------------------------
    def _heartbeat(self, force: bool = False) -> None:
        now = self.clock()
        if force or now - self._last_heartbeat >= HEARTBEAT_SECONDS:
            self.marker.heartbeat()
            self._last_heartbeat = now

    def ack_later(self, job) -> None:
        """A job that needs nothing more: acknowledged with its batch, or within FLUSH_SECONDS."""
        self.finished.append(job)
        if self.clock() - self.flushed_at >= FLUSH_SECONDS:
            self._flush_state()

    def _flush_state(self) -> None:
        steps.flush_batch(self)  # what the finished jobs wrote, durable; then their acknowledgement
        self.flushed_at = self.clock()

    def _finish(self, stop: Stop | None) -> None:
        if stop is not None:  # the one place a stop reaches the report
            self.report.stopped = stop.message
            self.report.error = stop.error
            self.report.handed_over = stop.handed_over
        self._flush_state()
        self.report.ended_at = time.time()
        self.report.plex_requests += self.gate.probe_requests
        if self.counter is not None:  # every plexapi request of this process (probes are counted apart)
            self.report.plex_requests += self.counter.total
        if self.report.next_retry_at is None:
            self._has_due()
        # Each part of a drain that hands over adds its own counts; the last run is the whole drain.
        SyncStats(self.data_dir).record_run(self.report.to_dict(), counted=self.report.own_counts())


def process_queue(ctx, attachments=()) -> dict:
    """Process Queue task: drain until no due job remains. A second drainer exits quietly.

    `attachments` (worker/attach.py) run inside the drain; plexsync.py's task wiring passes the
    automatic reconciliation (reconcile/tasks.py)."""
    data_dir = ctx.ensure_data_dir()
    if ctx.args.get("background"):
        log.log_to_data_folder(data_dir)
    lock = drain_lock(data_dir)
    # Not zero: a hook that checks whether a drain is alive holds the lock for a moment.
    if not lock.acquire(timeout=DRAIN_LOCK_WAIT):
        log.info("Another PlexSync drain is running; it picks up the new changes.")
        return {"skipped": "another drain is running"}
    try:
        drain = Drain(ctx, attachments=attachments)
        steps.reclaim_abandoned(drain)
        report = drain.run()
    finally:
        lock.release()
    for attachment in drain.attachments:
        attachment.after_drain(ctx, report)  # the hand-over; the watcher: work left, nobody at the keyboard
    if report.handed_over:  # a fresh Stash job continues this drain and logs its one summary
        return {"handed_over": True, "part": report.parts}
    # While it runs the bar stays short of full (more changes may arrive); now the run is done.
    log.progress(1.0)
    log.info(report.line())
    if report.error:
        raise TaskError(report.error)
    return report.to_dict()
