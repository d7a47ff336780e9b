"""The drain under stress, as Stash runs it: Cancel (SIGKILL) mid-batch, a Stash that refuses to
queue the drain task, two drainers at once, and Plex asked to scan a new scene's folder.

Real processes over real HTTP against both emulators; no timing assertions (deadlines only).
"""

from __future__ import annotations

import os
import time

from emulators.plugin_runner import PluginRunner
from emulators.world import PLEX_PREFIX, data_dir, start_world, wait_for
from sync.drain_marker import drain_running
from sync.queue import FileQueue
from tests.e2e.test_tasks import assert_no_secrets
from tools.package import install


def puts_by_item(world) -> dict:
    out = {}
    for r in world.plex.requests:
        if r.method == "PUT":
            rk = str(r.query.get("id") or r.path.rsplit("/", 1)[-1])
            out[rk] = out.get(rk, 0) + 1
    return out


def queue_backlog(world, count: int, prefix: str) -> list:
    """`count` scenes edited while sync is paused: a backlog waiting for one drain."""
    world.apply(pause_sync=True)
    scenes = [world.add_scene("%s%02d.mp4" % (prefix, i)) for i in range(count)]
    for i, (sid, _rk) in enumerate(scenes):
        world.edit(sid, title="%s %02d" % (prefix, i))
    assert world.stash.wait_idle(120)
    assert all(h.output == "queued" for h in world.stash.hook_runs)
    world.configure(pause_sync=False)
    return scenes


def assert_all_synced_once(world, scenes, prefix: str) -> None:
    for i, (_sid, rk) in enumerate(scenes):
        assert world.plex.item(rk)["title"] == "%s %02d" % (prefix, i)
    status = world.run_task("View Queue Status").output["queue"]
    assert (
        status["pending"]
        == status["in_flight"]
        == status["waiting_for_retry"]
        == status["dead_lettered"]
        == 0
    )


def test_cancelling_the_drain_mid_batch_loses_nothing_and_a_rerun_finishes(world):
    scenes = queue_backlog(world, 30, "Cancelled")
    world.plex.set_fault("slow", delay=0.15)  # slow enough to catch the drain mid-batch
    job = world.stash.run_task("Process Queue")
    wait_for(lambda: world.plex.count(method="PUT") >= 3, what="the drain to sync a few scenes")
    assert world.stash.stop_job(job)  # Stash's Cancel: SIGKILL
    assert world.stash.wait_idle(60)
    killed = world.stash.task_run(job)
    assert killed.status == "cancelled"
    done_before = world.plex.count(method="PUT")
    assert done_before < 30, "the drain finished before it could be cancelled"
    world.plex.set_fault(None)

    rerun = world.run_task("Process Queue")
    assert rerun.error is None, rerun.error
    assert any("left in flight" in m for _, m in rerun.logs), rerun.logs
    assert_all_synced_once(world, scenes, "Cancelled")
    # An item may be written twice only if the kill landed between its PUT and its ack.
    assert sum(puts_by_item(world).values()) <= 31
    assert_no_secrets(world)


def test_one_drainer_at_a_time_a_second_exits_quietly(world):
    scenes = queue_backlog(world, 10, "Single")
    # Slow enough that the first drain still holds its lock (9 more changes, 1 s each) while the
    # second one starts and waits its DRAIN_LOCK_WAIT, even when a busy machine slows that start;
    # Plex is fast again as soon as the second has exited.
    world.plex.set_fault("slow", delay=1.0)
    job = world.stash.run_task("Process Queue")
    wait_for(lambda: world.plex.count(method="PUT") >= 1, what="the first drain to be under way")
    assert drain_running(data_dir(world))

    # A second drainer, started the way the background fallback starts one.
    second = PluginRunner(world.plugin_dir, env={"PYTHONPATH": None}).run(
        {"mode": "process_queue"}, world.stash.server_connection(), timeout=120
    )
    assert second.error is None and not second.timed_out
    assert second.output == {"skipped": "another drain is running"}
    assert any("Another PlexSync drain is running" in m for _, m in second.logs)
    world.plex.set_fault(None)

    assert world.stash.wait_idle(120)
    assert world.stash.task_run(job).error is None
    assert_all_synced_once(world, scenes, "Single")
    assert all(n == 1 for n in puts_by_item(world).values()), puts_by_item(world)


