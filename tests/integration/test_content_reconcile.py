"""The content settings (collections, content rating, labels, rating, filters) in reconciliation and
the drain: a setting change makes scenes stale, Sync All fixes them, filtered scenes are no gaps."""

from __future__ import annotations

from reconcile.tasks import sync_all

NEW = {
    "content_rating": "XXX",
    "labels": "From Stash",
    "sync_rating": True,
    "collections_from": "studio,parent_studio,groups",
}


def _scenes(lib):
    lib.stash.add_studio("Site One", parent="Network")
    one = lib.add(
        "one.mp4", title="One", studio="Site One", rating100=80, groups=["Series A"], organized=True
    )
    two = lib.add("two.mp4", title="Two", studio="Site One", organized=True)
    return one, two


def test_a_content_setting_change_makes_scenes_stale_and_sync_all_fixes_them(lib):
    (one, one_rk), (two, two_rk) = _scenes(lib)
    lib.sync_everything()
    assert sum(lib.reconcile(dry_run=True)["gaps"].values()) == 0

    preview = lib.reconcile(dry_run=True, settings=NEW)
    assert preview["gaps"] == {"stale": 2, "empty_in_plex": 0, "missing_from_plex": 0, "drift": 0}
    changes = {c["field"]: c for c in next(e for e in preview["sample"] if e["scene_id"] == one)["changes"]}
    assert changes["contentRating"]["stash"] == "XXX" and changes["userRating"]["stash"] == "8"
    assert changes["labels"]["add"] == ["From Stash"]
    assert sorted(changes["collections"]["add"]) == ["Network", "Series A", "Site One"]

    sync_all(lib.ctx({"scope": "all"}, **NEW))
    report = lib.drain(**NEW)
    assert report["synced"] == 2 and report["failed"] == 0
    first, second = lib.plex.item(one_rk), lib.plex.item(two_rk)
    assert first["contentRating"] == second["contentRating"] == "XXX"
    assert first["labels"] == second["labels"] == ["From Stash"]
    assert first["userRating"] == 8.0 and second["userRating"] is None
    assert sorted(first["collections"]) == ["Network", "Series A", "Site One"]
    assert sorted(second["collections"]) == ["Network", "Site One"]
    assert sum(lib.reconcile(settings=NEW)["gaps"].values()) == 0


def test_filtered_scenes_are_no_gaps_and_drains_skip_them(lib):
    (one, one_rk), (two, two_rk) = _scenes(lib)
    hidden, _ = lib.add("unorganized.mp4", title="Unorganized", in_plex=False)
    tagged, tagged_rk = lib.add("private.mp4", title="Private one", tags=["Private"], organized=True)
    filters = {"only_organized": True, "exclude_tags": "private"}
    report = lib.reconcile(settings=filters)
    assert report["gaps"]["missing_from_plex"] == 0 and report["enqueued"] == 2  # one and two
    sync_all(lib.ctx({"scope": "all"}, **filters))
    run = lib.drain(**filters)
    assert run["synced"] == 2 and run["skipped"] == 2
    assert lib.plex.item(tagged_rk)["title"] == "private"  # left as it was
    from worker.status import collect_status

    assert collect_status(lib.ctx(**filters))["filtered"] == {"not_organized": 1, "excluded_tag": 1}
