"""Reconciliation as Stash runs it: the Reconcile tasks from PlexSync.yml, the preview, and the
automatic reconciliation that a due schedule starts from any invocation and a drain carries out.

Scenes change behind PlexSync's back through the emulators' Python helpers (no hook runs), as a
bulk import, a plugin switched off, or a Plex restore would.
"""

from __future__ import annotations

import os

import yaml

from sync.queue import FileQueue
from sync.store import read_json_quiet


def data_dir(world) -> str:
    return os.path.join(world.plugin_dir, "data")


def record(world) -> dict:
    return read_json_quiet(os.path.join(data_dir(world), "reconcile.json"))


def drains(world) -> list:
    return [t for t in world.stash.task_runs if t.task_name == "Process Queue"]


def synced_library(world, n: int = 3) -> list:
    """`n` scenes with metadata, synced through Sync All and the drain it starts: [(sid, rk)]."""
    studio = world.stash.add_studio("Blue Harbor")
    scenes = [
        world.add_scene(
            "clip%d.mp4" % i, title="Clip %d" % i, details="About clip %d" % i, studio=studio, tags=["Boats"]
        )
        for i in range(n)
    ]
    run = world.run_task("Sync All")
    assert run.error is None and run.output["enqueued"] == n
    assert world.stash.wait_idle(120)
    assert all(world.plex.item(rk)["title"] == "Clip %d" % i for i, (_, rk) in enumerate(scenes))
    return scenes


def test_every_reconcile_task_is_in_the_manifest_with_a_description(world):
    with open(os.path.join(world.plugin_dir, "PlexSync.yml"), encoding="utf-8") as fh:
        manifest = yaml.safe_load(fh)
    tasks = {t["name"]: t for t in manifest["tasks"]}
    for name in (
        "Reconcile Now",
        "Reconcile Library (Recent — 24 h)",
        "Reconcile Library (Last 7 Days)",
        "Reconcile Missing Metadata Only",
        "Reconcile (Preview)",
        "Sync All",
        "Sync Recent",
    ):
        assert len(tasks[name]["description"]) > 40, name
    assert tasks["Reconcile (Preview)"]["defaultArgs"]["dry_run"] in (True, "true")
    for name in ("reconcile_interval", "reconcile_scope"):
        assert name in manifest["settings"]


def test_reconcile_now_queues_the_gaps_and_the_drain_it_starts_fixes_them(world):
    (a, a_rk), (b, b_rk), (c, c_rk) = synced_library(world)
    world.stash.update_scene(a, title="Renamed in a bulk import")
    world.plex.update_item(b_rk, title="clip1", summary="", studio=None, genres=[])
    world.stash.clear_records()

    run = world.run_task("Reconcile Now")

    assert run.error is None, run.error
    assert run.output["gaps"] == {"stale": 1, "empty_in_plex": 1, "missing_from_plex": 0, "drift": 0}
    assert run.output["enqueued"] == 2
    assert any("Reconcile (all scenes)" in msg and "queued 2" in msg for _, msg in run.logs)
    assert run.progress and run.progress[-1] == 1.0
    assert world.stash.wait_idle(120)
    assert world.plex.item(a_rk)["title"] == "Renamed in a bulk import"
    assert world.plex.item(b_rk)["summary"] == "About clip 1" and world.plex.item(b_rk)["genres"] == ["Boats"]
    status = world.run_task("View Queue Status")
    assert any("Last reconciliation" in msg and "2 gap(s) found" in msg for _, msg in status.logs)


def test_preview_queues_nothing_and_logs_changes_field_by_field(world):
    (a, a_rk), _, _ = synced_library(world)
    world.stash.update_scene(a, title="New name")
    before = len(drains(world))

    run = world.run_task("Reconcile (Preview)")

    assert run.error is None and run.output["dry_run"] is True
    assert run.output["would_enqueue"] == 1 and run.output["enqueued"] == 0
    assert any('title "Clip 0" -> "New name"' in msg for _, msg in run.logs)
    assert FileQueue(data_dir(world)).jobs() == []
    assert world.stash.wait_idle(60) and len(drains(world)) == before
    assert world.plex.item(a_rk)["title"] == "Clip 0"


