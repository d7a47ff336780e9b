"""A sync job and the queue's state machine, applied record by record.

Every change to the queue is a small JSON record (`enq`, `lease`, `ack`, `nack`, `dead`,
`requeue`, `drop`, or a `job` snapshot; `torn` marks a line a killed writer left and changes nothing). `QueueState.apply` is the only place that interprets
them, so the in-memory queue and the file journal replay exactly the same rules, and a process
that re-reads the journal arrives at the same state as the process that wrote it.

States: pending (waiting to be synced, possibly not before `next_attempt_at`), inflight (leased
by a drain until `lease_until`; after that it may be leased again), dead (in the dead-letter
queue with the reason). At most one pending job per scene; at most one dead entry per scene.
"""

from __future__ import annotations

import math

from sync.backoff import effective_time
from sync.plain_data import field_names, plain_data

PENDING = "pending"
INFLIGHT = "inflight"
DEAD = "dead"
# What FileQueue.nack answers: DEAD (dead-lettered), or RETRY (pending again, due at next_attempt_at).
RETRY = "retry"


@plain_data(slots=True)
class Job:
    """One scene waiting to be synced to Plex (or dead-lettered with its reason).

    Its fields, in this order, are the keys of a `job` record in the queue's journal."""

    id: str
    scene_id: str
    fields: list = ()  # sorted, without duplicates; empty: the whole scene
    state: str = PENDING
    source: str = "hook"
    enqueued_at: float = 0.0
    changed_at: float = 0.0
    attempts: int = 0
    next_attempt_at: float = 0.0
    lease_until: float = 0.0
    lease_owner: str = ""
    error_class: str = ""
    error_message: str = ""
    first_failure_at: float = 0.0
    last_failure_at: float = 0.0
    dead_at: float = 0.0

    def __post_init__(self):
        self.scene_id = str(self.scene_id)
        self.fields = sorted(set(self.fields))

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def from_dict(cls, data: dict) -> "Job":
        return cls(**{k: data[k] for k in _FIELDS if k in data})

    def copy(self) -> "Job":
        return Job.from_dict(self.to_dict())

    def __repr__(self) -> str:
        return "Job(%s scene=%s %s attempts=%d)" % (self.id, self.scene_id, self.state, self.attempts)


_FIELDS = field_names(Job)


# Record key -> the kind of value it must hold. A journal line that parses as JSON but carries a
# value of the wrong type (damage that kept the syntax) would otherwise be applied and break every
# later comparison; rejecting it here makes it an unreadable record, which the journal salvages.
_NUMBER, _TEXT, _TEXTS = 1, 2, 3
_KINDS = dict.fromkeys(
    (
        "t",
        "at",
        "until",
        "next",
        "enqueued_at",
        "changed_at",
        "next_attempt_at",
        "lease_until",
        "first_failure_at",
        "last_failure_at",
        "dead_at",
        "len",
    ),
    _NUMBER,
)
_KINDS.update(
    dict.fromkeys(
        (
            "id",
            "scene",
            "scene_id",
            "source",
            "src",
            "owner",
            "lease_owner",
            "cls",
            "msg",
            "error_class",
            "error_message",
        ),
        _TEXT,
    )
)
_KINDS.update(dict.fromkeys(("ids", "fields"), _TEXTS))
_REQUIRED = {
    "enq": ("id", "scene", "t"),
    "lease": ("ids", "until"),
    "ack": ("id",),
    "nack": ("id", "next", "t"),
    "dead": ("id", "t"),
    "requeue": ("id",),
    "drop": ("ids",),
    "job": ("id", "scene_id"),
    "torn": ("len",),
}


def _plain_number(value) -> bool:
    """A finite int or float of a size a time or a count can have (bool is not a number here)."""
    if type(value) is int:
        return abs(value) < 2**53
    return type(value) is float and math.isfinite(value)


def _texts(value) -> bool:
    return type(value) is list and all(type(v) is str for v in value)


