"""Damage the queue and the state files meet in the field: repair on a full disk, a tail of NUL
bytes, NaN times, a clock stepped back, a quarantine racing a writer, a changed data folder.

Each test reproduces the failure at the exact step it happens (an injected error or write
between two steps) and checks what a user would notice: every readable change is still queued,
the damage is reported once and kept aside byte for byte, and nothing is cut silently.
"""

from __future__ import annotations

import errno
import json
import os

import pytest

import sync.queue
import sync.store
from sync.jobs import INFLIGHT, PENDING
from sync.journal_tail import MAX_RECORD_BYTES
from sync.queue import FileQueue, MemoryQueue
from sync.store import JsonFile, keep_copy, quarantined_files, remove_if_same
from tests.clock import FakeClock

NOW = 1_800_000_000.0


def _journal(tmp_path) -> str:
    return str(tmp_path / "queue.jsonl")


def _damaged_queue(tmp_path, jobs: int = 8) -> bytes:
    q = FileQueue(str(tmp_path))
    for n in range(jobs):
        q.enqueue(str(n), ["title"])
    with open(_journal(tmp_path), "ab") as fh:
        fh.write(b"{\"op\": \"enq\", garbage}\n")
    return open(_journal(tmp_path), "rb").read()


def _disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("step", ["stage_bytes", "keep_copy", "commit_staged"])
def test_repair_on_a_full_disk_leaves_the_damaged_journal_and_every_job_in_place(tmp_path, monkeypatch, step):
    damaged = _damaged_queue(tmp_path)
    monkeypatch.setattr(sync.queue, step, _disk_full)
    reports = []
    assert sorted(j.scene_id for j in FileQueue(str(tmp_path), on_corrupt=reports.append).jobs()) == [
        str(n) for n in range(8)
    ]
    assert open(_journal(tmp_path), "rb").read() == damaged, (
        "the journal must stay until its repair is durable"
    )
    assert (
        len(reports) == 1 and "could not be repaired" in str(reports[0]) and "8 readable" in str(reports[0])
    )
    assert [n for n in os.listdir(tmp_path) if ".tmp-" in n] == []

    monkeypatch.undo()  # space was freed: the next reader repairs
    reports = []
    assert len(FileQueue(str(tmp_path), on_corrupt=reports.append).jobs()) == 8
    assert len(reports) == 1 and "moved aside" in str(reports[0])
    copies = [n for n in quarantined_files(str(tmp_path)) if n.startswith("queue.jsonl.corrupt-")]
    assert len(copies) <= 2 and open(os.path.join(str(tmp_path), copies[-1]), "rb").read() == damaged


def test_repair_writes_the_new_journal_before_the_old_one_goes(tmp_path, monkeypatch):
    """The order of the repair: stage (write new), keep a copy (keep old), replace (last)."""
    _damaged_queue(tmp_path)
    order = []
    for name in ("stage_bytes", "keep_copy", "commit_staged"):
        real = getattr(sync.queue, name)

        def spy(*args, _real=real, _name=name):
            order.append((_name, os.path.exists(_journal(tmp_path))))
            return _real(*args)

        monkeypatch.setattr(sync.queue, name, spy)
    FileQueue(str(tmp_path)).jobs()
    assert order == [("stage_bytes", True), ("keep_copy", True), ("commit_staged", True)]


def test_a_tail_of_nul_bytes_is_damage_reported_and_kept_not_cut_at_the_next_append(tmp_path):
    q = FileQueue(str(tmp_path))
    for n in range(31):
        q.enqueue(str(n), ["title"])
    path = _journal(tmp_path)
    data = open(path, "rb").read()
    lines = data.split(b"\n")
    keep = len(b"\n".join(lines[:15])) + 1  # the header and 14 records survived the power loss
    wiped = data[:keep] + b"\0" * (len(data) - keep)  # storage that ignored flushes: zeros, no newlines
    open(path, "wb").write(wiped)

    FileQueue(str(tmp_path)).enqueue("new", ["title"])  # a hook appends without reading the journal
    assert open(path, "rb").read().startswith(wiped), "the hook cut the damage as if it were a torn record"

    reports = []
    scenes = {j.scene_id for j in FileQueue(str(tmp_path), on_corrupt=reports.append).jobs()}
    assert scenes == {str(n) for n in range(14)} | {"new"}
    assert len(reports) == 1 and "unreadable" in str(reports[0])
    (copy,) = quarantined_files(str(tmp_path))
    assert b"\0" * 100 in open(os.path.join(str(tmp_path), copy), "rb").read()


def test_a_nul_tail_is_reported_by_a_reader_before_any_append(tmp_path):
    q = FileQueue(str(tmp_path))
    q.enqueue("1", ["title"])
    with open(_journal(tmp_path), "ab") as fh:
        fh.write(b"\0" * 4096)
    reports = []
    assert [j.scene_id for j in FileQueue(str(tmp_path), on_corrupt=reports.append).jobs()] == ["1"]
    assert reports and len(quarantined_files(str(tmp_path))) == 1


