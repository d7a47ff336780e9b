"""The sync queue: one interface, a memory implementation and a durable file implementation.

The worker depends on `JobQueue` only (like huey's storage classes). Every operation is turned
into a record and applied by `sync.jobs.QueueState`, so both implementations share one set of
rules. `FileQueue` is an fsync'd append-only JSON-lines journal with compaction; why a journal
rather than rewriting one JSON file is explained in docs/ARCHITECTURE.md ("The queue file").
"""

from __future__ import annotations

import json
import os
import time

from sync.backoff import backoff_delay, effective_time
from sync.jobs import DEAD, INFLIGHT, PENDING, RETRY, Job, QueueState
from sync.journal_tail import after_tail, marked_torn, tail_is_damage
from sync.lock import FileLock
from sync.plain_data import Field, plain_data
from sync.store import (
    PRIVATE,
    commit_staged,
    discard_staged,
    fsync_dir,
    keep_copy,
    loads,
    stage_bytes,
    write_all,
)

JOURNAL_NAME = "queue.jsonl"
FORMAT_VERSION = 1
DROP_CHUNK = 1000  # ids per `drop` record: no record is longer than journal_tail.MAX_RECORD_BYTES


def _new_id() -> str:
    return os.urandom(6).hex()


def is_due(job: Job, now: float) -> bool:
    """May a drain take this job now? The one rule `lease` and `summary` share.

    A time further ahead than any delay PlexSync ever sets (a wall clock that ran ahead and was
    corrected) counts as now, so a clock stepped back never parks a job for a day.
    """
    if job.state == PENDING:
        return effective_time(job.next_attempt_at, now) <= now
    if job.state == INFLIGHT:
        return effective_time(job.lease_until, now) <= now
    return False


@plain_data(slots=True)
class QueueSummary:
    """Counts for status reports, computed at one instant."""

    pending: int = 0  # due now
    waiting: int = 0  # pending but waiting for a retry time
    inflight: int = 0  # leased by a running drain
    dead: int = 0
    dead_by_class: dict = Field(factory=dict)  # error class -> dead-lettered jobs
    oldest_pending_at: float = 0.0
    next_due_at: float = 0.0  # earliest retry time of a waiting job
    scenes_pending: int = 0

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


