"""The queue's rules, run on both implementations (memory and file journal)."""

from __future__ import annotations

import json
import os

import pytest

from sync.backoff import backoff_bounds, backoff_delay
from sync.jobs import DEAD, INFLIGHT, PENDING
from sync.queue import FileQueue, MemoryQueue
from sync.store import quarantined_files
from tests.clock import FakeClock


@pytest.fixture(params=["memory", "file"])
def make_queue(request, tmp_path):
    clock = FakeClock()

    def make(**kw):
        if request.param == "memory":
            return MemoryQueue(clock=clock)
        return FileQueue(str(tmp_path), clock=clock, **kw)

    make.clock = clock
    return make


def test_enqueue_coalesces_one_pending_job_per_scene(make_queue):
    q = make_queue()
    q.enqueue("7", ["title"], changed_at=10)
    q.enqueue("7", ["tag_ids"], changed_at=20)
    q.enqueue("8", ["title"])
    pending = q.jobs(PENDING)
    assert sorted(j.scene_id for j in pending) == ["7", "8"]
    job7 = next(j for j in pending if j.scene_id == "7")
    assert job7.fields == ["tag_ids", "title"]
    assert job7.changed_at == 20


def test_change_arriving_while_in_flight_is_kept_as_a_new_pending_job(make_queue):
    q = make_queue()
    q.enqueue("7", ["title"])
    (job,) = q.lease(10, 60)
    q.enqueue("7", ["details"])
    q.ack(job)
    (left,) = q.jobs()
    assert left.state == PENDING and left.fields == ["details"]


def test_nack_of_in_flight_job_merges_into_newer_pending_change(make_queue):
    q = make_queue()
    q.enqueue("7", ["title"])
    (job,) = q.lease(10, 60)
    q.enqueue("7", ["details"])
    assert q.nack(job, "plex_unreachable", "refused", max_retries=5) == "retry"
    (left,) = q.jobs()
    assert left.fields == ["details", "title"]
    assert left.attempts == 1 and left.error_class == "plex_unreachable"


def test_lease_takes_oldest_due_jobs_and_one_per_scene(make_queue):
    q = make_queue()
    for sid in ("1", "2", "3"):
        q.enqueue(sid, ["title"])
    jobs = q.lease(2, 60)
    assert [j.scene_id for j in jobs] == ["1", "2"]
    assert all(j.state == INFLIGHT for j in jobs)
    assert [j.scene_id for j in q.lease(5, 60)] == ["3"]
    assert q.lease(5, 60) == []


def test_expired_lease_returns_the_job_after_a_worker_died(make_queue):
    q = make_queue()
    q.enqueue("1", ["title"])
    (job,) = q.lease(1, 30)
    assert q.lease(1, 30) == []
    make_queue.clock.advance(31)
    (again,) = q.lease(1, 30)
    assert again.id == job.id


def test_expired_lease_and_new_change_for_same_scene_become_one_job(make_queue):
    q = make_queue()
    q.enqueue("1", ["title"])
    q.lease(1, 30)
    q.enqueue("1", ["details"])
    make_queue.clock.advance(31)
    jobs = q.lease(5, 30)
    assert len(jobs) == 1 and jobs[0].fields == ["details", "title"]
    assert len(q.jobs()) == 1


def test_nack_schedules_retry_with_backoff_then_dead_letters_after_max_retries(make_queue):
    q = make_queue()
    q.enqueue("1", ["title"])
    outcomes = []
    for attempt in range(1, 4):
        jobs = q.lease(1, 30)
        while not jobs:
            make_queue.clock.advance(60)
            jobs = q.lease(1, 30)
        before = make_queue.clock()
        outcomes.append(q.nack(jobs[0], "plex_timeout", "slow", max_retries=3))
        if outcomes[-1] == "retry":
            (waiting,) = q.jobs(PENDING)
            low, high = backoff_bounds(attempt)
            assert before + low <= waiting.next_attempt_at <= before + high
            assert q.lease(1, 30) == []  # not due yet
    assert outcomes == ["retry", "retry", "dead"]
    (dead,) = q.jobs(DEAD)
    assert dead.attempts == 3 and dead.error_class == "plex_timeout"
    assert dead.first_failure_at <= dead.last_failure_at


def test_permanent_error_dead_letters_at_once_with_reason(make_queue):
    q = make_queue()
    q.enqueue("1", ["title"])
    (job,) = q.lease(1, 30)
    assert q.nack(job, "ambiguous_match", "2 candidates", permanent=True) == "dead"
    (dead,) = q.jobs(DEAD)
    assert dead.error_message == "2 candidates"
    assert q.summary().dead_by_class == {"ambiguous_match": 1}


