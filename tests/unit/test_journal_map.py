"""The per-scene stores' journal (sync/journal_map.py): appends in proportion to the change, readers
that follow other processes, compaction under a concurrent reader, torn records and damage, and
migration of an old data folder (sync_state.json, match_cache.json, poster_memo/NN.json,
plex_index.json)."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from sync.journal_map import JournalMap
from sync.store import quarantined_files
from sync.sync_state import SyncState
from worker.matcher import MatchCache
from worker.paths import PathMapper
from worker.plex_index import PlexIndex
from worker.plex_writer import PosterMemo


def test_changes_are_seen_by_another_instance_and_deletes_and_clear_apply(tmp_path):
    path = str(tmp_path / "m.jsonl")
    one, two = JournalMap(path), JournalMap(path)
    one.put_many({"1": {"hash": "a"}, "2": [1, 2], "3": "x"})
    assert two.get("1") == {"hash": "a"} and len(two) == 3
    two.delete_many(["2"])
    one.refresh()
    assert one.get("2") is None and sorted(one.items()) == ["1", "3"]
    one.clear()
    assert JournalMap(path).items() == {}


def test_a_change_appends_a_few_hundred_bytes_however_large_the_map(tmp_path):
    path = str(tmp_path / "m.jsonl")
    big = JournalMap(path)
    big.put_many(
        {
            str(n): {"hash": "%040x" % n, "updated_at": "2024-01-01T00:00:00Z", "synced_at": 1.5}
            for n in range(50000)
        }
    )
    before = os.path.getsize(path)
    big.put_many(
        {
            str(n): {"hash": "%040x" % (n + 1), "updated_at": "2024-01-02T00:00:00Z", "synced_at": 2.5}
            for n in range(25)
        }
    )
    assert os.path.getsize(path) - before < 25 * 150
    assert JournalMap(path).get("3")["hash"] == "%040x" % 4


def test_compaction_keeps_the_file_bounded_and_a_concurrent_reader_always_sees_a_whole_state(tmp_path):
    path = str(tmp_path / "m.jsonl")
    writer = JournalMap(path, compact_min=50)
    writer.put_many({"k%d" % n: 0 for n in range(20)})
    stop, bad = threading.Event(), []

    def read():
        reader = JournalMap(path)
        while not stop.is_set():
            reader.refresh()
            items = reader.items()
            values = {items.get("k%d" % n) for n in range(20)}
            # Every key is always there, and each value is one the writer wrote (never torn or missing).
            if len(items) != 20 or None in values:
                bad.append(items)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for round_ in range(1, 200):
            writer.put_many({"k%d" % (round_ % 20): round_})
    finally:
        stop.set()
        thread.join()
    assert not bad, bad[:1]
    with open(path, "rb") as fh:
        assert sum(1 for _ in fh) <= 4 * 20 + 60
    assert JournalMap(path).get("k19") == 199


def test_a_torn_last_line_is_skipped_and_marked_by_the_next_writer_never_cut(tmp_path):
    path = str(tmp_path / "m.jsonl")
    JournalMap(path).put("a", 1)
    torn = b'{"k":"b","v":'  # a writer killed mid-append: its put never returned
    with open(path, "ab") as fh:
        fh.write(torn)
    assert JournalMap(path).items() == {"a": 1}
    JournalMap(path).put("c", 3)
    with open(path, "rb") as fh:
        lines = fh.read().split(b"\n")
    # The torn bytes are still there, a line of their own, followed by a record naming their length.
    at = lines.index(torn)
    mark = json.loads(lines[at + 1])
    assert mark["op"] == "torn" and mark["len"] == len(torn)
    assert JournalMap(path).items() == {"a": 1, "c": 3}
    assert quarantined_files(str(tmp_path)) == []


def test_a_reader_never_touches_a_record_another_writer_is_still_writing(tmp_path):
    """Readers take no lock and change nothing: half a record (its writer holds the lock and has
    not finished) is left alone, and read once it is complete."""
    from sync.lock import FileLock

    path = str(tmp_path / "m.jsonl")
    JournalMap(path).put("a", 1)
    reader = JournalMap(path)
    assert reader.items() == {"a": 1}
    record = b'{"k":"b","v":{"title":"' + "é".encode("utf-8") * 200 + b'"}}\n'
    with FileLock(path + ".lock"):
        with open(path, "ab") as fh:
            fh.write(record[:57])
            fh.flush()
            with open(path, "rb") as before:
                seen = before.read()
            reader.refresh()
            assert reader.items() == {"a": 1} and reader.get("b") is None
            with open(path, "rb") as after:
                assert after.read() == seen  # not cut, not marked
            fh.write(record[57:])
    reader.refresh()
    assert reader.get("b") == {"title": "é" * 200}
    assert quarantined_files(str(tmp_path)) == []


def test_a_record_still_being_written_beside_a_writer_is_never_cut(tmp_path, monkeypatch):
    """Where a lock excludes nobody (a network share with locking off), a writer can find another
    writer's record half written. It marks the line instead of cutting it; the other write then
    completes (O_APPEND puts our append after it), and both records are read back."""
    import sync.journal_map as journal_map

    path = str(tmp_path / "m.jsonl")
    JournalMap(path).put("a", 1)
    other = b'{"k":"b","v":"written by the other process"}\n'
    with open(path, "ab") as fh:
        fh.write(other[:20])  # the other writer's record, half written
    real_after_tail = journal_map.after_tail

    def other_write_completes(fd, size, now):
        prefix = real_after_tail(fd, size, now)  # decided on the half-written record
        with open(path, "ab") as fh:
            fh.write(other[20:])
        return prefix

    monkeypatch.setattr(journal_map, "after_tail", other_write_completes)
    writer = JournalMap(path)
    writer.put("c", 3)
    monkeypatch.setattr(journal_map, "after_tail", real_after_tail)
    told = []
    expected = {"a": 1, "b": "written by the other process", "c": 3}
    assert JournalMap(path, on_corrupt=told.append).items() == expected
    assert writer.items() == expected and not told
    assert quarantined_files(str(tmp_path)) == []


def test_a_last_line_that_no_killed_writer_could_leave_is_damage(tmp_path):
    """NUL bytes at the end (storage that lost the end of the file) are not a torn record: the
    readable records are kept, the damage kept aside and reported."""
    path = str(tmp_path / "m.jsonl")
    JournalMap(path).put_many({"a": 1, "b": 2})
    with open(path, "ab") as fh:
        fh.write(b"\0" * 300)
    told = []
    assert JournalMap(path, on_corrupt=told.append).items() == {"a": 1, "b": 2}
    assert len(told) == 1 and "unreadable" in str(told[0])
    assert len(quarantined_files(str(tmp_path))) == 1
    JournalMap(path).put("c", 3)
    assert JournalMap(path).items() == {"a": 1, "b": 2, "c": 3}


def test_a_value_the_file_already_holds_is_not_written_again(tmp_path):
    path = str(tmp_path / "m.jsonl")
    journal = JournalMap(path)
    journal.put_many({"a": {"x": [1, 2]}, "b": 2})
    size = os.path.getsize(path)
    JournalMap(path).put_many({"a": {"x": [1, 2]}, "b": 2, "gone": None})
    assert os.path.getsize(path) == size
    JournalMap(path).put_many({"a": {"x": [1, 3]}, "b": 2})
    assert 0 < os.path.getsize(path) - size < 40
    assert JournalMap(path).items() == {"a": {"x": [1, 3]}, "b": 2}


def test_a_damaged_line_is_moved_aside_and_every_readable_record_kept(tmp_path):
    path = str(tmp_path / "m.jsonl")
    JournalMap(path).put_many({"a": 1, "b": 2})
    with open(path, "ab") as fh:
        fh.write(b'not json at all\n{"k":"c","v":3}\n')
    told = []
    assert JournalMap(path, on_corrupt=told.append).items() == {"a": 1, "b": 2, "c": 3}
    assert len(told) == 1 and "m.jsonl" in str(told[0])
    assert len(quarantined_files(str(tmp_path))) == 1
    assert JournalMap(path).items() == {"a": 1, "b": 2, "c": 3}


@pytest.mark.parametrize("bad", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_a_record_with_a_non_finite_number_is_damage_not_a_value(tmp_path, bad):
    """A NaN time compares false with every other time; like the queue's records, a journal record
    holding one is damage (moved aside, reported), never a value handed to a caller."""
    path = str(tmp_path / "m.jsonl")
    JournalMap(path).put_many({"a": {"synced_at": 1.5}})
    with open(path, "ab") as fh:
        fh.write(b'{"k":"b","v":{"synced_at":' + bad + b'}}\n{"k":"c","v":3}\n')
    told = []
    assert JournalMap(path, on_corrupt=told.append).items() == {"a": {"synced_at": 1.5}, "c": 3}
    assert len(told) == 1 and len(quarantined_files(str(tmp_path))) == 1
    assert JournalMap(path).items() == {"a": {"synced_at": 1.5}, "c": 3}


def test_an_old_data_folder_is_migrated_on_first_use_and_nothing_is_lost(tmp_path):
    data = str(tmp_path)
    state = {str(n): {"hash": "h%d" % n, "updated_at": None, "synced_at": float(n)} for n in range(300)}
    with open(os.path.join(data, "sync_state.json"), "w") as fh:
        json.dump(state, fh)
    cache = {
        "v": 1,
        "signature": ["machine", ["movies"], []],
        "scenes": {str(n): {"rating_key": 1000 + n, "file": "/f/%d.mp4" % n} for n in range(300)},
    }
    with open(os.path.join(data, "match_cache.json"), "w") as fh:
        json.dump(cache, fh)
    os.makedirs(os.path.join(data, "poster_memo"))
    for shard in range(64):
        entries = {
            str(rk): {"poster_sha1": "s%d" % rk, "written": {"title": "t"}}
            for rk in range(1000 + shard, 1300, 64)
        }
        with open(os.path.join(data, "poster_memo", "%02d.json" % shard), "w") as fh:
            json.dump(entries, fh)

    index = {
        "v": 1,
        "server": "machine",
        "libraries": ["movies"],
        "built_at": time.time(),
        "sections": {
            "1": {
                "title": "Movies",
                "locations": ["/media"],
                "refreshed_at": 1700000299,
                "items": {str(1000 + n): [["/media/%d.mp4" % n], [n], 1700000000 + n] for n in range(300)},
            }
        },
    }
    with open(os.path.join(data, "plex_index.json"), "w") as fh:
        json.dump(index, fh)

    assert SyncState(data).read() == state
    paths = PlexIndex(data)
    assert paths.size == 300 and paths.full_rebuild_needed(None, ["Movies"]) == ""  # no listing needed
    assert paths.sections() == {1: "Movies"} and paths.locations(1) == ["/media"]
    found = paths.lookup("/stash/7.mp4", PathMapper([("/stash", "/media")]), size=7)
    assert found.rule == "exact" and found.candidates == [(1007, 1, "/media/7.mp4", 7, 1700000007)]
    matches = MatchCache(data, signature=["machine", ["movies"], []])
    assert len(matches) == 300 and matches.get("7")["rating_key"] == 1007
    memo = PosterMemo(data)
    assert all(memo.get(rk)["poster_sha1"] == "s%d" % rk for rk in range(1000, 1300))

    names = set(os.listdir(data))
    assert {"sync_state.jsonl", "match_cache.jsonl", "poster_memo.jsonl", "plex_index.jsonl"} <= names
    assert not ({"sync_state.json", "match_cache.json", "poster_memo", "plex_index.json"} & names)
    # A second process finds the journals and reads the same.
    assert SyncState(data).read() == state and PosterMemo(data).get(1299)["poster_sha1"] == "s1299"
    again = PlexIndex(data)
    assert (
        again.size == 300 and again.lookup("/media/299.mp4", PathMapper([])).candidates[0].rating_key == 1299
    )


def test_a_match_cache_made_under_other_settings_starts_empty(tmp_path):
    data = str(tmp_path)
    old = MatchCache(data, signature=["a"])
    old.put("1", {"rating_key": 5})
    old.flush()
    new = MatchCache(data, signature=["b"])
    assert new.get("1") is None and len(new) == 0
    new.put("2", {"rating_key": 6})
    new.flush()
    assert MatchCache(data, signature=["b"]).get("2")["rating_key"] == 6
    assert MatchCache(data, signature=["a"]).get("1") is None


def test_a_file_that_is_not_a_journal_is_moved_aside_not_overwritten(tmp_path):
    path = str(tmp_path / "m.jsonl")
    with open(path, "wb") as fh:
        fh.write(b'{"state": "open"')  # no header, no newline
    told = []
    journal = JournalMap(path, on_corrupt=told.append)
    journal.put("a", 1)
    assert told and JournalMap(path).items() == {"a": 1}
    (moved,) = quarantined_files(str(tmp_path))
    with open(str(tmp_path / moved), "rb") as fh:
        assert fh.read() == b'{"state": "open"'


def test_a_write_only_journal_appends_without_reading_and_marks_a_torn_line(tmp_path):
    path = str(tmp_path / "m.jsonl")
    JournalMap(path).put_many({"a": 1, "b": 2})
    with open(path, "ab") as fh:
        fh.write(b'{"k":"c","v":')  # torn by a killed writer
    blind = JournalMap(path, keep=False)
    blind.put_many({"d": 4})
    blind.put_many({"a": None})
    assert blind._data == {}
    assert JournalMap(path).items() == {"b": 2, "d": 4}
    assert quarantined_files(str(tmp_path)) == []
    fresh = str(tmp_path / "n.jsonl")
    JournalMap(fresh, keep=False).put("x", 1)
    assert JournalMap(fresh).items() == {"x": 1}


def test_a_change_written_without_fsync_is_seen_at_once_and_one_sync_makes_the_group_durable(
    tmp_path, monkeypatch
):
    path = str(tmp_path / "m.jsonl")
    writer = JournalMap(path)
    writer.put_many({"0": "first"})  # the header and the first record exist already
    fsyncs = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    for n in range(1, 4):
        writer.put_many({str(n): "v%d" % n}, fsync=False)
    assert JournalMap(path).items() == {"0": "first", "1": "v1", "2": "v2", "3": "v3"}  # another process
    assert fsyncs == []
    writer.sync()
    writer.sync()  # nothing new since: no second fsync
    assert len(fsyncs) == 1


def test_a_batched_memo_keeps_entries_for_its_flush_but_writes_name_claims_at_once(tmp_path):
    data = str(tmp_path)
    memo = PosterMemo(data, batched=True)
    memo.set(5, {"poster_sha1": "abc"})
    memo.set(6, {"written": {"collections": ["Site One"]}}, claims=True)
    assert memo.get(5) == {"poster_sha1": "abc"}  # this process sees its own entries
    # What another process (a drain after a SIGKILL) finds before the flush: the claim only.
    assert PosterMemo(data).get(5) == {} and PosterMemo(data).get(6)["written"]["collections"] == ["Site One"]
    memo.flush()
    assert PosterMemo(data).get(5) == {"poster_sha1": "abc"}


def test_a_memo_entry_changed_by_its_reader_stays_as_it_was_set(tmp_path):
    """A sync changes the entry it got before it knows whether Plex took the edit; a failed edit
    must not change what the memo holds, written or kept for the flush."""
    data = str(tmp_path)
    memo = PosterMemo(data, batched=True)
    memo.set_many({5: {"poster_sha1": "abc", "written": {"title": "f1"}}})
    memo.set(6, {"poster_sha1": "def"})
    for rk in (5, 6):
        entry = memo.get(rk)
        entry["poster_sha1"], entry["written"] = "changed", {"title": "f2"}
    assert memo.get(5) == {"poster_sha1": "abc", "written": {"title": "f1"}}
    assert memo.get(6) == {"poster_sha1": "def"}
    memo.flush()
    assert PosterMemo(data).get(6) == {"poster_sha1": "def"}