def test_a_tail_longer_than_any_record_is_damage_but_a_short_torn_record_is_not(tmp_path):
    q = FileQueue(str(tmp_path))
    q.enqueue("1", ["title"])
    with open(_journal(tmp_path), "ab") as fh:
        fh.write(b'{"op":"enq","id":"abc","sce')  # a writer killed mid-append
    reports = []
    FileQueue(str(tmp_path), on_corrupt=reports.append).enqueue("2", ["title"])
    assert sorted(j.scene_id for j in FileQueue(str(tmp_path), on_corrupt=reports.append).jobs()) == [
        "1",
        "2",
    ]
    assert reports == [] and quarantined_files(str(tmp_path)) == []
    # Marked, not cut: with locks that exclude nobody it could be a record still being written.
    assert b'{"op":"enq","id":"abc","sce\n{"op":"torn","len":27' in open(_journal(tmp_path), "rb").read()

    with open(_journal(tmp_path), "ab") as fh:
        fh.write(b"x" * (MAX_RECORD_BYTES + 10))  # newlines lost over more than any one append
    FileQueue(str(tmp_path)).enqueue("3", ["title"])
    assert sorted(j.scene_id for j in FileQueue(str(tmp_path), on_corrupt=reports.append).jobs()) == [
        "1",
        "2",
        "3",
    ]
    assert len(reports) == 1 and len(quarantined_files(str(tmp_path))) == 1


def test_no_record_the_queue_writes_is_longer_than_the_torn_record_limit(tmp_path):
    q = FileQueue(str(tmp_path))
    q.enqueue_many([str(n) for n in range(5000)], ["title"])
    assert q.clear_pending() == 5000
    longest = max(len(line) for line in open(_journal(tmp_path), "rb").read().split(b"\n"))
    assert longest < MAX_RECORD_BYTES


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_non_finite_time_in_a_record_is_damage_and_never_stalls_the_drain(tmp_path, value):
    q = FileQueue(str(tmp_path))
    q.enqueue("1", ["title"])
    with open(_journal(tmp_path), "ab") as fh:
        fh.write(b'{"op":"enq","id":"bad","scene":"2","fields":["title"],"at":1,"t":1}\n')
        fh.write(b'{"op":"lease","ids":["bad"],"until":2,"t":1}\n')
        fh.write(('{"op":"nack","id":"bad","cls":"x","msg":"y","next":%s,"t":1}\n' % value).encode())
    reports = []
    reader = FileQueue(str(tmp_path), on_corrupt=reports.append)
    summary = reader.summary()
    leased = reader.lease(10, 60)
    assert sorted(j.scene_id for j in leased) == ["1", "2"] and summary.pending == 2
    assert reader.summary().pending == 0, "a job counted as due that no lease takes would spin the drain"
    assert len(reports) == 1


def test_summary_and_lease_agree_on_what_is_due_in_memory_too():
    q = MemoryQueue(clock=FakeClock(NOW))
    with pytest.raises(ValueError):
        q.state.apply({"op": "enq", "id": "a", "scene": "1", "t": float("nan")})
    assert q.summary().pending == 0 and q.lease(5, 60) == []


@pytest.mark.parametrize(
    "value", [b'{"state": NaN}', b'{"x": Infinity}', b'{"x": 1e999}', b'{"x": 1' + b'0' * 400 + b'}']
)
def test_a_state_file_with_a_non_finite_number_is_quarantined(tmp_path, value):
    path = str(tmp_path / "stats.json")
    open(path, "wb").write(value)
    reports = []
    assert JsonFile(path, on_corrupt=reports.append).read() == {}
    assert len(reports) == 1 and quarantined_files(str(tmp_path)) == [
        "stats.json.corrupt-" + quarantined_files(str(tmp_path))[0][19:]
    ]


def test_a_clock_stepped_back_does_not_park_a_failed_change_for_a_day(tmp_path):
    clock = FakeClock(NOW)
    q = FileQueue(str(tmp_path), clock=clock)
    q.enqueue("1", ["title"])
    clock.t += 86400  # the clock ran a day ahead...
    (job,) = q.lease(1, 300)
    assert q.nack(job, "plex_timeout", "slow", max_retries=5) == "retry"
    q.enqueue("2", ["title"])
    (job2,) = [j for j in q.lease(5, 300) if j.scene_id == "2"]
    clock.t -= 86400  # ...and was corrected: no backoff is longer than an hour, no lease 300 s
    summary = q.summary()
    assert summary.pending == 2 and summary.waiting == summary.inflight == 0
    assert sorted(j.scene_id for j in q.lease(5, 300)) == ["1", "2"]


def test_a_retry_within_the_largest_backoff_still_waits(tmp_path):
    clock = FakeClock(NOW)
    q = FileQueue(str(tmp_path), clock=clock)
    q.enqueue("1", ["title"])
    (job,) = q.lease(1, 300)
    q.nack(job, "plex_timeout", "slow", retry_at=clock.t + 3000)
    assert q.lease(1, 300) == [] and q.summary().waiting == 1