def test_successful_sync_supersedes_older_dead_letter_of_same_scene(make_queue):
    q = make_queue()
    q.enqueue("1", ["title"])
    (job,) = q.lease(1, 30)
    q.nack(job, "ambiguous_match", "x", permanent=True)
    q.enqueue("1", ["title"])
    (job,) = q.lease(1, 30)
    q.ack(job)
    assert q.jobs() == []


def test_requeue_dead_letters_and_clear_operations(make_queue):
    q = make_queue()
    for sid in ("1", "2"):
        q.enqueue(sid, ["title"])
    for job in q.lease(2, 30):
        q.nack(job, "plex_unreachable", "down", permanent=True)
    dead = q.jobs(DEAD)
    assert q.requeue([dead[0].id]) == 1
    assert q.requeue([dead[0].id]) == 0  # idempotent
    assert [j.scene_id for j in q.jobs(PENDING)] == [dead[0].scene_id]
    assert q.clear_dead() == 1
    assert q.clear_pending() == 1
    assert q.jobs() == []


def test_purge_dead_only_removes_old_entries(make_queue):
    q = make_queue()
    q.enqueue("1", ["title"])
    (job,) = q.lease(1, 30)
    q.nack(job, "ambiguous_match", "x", permanent=True)
    make_queue.clock.advance(10 * 86400)
    q.enqueue("2", ["title"])
    (job,) = q.lease(1, 30)
    q.nack(job, "ambiguous_match", "x", permanent=True)
    assert q.purge_dead(7 * 86400) == 1
    assert [j.scene_id for j in q.jobs(DEAD)] == ["2"]


def test_clear_pending_keeps_jobs_a_running_drain_holds(make_queue):
    q = make_queue()
    q.enqueue("1", ["title"])
    q.enqueue("2", ["title"])
    (held,) = q.lease(1, 30)
    assert q.clear_pending() == 1
    q.ack(held)
    assert q.jobs() == []


def test_summary_counts_each_state(make_queue):
    q = make_queue()
    for sid in "1234":
        q.enqueue(sid, ["title"])
    a, b, c = q.lease(3, 30)
    q.nack(a, "plex_timeout", "slow", max_retries=5)
    q.nack(b, "ambiguous_match", "x", permanent=True)
    s = q.summary()
    assert (s.pending, s.inflight, s.waiting, s.dead) == (1, 1, 1, 1)
    assert s.next_due_at > make_queue.clock()


def test_backoff_is_capped_and_jittered():
    assert backoff_bounds(1) == (2.5, 5.0)
    assert backoff_bounds(50)[1] == 3600.0
    delays = {round(backoff_delay(4), 6) for _ in range(20)}
    assert len(delays) > 1
    assert all(20.0 <= d <= 40.0 for d in delays)


# --- the file journal ---------------------------------------------------------------------


def test_jobs_survive_a_new_process(tmp_path):
    FileQueue(str(tmp_path)).enqueue("5", ["title"])
    q = FileQueue(str(tmp_path))
    (job,) = q.jobs()
    assert job.scene_id == "5"


def test_journal_is_private_to_the_owner(tmp_path):
    FileQueue(str(tmp_path)).enqueue("5", ["title"])
    if os.name != "nt":
        assert os.stat(tmp_path / "queue.jsonl").st_mode & 0o077 == 0


def test_torn_last_record_is_dropped_and_later_appends_stay_readable(tmp_path):
    q = FileQueue(str(tmp_path))
    q.enqueue("1", ["title"])
    with open(tmp_path / "queue.jsonl", "ab") as fh:
        fh.write(b'{"op":"enq","id":"dead1","sce')  # a writer killed mid-append
    q2 = FileQueue(str(tmp_path))
    q2.enqueue("2", ["title"])
    assert sorted(j.scene_id for j in FileQueue(str(tmp_path)).jobs()) == ["1", "2"]
    assert quarantined_files(str(tmp_path)) == []


