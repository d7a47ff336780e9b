"""16 hook processes at once, drains running, the DLQ being cleared: every scene accounted for.

Each of 16 threads saves its scenes one after another and runs the plugin's hook for each save
exactly as Stash does (the plugin's own command, the hook's stdin, a session cookie); the hooks
ask Stash for drains, which Stash's job queue runs as Process Queue tasks against the Plex
emulator. Until the last drain ends, a "Clear Dead Letter Queue" task runs again and again. One scene in five has
no file in Plex and dead-letters at its first attempt (`max_retries` = 1), so the clearing has
something to remove. At the end every scene is in exactly one place: synced into Plex, still
queued, in the DLQ, or removed by a clearing that said so.
"""

from __future__ import annotations

import threading
import time

import pytest

from emulators.stash.data import SCENE_UPDATE_INPUT_FIELDS
from emulators.world import start_world
from sync.queue import FileQueue
from tests.conftest import scaled
from tests.reliability import torture_summary

pytestmark = pytest.mark.torture

HOOKS = 16


def hook_args(scene_id: str, title: str) -> dict:
    full = {name: None for name in SCENE_UPDATE_INPUT_FIELDS}
    full.update(id=scene_id, title=title)
    return {
        "hookContext": {
            "id": int(scene_id),
            "type": "Scene.Update.Post",
            "input": full,
            "inputFields": ["id", "title"],
        }
    }


def test_sixteen_concurrent_hooks_while_draining_and_clearing_the_dlq_account_for_every_scene(plugin_dir):
    per_thread = scaled(5, 100)
    world = start_world(plugin_dir, recovery_rates="", max_retries=1)
    try:
        world.run_task("View Queue Status")  # a task has run once: the hook's settings cache exists
        scenes = {}  # scene id -> rating key (None: not in Plex)
        for n in range(HOOKS * per_thread):
            sid, rk = world.add_scene("c%05d.mp4" % n, in_plex=(n % 5 != 4), title="Before %d" % n)
            scenes[sid] = rk
        ids = sorted(scenes, key=int)
        runner = world.stash.runner
        hook_op = runner.hook_configs("Scene.Update.Post")[0]
        answers, cleared, clear_errors = [], [], []
        drains_done = threading.Event()

        def save_scenes(mine):
            for sid in mine:
                title = "After %s" % sid
                world.stash.update_scene(sid, title=title)  # the save; then Stash runs the hook
                run = runner.run(
                    hook_args(sid, title), world.stash.server_connection(), timeout=120, operation=hook_op
                )
                answers.append((sid, run.returncode, run.output, run.error))

        def clear_dlq():
            while not drains_done.is_set():
                run = runner.run({"mode": "clear_dlq"}, world.stash.server_connection(), timeout=120)
                if run.error or not isinstance(run.output, dict):
                    clear_errors.append(run.error or run.stdout)
                else:
                    cleared.append(run.output["cleared"])
                time.sleep(0.1)

        threads = [threading.Thread(target=save_scenes, args=(ids[i::HOOKS],)) for i in range(HOOKS)]
        clearer = threading.Thread(target=clear_dlq)
        clearer.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        idle = world.stash.wait_idle(600)
        drains_done.set()
        clearer.join()
        assert idle, "the drains did not finish"

        jobs = FileQueue(world.plugin_dir + "/data").jobs()
        by_scene = {}
        for job in jobs:
            by_scene.setdefault(job.scene_id, []).append(job)
        puts = {}
        for r in world.plex.requests:
            if r.method == "PUT" and r.query.get("id"):
                puts[r.query["id"]] = puts.get(r.query["id"], 0) + 1

        problems = []
        problems += [
            "hook for scene %s answered rc=%s %r %r" % a for a in answers if a[1] != 0 or a[2] != "queued"
        ]
        problems += [
            "scene %s is in %d places in the queue" % (s, len(v)) for s, v in by_scene.items() if len(v) > 1
        ]
        problems += [
            "scene %s is still in flight after every drain ended" % j.scene_id
            for j in jobs
            if j.state == "inflight"
        ]
        ghosts = [s for s, rk in scenes.items() if rk is None]
        for sid, rk in scenes.items():
            if rk is None:
                continue
            synced = world.plex.item(rk)["title"] == "After %s" % sid
            if not synced and sid not in by_scene:
                problems.append("scene %s is neither in Plex nor queued" % sid)
            if puts.get(str(rk), 0) > 1:
                problems.append("scene %s was written to Plex %d times for one change" % (sid, puts[str(rk)]))
        ghost_dead = sum(1 for s in ghosts if by_scene.get(s) and by_scene[s][0].state == "dead")
        ghost_queued = sum(1 for s in ghosts if by_scene.get(s) and by_scene[s][0].state != "dead")
        if ghost_dead + ghost_queued + sum(cleared) != len(ghosts):
            problems.append(
                "%d scenes without a Plex file: %d dead-lettered + %d queued + %d cleared from the DLQ"
                % (len(ghosts), ghost_dead, ghost_queued, sum(cleared))
            )
        drains = sum(1 for t in world.stash.task_runs if t.task_name == "Process Queue")
        torture_summary.record(
            "concurrency: %d hooks x %d scenes" % (HOOKS, per_thread),
            trials=len(answers),
            jobs=len(scenes),
            lost=len(problems),
            note="%d drains, %d DLQ clearings removed %d" % (drains, len(cleared), sum(cleared)),
        )
        assert not clear_errors, clear_errors[:3]
        assert not problems, "\n".join(problems[:15])

        # What a user sees afterwards: one more Process Queue leaves every scene with a file synced.
        world.run_task("Process Queue")
        assert all(world.plex.item(rk)["title"] == "After %s" % sid for sid, rk in scenes.items() if rk)
    finally:
        world.stop()
