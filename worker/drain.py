"""Process Queue: drain every due job into Plex, gently and safely.

One drainer at a time (`drain.lock`); a second exits quietly. The drain consults the circuit
breaker first: while Plex is known to be down nothing is sent but the health probe, and when the
probe says Plex is back the breaker closes and the backlog goes out at the recovery ramp's rate.
Jobs are leased in batches (the next drain takes back at once what a SIGKILLed one held), their
scenes fetched from Stash in one small query per batch, matched, diffed and written, then acked
or nacked with a classified error. See docs/ARCHITECTURE.md ("The flow of a change").
"""

from __future__ import annotations

import os
import time

from stashplugin import log
from stashplugin.task import TaskError
from sync.drain_marker import DrainMarker, drain_lock
from worker.errors import SyncFailure, classify
from worker.filtered import FilteredScenes, kept_out

BATCH_SIZE = 25
LEASE_SECONDS = 300.0
HEARTBEAT_SECONDS = 5.0
LINGER_SECONDS = 1.0  # how long an emptied drain waits for the next change of a burst
LINGER_POLL_SECONDS = 0.1
RETRY_WAIT_SECONDS = 10.0  # a retry due within this is waited for; a later one is left to the next invocation
DRAIN_LOCK_WAIT = 2.0  # a second drainer waits this long for drain.lock before it exits


class DrainReport:
    """What one drain did; logged as the summary line and returned as the task's output."""

    def __init__(self):
        self.synced = 0
        self.unchanged = 0
        self.skipped = 0
        self.failed = 0
        self.dead_lettered = 0
        self.deleted = 0
        self.plex_requests = 0
        self.stash_requests = 0
        self.started_at = time.time()
        self.ended_at = None
        self.stopped = ""  # why the drain stopped early ("" = queue empty)
        self.next_retry_at = None
        self.error = ""
        self.handed_over = False  # a fresh drain continues (worker/handover.py)

    @property
    def seconds(self) -> float:
        return round((self.ended_at or time.time()) - self.started_at, 2)

    @property
    def processed(self) -> int:
        return self.synced + self.unchanged + self.skipped + self.failed + self.dead_lettered + self.deleted

    def to_dict(self) -> dict:
        out = {
            k: getattr(self, k)
            for k in (
                "synced",
                "unchanged",
                "skipped",
                "failed",
                "dead_lettered",
                "deleted",
                "plex_requests",
                "stash_requests",
                "started_at",
                "ended_at",
                "stopped",
                "next_retry_at",
                "handed_over",
            )
        }
        out["seconds"] = self.seconds
        return out

    def line(self) -> str:
        text = "Process Queue: %d synced, %d unchanged, %d skipped, %d failed, %d dead-lettered in %.1f s" % (
            self.synced,
            self.unchanged,
            self.skipped + self.deleted,
            self.failed,
            self.dead_lettered,
            self.seconds,
        )
        if self.next_retry_at:
            text += "; next retry at %s" % time.strftime("%H:%M:%S", time.localtime(self.next_retry_at))
        if self.handed_over:
            text += "; a fresh drain continues"
        elif self.stopped:
            text += " (stopped: %s)" % self.stopped
        return text