def test_garbage_in_the_journal_is_quarantined_and_readable_jobs_salvaged(tmp_path):
    errors = []
    q = FileQueue(str(tmp_path))
    q.enqueue("1", ["title"])
    with open(tmp_path / "queue.jsonl", "ab") as fh:
        fh.write(b"\x00\xffnot json at all\n")
    q.enqueue("2", ["title"])
    reader = FileQueue(str(tmp_path), on_corrupt=errors.append)
    assert sorted(j.scene_id for j in reader.jobs()) == ["1", "2"]
    assert len(errors) == 1 and "moved aside" in str(errors[0])
    (moved,) = quarantined_files(str(tmp_path))
    assert moved.startswith("queue.jsonl.corrupt-")
    # the salvaged journal is clean: a third reader finds no damage
    again = []
    assert len(FileQueue(str(tmp_path), on_corrupt=again.append).jobs()) == 2 and again == []


def test_a_file_that_is_not_a_journal_is_moved_aside_not_overwritten(tmp_path):
    (tmp_path / "queue.jsonl").write_bytes(b"this is not a queue\n")
    errors = []
    q = FileQueue(str(tmp_path), on_corrupt=errors.append)
    q.enqueue("3", ["title"])
    assert [j.scene_id for j in q.jobs()] == ["3"]
    (moved,) = quarantined_files(str(tmp_path))
    # the hook appends without reading, so the original bytes are kept at the start of the moved file
    assert (tmp_path / moved).read_bytes().startswith(b"this is not a queue\n")
    assert errors


def test_compaction_keeps_every_live_job_and_shrinks_the_journal(tmp_path):
    q = FileQueue(str(tmp_path))
    q.COMPACT_MIN_RECORDS = 50
    for i in range(40):
        q.enqueue(str(i % 5), ["title"])
    for job in q.lease(3, 60):
        q.ack(job)
    for i in range(40):
        q.enqueue(str(100 + i), ["title"])
    q.compact()
    lines = (tmp_path / "queue.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["op"] == "header"
    assert len(lines) == 1 + 2 + 40
    other = FileQueue(str(tmp_path))
    assert len(other.jobs()) == 42


def test_reader_notices_compaction_by_another_process(tmp_path):
    a = FileQueue(str(tmp_path))
    b = FileQueue(str(tmp_path))
    for i in range(10):
        a.enqueue(str(i), ["title"])
    assert len(b.jobs()) == 10
    a.compact()
    a.enqueue("99", ["title"])
    assert len(b.jobs()) == 11


def test_enqueue_many_coalesces_like_single_enqueues(make_queue):
    q = make_queue()
    q.enqueue("1", ["title"])
    assert q.enqueue_many(["1", "2", "3", "2"], source="reconcile") == 4
    jobs = q.jobs(PENDING)
    assert sorted(j.scene_id for j in jobs) == ["1", "2", "3"]
    assert next(j for j in jobs if j.scene_id == "1").fields == []  # the whole scene now


def test_clear_pending_also_drops_jobs_whose_drain_is_gone(make_queue):
    q = make_queue()
    q.enqueue("1", ["title"])
    q.lease(1, 30)
    make_queue.clock.advance(31)  # the drain died: its lease ran out
    assert q.clear_pending() == 1
    assert q.jobs() == []


def test_a_whole_scene_job_stays_whole_when_a_field_edit_coalesces_into_it(make_queue):
    # Sync All (no fields = the whole scene) and a rating-only edit: the drain may drop a
    # rating-only job by setting, so the coalesced job must still mean the whole scene.
    q = make_queue()
    q.enqueue_many(["7"], source="reconcile")
    q.enqueue("7", ["rating100"])
    q.enqueue("8", ["rating100"])
    q.enqueue_many(["8"], source="reconcile")
    assert {j.scene_id: j.fields for j in q.jobs(PENDING)} == {"7": [], "8": []}


def test_a_hook_edit_nobody_could_read_stays_a_whole_scene_sync_after_coalescing(make_queue):
    q = make_queue()
    q.enqueue("7", ["all"])
    q.enqueue("7", ["rating100"])
    (job,) = q.jobs(PENDING)
    assert job.fields == []


def test_ack_many_removes_finished_jobs_in_one_fsynced_write(make_queue, monkeypatch, tmp_path):
    q = make_queue()
    for sid in ("1", "2", "3"):
        q.enqueue(sid, ["title"])
    leased = q.lease(3, 300.0, owner="drain-1")
    fsyncs = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    q.ack_many(leased[:2])
    q.ack_many([])  # nothing finished: nothing written
    remaining = q.jobs() if isinstance(q, MemoryQueue) else FileQueue(str(tmp_path)).jobs()
    assert [j.scene_id for j in remaining] == ["3"]
    assert len(fsyncs) == (1 if isinstance(q, FileQueue) else 0)
