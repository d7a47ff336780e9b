"""Settings changed in Stash take effect although changing a setting runs no task: the hook keeps
every edit some setting could sync, and the drain decides with the settings it reads itself.

Each test changes a setting the way a user does (Stash's settings page: no task runs, the hook's
cached copy stays stale), then edits a scene and waits for Plex (a deadline, not a speed claim).
"""

from __future__ import annotations

import json
import os
import time

from emulators.world import data_dir, wait_for
from sync.drain_marker import MARKER_NAME
from sync.queue import FileQueue


def test_a_sync_field_switched_on_without_a_task_is_synced_from_the_next_edit(world):
    world.apply(sync_tags=False)  # a task ran: the hook's copy says tags are not synced
    sid, rk = world.add_scene("tags.mp4", title="Tagged")
    world.configure(sync_tags=True)  # switched on in Stash's settings page; no task runs
    world.edit(sid, tag_ids=[world.stash.add_tag("Harbour"), world.stash.add_tag("Night")])
    assert world.stash.hook_runs[-1].output == "queued"
    wait_for(
        lambda: sorted(world.plex.item(rk)["genres"]) == ["Harbour", "Night"],
        timeout=120,
        what="the tags to reach Plex",
    )


def test_a_field_switched_off_is_queued_but_nothing_is_sent(world):
    sid, rk = world.add_scene("off.mp4", title="Off")
    world.apply(sync_tags=False)
    world.plex.clear_log()
    world.edit(sid, tag_ids=[world.stash.add_tag("Hidden")])
    assert world.stash.wait_idle(120)
    assert world.plex.item(rk)["genres"] == [] and world.plex.requests == []
    assert FileQueue(data_dir(world)).summary().pending == 0


def _marker(world) -> dict:
    try:
        with open(os.path.join(data_dir(world), MARKER_NAME), "rb") as fh:
            return json.loads(fh.read())
    except FileNotFoundError:
        return {}


def test_pause_switched_off_without_a_task_resumes_sync_from_the_next_edit_after_a_minute(world):
    world.apply(pause_sync=True)  # the hook's copy says paused
    scenes = [world.add_scene("paused%d.mp4" % i) for i in range(3)]
    for i, (sid, _rk) in enumerate(scenes):
        world.edit(sid, title="Edited while paused %d" % i)
    assert world.stash.wait_idle(120)
    assert all(h.output == "queued" for h in world.stash.hook_runs)
    drains = [t for t in world.stash.task_runs if t.task_name == "Process Queue"]
    assert len(drains) == 1, "a paused drain is asked for at most once a minute"
    assert "paused" in drains[0].output["stopped"]
    assert _marker(world)["state"] == "paused"

    world.configure(pause_sync=False)  # switched off in Stash's settings page; no task runs
    marker = _marker(world)  # a minute passes (the marker's time, not the test's clock)
    marker["retry_at"] = time.time() - 1
    with open(os.path.join(data_dir(world), MARKER_NAME), "w") as fh:
        json.dump(marker, fh)
    other, other_rk = world.add_scene("after.mp4")
    world.edit(other, title="After the pause")
    for i, (_sid, rk) in enumerate(scenes):
        wait_for(
            lambda: world.plex.item(rk)["title"] == "Edited while paused %d" % i,
            timeout=120,
            what="the changes queued during the pause to reach Plex",
        )
    wait_for(
        lambda: world.plex.item(other_rk)["title"] == "After the pause", timeout=120, what="the new edit"
    )


def test_a_changed_data_folder_takes_the_changes_queued_in_the_old_one_along(world, tmp_path):
    world.run_task("View Queue Status")
    old = data_dir(world)
    new = str(tmp_path / "elsewhere")
    sid, rk = world.add_scene("moved.mp4")
    world.configure(data_dir=new)  # no task runs: hooks still queue into the old folder
    world.edit(sid, title="Queued in the old folder")
    assert world.stash.hook_runs[-1].output == "queued"
    assert world.stash.wait_idle(120)  # the drain it asked for is the next task: it notices
    assert world.plex.item(rk)["title"] == "Queued in the old folder"
    drain = [t for t in world.stash.task_runs if t.task_name == "Process Queue"][-1]
    assert any("moved 1 queued change(s) from the earlier folder" in m for _, m in drain.logs), drain.logs
    assert FileQueue(old).jobs() == [] and FileQueue(new).summary().pending == 0
    assert os.stat(new).st_mode & 0o777 == 0o700 or os.name == "nt"

    # A hook that still queued into the old folder after that task is caught by a later task.
    FileQueue(old).enqueue(sid, ["title"], source="Scene.Update.Post")
    world.stash.update_scene(sid, title="Straggler")
    world.run_task("View Queue Status")
    assert world.stash.wait_idle(120)
    assert world.plex.item(rk)["title"] == "Straggler"
    assert FileQueue(old).jobs() == []


def test_ask_plex_to_scan_switched_on_without_a_task_is_honoured_for_the_next_new_scene(world):
    from emulators.world import STASH_PREFIX

    world.apply(max_retries=3)  # the hook's copy says: do not ask Plex to scan new files
    world.configure(trigger_plex_scan=True)  # switched on in Stash's settings page; no task runs
    world.plex.scan_hook = lambda section, path: world.plex.add_item(
        section, file="/media/movies/fresh/new.mp4", size=1000
    )
    world.stash.create_scene_via_scan("%s/fresh/new.mp4" % STASH_PREFIX, title="")
    assert world.stash.hook_runs[-1].output == "queued"
    assert world.stash.wait_idle(120)
    assert any(path and path.rstrip("/").endswith("/media/movies/fresh") for _, path in world.plex.scans)
