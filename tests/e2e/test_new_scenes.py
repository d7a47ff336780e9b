"""Scenes a Stash scan creates: left to reconciliation, unless the user asks Plex to scan them."""

from __future__ import annotations

from emulators.world import STASH_PREFIX


def test_scan_created_scene_is_left_to_reconciliation_by_default(world):
    world.stash.create_scene_via_scan("%s/new/fresh.mp4" % STASH_PREFIX)
    assert world.stash.wait_idle(60)
    (hook,) = world.stash.hook_runs
    assert hook.output == "queued"  # the drain decides, with the settings it reads itself
    assert world.plex.scans == [] and world.plex.count(method="PUT") == 0
    status = world.run_task("View Queue Status").output["queue"]
    assert status["pending"] == status["in_flight"] == status["dead_lettered"] == 0


def test_new_scene_makes_plex_scan_its_folder_when_asked(world):
    world.apply(trigger_plex_scan=True, max_retries=3)
    world.plex.scan_hook = lambda section, path: world.plex.add_item(
        section, file="/media/movies/new/fresh.mp4", size=1000
    )
    world.stash.create_scene_via_scan("%s/new/fresh.mp4" % STASH_PREFIX, title="")
    assert world.stash.wait_idle(120)
    assert world.stash.hook_runs[-1].output == "queued"
    assert any(path and path.rstrip("/").endswith("/media/movies/new") for _, path in world.plex.scans)
