"""A change saved in Stash reaches Plex with no button pressed, and the save waits only for the hook."""

from __future__ import annotations

import json
import os

from emulators.world import data_dir, wait_for


def _plex(world, rk):
    return world.plex.item(rk)


def test_saved_scene_reaches_plex_without_any_button(world):
    studio = world.stash.add_studio("Blue Harbor")
    sid, rk = world.add_scene("harbor.mp4")
    world.edit(
        sid,
        title="Harbor at dawn",
        details="Line one\nLine two",
        date="2021-06-01",
        studio_id=studio,
        tag_ids=[world.stash.add_tag("Boats"), world.stash.add_tag("Sea")],
        performer_ids=[world.stash.add_performer("Ana Lima")],
    )
    assert world.stash.wait_idle(120)
    item = _plex(world, rk)
    assert item["title"] == "Harbor at dawn"
    assert item["summary"] == "Line one\nLine two"
    assert item["studio"] == "Blue Harbor"
    assert item["originallyAvailableAt"] == "2021-06-01"
    assert sorted(item["genres"]) == ["Boats", "Sea"]
    assert item["actors"] == ["Ana Lima"]
    (hook,) = world.stash.hook_runs
    assert hook.output == "queued" and hook.returncode == 0
    (task,) = world.stash.task_runs
    assert task.task_name == "Process Queue" and task.error is None
    assert any("Synced scene %s" % sid in msg for _, msg in task.logs)


def test_title_only_edit_keeps_the_other_fields(world):
    sid, rk = world.add_scene("keep.mp4", title="Old", details="Kept details", tags=["Kept"])
    world.edit(sid, details="Kept details")
    assert world.stash.wait_idle(120)
    world.edit(sid, title="New")
    assert world.stash.wait_idle(120)
    item = _plex(world, rk)
    assert item["title"] == "New" and item["summary"] == "Kept details" and item["genres"] == ["Kept"]


def test_unchanged_scene_sends_no_put_to_plex(world):
    sid, rk = world.add_scene("same.mp4", title="Same")
    world.edit(sid, title="Same")
    assert world.stash.wait_idle(120)
    world.plex.clear_log()
    world.edit(sid, title="Same")
    assert world.stash.wait_idle(120)
    assert world.plex.count(method="PUT") == 0
    assert world.plex.count(method="POST") == 0
    assert world.stash.task_runs[-1].output["unchanged"] == 1


def test_bulk_edit_of_200_scenes_requests_one_drain_and_syncs_all(world):
    ids = [world.add_scene("bulk%03d.mp4" % i)[0] for i in range(200)]
    tag = world.stash.add_tag("Bulk")
    world.graphql(
        "mutation($input: BulkSceneUpdateInput!) { bulkSceneUpdate(input: $input) { id } }",
        {"input": {"ids": ids, "tag_ids": {"ids": [tag], "mode": "ADD"}}},
    )
    assert world.stash.wait_idle(300)
    assert len(world.stash.hook_runs) == 200
    drains = [t for t in world.stash.task_runs if t.task_name == "Process Queue"]
    assert 1 <= len(drains) <= 2, "a burst must not queue a drain per hook"
    rk = {it: world.plex.find_by_file("/media/movies/bulk%03d.mp4" % it) for it in range(200)}
    assert all(world.plex.item(rk[i])["genres"] == ["Bulk"] for i in range(200))


def test_deleted_scene_is_acknowledged_not_retried(world):
    sid, rk = world.add_scene("gone.mp4")
    world.stash.plugin_settings = dict(world.stash.plugin_settings, pause_sync=True)
    world.run_task("View Queue Status")  # tasks refresh the settings the hook reads
    world.edit(sid, title="Soon gone")
    assert world.stash.wait_idle(60)  # the drain that edit asked for found sync paused and ended
    world.stash.delete_scene(sid)
    world.stash.plugin_settings = dict(world.stash.plugin_settings, pause_sync=False)
    run = world.run_task("Process Queue")
    assert run.output["deleted"] == 1
    assert any("no longer exists in Stash" in m for _, m in run.logs)
    status = world.run_task("View Queue Status")
    assert status.output["queue"]["pending"] == 0 and status.output["queue"]["dead_lettered"] == 0


def test_wrong_plex_token_stops_the_drain_with_a_clear_error_and_keeps_the_change(world):
    sid, rk = world.add_scene("token.mp4")
    world.apply(plex_token="wrong-token-123")
    world.edit(sid, title="Needs token")
    assert world.stash.wait_idle(120)
    drain = [t for t in world.stash.task_runs if t.task_name == "Process Queue"][-1]
    assert "Plex token" in drain.error
    status = world.run_task("View Queue Status")
    assert status.output["queue"]["pending"] == 1
    world.configure(plex_token=world.plex.token)
    world.run_task("Process Queue")
    assert world.plex.item(rk)["title"] == "Needs token"


def test_unknown_library_name_stops_the_drain_naming_the_setting_and_keeps_the_change(world):
    sid, rk = world.add_scene("lib.mp4")
    world.apply(plex_libraries="Movies, Home Videos")
    world.edit(sid, title="Library check")
    assert world.stash.wait_idle(120)
    drain = [t for t in world.stash.task_runs if t.task_name == "Process Queue"][-1]
    assert "Plex libraries" in drain.error and "Home Videos" in drain.error
    status = world.run_task("View Queue Status")
    assert status.output["queue"]["pending"] == 1 and status.output["queue"]["dead_lettered"] == 0
    world.configure(plex_libraries="Movies")
    world.run_task("Process Queue")
    assert world.plex.item(rk)["title"] == "Library check"


# -- a hiccup of Plex ------------------------------------------------------------------------


def test_a_change_plex_refused_once_arrives_without_another_edit(world):
    sid, rk = world.add_scene("hiccup.mp4")
    world.plex.fail_next(1, status=500, method="PUT")
    world.edit(sid, title="After one refusal")
    assert world.stash.wait_idle(120)
    assert _plex(world, rk)["title"] == "After one refusal"
    (task,) = world.stash.task_runs  # the drain waited for the retry itself: nobody ran anything
    assert task.output["synced"] == 1 and task.output["failed"] == 1
    assert any("will be retried" in m for _, m in task.logs)


def test_a_connection_refused_once_is_tried_again_by_the_same_drain(world):
    world.apply(breaker_threshold=5)
    sid, rk = world.add_scene("refused.mp4")
    breaker_file = os.path.join(data_dir(world), "circuit_breaker.json")

    def failures():
        try:
            with open(breaker_file) as fh:
                return json.load(fh).get("failure_count", 0)
        except (OSError, ValueError):
            return 0

    world.plex.set_fault("down")
    world.edit(sid, title="Through a refused connection")
    wait_for(lambda: failures() >= 1, timeout=120, what="the drain to find Plex refusing connections")
    world.plex.set_fault(None)
    assert world.stash.wait_idle(120)
    assert _plex(world, rk)["title"] == "Through a refused connection"
    drains = [t for t in world.stash.task_runs if t.task_name == "Process Queue"]
    assert len(drains) == 1 and drains[0].error is None
    assert drains[0].output["synced"] == 1
