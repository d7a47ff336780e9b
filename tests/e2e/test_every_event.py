"""Every event real Stash reports reaches Plex with no task run by hand: the shapes of hookContext
Stash really sends, and renames, deletions and merges of tags, performers, studios and groups."""

from __future__ import annotations


def _titles(world, rks):
    return [world.plex.item(rk)["title"] for rk in rks]


def test_scene_filename_parser_save_of_ten_scenes_reaches_plex(world):
    """scenesUpdate passes the whole list as every scene's hookContext.input (real Stash)."""
    scenes = [world.add_scene("parser%02d.mp4" % i) for i in range(10)]
    world.graphql(
        "mutation($input: [SceneUpdateInput!]!) { scenesUpdate(input: $input) { id } }",
        {"input": [{"id": sid, "title": "Parsed %d" % i} for i, (sid, _) in enumerate(scenes)]},
    )
    assert world.stash.wait_idle(120)
    assert all(isinstance(h.input, list) and len(h.input) == 10 for h in world.stash.hook_runs)
    assert all(h.output == "queued" for h in world.stash.hook_runs)
    assert _titles(world, [rk for _, rk in scenes]) == ["Parsed %d" % i for i in range(10)]
    assert all(t.task_name == "Process Queue" for t in world.stash.task_runs)


def _synced(world, n_prefix, count, **fields):
    scenes = [
        world.add_scene("%s%02d.mp4" % (n_prefix, i), title="%s %d" % (n_prefix, i), **fields)
        for i in range(count)
    ]
    world.run_task("Sync All")
    assert world.stash.wait_idle(120)
    return scenes


def _no_task_by_hand(world, before):
    """Everything after `before` was started by PlexSync's own hooks: drains only."""
    later = world.stash.task_runs[before:]
    assert later and all(t.task_name == "Process Queue" and t.error is None for t in later)


def test_renamed_tag_renames_the_genre_of_every_scene_that_carries_it(world):
    scenes = _synced(world, "tagged", 10, tags=["Boat", "Sea"])
    other, other_rk = world.add_scene("untagged.mp4", title="Untagged")
    assert all(sorted(world.plex.item(rk)["genres"]) == ["Boat", "Sea"] for _, rk in scenes)
    before, puts = len(world.stash.task_runs), world.plex.count(method="PUT")
    tag = world.stash.data.ref("tag", "Boat")
    world.graphql(
        "mutation($input: TagUpdateInput!) { tagUpdate(input: $input) { id } }",
        {"input": {"id": str(tag), "name": "Ship"}},
    )
    assert world.stash.wait_idle(120)
    assert all(sorted(world.plex.item(rk)["genres"]) == ["Sea", "Ship"] for _, rk in scenes)
    assert world.plex.count(method="PUT") - puts == 10, "only the scenes carrying the tag are written"
    assert world.plex.item(other_rk)["title"] != "Untagged"
    _no_task_by_hand(world, before)


def test_renamed_studio_renames_the_studio_and_its_collection(world):
    world.apply(sync_collection=True)
    scenes = _synced(world, "studio", 8, studio="Old Harbor")
    before = len(world.stash.task_runs)
    studio = world.stash.data.ref("studio", "Old Harbor")
    world.graphql(
        "mutation($input: StudioUpdateInput!) { studioUpdate(input: $input) { id } }",
        {"input": {"id": str(studio), "name": "New Harbor"}},
    )
    assert world.stash.wait_idle(120)
    assert all(world.plex.item(rk)["studio"] == "New Harbor" for _, rk in scenes)
    assert all(world.plex.item(rk)["collections"] == ["New Harbor"] for _, rk in scenes)
    _no_task_by_hand(world, before)


def test_deleted_performer_leaves_the_actors_of_every_scene(world):
    scenes = _synced(world, "cast", 6, performers=["Ana Lima", "Bo Chen"])
    solo = _synced(world, "solo", 2, performers=["Bo Chen"])
    before, puts = len(world.stash.task_runs), world.plex.count(method="PUT")
    ana = world.stash.data.ref("performer", "Ana Lima")
    world.graphql(
        "mutation($input: PerformerDestroyInput!) { performerDestroy(input: $input) }",
        {"input": {"id": str(ana)}},
    )
    assert world.stash.wait_idle(120)
    assert all(world.plex.item(rk)["actors"] == ["Bo Chen"] for _, rk in scenes + solo)
    assert world.plex.count(method="PUT") - puts == 6, "scenes without the performer are not written"
    _no_task_by_hand(world, before)


def test_merged_tag_becomes_the_destination_genre(world):
    merged = _synced(world, "merged", 5, tags=["Sailboat"])
    kept = _synced(world, "kept", 3, tags=["Boat"])
    before = len(world.stash.task_runs)
    source, dest = world.stash.data.ref("tag", "Sailboat"), world.stash.data.ref("tag", "Boat")
    world.graphql(
        "mutation($input: TagsMergeInput!) { tagsMerge(input: $input) { id } }",
        {"input": {"source": [str(source)], "destination": str(dest)}},
    )
    assert world.stash.wait_idle(120)
    assert all(world.plex.item(rk)["genres"] == ["Boat"] for _, rk in merged + kept)
    _no_task_by_hand(world, before)


def test_renamed_group_renames_the_collection_of_its_scenes(world):
    world.apply(collections_from="groups")
    scenes = _synced(world, "series", 4, groups=["Summer Series"])
    assert all(world.plex.item(rk)["collections"] == ["Summer Series"] for _, rk in scenes)
    before = len(world.stash.task_runs)
    group = world.stash.data.ref("group", "Summer Series")
    world.graphql(
        "mutation($input: GroupUpdateInput!) { groupUpdate(input: $input) { id } }",
        {"input": {"id": str(group), "name": "Winter Series"}},
    )
    assert world.stash.wait_idle(120)
    assert all(world.plex.item(rk)["collections"] == ["Winter Series"] for _, rk in scenes)
    _no_task_by_hand(world, before)
