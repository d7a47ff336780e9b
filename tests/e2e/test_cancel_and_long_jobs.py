"""Cancel costs nothing, and a long Stash job never collects a pile of "Process Queue" jobs.

As Stash runs it: Cancel is a SIGKILL of the Process Queue process; Stash runs one job at a time,
so a scan holds every drain request behind it. Deadlines only, no timing assertions.
"""

from __future__ import annotations

import json
import os
import time

from emulators.world import data_dir, wait_for
from sync.drain_marker import MARKER_NAME


def _backlog(world, count: int, prefix: str) -> list:
    world.apply(pause_sync=True)
    scenes = [world.add_scene("%s%03d.mp4" % (prefix, i)) for i in range(count)]
    for i, (sid, _rk) in enumerate(scenes):
        world.edit(sid, title="%s %03d" % (prefix, i))
    assert world.stash.wait_idle(120)
    world.configure(pause_sync=False)
    return scenes


def test_after_cancel_the_very_next_edit_resumes_syncing(world):
    scenes = _backlog(world, 60, "Cancelled")
    world.plex.set_fault("slow", delay=0.15)  # slow enough to catch the drain mid-batch
    job = world.stash.run_task("Process Queue")
    wait_for(lambda: world.plex.count(method="PUT") >= 3, what="the drain to sync a few scenes")
    assert world.stash.stop_job(job)  # Stash's Cancel: SIGKILL
    assert world.stash.wait_idle(60)
    assert world.stash.task_run(job).status == "cancelled"
    assert world.plex.count(method="PUT") < len(scenes), "the drain finished before it could be cancelled"
    world.plex.set_fault(None)

    extra, extra_rk = world.add_scene("one-more.mp4")
    world.edit(extra, title="One more")  # the marker still says "running", but nobody holds drain.lock
    assert world.stash.hook_runs[-1].output == "queued"
    deadline = time.monotonic() + 30
    for i, (_sid, rk) in enumerate(scenes):
        wait_for(
            lambda: world.plex.item(rk)["title"] == "Cancelled %03d" % i,
            timeout=max(0.1, deadline - time.monotonic()),
            what="every change after the next edit",
        )
    wait_for(
        lambda: world.plex.item(extra_rk)["title"] == "One more",
        timeout=max(0.1, deadline - time.monotonic()),
        what="the new edit",
    )
    drain = [t for t in world.stash.task_runs if t.task_name == "Process Queue"][-1]
    assert any("left in flight" in m for _, m in drain.logs), drain.logs


def _age_request(world) -> None:
    """Two minutes pass while a scan holds Stash's job queue: the drain request goes stale."""
    path = os.path.join(data_dir(world), MARKER_NAME)
    try:
        with open(path, "rb") as fh:
            marker = json.loads(fh.read())
    except FileNotFoundError:
        return
    if marker.get("state") == "requested":
        marker["at"] -= 121
        with open(path, "w") as fh:
            json.dump(marker, fh)


def test_a_long_stash_job_holding_the_queue_collects_at_most_one_process_queue(world):
    scenes = [world.add_scene("identify%03d.mp4" % i) for i in range(100)]
    world.stash.set_running_scan(True)  # a scan or an Identify: Stash runs one job at a time
    try:
        for i, (sid, _rk) in enumerate(scenes):
            _age_request(world)
            world.edit(sid, title="Identified %03d" % i)
        waiting = [
            t for t in world.stash.task_runs if t.task_name == "Process Queue" and t.status == "queued"
        ]
        assert len(waiting) <= 1, "%d Process Queue jobs wait behind the scan" % len(waiting)
        assert len(waiting) == 1, "no drain is waiting: the changes would wait for the next edit"
        queue = world.graphql("{ jobQueue { status description } }")["jobQueue"]
        assert [j["description"] for j in queue if j["status"] == "READY"] == [
            "Running plugin task: Process Queue"
        ]
    finally:
        world.stash.set_running_scan(False)
    assert world.stash.wait_idle(180)
    assert all(world.plex.item(rk)["title"] == "Identified %03d" % i for i, (_sid, rk) in enumerate(scenes))
