"""Batched item reads (`GET /library/metadata/a,b,c`) against the Plex emulator with the real plexapi:
the same values, locks and diffs as a single-item read, vanished items, URL-length splitting."""

from __future__ import annotations

import pytest
from plexapi.exceptions import NotFound
from plexapi.server import PlexServer

from emulators.world import PLEX_TOKEN
from stashplugin.settings import Settings
from worker import metadata
from worker.batch_read import MAX_PATH, fetch_items, key_chunks
from worker.plex_writer import PlexWriter, PosterMemo, fetch_item, read_item

UNICODE = "\u201cQuoted\u201d \u2014 \U0001f469\u200d\U0001f469\u200d\U0001f467 \u6771\u4eac \u05e9\u05dc\u05d5\u05dd"


@pytest.fixture
def server(plex):
    return PlexServer(plex.url, PLEX_TOKEN)


def settings(**raw):
    return Settings.from_raw(raw, strict=True)


def scene(n: int, **overrides):
    base = {
        "id": str(n),
        "title": "Scene %d" % n,
        "details": "About %d\nsecond line" % n,
        "date": "2021-06-05",
        "studio": {"name": "Studio One"},
        "performers": [{"name": "Anna"}, {"name": "Bob"}],
        "tags": [{"name": "Outdoor"}, {"name": "Drama"}],
        "files": [{"path": "/media/v/clip%d.mp4" % n, "basename": "clip%d.mp4" % n, "size": 10}],
        "paths": {},
    }
    base.update(overrides)
    return base


def _cases(plex, section):
    """Items in every state a diff must see exactly: unicode, 300 tags, emptied fields, locks."""
    many = ["tag %03d \u00e9" % i for i in range(300)]
    specs = {
        "unicode": dict(
            title=UNICODE,
            summary="Caf\u00e9 \u2026\n\tsecond \u0645\u0631\u062d\u0628\u0627",
            genres=["\u00c9t\u00e9", "a, b & c"],
            actors=["\u674e\u5c0f\u9f99"],
        ),
        "300 tags": dict(title="Many", genres=many, actors=["P%d" % i for i in range(300)]),
        "emptied": dict(title="clip", summary="", studio="", genres=[], actors=[]),
        "locks": dict(
            title="Locked title",
            summary="Locked",
            locked={"title", "summary", "genre", "actor"},
            genres=["Kept"],
        ),
    }
    keys = {}
    for n, (name, fields) in enumerate(specs.items(), start=1):
        keys[name] = plex.add_item(section, file="/media/v/clip%d.mp4" % n, size=10, **fields)
    return keys


def test_batched_read_gives_the_same_values_locks_and_diff_as_single_reads(plex, server):
    section = plex.add_section("Movies", locations=["/media/v"])
    keys = _cases(plex, section)
    batch = fetch_items(server, list(keys.values()))
    assert sorted(batch) == sorted(keys.values())
    desired_scenes = {
        "unicode": scene(1, title=UNICODE, tags=[{"name": "\u00c9t\u00e9"}]),
        "300 tags": scene(2, tags=[{"name": "tag %03d \u00e9" % i} for i in range(0, 300, 2)]),
        "emptied": scene(3, title="", details="", studio=None, performers=[], tags=[]),
        "locks": scene(4, tags=[{"name": "New"}]),
    }
    for name, rk in keys.items():
        single = read_item(fetch_item(server, rk))
        batched = read_item(batch[rk])
        assert batched == single, name
        for raw in ({}, {"preserve_plex_edits": True}, {"max_tags": 400}):
            s = settings(**raw)
            desired = metadata.build_metadata(desired_scenes[name], s)
            assert metadata.diff_metadata(desired, batched, s) == metadata.diff_metadata(
                desired, single, s
            ), name
    assert len(read_item(batch[keys["300 tags"]])["genres"]) == 300
    assert read_item(batch[keys["locks"]])["locked"] >= {"title", "summary", "genres", "actors"}


def test_each_item_of_a_batch_keeps_its_own_library(plex, server):
    movies = plex.add_section("Movies", locations=["/media/v"])
    other = plex.add_section("Other", locations=["/media/o"])
    a = plex.add_item(movies, file="/media/v/a.mp4", size=1)
    b = plex.add_item(other, file="/media/o/b.mp4", size=1)
    batch = fetch_items(server, [a, b])
    assert batch[a].librarySectionID == movies and batch[b].librarySectionID == other


def test_an_item_that_vanished_before_the_read_is_absent_and_the_others_are_read(plex, server):
    section = plex.add_section("Movies", locations=["/media/v"])
    rks = [plex.add_item(section, file="/media/v/clip%d.mp4" % n, size=10, title="T%d" % n) for n in range(5)]
    plex.remove_item(rks[2])
    plex.clear_log()
    batch = fetch_items(server, rks)
    assert sorted(batch) == sorted(rks[:2] + rks[3:])
    assert len(plex.requests) == 1
    plex.remove_item(rks[0])
    assert fetch_items(server, [rks[0]]) == {}  # Plex answers 404 when none is left


