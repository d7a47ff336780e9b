"""Reconciliation against the Stash and Plex emulators over real HTTP (real plexapi, real GraphQL).

Each test builds a library, syncs it with the real drain, then changes things behind PlexSync's
back (an edit no hook saw, an item emptied or edited in Plex, a file Plex never scanned) and
checks what reconciliation finds, queues and costs.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from emulators.world import PLEX_TOKEN
from reconcile.tasks import sync_all
from tests.integration.library import PLEX, STASH


def full_scene(lib, name, title, in_plex=True):
    return lib.add(
        name,
        in_plex=in_plex,
        title=title,
        details="About %s" % title,
        date="2021-06-01",
        studio="Blue Harbor",
        tags=["Boats", "Sea"],
        performers=["Ana Lima"],
    )


def test_mixed_library_finds_each_gap_once_with_its_type(lib):
    in_sync, _ = full_scene(lib, "in_sync.mp4", "In sync")
    stale, _ = full_scene(lib, "stale.mp4", "Stale")
    empty, empty_rk = full_scene(lib, "empty.mp4", "Empty")
    drift, drift_rk = full_scene(lib, "drift.mp4", "Drift")
    lib.sync_everything()
    # Everything below happens without a hook: a bulk import, a Plex restore, an edit in Plex.
    ambiguous, _ = full_scene(lib, "twice.mp4", "Twice")
    other = lib.plex.add_section("Movies copy", [PLEX])
    lib.plex.add_item(other, file="%s/twice.mp4" % PLEX, size=1000)
    missing, _ = full_scene(lib, "not_scanned.mp4", "Not scanned", in_plex=False)
    lib.stash.update_scene(stale, title="Stale, renamed in Stash")
    lib.plex.update_item(
        empty_rk, title="empty", summary="", studio=None, originallyAvailableAt=None, genres=[], actors=[]
    )
    lib.plex.update_item(drift_rk, title="Renamed in Plex")

    report = lib.reconcile()

    assert report["gaps"] == {"stale": 1, "empty_in_plex": 1, "missing_from_plex": 1, "drift": 1}
    assert report["ambiguous"] == 1
    kinds = {e["scene_id"]: e["gap"] for e in report["sample"]}
    assert kinds == {
        stale: "stale",
        empty: "empty_in_plex",
        missing: "missing_from_plex",
        drift: "drift",
        ambiguous: "ambiguous",
    }
    queued = lib.queued()
    assert sorted(queued) == sorted([stale, empty, missing, drift])
    assert in_sync not in queued and ambiguous not in queued
    assert all(job.source == "reconcile" for job in queued.values())
    assert report["enqueued"] == 4


def test_queued_gaps_are_fixed_by_the_next_drain(lib):
    stale, stale_rk = full_scene(lib, "stale.mp4", "Stale")
    empty, empty_rk = full_scene(lib, "empty.mp4", "Empty")
    drift, drift_rk = full_scene(lib, "drift.mp4", "Drift")
    lib.sync_everything()
    lib.stash.update_scene(stale, title="Renamed in Stash")
    lib.plex.update_item(empty_rk, title="empty", summary="", studio=None, genres=[], actors=[])
    lib.plex.update_item(drift_rk, summary="Written in Plex")
    lib.reconcile()
    lib.drain()
    assert lib.plex.item(stale_rk)["title"] == "Renamed in Stash"
    assert lib.plex.item(empty_rk)["title"] == "Empty" and lib.plex.item(empty_rk)["genres"] == [
        "Boats",
        "Sea",
    ]
    assert lib.plex.item(drift_rk)["summary"] == "About Drift"
    again = lib.reconcile()
    assert sum(again["gaps"].values()) == 0 and again["enqueued"] == 0


def test_reconciling_twice_with_nothing_changed_finds_nothing(lib):
    for n in range(12):
        full_scene(lib, "clip%02d.mp4" % n, "Clip %d" % n)
    lib.sync_everything()
    first = lib.reconcile()
    second = lib.reconcile()
    for report in (first, second):
        assert report["scenes_checked"] == 12
        assert sum(report["gaps"].values()) == 0 and report["ambiguous"] == 0 and report["enqueued"] == 0
    assert lib.queued() == {}


def test_a_scene_never_synced_is_stale_even_when_plex_shows_metadata(lib):
    sid, rk = full_scene(lib, "old.mp4", "Old")
    lib.plex.update_item(
        rk,
        title="Something",
        summary="From an agent",
        studio="Agent Studio",
        originallyAvailableAt="2020-01-01",
        genres=["Agent"],
        actors=["Someone"],
    )
    report = lib.reconcile()
    assert report["gaps"]["stale"] == 1
    assert report["sample"][0]["reason"].startswith("never synced by PlexSync; Plex differs: title")


def test_dry_run_queues_nothing_and_shows_each_change(lib):
    stale, rk = full_scene(lib, "stale.mp4", "Before")
    lib.sync_everything()
    lib.stash.update_scene(stale, title="After", tags=["Boats", "Harbor"])
    record_before = _record(lib)

    report = lib.reconcile(dry_run=True)

    assert report["gaps"]["stale"] == 1 and report["would_enqueue"] == 1 and report["enqueued"] == 0
    assert lib.queued() == {}
    assert _record(lib) == record_before, "a preview is not a reconciliation run"
    changes = {c["field"]: c for c in report["sample"][0]["changes"]}
    assert changes["title"]["plex"] == "Before" and changes["title"]["stash"] == "After"
    assert changes["genres"]["add"] == ["Harbor"] and changes["genres"]["remove"] == ["Sea"]
    assert lib.plex.item(rk)["title"] == "Before"


def test_scoped_runs_ask_stash_only_for_their_window(lib):
    recent, _ = full_scene(lib, "recent.mp4", "Recent")
    older, _ = full_scene(lib, "older.mp4", "Older")
    lib.sync_everything()
    lib.stash.update_scene(recent, title="Recent, renamed")
    lib.stash.update_scene(older, title="Older, renamed", updated_at=int(time.time()) - 3 * 86400)
    lib.stash.clear_records()

    day = lib.reconcile("24h", dry_run=True)
    week = lib.reconcile("7d", dry_run=True)

    assert [e["scene_id"] for e in day["sample"]] == [recent]
    assert sorted(e["scene_id"] for e in week["sample"]) == sorted([recent, older])
    filters = [r.variables.get("scene_filter") for r in lib.stash.requests if "PlexSyncPage" in r.query]
    assert [f["updated_at"]["modifier"] for f in filters] == ["GREATER_THAN", "GREATER_THAN"]
    since = [_epoch(f["updated_at"]["value"]) for f in filters]
    assert abs(since[0] - (time.time() - 86400)) < 120 and abs(since[1] - (time.time() - 7 * 86400)) < 120


def test_drift_is_reported_but_not_queued_when_plex_edits_are_preserved(lib):
    sid, rk = full_scene(lib, "drift.mp4", "Drift")
    lib.sync_everything()
    lib.plex.update_item(rk, title="Kept from Plex")
    report = lib.reconcile(settings={"preserve_plex_edits": True})
    assert report["gaps"]["drift"] == 1 and report["enqueued"] == 0 and report["not_queued"] == 1
    assert "Preserve Plex edits" in report["sample"][0]["reason"]
    assert lib.queued() == {}


def test_a_scene_missing_from_plex_is_not_queued_when_not_found_scenes_are_skipped(lib):
    full_scene(lib, "nowhere.mp4", "Nowhere", in_plex=False)
    report = lib.reconcile(settings={"skip_not_found": True})
    assert report["gaps"]["missing_from_plex"] == 1 and report["enqueued"] == 0
    assert lib.queued() == {}


def test_an_item_readded_in_plex_is_found_and_synced_to_its_new_item(lib):
    sid, rk = full_scene(lib, "readded.mp4", "Re-added")
    lib.sync_everything()
    lib.plex.remove_item(rk)
    new_rk = lib.plex.add_item(lib.section, file="%s/readded.mp4" % PLEX, size=1000)
    report = lib.reconcile()
    assert report["gaps"]["empty_in_plex"] == 1 and list(lib.queued()) == [sid]
    lib.drain()
    assert lib.plex.item(new_rk)["title"] == "Re-added"
    assert lib.reconcile()["enqueued"] == 0


def test_missing_metadata_only_queues_only_items_empty_in_plex(lib):
    stale, _ = full_scene(lib, "stale.mp4", "Stale")
    empty, empty_rk = full_scene(lib, "empty.mp4", "Empty")
    lib.sync_everything()
    lib.stash.update_scene(stale, title="Renamed")
    lib.plex.update_item(empty_rk, summary="")
    full_scene(lib, "nowhere.mp4", "Nowhere", in_plex=False)
    report = lib.reconcile(only=("empty_in_plex",))
    assert report["gaps"] == {"empty_in_plex": 1}
    assert list(lib.queued()) == [empty]
    assert "all" not in _record(lib).get("finished", {}), "a partial run does not reset the schedule"


def test_reconcile_json_keeps_time_duration_gaps_and_enqueued(lib):
    sid, _ = full_scene(lib, "stale.mp4", "Stale")
    report = lib.reconcile()
    record = _record(lib)
    assert record["last_run_at"] >= report["started_at"]
    assert record["duration_seconds"] == report["seconds"]
    assert record["gaps"]["empty_in_plex"] == 1 and record["enqueued"] == 1


def test_a_queued_scene_is_coalesced_not_queued_twice(lib):
    sid, _ = full_scene(lib, "stale.mp4", "Stale")
    lib.ctx().queue().enqueue(sid, ["title"], source="Scene.Update.Post")
    report = lib.reconcile()
    assert report["already_queued"] == 1
    jobs = [j for j in lib.ctx().queue().jobs() if j.scene_id == sid]
    assert len(jobs) == 1


def test_sync_all_queues_every_scene_and_sync_recent_only_recent_ones(lib):
    old = [full_scene(lib, "old%d.mp4" % n, "Old %d" % n)[0] for n in range(3)]
    for sid in old:
        lib.stash.update_scene(sid, updated_at=int(time.time()) - 5 * 86400)
    recent, _ = full_scene(lib, "new.mp4", "New")
    out = sync_all(lib.ctx({"scope": "24h"}))
    assert out["enqueued"] == 1 and list(lib.queued()) == [recent]
    out = sync_all(lib.ctx({"scope": "all"}))
    assert out["enqueued"] == 4 and sorted(lib.queued()) == sorted(old + [recent])
    assert sync_all(lib.ctx({"scope": "all", "dry_run": True}))["enqueued"] == 0


def test_thousands_of_scenes_cost_a_handful_of_paged_requests(lib):
    ids = lib.stash.seed_scenes(3000, path_prefix=STASH)
    lib.plex.bulk_add(
        lib.section, [{"file": "%s/scene_%06d.mp4" % (PLEX, int(i)), "size": 1000} for i in ids]
    )
    lib.stash.clear_records()
    lib.plex.clear_log()

    report = lib.reconcile()

    assert report["scenes_checked"] == 3000 and report["gaps"]["empty_in_plex"] > 2500
    pages = [r for r in lib.stash.requests if "PlexSyncPage" in r.query]
    assert len(pages) == 3 and len(lib.stash.requests) <= 4
    assert lib.plex.count(path_prefix="/library/metadata") == 0, "no per-scene Plex requests"
    assert lib.plex.count() <= 6
    assert report["requests"]["plex"] == lib.plex.count()


def test_auto_reconcile_runs_in_the_drain_when_due_and_not_otherwise(lib):
    sid, rk = full_scene(lib, "stale.mp4", "Stale")
    lib.sync_everything()
    lib.stash.update_scene(sid, title="Renamed without a hook")

    lib.drain()  # interval "never"
    assert lib.plex.item(rk)["title"] == "Stale"

    report = lib.drain(reconcile_interval="hourly")  # never ran: due
    assert lib.plex.item(rk)["title"] == "Renamed without a hook"
    assert report["synced"] == 1
    first = _record(lib)
    assert first["trigger"] == "auto" and first["gaps"]["stale"] == 1

    lib.stash.update_scene(sid, title="Renamed again")
    lib.drain(reconcile_interval="hourly")  # ran a moment ago: not due
    assert _record(lib)["last_run_at"] == first["last_run_at"]
    assert lib.plex.item(rk)["title"] == "Renamed without a hook"


def _record(lib) -> dict:
    path = os.path.join(lib.data_dir, "reconcile.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _epoch(text: str) -> float:
    from reconcile.gaps import parse_time

    return parse_time(text)


def test_a_library_name_plex_does_not_have_fails_with_a_clear_message(lib):
    from stashplugin.task import TaskError

    full_scene(lib, "a.mp4", "A")
    with pytest.raises(TaskError) as err:
        lib.reconcile(settings={"plex_libraries": "Films"})
    assert "'Plex libraries' names 'Films'" in str(err.value) and "'Movies'" in str(err.value)
    assert lib.queued() == {}


def test_plex_down_fails_the_task_with_a_clear_message_and_queues_nothing(lib):
    from stashplugin.task import TaskError

    full_scene(lib, "a.mp4", "A")
    lib.plex.set_fault("down")
    with pytest.raises(TaskError) as err:
        lib.reconcile()
    assert "could not reach Plex" in str(err.value) and PLEX_TOKEN not in str(err.value)
    assert lib.queued() == {}


def test_an_empty_scope_asks_plex_nothing(lib):
    sid, _ = full_scene(lib, "a.mp4", "A")
    lib.stash.update_scene(sid, updated_at=int(time.time()) - 3 * 86400)
    lib.plex.clear_log()
    report = lib.reconcile("24h")
    assert report["scenes_checked"] == 0 and lib.plex.count() == 0