def test_a_refused_drain_task_falls_back_to_a_background_drain_that_does_not_hold_the_save(tmp_path):
    plugin_dir = install(str(tmp_path / "plugins" / "PlexSync"))
    manifest = os.path.join(plugin_dir, "PlexSync.yml")
    text = open(manifest, encoding="utf-8").read()
    # This Stash no longer knows a task called "Process Queue", so it refuses runPluginTask.
    assert "- name: Process Queue\n" in text
    open(manifest, "w", encoding="utf-8").write(
        text.replace("- name: Process Queue\n", "- name: Send Queue Now\n")
    )
    world = start_world(plugin_dir, recovery_rates="")
    try:
        sid, rk = world.add_scene("background.mp4")
        world.edit(sid, title="Synced in the background")
        (hook,) = world.stash.hook_runs
        assert hook.output == "queued" and hook.error is None
        assert not hook.run.timed_out and not hook.run.stdout_held_open
        assert not [t for t in world.stash.task_runs if t.task_name], "Stash was not supposed to run a task"

        wait_for(
            lambda: world.plex.item(rk)["title"] == "Synced in the background",
            timeout=120,
            what="the background drain to sync the scene",
        )
        wait_for(lambda: not drain_running(data_dir(world)), timeout=60, what="the background drain to end")
        log_file = os.path.join(data_dir(world), "plexsync.log")

        def logged() -> str:
            with open(log_file, encoding="utf-8") as fh:
                return fh.read()

        # The drain frees its lock before it logs its summary: wait for the line, not the lock.
        wait_for(lambda: "Process Queue: 1 synced" in logged(), timeout=30, what="the drain's summary")
        assert "Synced scene %s" % sid in logged()
        assert FileQueue(data_dir(world)).summary().pending == 0
        assert_no_secrets(world)  # the background drain's log file included
    finally:
        world.stop()


def test_new_scenes_not_yet_in_plex_ask_plex_to_scan_their_folder_once(world):
    world.apply(trigger_plex_scan=True, max_retries=10)
    names = ("fresh-a.mp4", "fresh-b.mp4")
    ids = [world.add_scene("new-folder/" + n, in_plex=False, title="Fresh %s" % n)[0] for n in names]
    folder = "%s/new-folder" % PLEX_PREFIX
    discovered = {}

    def scan(section_id, path):  # Plex finds the files when asked to scan their folder
        if path == folder and not discovered:
            for n in names:
                discovered[n] = world.plex.add_item(section_id, file="%s/%s" % (folder, n), size=1000)

    world.plex.scan_hook = scan
    queue = FileQueue(data_dir(world))
    for sid in ids:  # what the hook records for Scene.Create.Post when the new scene carries metadata
        queue.enqueue(sid, ["title"], source="Scene.Create.Post")
    first = world.run_task("Process Queue")
    # Not in Plex yet: retried, not dead-lettered (the second scene may already find its file:
    # the scan the first one asked for has added it by then).
    assert first.output["failed"] >= 1 and first.output["dead_lettered"] == 0
    assert world.plex.scans == [(world.section, folder)], "one scan per folder, not one per scene"
    assert any("asked Plex to scan" in m for _, m in first.logs), first.logs

    deadline = time.monotonic() + 120
    while any(world.plex.item(discovered[n])["title"] != "Fresh %s" % n for n in names):
        assert time.monotonic() < deadline, "the new scenes never reached Plex after the scan"
        time.sleep(0.5)
        world.run_task("View Queue Status")  # any invocation drains what has come due
    assert len(world.plex.scans) == 1, "a retry must not ask for the scan again"


def test_edits_of_scenes_missing_from_plex_never_trigger_a_scan(world):
    world.apply(trigger_plex_scan=True)
    sid, _ = world.add_scene("elsewhere/missing.mp4", in_plex=False)
    world.edit(sid, title="Only an update")
    assert world.stash.wait_idle(120)
    assert world.plex.scans == []