def test_quarantine_rereads_under_the_lock_and_keeps_a_good_file_written_meanwhile(tmp_path, monkeypatch):
    path = str(tmp_path / "stats.json")
    open(path, "wb").write(b"{torn")
    real = JsonFile._recover

    def writer_slips_in(self, raw, reason):
        sync.store.atomic_write_bytes(path, b'{"totals": {"synced": 3}}')  # another process's good write
        return real(self, raw, reason)

    monkeypatch.setattr(JsonFile, "_recover", writer_slips_in)
    reports = []
    assert JsonFile(path, on_corrupt=reports.append).read() == {"totals": {"synced": 3}}
    assert reports == [] and quarantined_files(str(tmp_path)) == []
    assert json.loads(open(path, "rb").read()) == {"totals": {"synced": 3}}


def test_removing_damage_never_removes_a_file_replaced_after_the_check(tmp_path):
    path = str(tmp_path / "health.json")
    open(path, "wb").write(b'{"good": 1}')
    assert remove_if_same(path, b"{bad") is False
    assert open(path, "rb").read() == b'{"good": 1}'
    assert remove_if_same(path, b'{"good": 1}') is True and not os.path.exists(path)


def test_two_copies_of_damage_in_the_same_second_never_overwrite_each_other(tmp_path):
    path = str(tmp_path / "outages.json")
    first = keep_copy(path, b"first")
    second = keep_copy(path, b"second")
    assert first != second
    assert open(first, "rb").read() == b"first" and open(second, "rb").read() == b"second"


def test_concurrent_readers_of_a_damaged_file_report_it_once(tmp_path):
    path = str(tmp_path / "match_cache.json")
    open(path, "wb").write(b"\0\0\0")
    reports = []
    for _ in range(3):
        assert JsonFile(path, on_corrupt=reports.append).read() == {}
    assert len(reports) == 1 and len(quarantined_files(str(tmp_path))) == 1


def test_adopting_an_earlier_folders_queue_moves_waiting_changes_once(tmp_path):
    old_dir, new_dir = str(tmp_path / "old"), str(tmp_path / "new")
    os.makedirs(old_dir)
    os.makedirs(new_dir)
    clock = FakeClock(NOW)
    old = FileQueue(old_dir, clock=clock)
    old.enqueue("1", ["title"])
    old.enqueue("2", ["tag_ids"])
    old.enqueue("3", ["details"])
    (held,) = [j for j in old.lease(1, 300) if j.scene_id == "1"]  # a drain of the old folder holds it
    new = FileQueue(new_dir, clock=clock)
    new.enqueue("2", ["title"])
    assert new.adopt(FileQueue(old_dir, clock=clock)) == 2
    by_scene = {j.scene_id: j for j in FileQueue(new_dir).jobs()}
    assert sorted(by_scene) == ["2", "3"] and by_scene["2"].fields == ["tag_ids", "title"]
    assert [(j.scene_id, j.state) for j in FileQueue(old_dir, clock=clock).jobs()] == [("1", INFLIGHT)]
    assert new.adopt(FileQueue(old_dir, clock=clock)) == 0
    assert held.state == INFLIGHT and by_scene["3"].state == PENDING


def test_the_data_folder_is_private_to_the_owner(tmp_path):
    if os.name == "nt":
        pytest.skip("POSIX permissions")
    folder = str(tmp_path / "a" / "data")
    sync.store.make_private_dir(folder)
    assert os.stat(folder).st_mode & 0o777 == 0o700


def test_a_journal_that_only_grows_while_sync_is_paused_is_compacted_by_the_paused_drain(tmp_path):
    for n in range(2500):  # hooks while paused: appends only, the same 10 scenes again and again
        FileQueue(str(tmp_path)).enqueue(str(n % 10), ["title"])
    before = os.path.getsize(_journal(tmp_path))
    queue = FileQueue(str(tmp_path))
    assert queue.compact_if_due() is True
    assert os.path.getsize(_journal(tmp_path)) < before / 20
    assert sorted(j.scene_id for j in FileQueue(str(tmp_path)).jobs()) == sorted(str(n) for n in range(10))
    assert queue.compact_if_due() is False


def test_damage_a_full_disk_keeps_from_being_repaired_is_reported_once_per_process(tmp_path, monkeypatch):
    q = FileQueue(str(tmp_path))
    q.enqueue("1", ["title"])
    with open(_journal(tmp_path), "ab") as fh:
        fh.write(b"\0" * 500)
    monkeypatch.setattr(sync.queue, "stage_bytes", _disk_full)
    reports = []
    reader = FileQueue(str(tmp_path), on_corrupt=reports.append)
    for _ in range(5):
        assert reader.summary().pending == 1
    assert len(reports) == 1