def test_keys_are_split_so_that_no_request_path_is_too_long(plex, server):
    keys = list(range(100000, 100000 + 1000))
    chunks = list(key_chunks(keys))
    assert [k for c in chunks for k in c] == keys
    assert all(len("/library/metadata/" + ",".join(map(str, c))) <= MAX_PATH for c in chunks)
    assert len(chunks) > 1
    assert [len(c) for c in key_chunks(keys, most=200)][:2] == [200, 200]

    section = plex.add_section("Movies", locations=["/media/v"])
    rks = plex.bulk_add(section, [{"file": "/media/v/c%d.mp4" % n, "size": 1} for n in range(600)])
    plex.clear_log()
    batch = fetch_items(server, rks)
    assert sorted(batch) == sorted(rks)
    gets = [r for r in plex.requests if r.method == "GET"]
    assert len(gets) == len(list(key_chunks(rks))) >= 2
    assert all(len(r.path.split("?")[0]) <= MAX_PATH for r in gets)


def test_writer_syncs_a_prefetched_batch_with_one_get_and_the_same_result(plex, server, tmp_path):
    section = plex.add_section("Movies", locations=["/media/v"])
    rks = [plex.add_item(section, file="/media/v/clip%d.mp4" % n, size=10) for n in range(1, 6)]
    single = PlexWriter(server, settings(), memo=PosterMemo(str(tmp_path / "a")))
    batched = PlexWriter(server, settings(), memo=PosterMemo(str(tmp_path / "b")))
    dry = [single.sync(scene(n), rk, dry_run=True).diff for n, rk in enumerate(rks, start=1)]
    plex.clear_log()
    batched.prefetch(rks)
    results = [batched.sync(scene(n), rk) for n, rk in enumerate(rks, start=1)]
    assert [r.diff for r in results] == dry
    assert plex.count(method="GET") == 1 and plex.count(method="PUT") == len(rks)
    assert all(plex.item(rk)["title"] == "Scene %d" % n for n, rk in enumerate(rks, start=1))
    # A read-ahead copy is used once: the next sync of the item reads it again and finds it current.
    plex.clear_log()
    assert batched.sync(scene(1), rks[0]).unchanged
    assert plex.count(method="GET") == 1 and plex.count(method="PUT") == 0


def test_writer_reports_a_prefetched_item_that_vanished_as_not_found(plex, server, tmp_path):
    section = plex.add_section("Movies", locations=["/media/v"])
    a = plex.add_item(section, file="/media/v/clip1.mp4", size=10)
    b = plex.add_item(section, file="/media/v/clip2.mp4", size=10)
    plex.remove_item(b)
    w = PlexWriter(server, settings(), memo=PosterMemo(str(tmp_path)))
    w.prefetch([a, b])
    plex.clear_log()
    with pytest.raises(NotFound):
        w.sync(scene(2), b)
    assert len(plex.requests) == 0  # known absent from the batch read: no second GET
    assert not w.sync(scene(1), a).unchanged


def test_a_drain_reads_each_lease_batch_in_one_request_and_rematches_an_item_that_vanished(lib, monkeypatch):
    import worker.drain
    from reconcile.tasks import sync_all
    from tests.integration.library import PLEX as PLEX_ROOT

    monkeypatch.setattr(worker.drain, "BATCH_SIZE", 25)  # two lease batches of the 30 scenes
    scenes = [lib.add("clip%02d.mp4" % n, title="Clip %d" % n) for n in range(30)]
    lib.sync_everything()
    for sid, _ in scenes:
        lib.stash.update_scene(sid, title="Renamed %s" % sid)
    gone_sid, gone_rk = scenes[3]
    lib.plex.remove_item(gone_rk)  # re-added by Plex under a new key since it was matched
    new_rk = lib.plex.add_item(lib.section, file="%s/clip03.mp4" % PLEX_ROOT, size=1000)
    sync_all(lib.ctx({"scope": "all"}))
    lib.plex.clear_log()

    report = lib.drain()

    assert report["synced"] == 30 and report["failed"] == 0
    reads = [
        r.path for r in lib.plex.requests if r.method == "GET" and r.path.startswith("/library/metadata/")
    ]
    batched = [p for p in reads if "," in p]
    assert len(batched) == 2, reads  # 25 + 5 scenes, one request each
    assert "/library/metadata/%d" % new_rk in reads  # the vanished item's scene, matched again
    assert lib.plex.item(new_rk)["title"] == "Renamed %s" % gone_sid
    assert all(lib.plex.item(rk)["title"] == "Renamed %s" % sid for sid, rk in scenes if rk != gone_rk)