class Drain:
    """Everything one drain process needs, built once (one Plex connection, one Stash session)."""

    def __init__(self, ctx, clock=time.time, sleep=time.sleep):
        from worker.breaker import LogListener, OutageListener, breaker_for
        from worker.outages import OutageHistory
        from worker.ratelimit import RateLimiter, RecoveryRamp

        self.ctx = ctx
        self.settings = ctx.settings
        self.queue = ctx.queue()
        self.data_dir = ctx.data_dir
        self.clock = clock
        self.report = DrainReport()
        self.outages = OutageHistory(self.data_dir)
        self.breaker = breaker_for(
            self.settings,
            self.data_dir,
            clock=clock,
            listeners=[LogListener(), OutageListener(self.outages, self._waiting)],
        )
        self.ramp = RecoveryRamp.from_breaker(
            self.breaker,
            rates=self.settings.recovery_rate_steps,
            step_seconds=self.settings.recovery_step_seconds,
        )
        self.limiter = RateLimiter(sleep=sleep)
        self._sleep = sleep
        self.marker = DrainMarker(self.data_dir, clock=clock)
        self._last_heartbeat = 0.0
        self.server = None
        self.counter = None
        self.matcher = None
        self.writer = None
        self.sync_state = None
        self.filtered = FilteredScenes(self.data_dir)
        self.scanned_folders = set()  # folders Plex was asked to scan in this run (one request each)
        self.hold_until = 0.0  # no new attempt to connect to Plex before this (a failed connection's backoff)
        self.hold_reason = ""
        from worker.entities import EntityExpander
        from worker.handover import HandOver

        self.entities = EntityExpander(self)
        self.handover = HandOver(ctx, clock())

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> DrainReport:
        self._heartbeat(force=True)
        try:
            while True:
                self._drain_due()
                if not self.report.stopped and self._linger():
                    continue
                # Clear the marker, then look once more, as one step for the hooks: a hook that
                # enqueued after our last lease either is seen here or finds no marker and
                # requests a new drain (sync/drain_marker.py).
                if not self.marker.clear_and_look(lambda: not self.report.stopped and self._work_now()):
                    break
                self._heartbeat(force=True)
            self._remember_retry()
        finally:
            self._finish()
        return self.report

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
            t for t in (self.report.next_retry_at, self.hold_until) if t and t - now <= RETRY_WAIT_SECONDS
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
        return self.clock() >= self.hold_until and self._has_due()

    def _has_due(self) -> bool:
        summary = self.queue.summary()
        self.report.next_retry_at = summary.next_due_at or None
        return summary.pending > 0

    def _remember_retry(self) -> None:
        """Leave the time of the next retry where every invocation looks (the drain marker), so
        the first hook or task after it asks for a drain, even an edit PlexSync ignores.

        Not while Plex is known to be down (the breaker's next probe plays that part) or after a
        stop by a setting the user must fix (a drain then would only fail again). While paused, a
        "paused" marker holds new drains back for a minute instead."""
        from worker.breaker import CLOSED

        if self.settings.pause_sync:
            self.marker.remember_pause()  # hooks queue but do not start a drain for a minute
            return
        if self.report.error or self.breaker.state != CLOSED:
            return
        now = self.clock()
        if self.hold_until > now and not self.report.stopped:
            self.report.stopped = "%s; trying again at %s" % (
                self.hold_reason,
                time.strftime("%H:%M:%S", time.localtime(self.hold_until)),
            )
        due = self._has_due()
        when = [t for t in (self.report.next_retry_at, self.hold_until if due else 0) if t and t > now]
        if when:
            self.marker.remember_retry(min(when))

    def _drain_due(self) -> None:
        if self.settings.pause_sync:
            self.queue.compact_if_due()  # hooks keep appending while paused; nothing else compacts
            self.report.stopped = "sync is paused ('Pause sync' setting)"
            log.info(
                "Sync is paused: %d change(s) stay queued until 'Pause sync' is switched off."
                % self.queue.summary().pending
            )
            return
        if not self._plex_allowed():
            return
        from reconcile.tasks import reconcile_if_due

        reconcile_if_due(self)  # the automatic reconciliation, when due: its gaps are drained below
        summary = self.queue.summary()
        total = max(1, summary.pending)
        log.debug(
            "Process Queue: %d due, %d waiting for retry, %d dead-lettered; breaker %s"
            % (summary.pending, summary.waiting, summary.dead, self.breaker.state)
        )
        while not self.report.stopped:
            jobs = self.queue.lease(BATCH_SIZE, LEASE_SECONDS, owner="drain-%d" % os.getpid())
            if not jobs:
                return
            jobs = self.entities.expand(jobs)  # "tag 17 changed" -> its scenes, queued (worker/entities.py)
            jobs = self._without_unsynced(jobs)
            if not jobs:
                continue
            if not self._connected(jobs):
                return
            scenes = self._fetch_scenes(jobs)
            if scenes is None:
                return
            from worker.batch_read import prefetch_batch

            prefetch_batch(self, jobs, scenes)  # the batch's Plex items in one request, not one each
            for index, job in enumerate(jobs):
                if self.report.stopped:
                    for rest in jobs[index:]:
                        self.queue.release(rest)
                    return
                self._pace()
                self._process(job, scenes.get(job.scene_id))
                self._heartbeat()
                done = self.report.processed
                total = max(total, done + 1)
                log.progress(done / float(total))
            self._flush_state()
            if self.handover.due(self.clock()):
                # Before Stash's session cookie expires: the rest goes to a fresh drain.
                self.report.handed_over = True
                self.report.stopped = "handed over to a fresh drain"
                return

    def _without_unsynced(self, jobs) -> list:
        """Drop the jobs none of whose fields the settings sync now (the hook keeps every edit a
        setting could sync, since its copy of the settings may be stale: stashplugin/hook.py)."""
        from stashplugin.hook import synced_fields

        keep = []
        for job in jobs:
            if synced_fields(job.fields, self.settings):
                keep.append(job)
                continue
            self.queue.ack(job)
            self.report.skipped += 1
            log.debug(
                "Scene %s: nothing to send (%s not synced by the current settings)"
                % (job.scene_id, ", ".join(job.fields))
            )
        return keep

    # -- gates ---------------------------------------------------------------------------
    def _plex_allowed(self) -> bool:
        """Breaker and health probe: may this drain send anything to Plex?"""
        from worker.breaker import HALF_OPEN, OPEN

        state = self.breaker.state
        if state == OPEN:
            when = self.breaker.next_probe_at
            self.report.stopped = "Plex is down; next check at %s" % time.strftime(
                "%H:%M:%S", time.localtime(when)
            )
            log.info(
                "Plex is down (%s); %d change(s) wait safely. Next check at %s."
                % (
                    self.breaker.last_reason or "no answer",
                    self._waiting(),
                    time.strftime("%H:%M:%S", time.localtime(when)),
                )
            )
            return False
        if state == HALF_OPEN:
            return self._probe()
        return True

    def _probe(self) -> bool:
        from worker.health import ProbeSchedule, probe

        s = self.settings
        self.breaker.allow_request()  # OPEN -> HALF_OPEN is recorded and logged
        result = probe(s.plex_url, s.plex_token, s.connect_timeout, s.read_timeout, not s.skip_tls_verify)
        self.report.plex_requests += 2 if result.reachable else 1
        ProbeSchedule(self.data_dir).record(result, self.clock())
        if result.healthy:
            down_since = self.breaker.down_since
            self.breaker.record_success()
            self.ramp = self.ramp.__class__(
                self.ramp.rates, self.ramp.step_seconds, self.breaker.recovered_at
            )
            waiting = self.queue.summary()
            log.info(
                "Plex is back%s; %d change(s) waiting — syncing"
                % (
                    " after %s" % _duration(self.clock() - down_since) if down_since else "",
                    waiting.pending + waiting.waiting,
                )
            )
            return True
        failure = result.failure() if callable(getattr(result, "failure", None)) else result.failure
        if failure is not None and failure.error_class == "plex_unauthorized":
            self._stop_unauthorized()
            return False
        self.breaker.record_failure(failure or SyncFailure("plex_unreachable", "probe failed"))
        when = self.breaker.next_probe_at
        self.report.stopped = "Plex is still down; next check at %s" % time.strftime(
            "%H:%M:%S", time.localtime(when or 0)
        )
        return False

    def _connected(self, jobs) -> bool:
        if self.server is not None:
            return True
        from sync.sync_state import SyncState
        from worker.matcher import Matcher
        from worker.plex import connect
        from worker.plex_writer import PlexWriter, PosterMemo

        try:
            self.server, self.counter = connect(self.settings)
        except Exception as exc:  # noqa: BLE001 - classified below
            failure = classify(exc)
            for job in jobs:
                self.queue.release(job)
            if failure.error_class == "plex_unauthorized":
                self._stop_unauthorized()
                return False
            from sync.backoff import backoff_delay
            from worker.breaker import CLOSED

            self.breaker.record_failure(failure)
            reason = "Plex could not be reached (%s)" % failure.detail
            if self.breaker.state == CLOSED:
                # Not yet an outage: try again after a backoff (waited for in `_linger` when short).
                self.hold_until = self.clock() + backoff_delay(self.breaker.failure_count)
                self.hold_reason = reason
            else:
                self.report.stopped = reason
            log.warning(
                "%s; %d change(s) stay queued. %s" % (reason, self.queue.summary().pending, failure.advice)
            )
            return False
        # Not a success for the breaker: a Plex still loading its database answers "/" and then
        # fails every library request. Only a synced job or a deep health probe proves Plex is up.
        self.matcher = Matcher(self.server, self.settings, self.data_dir)
        self.writer = PlexWriter(
            self.server, self.settings, image_source=self.ctx.stash.image, memo=PosterMemo(self.data_dir)
        )
        self.sync_state = SyncState(self.data_dir)
        return True

    def _stop_unauthorized(self) -> None:
        self.report.stopped = "Plex refused the token"
        self.report.error = (
            "Plex refused the token (HTTP 401): set a valid 'Plex token' in PlexSync's settings, "
            "then run Process Queue; no queued change was lost."
        )

    def _fetch_scenes(self, jobs):
        from stashplugin.stash import StashError

        try:
            before = self.ctx.stash.requests
            scenes = self.ctx.stash.find_scenes([j.scene_id for j in jobs])
            self.report.stash_requests += self.ctx.stash.requests - before
            return scenes
        except StashError as exc:
            for job in jobs:
                self.queue.nack(
                    job,
                    "stash_unreachable",
                    log.redact(str(exc))[:300],
                    max_retries=self.settings.max_retries,
                )
            self.report.failed += len(jobs)
            self.report.stopped = "Stash did not answer"
            log.warning("%s The change(s) are retried." % exc)
            return None

    def _observe(self, seconds: float) -> None:
        """Recovery follows Plex: a change it took quickly raises the pace (worker/ratelimit.py)."""
        if self.ramp.observe(self.clock(), seconds):
            self.ramp.save_to(self.breaker)
            log.info("Plex keeps up after the outage: sending at full speed again")

    def _pace(self) -> None:
        rate = self.ramp.rate_at(self.clock())
        if rate is not None:
            self.limiter.wait(rate)

    # -- one job -------------------------------------------------------------------------
    def _process(self, job, scene) -> None:
        from stashplugin.stash import StashError

        sid = job.scene_id
        if scene is None:
            self.queue.ack(job)
            self.report.deleted += 1
            log.info("Scene %s no longer exists in Stash; its queued change was dropped." % sid)
            return
        for file in scene.get("files") or ():
            log.add_path(file.get("path"))  # hidden whole in logs when 'obfuscate_paths' is on
        title = scene.get("title") or (scene.get("files") or [{}])[0].get("basename") or sid
        if self._kept_out(job, scene, title):
            return
        started = time.monotonic()
        try:
            result = self._write(scene)
        except (SyncFailure, StashError, Exception) as exc:  # noqa: BLE001 - every path is classified
            self._failed(job, scene, title, exc)
            return
        self.queue.ack(job)
        self.breaker.record_success()
        self._observe(time.monotonic() - started)
        self.sync_state.record(sid, result.desired_hash, scene.get("updated_at"), self.clock())
        if result.unchanged:
            self.report.unchanged += 1
            log.debug("Scene %s \"%s\": Plex already up to date" % (sid, title))
        else:
            self.report.synced += 1
            log.info(
                "Synced scene %s \"%s\" to Plex (%s)" % (sid, title, ", ".join(result.changed) or "artwork")
            )

    def _kept_out(self, job, scene, title) -> bool:
        """A scene a filter setting keeps out of Plex: ack its change as skipped."""
        from worker.metadata import FILTER_WORDS

        reason = kept_out(job, scene, self.settings, self.filtered)
        if not reason:
            return False
        self.queue.ack(job)
        self.report.skipped += 1
        log.info(
            "Scene %s \"%s\" skipped (%s); it is left as it is in Plex."
            % (job.scene_id, title, FILTER_WORDS[reason])
        )
        return True

    def _write(self, scene):
        from plexapi.exceptions import NotFound

        match = self.matcher.match(scene)
        log.debug("Scene %s matches Plex item %s (%s)" % (scene.get("id"), match.rating_key, match.how))
        try:
            return self.writer.sync(scene, match.rating_key)
        except NotFound:
            # The cached item is gone (deleted or re-added under a new key): match again once.
            self.matcher.invalidate(str(scene["id"]))
            match = self.matcher.match(scene)
            return self.writer.sync(scene, match.rating_key)

    def _failed(self, job, scene, title, exc) -> None:
        failure = classify(exc)
        sid = job.scene_id
        if failure.error_class == "internal":
            import traceback

            log.debug(traceback.format_exc())
        if failure.error_class == "plex_unauthorized":
            self.queue.release(job)
            self._stop_unauthorized()
            return
        if failure.error_class == "invalid_settings":
            # Every job would fail the same way: keep them all and say which setting to fix.
            self.queue.release(job)
            self.report.stopped = "a setting does not fit this Plex server"
            self.report.error = "%s (%s)" % (failure.advice, failure.detail)
            return
        if failure.error_class == "not_in_plex":
            self._scan_if_new(job, scene)
        if failure.error_class == "not_in_plex" and self.settings.skip_not_found:
            self.queue.ack(job)
            self.report.skipped += 1
            log.info(
                "Scene %s \"%s\" is not in Plex; skipped ('Skip scenes not in Plex' is on)." % (sid, title)
            )
            return
        message = log.redact(str(failure))[:500]
        retry_at = self._outage_failure(failure) if failure.outage else None
        outcome = self.queue.nack(
            job,
            failure.error_class,
            message,
            max_retries=self.settings.max_retries,
            permanent=not failure.transient,
            retry_at=retry_at,
        )
        if outcome == "dead":
            self.report.dead_lettered += 1
            log.warning("Scene %s \"%s\" moved to the dead-letter queue: %s" % (sid, title, message))
        else:
            self.report.failed += 1
            log.info("Scene %s \"%s\" will be retried: %s" % (sid, title, message))

    def _scan_if_new(self, job, scene) -> None:
        """'Ask Plex to scan new files': a scene Stash just added is not in Plex yet, so ask Plex
        to scan the file's folder, once per change (a retry does not ask again)."""
        if not (self.settings.trigger_plex_scan and job.source == "Scene.Create.Post" and job.attempts == 0):
            return
        files = [f for f in (scene or {}).get("files") or [] if isinstance(f, dict) and f.get("path")]
        if not files or self.matcher is None:
            return
        from worker.plex_writer import trigger_scan

        plex_path = self.matcher.mapper.to_plex(files[0]["path"])
        cut = max(plex_path.rfind("/"), plex_path.rfind("\\"))
        folder = plex_path[:cut] if cut > 0 else plex_path
        if folder in self.scanned_folders:
            return  # new scenes in the same folder: one scan finds them all
        section = _section_holding(self.matcher.index, folder)
        if section is None:
            log.info(
                "Scene %s is new, but %s is in none of Plex's library folders, so no scan was asked for; "
                "check 'Path mapping'." % (job.scene_id, folder)
            )
            return
        try:
            self.scanned_folders.add(folder)
            trigger_scan(self.server, section, folder)
        except Exception as exc:  # noqa: BLE001 - the job is retried either way
            log.info(
                "Scene %s is new and not in Plex yet; asking Plex to scan %s failed (%s)"
                % (job.scene_id, folder, classify(exc))
            )
            return
        log.info("Scene %s is new and not in Plex yet: asked Plex to scan %s" % (job.scene_id, folder))

    def _outage_failure(self, failure):
        """Count a failure that says Plex is down; returns when to retry the job (None: backoff)."""
        from worker.breaker import CLOSED, describe_failure

        self.breaker.record_failure(failure)
        now = self.clock()
        if self.breaker.state == CLOSED:
            if not self.ramp.active(now):
                return None
            # Errors while ramping up: start again from the slowest step; if they keep coming
            # (a Plex that flaps, failing between successes), pause sync again.
            self.ramp.record_error(now)
            if not self.ramp.should_reopen(self.breaker.threshold):
                self.ramp.back_off(now)
                self.ramp.save_to(self.breaker)
                return None
            self.breaker.trip(
                "%s; %d errors while sync was resuming"
                % (describe_failure(failure), self.ramp.errors_in_ramp)
            )
        self.report.stopped = "Plex stopped answering"
        # The job is not at fault: it is due again when Plex may be probed again, so the drain that
        # finds Plex back sends it at once instead of leaving it to wait out its backoff.
        return self.breaker.next_probe_at

    # -- bookkeeping ---------------------------------------------------------------------
    def _waiting(self) -> int:
        """Changes not yet in Plex (pending, waiting for a retry, in flight): an outage's toll."""
        summary = self.queue.summary()
        return summary.pending + summary.waiting + summary.inflight

    def reclaim_abandoned(self) -> int:
        """Give back the jobs a stopped drain left in flight (Stash's Cancel is a SIGKILL).

        Call with `drain.lock` held: only the lock holder leases, so any lease still running was
        taken by a drain that is gone, and waiting for it to expire would hold those changes back
        for LEASE_SECONDS. Returns how many jobs were given back.
        """
        now = self.clock()
        abandoned = [
            j
            for j in self.queue.jobs("inflight")
            if j.lease_until > now and str(j.lease_owner).startswith("drain-")
        ]
        for job in abandoned:
            self.queue.release(job)
        if abandoned:
            log.info("Picked up %d change(s) left in flight by a drain that was stopped." % len(abandoned))
        return len(abandoned)

    def _heartbeat(self, force: bool = False) -> None:
        now = self.clock()
        if force or now - self._last_heartbeat >= HEARTBEAT_SECONDS:
            self.marker.heartbeat()
            self._last_heartbeat = now

    def _flush_state(self) -> None:
        self.filtered.flush()
        if self.sync_state is not None:
            self.sync_state.flush()
        if self.matcher is not None and hasattr(self.matcher, "flush"):
            self.matcher.flush()

    def _finish(self) -> None:
        self._flush_state()
        self.report.ended_at = time.time()
        if self.counter is not None:  # every plexapi request of this process (probes are counted apart)
            self.report.plex_requests += self.counter.total
        if self.report.next_retry_at is None:
            self._has_due()
        from worker.stats import SyncStats

        SyncStats(self.data_dir).record_run(self.report.to_dict())


