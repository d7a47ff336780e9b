"""The first reconciliation tells the truth: scenes PlexSync never synced (or whose records are
lost) are compared with their full Plex items; the ones that already match are adopted, only the
planted differences are gaps. Real drain, real plexapi, both emulators over HTTP."""

from __future__ import annotations

import os
import shutil

SCENES = 24


def _library_that_already_matches(lib):
    """SCENES scenes whose Plex items show exactly what PlexSync writes (as a user coming from
    another agent has), with no PlexSync records at all."""
    ids = {}
    for n in range(SCENES):
        ids[n] = lib.add(
            "clip%02d.mp4" % n,
            title="Clip %d" % n,
            details="About clip %d\nline two" % n,
            date="2021-06-%02d" % (n % 28 + 1),
            studio="Blue Harbor",
            tags=["Boats", "Sea", "Tag %d" % n, "Harbor", "Dawn", "Sail"],
            performers=["Ana Lima", "Performer %d" % n, "Third %d" % n, "Fourth"],
        )
    lib.sync_everything()
    shutil.rmtree(lib.data_dir)  # no sync state, no memo, no match cache
    os.makedirs(lib.data_dir)
    return ids


def _plant(lib, ids):
    """One of each difference reconciliation must find; returns {scene id: what}."""
    sid = {n: v[0] for n, v in ids.items()}
    rk = {n: v[1] for n, v in ids.items()}
    lib.plex.update_item(
        rk[0], title="clip00", summary="", studio=None, originallyAvailableAt=None, genres=[], actors=[]
    )  # empty in Plex
    lib.stash.update_scene(sid[1], title="Clip 1, renamed in Stash")  # stale in Plex
    lib.plex.remove_item(rk[2])  # missing from Plex
    lib.plex.update_item(rk[3], summary="Edited in Plex")  # edited in Plex
    # A tag beyond what a listing shows (listings cut tag lists short): only a full read sees it.
    lib.plex.update_item(rk[4], genres=["Boats", "Sea", "Tag 4", "Harbor", "Dawn", "Rowing"])
    lib.plex.update_item(rk[5], actors=["Ana Lima", "Performer 5", "Third 5", "Someone else"])
    return {
        sid[0]: "empty_in_plex",
        sid[1]: "stale",
        sid[2]: "missing_from_plex",
        sid[3]: "stale",
        sid[4]: "stale",
        sid[5]: "stale",
    }


def _found(report) -> dict:
    return {e["scene_id"]: e["gap"] for e in report["sample"]}


def test_items_that_already_match_are_adopted_and_only_planted_differences_are_gaps(lib, monkeypatch):
    # The scene missing from Plex fails in the drain below and gets a retry a few seconds away;
    # this test is about what the drain writes, not about that retry (tests/integration/
    # test_drain_retry.py), so the drain does not wait ~10 s for it before it stops.
    import worker.drain

    monkeypatch.setattr(worker.drain, "RETRY_WAIT_SECONDS", 0.0)
    ids = _library_that_already_matches(lib)
    planted = _plant(lib, ids)
    lib.plex.clear_log()

    report = lib.reconcile(sample_size=50)

    assert _found(report) == planted
    assert report["gaps"] == {"stale": 4, "empty_in_plex": 1, "missing_from_plex": 1, "drift": 0}
    assert report["adopted"] == SCENES - len(planted)
    assert sorted(lib.queued()) == sorted(planted)
    reasons = {e["scene_id"]: e["reason"] for e in report["sample"]}
    assert (
        "genres" in reasons[ids[4][0]] and "actors" in reasons[ids[5][0]] and "summary" in reasons[ids[3][0]]
    )
    item_reads = [
        r for r in lib.plex.requests if r.method == "GET" and r.path.startswith("/library/metadata/")
    ]
    assert len(item_reads) == 1, "all never-synced items are read in one batch"

    # The second run finds the same gaps and reads only the items of those gaps.
    lib.plex.clear_log()
    again = lib.reconcile(sample_size=50)
    assert _found(again) == planted and again["adopted"] == 0
    assert again["requests"]["plex"] <= report["requests"]["plex"]

    # The drain closes the gaps; afterwards nothing is left and nothing was written to adopted items.
    lib.plex.clear_log()
    lib.drain()
    edited = {r.query.get("id") for r in lib.plex.requests if r.method == "PUT"}
    adopted_rks = {str(rk) for n, (s, rk) in ids.items() if s not in planted}
    assert edited and not (edited & adopted_rks)
    final = lib.reconcile()
    assert sum(final["gaps"].values()) == 1 and final["gaps"]["missing_from_plex"] == 1  # still not in Plex
    assert final["adopted"] == 0


def test_the_summary_line_says_how_many_were_adopted(lib):
    from reconcile.tasks import summary_line

    ids = _library_that_already_matches(lib)
    _plant(lib, ids)
    report = lib.reconcile()
    assert "adopted %d that already match" % (SCENES - 6) in summary_line(report)


