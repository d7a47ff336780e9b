"""A drain longer than Stash's session age hands over to fresh drains, and the user sees one drain.

Stash's session age is shortened to 16 s in the Stash emulator (1 h by default in real Stash), so
a drain hands over after 8 s: 300 changes at Plex's slowed pace take several Stash jobs."""

from __future__ import annotations

import os
import re

from emulators.world import data_dir, wait_for
from sync.queue import FileQueue
from worker.handover import RECORD_NAME

N = 300
SUMMARY = re.compile(r"^Process Queue: (\d+) synced, (\d+) unchanged, (\d+) skipped, (\d+) failed")


def _summaries(world) -> list:
    """Every Process Queue summary line in Stash's log (tasks and hooks alike)."""
    runs = list(world.stash.task_runs) + list(world.stash.hook_runs)
    return [m for run in runs for _level, m in run.logs if SUMMARY.match(m)]


def test_a_drain_longer_than_the_session_age_is_one_drain_without_a_401(world):
    world.stash.session_age = 16.0
    scenes = [world.add_scene("long%03d.mp4" % i, title="Long %d" % i) for i in range(N)]
    os.makedirs(data_dir(world), exist_ok=True)
    FileQueue(data_dir(world)).enqueue_many([sid for sid, _ in scenes], ["title"], source="test")
    # Every Plex request takes 0.05 s more: about 0.1 s a change, 30 s in all. A job hands over
    # after the first change that ends past 8 s, mid-batch (a batch, worker.drain.BATCH_SIZE, takes
    # about 10 s here): 4 jobs of about 80 changes, each done 8 s before its 16 s session expires.
    world.plex.set_fault("slow", delay=0.05)
    world.stash.run_task("Process Queue")
    assert world.stash.wait_idle(300)
    world.plex.set_fault(None)

    assert all(world.plex.item(rk)["title"] == "Long %d" % i for i, (_, rk) in enumerate(scenes))
    assert not [r for r in world.stash.requests if r.status == 401], "no request met an expired session"
    drains = [t for t in world.stash.task_runs if t.task_name == "Process Queue"]
    # At least 0.1 s a change (two requests of 0.05 s), so a job's 8 s hold at most 80 changes:
    # 4 jobs or more. Handing over only between batches of 100 would take 3.
    assert len(drains) >= 4, "a chain of hand-overs, each mid-batch: %r" % drains
    assert all(t.error is None for t in drains)
    assert all(t.output == {"handed_over": True, "part": n} for n, t in enumerate(drains[:-1], 1))
    last = drains[-1].output
    assert last["synced"] == N and last["parts"] == len(drains) and not last["handed_over"]

    # One summary, by the last job, for the whole drain: every change, timed from the first job.
    (summary,) = _summaries(world)
    assert SUMMARY.match(summary).groups() == (str(N), "0", "0", "0")
    assert summary in [m for _level, m in drains[-1].logs]
    # Timed from the first job's start: longer than everything after the first job ended (which
    # a time counted from any later job could not be), and never longer than all the jobs took
    # (0.01: the summary's seconds are rounded). Bounds, not a tolerance: any machine's speed.
    assert drains[-1].ended - drains[0].ended < last["seconds"] <= drains[-1].ended - drains[0].started + 0.01
    for earlier in drains[:-1]:
        said = [m for level, m in earlier.logs if level == "i"]
        assert any("continues in a fresh Stash job" in m for m in said), said

    # The progress bar goes on where the last job left it, and never back.
    bar = [p for t in drains for p in t.progress]
    assert bar == sorted(bar) and bar[-1] == 1.0
    for before, after in zip(drains, drains[1:]):
        assert after.progress[0] == before.progress[-1] > 0.0

    puts = [r for r in world.plex.requests if r.method == "PUT"]
    keys = [(re.match(r"^/library/metadata/(\d+)", r.path) or [None, r.query.get("id")])[1] for r in puts]
    assert len(keys) == len(set(keys)) == N, "nothing written twice"
    assert not os.path.exists(os.path.join(data_dir(world), RECORD_NAME)), "the hand-over record is gone"


def test_a_cancelled_continuation_leaves_nothing_for_the_next_drain_to_count(world):
    world.stash.session_age = 16.0
    scenes = [world.add_scene("cut%03d.mp4" % i, title="Cut %d" % i) for i in range(150)]
    os.makedirs(data_dir(world), exist_ok=True)
    FileQueue(data_dir(world)).enqueue_many([sid for sid, _ in scenes], ["title"], source="test")
    world.plex.set_fault("slow", delay=0.05)
    world.stash.run_task("Process Queue")

    def continuation():
        drains = [t for t in world.stash.task_runs if t.task_name == "Process Queue"]
        return len(drains) == 2 and drains[1].status == "running" and drains[1].progress and drains

    first, second = wait_for(continuation, timeout=120, what="the fresh drain to take over")
    assert world.stash.stop_job(second.id)  # Stash's Cancel: SIGKILL
    assert world.stash.wait_idle(60) and second.status == "cancelled"
    assert not os.path.exists(os.path.join(data_dir(world), RECORD_NAME)), "taken by the continuation"
    world.plex.set_fault(None)

    extra, extra_rk = world.add_scene("cut-more.mp4")
    world.edit(extra, title="One more")
    wait_for(lambda: world.stash.hook_runs[-1].done, what="the hook")
    assert world.stash.wait_idle(120)
    assert world.plex.item(extra_rk)["title"] == "One more"
    assert all(world.plex.item(rk)["title"] == "Cut %d" % i for i, (_, rk) in enumerate(scenes))

    # The next drain sums up what it did itself, not the first job's part of the cancelled drain.
    last = [t for t in world.stash.task_runs if t.task_name == "Process Queue"][-1]
    (summary,) = _summaries(world)
    assert summary in [m for _level, m in last.logs] and "Stash jobs" not in summary
    synced_here = sum(1 for _level, m in last.logs if m.startswith("Synced scene"))
    synced_first = sum(1 for _level, m in first.logs if m.startswith("Synced scene"))
    assert synced_first > 0 and last.output["parts"] == 1
    assert last.output["synced"] == synced_here <= 151 - synced_first
