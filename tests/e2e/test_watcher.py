"""Nobody at the keyboard: a drain that stops with work left comes back by itself (the watcher).

No edit, no task and no other Stash activity after the outage: only the watcher a stopped drain
leaves behind can bring the changes to Plex."""

from __future__ import annotations

import os
import re
import time

import pytest

from emulators.world import data_dir, wait_for
from sync.queue import FileQueue
from tests.conftest import scaled
from worker.watcher import LOCK_NAME, RECORD_NAME


def _queue_titles(world, n, prefix):
    scenes = [world.add_scene("%s%03d.mp4" % (prefix, i), title="%s %d" % (prefix, i)) for i in range(n)]
    os.makedirs(data_dir(world), exist_ok=True)
    FileQueue(data_dir(world)).enqueue_many([sid for sid, _ in scenes], ["title"], source="test")
    return scenes


def _puts_per_item(world) -> dict:
    counts = {}
    for r in world.plex.requests:
        if r.method != "PUT":
            continue
        m = re.match(r"^/library/metadata/(\d+)", r.path)
        key = m.group(1) if m else r.query.get("id")
        counts[key] = counts.get(key, 0) + 1
    return counts


def _watcher_alive(world) -> bool:
    from sync.lock import FileLock

    lock = FileLock(os.path.join(data_dir(world), LOCK_NAME))
    if lock.acquire(timeout=0):
        lock.release()
        return False
    return True


def _all_arrived(world, scenes, prefix):
    return all(world.plex.item(rk)["title"] == "%s %d" % (prefix, i) for i, (_, rk) in enumerate(scenes))


def test_plex_down_10s_in_a_300_change_drain_everything_arrives_by_itself(world):
    scenes = _queue_titles(world, 300, "Blip")
    world.stash.run_task("Process Queue")
    wait_for(lambda: world.plex.count(method="PUT") >= 60, timeout=120, what="the drain to be under way")
    world.plex.set_fault("down")
    time.sleep(10)
    world.plex.set_fault(None)
    wait_for(lambda: _all_arrived(world, scenes, "Blip"), timeout=60, what="all 300 changes in Plex")
    puts = _puts_per_item(world)
    assert sorted(puts) == sorted(str(rk) for _, rk in scenes) and set(puts.values()) == {1}, (
        "no duplicate writes"
    )
    assert all(t.task_name == "Process Queue" for t in world.stash.task_runs)
    assert len(world.stash.task_runs) >= 2, "the watcher asked Stash for the drain that finished the work"
    assert world.stash.wait_idle(60)
    wait_for(lambda: not _watcher_alive(world), timeout=30, what="the watcher to exit")
    assert not os.path.exists(os.path.join(data_dir(world), RECORD_NAME))
    status = world.run_task("View Queue Status")
    assert status.output["queue"]["pending"] == 0 and status.output["watcher"] is None


@pytest.mark.torture
def test_a_long_outage_sends_plex_only_probes_and_everything_arrives_after_it(world):
    """A long outage (10 minutes in `make torture`, 15 s in `make test`) with no Stash activity,
    longer than Stash's session age (shortened to 8 s here): the watcher keeps its session alive."""
    outage = scaled(15, 600)
    world.apply(breaker_threshold=1)
    world.stash.session_age = 8.0
    scenes = _queue_titles(world, 40, "Long")
    world.plex.set_fault("503")
    world.stash.run_task("Process Queue")
    wait_for(lambda: _watcher_alive(world), timeout=60, what="the stopped drain to leave a watcher")
    assert world.stash.wait_idle(60)
    status = world.run_task("View Queue Status")
    assert status.output["watcher"]["waiting"] is True
    assert any("Watcher: waiting" in m for _, m in status.logs)
    world.plex.clear_log()
    tasks_before = len(world.stash.task_runs)
    time.sleep(outage)
    during = world.plex.requests
    world.plex.set_fault(None)
    assert during, "the watcher probes Plex while it is down"
    assert {(r.method, r.path) for r in during} == {("GET", "/identity")}, "only probes reach Plex"
    assert len(world.stash.task_runs) == tasks_before, "no drain is asked for while Plex is down"
    wait_for(lambda: _all_arrived(world, scenes, "Long"), timeout=90, what="every change after the outage")
    assert world.stash.wait_idle(60)
    wait_for(lambda: not _watcher_alive(world), timeout=30, what="the watcher to exit")


def test_the_watcher_is_started_once_and_leaves_nothing_behind_when_the_queue_empties(world):
    world.apply(breaker_threshold=1)
    _queue_titles(world, 5, "Once")
    world.plex.set_fault("down")
    for _ in range(3):  # three drains stop with work left while one watcher waits
        world.run_task("Process Queue")
    wait_for(lambda: _watcher_alive(world), timeout=30, what="a watcher")
    if os.path.isdir("/proc"):
        assert len(_watcher_pids(world)) == 1, "never two watchers"
    FileQueue(data_dir(world)).clear_pending()  # the user cleared the queue: nothing is left to watch for
    wait_for(lambda: not _watcher_alive(world), timeout=30, what="the watcher to exit on an empty queue")
    world.plex.set_fault(None)
    # The watcher frees its lock just before its process ends: wait for the process, not the lock.
    wait_for(lambda: not _watcher_pids(world), timeout=30, what="the watcher's process to end")


def _watcher_pids(world) -> list:
    """Live (not zombie) watcher processes of this test's plugin: they run in a session of their
    own with stdout on the null device (POSIX /proc; empty elsewhere)."""
    if not os.path.isdir("/proc"):
        return []
    script = os.path.join(world.plugin_dir, "plexsync.py").encode()
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                cmd = fh.read()
            with open("/proc/%s/stat" % pid) as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if script in cmd and state != "Z" and _is_watcher(pid):
            found.append(pid)
    return found


def _is_watcher(pid: str) -> bool:
    try:
        return os.path.realpath("/proc/%s/fd/1" % pid) == os.devnull and os.getsid(int(pid)) == int(pid)
    except OSError:
        return False