def test_missing_metadata_only_leaves_scenes_that_only_changed_in_stash(world):
    (a, a_rk), (b, b_rk), _ = synced_library(world)
    world.stash.update_scene(a, title="Changed")
    world.plex.update_item(b_rk, summary="")
    run = world.run_task("Reconcile Missing Metadata Only")
    assert run.output["gaps"] == {"empty_in_plex": 1} and run.output["enqueued"] == 1
    assert world.stash.wait_idle(120)
    assert world.plex.item(b_rk)["summary"] == "About clip 1"
    assert world.plex.item(a_rk)["title"] == "Clip 0"


def test_due_auto_reconcile_runs_in_a_drain_started_by_any_invocation(world):
    (a, a_rk), _, _ = synced_library(world)
    world.stash.update_scene(a, title="Changed while PlexSync was off")
    world.configure(reconcile_interval="daily")
    before = len(drains(world))

    world.run_task("View Queue Status")  # any invocation notices the due reconciliation
    assert world.stash.wait_idle(120)

    new = drains(world)[before:]
    assert len(new) == 1
    assert any("Automatic reconciliation is due" in msg for _, msg in new[0].logs)
    assert world.plex.item(a_rk)["title"] == "Changed while PlexSync was off"
    assert record(world)["trigger"] == "auto" and record(world)["gaps"]["stale"] == 1


def test_reconciliation_is_on_by_default_daily_for_recent_scenes_and_empty_or_missing_items(world):
    (a, a_rk), (b, b_rk), _ = synced_library(world)
    world.stash.update_scene(a, title="Changed while PlexSync was off")
    world.plex.update_item(b_rk, title="clip1", summary="", studio=None, genres=[])
    settings = dict(world.stash.plugin_settings)
    settings.pop("reconcile_interval", None)  # what a user who never opened the settings has
    settings.pop("reconcile_scope", None)
    world.stash.plugin_settings = settings
    before = len(drains(world))

    world.run_task("View Queue Status")
    assert world.stash.wait_idle(120)

    new = drains(world)[before:]
    assert len(new) == 1
    assert any("'Reconcile automatically': daily" in msg for _, msg in new[0].logs)
    assert record(world)["scope"] == "7d+" and record(world)["trigger"] == "auto"
    assert world.plex.item(a_rk)["title"] == "Changed while PlexSync was off"
    assert world.plex.item(b_rk)["summary"] == "About clip 1"


def test_auto_reconcile_is_not_run_by_the_hook_nor_again_before_it_is_due(world):
    (a, a_rk), (b, b_rk), _ = synced_library(world)
    world.apply(reconcile_interval="hourly")
    assert world.stash.wait_idle(120)
    first = record(world)["last_run_at"]
    world.stash.update_scene(b, title="Changed behind PlexSync's back")
    before = len(drains(world))

    world.edit(a, title="Edited in Stash")  # the hook queues and asks for a drain
    assert world.stash.wait_idle(120)

    (hook,) = [h for h in world.stash.hook_runs if h.scene_id == str(a)]
    assert hook.output == "queued"
    assert not any("econcil" in msg for _, msg in hook.logs)
    new = drains(world)[before:]
    assert new and not any("econcil" in msg for run in new for _, msg in run.logs)
    assert record(world)["last_run_at"] == first
    assert world.plex.item(a_rk)["title"] == "Edited in Stash"
    assert world.plex.item(b_rk)["title"] == "Clip 1", "not due: the change behind PlexSync's back waits"


def test_with_reconcile_interval_never_no_invocation_starts_a_reconciliation(world):
    synced_library(world)
    before = len(drains(world))
    world.run_task("View Queue Status")
    world.run_task("Health Check")
    assert world.stash.wait_idle(60)
    assert len(drains(world)) == before
    assert record(world) == {}


def test_an_invalid_reconcile_setting_fails_the_task_with_a_clear_message(world):
    world.configure(reconcile_interval="monthly")
    run = world.run_task("Reconcile Now")
    assert "Reconcile automatically" in run.error and "never, hourly, daily or weekly" in run.error