def _section_holding(index, folder: str):
    """The id of the Plex library whose folders hold `folder`, or None."""
    from worker.paths import loose_key

    want = loose_key(folder)
    for section_id in sorted(index.sections()):
        for location in index.locations(section_id):
            root = loose_key(location).rstrip("/")
            if root and (want == root or want.startswith(root + "/")):
                return section_id
    return None


def _duration(seconds: float) -> str:
    from worker.outages import plain_duration

    return plain_duration(seconds)


def process_queue(ctx) -> dict:
    """Process Queue task: drain until no due job remains. A second drainer exits quietly."""
    data_dir = ctx.ensure_data_dir()
    if ctx.args.get("background"):
        log.configure(file_path=os.path.join(data_dir, "plexsync.log"))
    lock = drain_lock(data_dir)
    # Not zero: a hook that checks whether a drain is alive holds the lock for a moment.
    if not lock.acquire(timeout=DRAIN_LOCK_WAIT):
        log.info("Another PlexSync drain is running; it picks up the new changes.")
        return {"skipped": "another drain is running"}
    try:
        drain = Drain(ctx)
        drain.reclaim_abandoned()
        report = drain.run()
    finally:
        lock.release()
    from worker.watcher import continue_after_drain

    continue_after_drain(ctx, report)  # work left and nobody at the keyboard: something must come back
    # While it runs the bar stays short of full (more changes may arrive); now the run is done.
    log.progress(1.0)
    log.info(report.line())
    if report.error:
        raise TaskError(report.error)
    return report.to_dict()