def check_record(rec: dict) -> None:
    """Raise ValueError unless `rec` has its required keys and every known key the right type."""
    op = rec.get("op")
    for key in _REQUIRED.get(op, ()):
        if key not in rec:
            raise ValueError("queue record %r without %r" % (op, key))
    for key, value in rec.items():
        kind = _KINDS.get(key)
        if kind is None:
            continue
        if kind == _NUMBER:
            # NaN or infinity: a time that compares false with every other time would leave a
            # job due in one check and never due in the next.
            ok = _plain_number(value)
        elif kind == _TEXT:
            ok = type(value) is str
        else:
            ok = _texts(value)
        if not ok:
            raise ValueError("queue record %r with a bad %r" % (op, key))
    if op == "job":
        attempts = rec.get("attempts", 0)
        if (
            type(attempts) is not int
            or attempts < 0
            or rec.get("state", PENDING) not in (PENDING, INFLIGHT, DEAD)
        ):
            raise ValueError("queue record 'job' with a bad state or attempt count")
    elif op == "lease" and "absorb" in rec:
        absorb = rec["absorb"]
        if type(absorb) is not dict or not all(_texts(v) for v in absorb.values()):
            raise ValueError("queue record 'lease' with a bad 'absorb'")


WHOLE_SCENE = "all"  # a field name that stands for every field of the scene


def is_whole_scene(fields) -> bool:
    """Does a job with these fields mean the whole scene rather than some of its fields?"""
    return not fields or WHOLE_SCENE in fields


def _merge_into(target: Job, other: Job) -> None:
    """Fold `other`'s change into `target`: union of fields, newest change time, oldest enqueue.

    No fields, or `WHOLE_SCENE` among them, means the whole scene (reconciliation, Sync All, a hook
    input nobody could read), and stays so: a union would turn "everything" into the other job's
    few fields, which the drain may then drop by setting.
    """
    if is_whole_scene(target.fields) or is_whole_scene(other.fields):
        target.fields = []
    else:
        target.fields = sorted(set(target.fields) | set(other.fields))
    target.changed_at = max(target.changed_at, other.changed_at)
    target.enqueued_at = (
        min(target.enqueued_at, other.enqueued_at) if target.enqueued_at else other.enqueued_at
    )