class JobQueue:
    """Operations on the queue, over records applied to `state` in memory (`_commit`);
    FileQueue also appends them to its journal."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self.state = QueueState()

    # -- storage hooks -------------------------------------------------------------------
    def _commit(self, records: list) -> None:
        for rec in records:
            self.state.apply(rec)

    def _locked(self):
        """Context manager that makes `state` current and excludes other writers."""
        return _NullContext()

    # -- producing -----------------------------------------------------------------------
    def enqueue(self, scene_id, fields=(), changed_at=None, source="hook") -> None:
        """Add a change for `scene_id`; it merges into the scene's pending job if there is one.

        Durable once this returns (for the file queue).
        """
        now = self.clock()
        rec = {
            "op": "enq",
            "id": _new_id(),
            "scene": str(scene_id),
            "fields": sorted(set(fields)),
            "at": changed_at if changed_at is not None else now,
            "src": source,
            "t": now,
        }
        self._append_only([rec])

    def enqueue_many(self, scene_ids, fields=(), source="reconcile") -> int:
        """Enqueue many scenes with one write (and, for the file queue, one fsync)."""
        now = self.clock()
        records = [
            {
                "op": "enq",
                "id": _new_id(),
                "scene": str(sid),
                "fields": sorted(set(fields)),
                "at": now,
                "src": source,
                "t": now,
            }
            for sid in scene_ids
        ]
        if records:
            self._append_only(records)
        return len(records)

    def _append_only(self, records: list) -> None:
        with self._locked():
            self._commit(records)

    def adopt(self, other: "JobQueue") -> int:
        """Move every waiting job of `other` (another data folder's queue) into this one.

        Written here first (durable), dropped there second: a crash in between leaves a change in
        both places, which coalesces, never in neither. Jobs a running drain holds stay there.
        Returns how many were moved.
        """
        now = other.clock()
        with other._locked():
            waiting = [
                j
                for j in other.state.jobs.values()
                if j.state == PENDING or (j.state == INFLIGHT and is_due(j, now))
            ]
            if not waiting:
                return 0
            self._append_only(
                [
                    {
                        "op": "enq",
                        "id": _new_id(),
                        "scene": j.scene_id,
                        "fields": list(j.fields),
                        "at": j.changed_at or now,
                        "src": j.source,
                        "t": self.clock(),
                    }
                    for j in waiting
                ]
            )
            ids = [j.id for j in waiting]
            other._commit(
                [
                    {"op": "drop", "ids": ids[i : i + DROP_CHUNK], "t": now}
                    for i in range(0, len(ids), DROP_CHUNK)
                ]
            )
            return len(ids)

    # -- consuming -----------------------------------------------------------------------
    def lease(self, limit: int = 1, lease_seconds: float = 300.0, owner: str = "") -> list:
        """Take up to `limit` due jobs, oldest first, for `lease_seconds`; returns copies."""
        with self._locked():
            now = self.clock()
            state = self.state
            chosen, absorb, seen = [], {}, set()
            expired_by_scene = {}
            for job in state.jobs.values():
                if job.state == INFLIGHT and is_due(job, now):
                    expired_by_scene.setdefault(job.scene_id, []).append(job.id)
            for job in state.jobs.values():
                if len(chosen) >= limit:
                    break
                if job.scene_id in seen:
                    continue
                if not is_due(job, now):
                    continue
                seen.add(job.scene_id)
                chosen.append(job.id)
                others = [j for j in expired_by_scene.get(job.scene_id, ()) if j != job.id]
                pending_id = state.pending_by_scene.get(job.scene_id)
                if pending_id is not None and pending_id != job.id:
                    others.append(pending_id)  # a newer change rides along with the retried one
                if others:
                    absorb[job.id] = others
            if not chosen:
                return []
            rec = {"op": "lease", "ids": chosen, "until": now + lease_seconds, "owner": owner, "t": now}
            if absorb:
                rec["absorb"] = absorb
            self._commit([rec])
            return [state.jobs[j].copy() for j in chosen if j in state.jobs]

    def extend(self, jobs: list, lease_seconds: float, owner: str = "") -> None:
        """Renew the lease of jobs still being worked on."""
        with self._locked():
            now = self.clock()
            ids = [j.id for j in jobs if (self.state.get(j.id) or Job("", "")).state == INFLIGHT]
            if ids:
                self._commit(
                    [{"op": "lease", "ids": ids, "until": now + lease_seconds, "owner": owner, "t": now}]
                )

    def ack(self, job: Job) -> None:
        """The job's scene is in Plex: remove it."""
        self._append_only([{"op": "ack", "id": job.id, "t": self.clock()}])

    def ack_many(self, jobs) -> None:
        """Remove several finished jobs with one write (for the file queue, one fsync).

        Unlike `ack`, it reads the journal first (the drain's batch end, not the hook's path), so
        compaction is decided right after the jobs are gone, when the snapshot is smallest."""
        now = self.clock()
        records = [{"op": "ack", "id": job.id, "t": now} for job in jobs]
        if records:
            with self._locked():
                self._commit(records)

    def nack(
        self,
        job: Job,
        error_class: str,
        message: str,
        max_retries: int = 5,
        permanent: bool = False,
        base_delay: float = 5.0,
        max_delay: float = 3600.0,
        retry_at: float | None = None,
    ) -> str:
        """Record a failed attempt; returns RETRY (rescheduled with backoff) or DEAD (sync/jobs.py)."""
        with self._locked():
            now = self.clock()
            current = self.state.get(job.id)
            attempts = (current.attempts if current else job.attempts) + 1
            if permanent or attempts >= max(1, max_retries):
                self._commit([{"op": "dead", "id": job.id, "cls": error_class, "msg": message, "t": now}])
                return DEAD
            due = retry_at if retry_at is not None else now + backoff_delay(attempts, base_delay, max_delay)
            self._commit(
                [{"op": "nack", "id": job.id, "cls": error_class, "msg": message, "next": due, "t": now}]
            )
            return RETRY

    def release(self, job: Job, retry_at: float | None = None) -> None:
        """Give a leased job back without counting an attempt (e.g. the drain is stopping)."""
        with self._locked():
            current = self.state.get(job.id)
            if current is None or current.state != INFLIGHT:
                return
            now = self.clock()
            self._commit([{"op": "lease", "ids": [job.id], "until": retry_at or now, "owner": "", "t": now}])

    def dead_letter(self, job: Job, error_class: str, message: str) -> None:
        with self._locked():
            self._commit(
                [{"op": "dead", "id": job.id, "cls": error_class, "msg": message, "t": self.clock()}]
            )

    # -- maintenance ---------------------------------------------------------------------
    def requeue(self, job_ids, source: str = "recover") -> int:
        """Move dead-lettered jobs back to pending (merging with a pending job of the same scene)."""
        with self._locked():
            ids = [j for j in job_ids if (self.state.get(j) or Job("", "")).state == DEAD]
            now = self.clock()
            self._commit([{"op": "requeue", "id": j, "src": source, "t": now} for j in ids])
            return len(ids)

    def clear_pending(self) -> int:
        """Drop every pending job (not the ones a running drain holds). Returns how many."""
        now = self.clock()
        return self._drop(lambda job: job.state == PENDING or (job.state == INFLIGHT and is_due(job, now)))

    def clear_dead(self) -> int:
        return self._drop(lambda job: job.state == DEAD)

    def purge_dead(self, older_than_seconds: float) -> int:
        cutoff = self.clock() - older_than_seconds
        return self._drop(lambda job: job.state == DEAD and job.dead_at < cutoff)

    def _drop(self, predicate) -> int:
        with self._locked():
            ids = [j.id for j in self.state.jobs.values() if predicate(j)]
            now = self.clock()
            if ids:
                self._commit(
                    [
                        {"op": "drop", "ids": ids[i : i + DROP_CHUNK], "t": now}
                        for i in range(0, len(ids), DROP_CHUNK)
                    ]
                )
            return len(ids)

    # -- reading -------------------------------------------------------------------------
    def jobs(self, state: str | None = None) -> list:
        with self._locked():
            return [j.copy() for j in self.state.jobs.values() if state is None or j.state == state]

    def summary(self) -> QueueSummary:
        with self._locked():
            now = self.clock()
            out = QueueSummary()
            scenes = set()
            for job in self.state.jobs.values():
                if job.state == DEAD:
                    out.dead += 1
                    out.dead_by_class[job.error_class] = out.dead_by_class.get(job.error_class, 0) + 1
                    continue
                scenes.add(job.scene_id)
                if job.state == INFLIGHT and not is_due(job, now):
                    out.inflight += 1
                elif job.state == PENDING and not is_due(job, now):
                    out.waiting += 1
                    out.next_due_at = min(out.next_due_at or job.next_attempt_at, job.next_attempt_at)
                else:
                    out.pending += 1
                if not out.oldest_pending_at or job.enqueued_at < out.oldest_pending_at:
                    out.oldest_pending_at = job.enqueued_at
            out.scenes_pending = len(scenes)
            return out

    def compact_if_due(self) -> bool:
        """Rewrite the storage if it has grown far beyond the live jobs; True when it did.

        In memory (this class, MemoryQueue) there is no history to compact; FileQueue overrides it."""
        return False

    def has_due(self) -> bool:
        s = self.summary()
        return s.pending > 0


class _NullContext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


class MemoryQueue(JobQueue):
    """The same queue in memory only (JobQueue's own `_commit`): for unit tests."""


class QueueCorrupt(Exception):
    """Handed to `on_corrupt`, never raised: part of the journal could not be read. The message
    says whether the damaged journal was moved aside or, when the repair failed, left in place."""


def queue_exists(directory: str) -> bool:
    """Has a queue ever been written in `directory`? (one stat, before opening anything)"""
    return os.path.exists(os.path.join(directory, JOURNAL_NAME))


class FileQueue(JobQueue):
    """The queue as an fsync'd append-only journal `queue.jsonl` under a cross-process lock.

    Producers (the hook) only append: O(1), no read of the journal beyond its last bytes (to keep
    a torn or damaged last line a line of its own, `sync.journal_tail.after_tail`). Consumers keep the
    state in memory and read only the records appended since their last look. The journal is
    rewritten as a snapshot (compaction) when it holds many more records than live jobs.
    """

    COMPACT_MIN_RECORDS = 2000

    def __init__(self, directory: str, clock=time.time, on_corrupt=None):
        super().__init__(clock)
        self.directory = directory
        self.path = os.path.join(directory, JOURNAL_NAME)
        self.lock = FileLock(self.path + ".lock")
        self.on_corrupt = on_corrupt
        self._gen = None
        self._offset = 0
        self._records = 0
        self._depth = 0
        self._unrepaired = None  # the damage a repair could not fix (full disk): reported once

    # -- locking and reading -------------------------------------------------------------
    def _locked(self):
        return _JournalSession(self)

    def _enter(self) -> None:
        if self._depth == 0:
            self.lock.acquire()
            try:
                self._catch_up()
            except BaseException:
                self.lock.release()
                raise
        self._depth += 1

    def _exit(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.lock.release()

    def _catch_up(self) -> None:
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            if self._gen is not None:
                self._reset()
            return
        with fh:
            first = fh.readline()
            gen = _header_gen(first)
            if gen != self._gen or gen is None:
                self._reset()
                self._gen = gen
                fh.seek(0)
            else:
                fh.seek(self._offset)
            data = fh.read()
            start = fh.tell() - len(data)
        bad = self._apply_lines(data, start)
        if bad and (self._gen, bad[0][0]) != self._unrepaired:
            self._salvage(bad)

    def _reset(self) -> None:
        self.state = QueueState()
        self._gen = None
        self._offset = 0
        self._records = 0

    def _apply_lines(self, data: bytes, start: int) -> list:
        bad = []
        end = data.rfind(b"\n")
        if tail_is_damage(data[end + 1 :]):
            bad.append(
                (start + end + 1, "the end of the file is unreadable (%d bytes)" % (len(data) - end - 1))
            )
        if end < 0:
            return bad  # otherwise only an incomplete record, left by a writer that died mid-append
        pos = 0
        lines = data[: end + 1].split(b"\n")[:-1]
        for index, line in enumerate(lines):
            pos += len(line) + 1
            if not line.strip():
                continue
            try:
                rec = loads(line)
                if not isinstance(rec, dict):
                    raise ValueError("not an object")
                if rec.get("op") == "header":
                    continue
                self.state.apply(rec)
                self._records += 1
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
                if not marked_torn(lines, index):
                    bad.append((start + pos, str(exc)[:80]))
        self._offset = start + end + 1
        return bad

    def _salvage(self, bad: list) -> None:
        """Keep every readable record, move the damaged journal aside, and say so.

        In this order (docs/ARCHITECTURE.md, "Durability rules"): write the new journal and fsync
        it, keep the damaged bytes aside, replace last. A kill or a full disk at any step leaves
        the damaged journal in place, readable as before, to be repaired by the next reader.
        """
        with open(self.path, "rb") as fh:
            damaged = fh.read()
        gen, data = self._snapshot_bytes()
        try:
            staged = stage_bytes(self.path, data)
            try:
                moved = keep_copy(self.path, damaged)
                commit_staged(staged, self.path)
            except BaseException:
                discard_staged(staged)
                raise
        except OSError as exc:
            self._unrepaired = (self._gen, bad[0][0])  # damage at the end is read again next time
            self._report(
                "queue.jsonl has %d unreadable record(s) (first: %s) and could not be repaired (%s); "
                "the %d readable job(s) stay queued in it; free some disk space"
                % (len(bad), bad[0][1], exc.strerror or exc, self.state.live_count())
            )
            return
        self._installed(gen, data)
        self._report(
            "queue.jsonl had %d unreadable record(s) (first: %s); the %d readable job(s) were kept "
            "and the damaged file was moved aside as %s"
            % (len(bad), bad[0][1], self.state.live_count(), os.path.basename(moved))
        )

    def _report(self, message: str) -> None:
        if self.on_corrupt is not None:
            self.on_corrupt(QueueCorrupt(message))

    # -- writing -------------------------------------------------------------------------
    def _commit(self, records: list) -> None:
        if self._gen is None:
            self._write_snapshot()
        self._append(records)
        for rec in records:
            self.state.apply(rec)
        self._records += len(records)
        if self._compaction_due():
            self.compact()

    def _compaction_due(self) -> bool:
        return self._records > max(self.COMPACT_MIN_RECORDS, 4 * self.state.live_count())

    def compact_if_due(self) -> bool:
        """Compact when the journal holds many more records than live jobs. Hooks only append;
        a drain compacts as it commits, and a paused drain, which commits nothing, calls this."""
        with self._locked():
            if not self._compaction_due():
                return False
            self._write_snapshot()
            return True

    def _append_only(self, records: list) -> None:
        """Append without reading the journal: what keeps the hook's cost flat."""
        if self._depth:
            self._commit(records)
            return
        with self.lock:
            self._append(records, standalone=True)

    def _append(self, records: list, standalone: bool = False) -> None:
        data = b"".join(
            json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n" for r in records
        )
        # O_APPEND: every write lands at the end even where a lock is granted without excluding
        # anyone (a network share with locking off), so two writers never overwrite each other.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0), PRIVATE)
        try:
            size = os.fstat(fd).st_size
            created = size == 0
            if created:
                data = _header_line(_new_id(), self.clock()) + data
            else:
                data = after_tail(fd, size, self.clock()) + data
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.directory)
            if not standalone:
                self._reset_after_create(data)
        elif not standalone:
            self._offset = size + len(data)  # (a reader caught up first: no torn tail to skip here)

    def _reset_after_create(self, data: bytes) -> None:
        self._gen = _header_gen(data.split(b"\n", 1)[0] + b"\n")
        self._offset = len(data)

    def _snapshot_bytes(self) -> tuple:
        gen = _new_id()
        lines = [_header_line(gen, self.clock())]
        lines.extend(
            json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
            for r in self.state.snapshot_records()
        )
        return gen, b"".join(lines)

    def _write_snapshot(self) -> None:
        gen, data = self._snapshot_bytes()
        commit_staged(stage_bytes(self.path, data), self.path)
        self._installed(gen, data)

    def _installed(self, gen: str, data: bytes) -> None:
        self._gen = gen
        self._offset = len(data)
        self._records = self.state.live_count()

    def compact(self) -> None:
        """Rewrite the journal as one record per live job (atomic replace)."""
        with self._locked():
            self._write_snapshot()


class _JournalSession:
    def __init__(self, queue: FileQueue):
        self.queue = queue

    def __enter__(self):
        self.queue._enter()
        return self

    def __exit__(self, *exc):
        self.queue._exit()


def _header_line(gen: str, now: float) -> bytes:
    return json.dumps({"op": "header", "v": FORMAT_VERSION, "gen": gen, "t": now}).encode("utf-8") + b"\n"


def _header_gen(line: bytes):
    if not line.endswith(b"\n"):
        return None
    try:
        rec = loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(rec, dict) and rec.get("op") == "header":
        return rec.get("gen")
    return None