def test_preview_shows_the_same_gaps_and_adopts_nothing(lib):
    ids = _library_that_already_matches(lib)
    planted = _plant(lib, ids)
    preview = lib.reconcile(dry_run=True, sample_size=50)
    assert _found(preview) == planted and preview["adopted"] == SCENES - len(planted)
    from reconcile.tasks import summary_line

    assert "would adopt %d that already match" % (SCENES - len(planted)) in summary_line(preview)
    assert lib.queued() == {}
    real = lib.reconcile(sample_size=50)
    assert _found(real) == planted and real["adopted"] == SCENES - len(planted)


def test_a_lost_memo_or_sync_state_is_still_exact(lib):
    ids = {
        n: lib.add(
            "clip%02d.mp4" % n,
            title="Clip %d" % n,
            details="About %d" % n,
            studio="Blue Harbor",
            tags=["Boats", "Sea"],
            performers=["Ana Lima"],
        )
        for n in range(8)
    }
    lib.sync_everything()
    lib.plex.update_item(ids[0][1], title="Edited in Plex")
    os.remove(os.path.join(lib.data_dir, "poster_memo.jsonl"))  # what was written: lost
    report = lib.reconcile(sample_size=50)
    assert _found(report) == {ids[0][0]: "stale"} and report["adopted"] == 7
    os.remove(os.path.join(lib.data_dir, "sync_state.jsonl"))  # what was synced: lost
    report = lib.reconcile(sample_size=50)
    assert _found(report) == {ids[0][0]: "stale"} and report["adopted"] == 7


def test_an_item_with_no_poster_at_all_is_a_gap_and_one_with_any_poster_is_adopted(lib):
    """Adoption cannot compare images (that would download every cover); it does see an item
    whose full XML has no `thumb` at all, where PlexSync would upload Stash's cover."""
    ids = _library_that_already_matches(lib)
    bare = ids[0]
    lib.plex.library.delete_image(bare[1], "poster")  # Plex shows no poster for this item
    assert lib.plex.item(bare[1])["poster"] is None and lib.plex.item(ids[1][1])["poster"] is not None

    without = lib.reconcile(dry_run=True, sample_size=50, settings={"sync_poster": False})
    assert _found(without) == {} and without["adopted"] == SCENES  # no cover is synced: nothing to miss

    preview = lib.reconcile(dry_run=True, sample_size=50)
    assert _found(preview) == {bare[0]: "stale"} and preview["adopted"] == SCENES - 1
    (entry,) = preview["sample"]
    assert {"field": "poster", "stash": "new cover"} in entry["changes"]

    report = lib.reconcile(sample_size=50)
    assert _found(report) == {bare[0]: "stale"} and report["adopted"] == SCENES - 1
    assert "poster" in report["sample"][0]["reason"] and list(lib.queued()) == [bare[0]]
    lib.drain()
    assert lib.plex.item(bare[1])["poster"] is not None  # the drain uploaded Stash's cover
    assert sum(lib.reconcile()["gaps"].values()) == 0


def test_a_never_synced_item_that_vanished_before_its_read_is_missing(lib, monkeypatch):
    ids = _library_that_already_matches(lib)
    from reconcile import scan as scan_module

    original = scan_module.Scan._verify

    def vanish_then_verify(self, memo):
        if self._unverified:
            lib.plex.remove_item(ids[7][1])  # deleted in Plex between the listing and the read
        return original(self, memo)

    monkeypatch.setattr(scan_module.Scan, "_verify", vanish_then_verify)
    report = lib.reconcile(sample_size=50)
    assert _found(report) == {ids[7][0]: "missing_from_plex"} and report["adopted"] == SCENES - 1


def test_the_daily_scope_checks_recent_scenes_fully_and_every_scene_for_empty_or_missing_items(lib):
    import time

    ids = _library_that_already_matches(lib)
    planted = _plant(lib, ids)
    old = int(time.time()) - 30 * 86400
    sid = {n: v[0] for n, v in ids.items()}
    for n in range(SCENES):
        if n != 1:  # scene 1 was renamed in Stash just now: recent
            lib.stash.update_scene(sid[n], updated_at=old)
    lib.plex.clear_log()

    report = lib.reconcile("7d+", sample_size=50)

    # Old scenes: only an empty or a missing item is a gap; recent ones are compared exactly.
    assert _found(report) == {sid[0]: "empty_in_plex", sid[1]: "stale", sid[2]: "missing_from_plex"}
    assert report["adopted"] == 0
    item_reads = [
        r for r in lib.plex.requests if r.method == "GET" and r.path.startswith("/library/metadata/")
    ]
    assert len(item_reads) == 1 and item_reads[0].path.count(",") == 0, "only the recent scene's item is read"
    assert set(planted) >= set(_found(report))
