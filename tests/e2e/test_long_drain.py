"""A drain longer than Stash's session age hands over to a fresh drain and never meets a 401.

Stash's session age is shortened to 12 s in the Stash emulator (1 h by default in real Stash)."""

from __future__ import annotations

import os
import re

from sync.queue import FileQueue
from tests.world import data_dir

N = 120


def test_a_drain_longer_than_the_session_age_finishes_without_a_401(world):
    world.stash.session_age = 12.0
    scenes = [world.add_scene("long%03d.mp4" % i, title="Long %d" % i) for i in range(N)]
    os.makedirs(data_dir(world), exist_ok=True)
    FileQueue(data_dir(world)).enqueue_many([sid for sid, _ in scenes], ["title"], source="test")
    world.plex.set_fault("slow", delay=0.05)  # about 0.15 s a change: 18 s in all
    world.stash.run_task("Process Queue")
    assert world.stash.wait_idle(240)
    world.plex.set_fault(None)
    assert all(world.plex.item(rk)["title"] == "Long %d" % i for i, (_, rk) in enumerate(scenes))
    assert not [r for r in world.stash.requests if r.status == 401], "no request met an expired session"
    drains = [t for t in world.stash.task_runs if t.task_name == "Process Queue"]
    assert len(drains) >= 2 and all(t.error is None for t in drains)
    assert all(t.output["handed_over"] for t in drains[:-1]) and not drains[-1].output["handed_over"]
    assert sum(t.output["synced"] for t in drains) == N
    puts = [r for r in world.plex.requests if r.method == "PUT"]
    keys = [(re.match(r"^/library/metadata/(\d+)", r.path) or [None, r.query.get("id")])[1] for r in puts]
    assert len(keys) == len(set(keys)) == N, "nothing written twice"
    assert any("a fresh drain continues" in m for _, m in drains[0].logs)
