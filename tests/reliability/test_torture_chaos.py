"""Plex goes down, answers 503, crawls, loads its database and comes back, over and over, while
scenes are edited in Stash: once Plex is up for good, every Plex item equals Stash's data.

Edits go through the Stash emulator's `sceneUpdate`, so the plugin's hook runs as in real life
and drains are requested through Stash's job queue. At the end the test does what a user would:
waits for Plex to be noticed as back, runs Process Queue when changes are waiting for a retry,
and runs Recover Outage Jobs once. Every failure in this run was caused by the outage, so no
change may be left in the dead-letter queue.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time

import pytest

from emulators.world import start_world
from sync.queue import FileQueue
from tests.conftest import scaled
from tests.reliability import torture_summary

pytestmark = pytest.mark.torture

MODES = ("down", "503", "slow", "db_loading", "up")
SLOW_SECONDS = 2.5  # longer than the read timeout below: a slow Plex times out


def _expected(scene: dict) -> dict:
    studio = scene.get("studio") or {}
    return {
        "title": scene["title"],
        "summary": scene["details"],
        "studio": studio.get("name") or None,
        "originallyAvailableAt": scene["date"] or None,
        "genres": sorted(t["name"] for t in scene["tags"]),
        "actors": sorted(p["name"] for p in scene["performers"]),
    }


def _actual(item: dict) -> dict:
    return {
        "title": item["title"],
        "summary": item["summary"],
        "studio": item["studio"] or None,
        "originallyAvailableAt": item["originallyAvailableAt"] or None,
        "genres": sorted(item["genres"]),
        "actors": sorted(item["actors"]),
    }


def _cycle_faults(plex, stop: threading.Event, rnd: random.Random, phases: list) -> None:
    while not stop.is_set():
        mode = rnd.choice(MODES)
        plex.set_fault(mode, delay=SLOW_SECONDS if mode == "slow" else 0.0)
        phases.append(mode)
        stop.wait(rnd.uniform(0.4, 2.0))
    plex.set_fault("up")


def _random_edit(world, rnd: random.Random, n: int, pools: dict) -> dict:
    fields = {"title": "Take %d — “%s” ✓" % (n, rnd.choice(("Harbor", "京都", "Désert", "Forest")))}
    if rnd.random() < 0.6:
        fields["details"] = rnd.choice(("", "Line one\nLine two", "Zero‍width 👩‍👩‍👧 family", "שלום world"))
    if rnd.random() < 0.5:
        fields["date"] = "20%02d-%02d-%02d" % (rnd.randint(0, 24), rnd.randint(1, 12), rnd.randint(1, 28))
    if rnd.random() < 0.5:
        fields["studio_id"] = rnd.choice(pools["studio"] + [None])
    if rnd.random() < 0.5:
        fields["tag_ids"] = rnd.sample(pools["tag"], rnd.randint(0, 3))
    if rnd.random() < 0.5:
        fields["performer_ids"] = rnd.sample(pools["performer"], rnd.randint(0, 2))
    return fields


def _settle(world, data_dir: str, deadline: float) -> int:
    """Run Process Queue whenever something is due, as a user would, until nothing waits. Returns runs."""
    runs = 0
    while time.time() < deadline:
        summary = FileQueue(data_dir).summary()
        if summary.pending + summary.waiting + summary.inflight == 0:
            return runs
        now = time.time()
        wake = now
        if not summary.pending and summary.next_due_at:
            wake = max(wake, summary.next_due_at)
        try:
            with open(os.path.join(data_dir, "circuit_breaker.json")) as fh:
                breaker = json.load(fh)
        except (OSError, ValueError):
            breaker = {}
        if breaker.get("state") in ("open", "half_open") and isinstance(
            breaker.get("next_probe_at"), (int, float)
        ):
            wake = max(wake, breaker["next_probe_at"])
        time.sleep(min(max(0.0, wake - now) + 0.2, max(0.0, deadline - time.time())))
        world.run_task("Process Queue", timeout=300)
        runs += 1
    return runs


def test_plex_cycling_down_503_slow_and_loading_ends_with_every_item_equal_to_stash(plugin_dir):
    rnd = random.Random(4242)
    count = scaled(6, 30)
    world = start_world(
        plugin_dir, recovery_rates="", breaker_open_seconds=1, connect_timeout=1, read_timeout=2
    )
    data_dir = os.path.join(world.plugin_dir, "data")
    try:
        pools = {
            kind: [world.named(kind, "%s %d" % (kind.title(), i)) for i in range(4)]
            for kind in ("studio", "tag", "performer")
        }
        scenes = {}
        for n in range(count):
            sid, rk = world.add_scene("chaos%03d.mp4" % n, title="Start %d" % n)
            scenes[sid] = rk
        world.run_task("View Queue Status")  # settings reach the hook's cache, as after any task

        stop, phases = threading.Event(), []
        chaos = threading.Thread(target=_cycle_faults, args=(world.plex, stop, random.Random(7), phases))
        chaos.start()
        edits, ends = 0, time.time() + scaled(10, 90)
        try:
            while time.time() < ends:
                sid = rnd.choice(sorted(scenes))
                world.edit(sid, **_random_edit(world, rnd, edits, pools))
                edits += 1
                time.sleep(rnd.uniform(0.0, 0.3))
        finally:
            stop.set()
            chaos.join()
        assert world.plex.fault is None
        assert world.stash.wait_idle(300)

        deadline = time.time() + scaled(150, 600)
        runs = _settle(world, data_dir, deadline)
        recovered = world.run_task("Recover Outage Jobs").output or {}
        runs += _settle(world, data_dir, deadline)

        left = FileQueue(data_dir).jobs()
        dead = [j for j in left if j.state == "dead"]
        waiting = [j for j in left if j.state != "dead"]
        different = []
        for sid, rk in sorted(scenes.items()):
            want, got = _expected(world.stash.scene(sid)), _actual(world.plex.item(rk))
            if want != got:
                different.append("scene %s: Stash %r, Plex %r" % (sid, want, got))
        hooks_failed = [h for h in world.stash.hook_runs if h.returncode != 0]
        torture_summary.record(
            "chaos: Plex %s" % "/".join(MODES),
            trials=edits,
            jobs=count,
            lost=len(different) + len(waiting),
            corrupt=len(dead),
            note="%d fault phases, %d Process Queue runs by hand, %d recovered from the DLQ"
            % (len(phases), runs, recovered.get("recovered", 0)),
        )
        assert not hooks_failed, hooks_failed[:3]
        assert not dead, "dead-lettered by an outage: %s" % [
            (j.scene_id, j.error_class, j.error_message) for j in dead
        ]
        assert not waiting, "still queued after Plex came back: %s" % waiting
        assert not different, "\n".join(different)
    finally:
        world.stop()
