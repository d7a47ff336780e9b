"""Every event real Stash reports reaches Plex with no task run by hand: the shapes of hookContext
Stash really sends, and renames, deletions and merges of tags, performers, studios and groups."""
from __future__ import annotations


def _titles(world, rks):
    return [world.plex.item(rk)["title"] for rk in rks]


def test_scene_filename_parser_save_of_ten_scenes_reaches_plex(world):
    """scenesUpdate passes the whole list as every scene's hookContext.input (real Stash)."""
    scenes = [world.add_scene("parser%02d.mp4" % i) for i in range(10)]
    world.graphql("mutation($input: [SceneUpdateInput!]!) { scenesUpdate(input: $input) { id } }",
                  {"input": [{"id": sid, "title": "Parsed %d" % i} for i, (sid, _) in enumerate(scenes)]})
    assert world.stash.wait_idle(120)
    assert all(isinstance(h.input, list) and len(h.input) == 10 for h in world.stash.hook_runs)
    assert all(h.output == "queued" for h in world.stash.hook_runs)
    assert _titles(world, [rk for _, rk in scenes]) == ["Parsed %d" % i for i in range(10)]
    assert all(t.task_name == "Process Queue" for t in world.stash.task_runs)