class QueueState:
    """The queue's contents, built by applying records in order."""

    def __init__(self):
        self.jobs = {}  # job id -> Job, in enqueue order
        self.pending_by_scene = {}  # scene id -> job id of its one pending job
        self.dead_by_scene = {}  # scene id -> job id of its one dead entry

    # -- reading -------------------------------------------------------------------------
    def get(self, job_id):
        return self.jobs.get(job_id)

    def live_count(self) -> int:
        return len(self.jobs)

    def snapshot_records(self) -> list:
        return [dict(op="job", **job.to_dict()) for job in self.jobs.values()]

    # -- applying ------------------------------------------------------------------------
    def apply(self, rec: dict) -> None:
        """Apply one record; ValueError when it is not a well-formed record (damage)."""
        handler = getattr(self, "_op_" + str(rec.get("op")), None)
        if handler is None:
            raise ValueError("unknown queue record %r" % rec.get("op"))
        check_record(rec)
        handler(rec)

    def _op_header(self, rec):
        pass

    def _op_torn(self, rec):
        pass  # marks the line before it as torn by a killed writer (sync/queue.py); changes nothing

    def _op_job(self, rec):
        data = dict(rec)
        data.pop("op", None)
        job = Job.from_dict(data)
        self._insert(job)

    def _insert(self, job: Job) -> None:
        if job.state == PENDING:
            existing = self.pending_by_scene.get(job.scene_id)
            if existing is not None and existing != job.id:
                _merge_into(self.jobs[existing], job)
                return
            self.pending_by_scene[job.scene_id] = job.id
        elif job.state == DEAD:
            existing = self.dead_by_scene.get(job.scene_id)
            if existing is not None and existing != job.id:
                old = self.jobs.pop(existing)
                job.first_failure_at = min(
                    old.first_failure_at or job.first_failure_at, job.first_failure_at or old.first_failure_at
                )
            self.dead_by_scene[job.scene_id] = job.id
        self.jobs[job.id] = job

    def _op_enq(self, rec):
        job = Job(
            rec["id"],
            rec["scene"],
            rec.get("fields", ()),
            PENDING,
            rec.get("src", "hook"),
            enqueued_at=rec["t"],
            changed_at=rec.get("at", rec["t"]),
        )
        self._insert(job)

    def _op_lease(self, rec):
        for job_id in rec["ids"]:
            job = self.jobs.get(job_id)
            if job is None or job.state == DEAD:
                continue
            if job.state == PENDING:
                self.pending_by_scene.pop(job.scene_id, None)
            job.state = INFLIGHT
            job.lease_until = rec["until"]
            job.lease_owner = rec.get("owner", "")
        for job_id, absorbed in rec.get("absorb", {}).items():
            job = self.jobs.get(job_id)
            for other_id in absorbed:
                other = self.jobs.get(other_id)
                if job is None or other is None or other is job:
                    continue
                _merge_into(job, other)
                job.attempts = max(job.attempts, other.attempts)
                self._remove(other)

    def _remove(self, job: Job) -> None:
        self.jobs.pop(job.id, None)
        if self.pending_by_scene.get(job.scene_id) == job.id:
            del self.pending_by_scene[job.scene_id]
        if self.dead_by_scene.get(job.scene_id) == job.id:
            del self.dead_by_scene[job.scene_id]

    def _op_ack(self, rec):
        job = self.jobs.get(rec["id"])
        if job is None or job.state != INFLIGHT:
            return
        self._remove(job)
        # A success supersedes an older failure of the same scene.
        dead_id = self.dead_by_scene.get(job.scene_id)
        if dead_id is not None:
            self._remove(self.jobs[dead_id])

    def _failed(self, job: Job, rec: dict) -> None:
        job.attempts += 1
        job.error_class = rec.get("cls", "")
        job.error_message = rec.get("msg", "")
        job.last_failure_at = rec["t"]
        if not job.first_failure_at:
            job.first_failure_at = rec["t"]
        job.lease_until = 0.0
        job.lease_owner = ""

    def _op_nack(self, rec):
        job = self.jobs.get(rec["id"])
        if job is None or job.state != INFLIGHT:
            return
        self._failed(job, rec)
        job.next_attempt_at = rec["next"]
        job.state = PENDING
        existing = self.pending_by_scene.get(job.scene_id)
        if existing is not None:
            # A newer change arrived while this one was in flight: keep one job with both.
            newer = self.jobs[existing]
            _merge_into(newer, job)
            newer.attempts = max(newer.attempts, job.attempts)
            newer.next_attempt_at = max(newer.next_attempt_at, job.next_attempt_at)
            for name in ("error_class", "error_message", "first_failure_at", "last_failure_at"):
                setattr(newer, name, getattr(job, name))
            self.jobs.pop(job.id)
            return
        self.pending_by_scene[job.scene_id] = job.id

    def _op_dead(self, rec):
        job = self.jobs.get(rec["id"])
        if job is None or job.state == DEAD:
            return
        if job.state == PENDING:
            self.pending_by_scene.pop(job.scene_id, None)
        self._failed(job, rec)
        job.state = DEAD
        job.dead_at = rec["t"]
        job.next_attempt_at = 0.0
        self.jobs.pop(job.id)
        self._insert(job)

    def _op_requeue(self, rec):
        job = self.jobs.get(rec["id"])
        if job is None or job.state != DEAD:
            return
        self._remove(job)
        job.state = PENDING
        job.attempts = 0
        job.next_attempt_at = 0.0
        job.dead_at = 0.0
        job.source = rec.get("src", job.source)
        self._insert(job)

    def _op_drop(self, rec):
        for job_id in rec.get("ids", ()):
            job = self.jobs.get(job_id)
            # A job whose lease ran out belongs to no drain any more: it is as pending as any.
            if job is not None and (
                job.state != INFLIGHT or effective_time(job.lease_until, rec.get("t", 0)) <= rec.get("t", 0)
            ):
                self._remove(job)
