"""Scenes a Stash scan creates: left to reconciliation, unless the user asks Plex to scan them."""
from __future__ import annotations

from tests.world import STASH_PREFIX


def test_scan_created_scene_is_left_to_reconciliation_by_default(world):
    world.stash.create_scene_via_scan("%s/new/fresh.mp4" % STASH_PREFIX)
    assert world.stash.wait_idle(60)
    (hook,) = world.stash.hook_runs
    assert hook.output.startswith("ignored")
    assert world.stash.task_runs == [] and world.plex.scans == []


def test_new_scene_makes_plex_scan_its_folder_when_asked(world):
    world.apply(trigger_plex_scan=True, max_retries=3)
    world.plex.scan_hook = lambda section, path: world.plex.add_item(
        section, file="/media/movies/new/fresh.mp4", size=1000)
    world.stash.create_scene_via_scan("%s/new/fresh.mp4" % STASH_PREFIX, title="")
    assert world.stash.wait_idle(120)
    assert world.stash.hook_runs[-1].output == "queued"
    assert any(path and path.rstrip("/").endswith("/media/movies/new") for _, path in world.plex.scans)
