"""A full disk or an unwritable data folder: a clear error, and the old files survive intact.

The disk fills up in a child process: a `sitecustomize.py` (on PYTHONPATH only) makes writes
into the data folder fail with ENOSPC once a byte budget is spent, after a short write, as a real
full disk does. Tests run as root here, so an unwritable folder is simulated with a data folder
path that is a file.
"""

from __future__ import annotations

import json
import os
import random
import sys

import pytest

from emulators.plugin_runner import PluginRunner
from emulators.world import start_world
from reconcile import schedule
from stashplugin import settings, task
from sync import breaker_file, drain_marker, sync_state
from sync.journal_map import JournalMap
from sync.queue import FileQueue
from sync.store import quarantined_files
from tests.conftest import scaled
from tests.reliability import torture_summary
from tests.reliability.inprocess import answer_problems
from worker import filtered, handover, health, matcher, outages, plex, plex_index, stats, watcher
from worker.plex_writer import PosterMemo

pytestmark = pytest.mark.torture

SITECUSTOMIZE = r'''
import errno, os
_spec = os.environ.get("PLEXSYNC_TEST_ENOSPC")
if _spec:
    _folder, _, _budget = _spec.rpartition(":")
    _folder = os.path.realpath(_folder)
    _left = [int(_budget)]
    _watched = set()
    _open, _write, _close = os.open, os.write, os.close

    def open(path, flags, mode=0o777, *, dir_fd=None):
        fd = _open(path, flags, mode, dir_fd=dir_fd)
        try:
            if os.path.realpath(os.fsdecode(path)).startswith(_folder) and flags & (os.O_WRONLY | os.O_RDWR):
                _watched.add(fd)
        except (TypeError, ValueError):
            pass
        return fd

    def write(fd, data):
        if fd in _watched:
            if _left[0] <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            data = bytes(data)[:_left[0]]  # a short write; the next one finds the disk full
            _left[0] -= len(data)
        return _write(fd, data)

    def close(fd):
        _watched.discard(fd)
        return _close(fd)

    os.open, os.write, os.close = open, write, close
'''

# Every data file but the queue (checked through FileQueue), named by the module that owns it
# (docs/ARCHITECTURE.md, "Data files"): whole JSON files, written atomically, and journals.
JSON_FILES = (
    breaker_file.FILE_NAME,
    stats.FILE_NAME,
    health.FILE_NAME,
    outages.FILE_NAME,
    handover.RECORD_NAME,
    filtered.FILE_NAME,
    watcher.RECORD_NAME,
    schedule.FILE_NAME,
    drain_marker.MARKER_NAME,
    settings.CACHE_NAME,
    task.EARLIER_FOLDERS_NAME,
    plex.IDENTITY_FILE,
)
JOURNALS = (sync_state.FILE_NAME, matcher.JOURNAL_NAME, plex_index.FILE_NAME, PosterMemo.FILE)


@pytest.fixture
def full_disk(tmp_path):
    """env for a child process whose writes into `folder` fail after `budget` bytes."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)

    def env(folder: str, budget: int) -> dict:
        return {"PYTHONPATH": str(site), "PLEXSYNC_TEST_ENOSPC": "%s:%d" % (folder, budget)}

    return env


def _hook(scene_id: str, title: str) -> dict:
    return {
        "hookContext": {
            "id": int(scene_id),
            "type": "Scene.Update.Post",
            "input": {"id": scene_id, "title": title},
            "inputFields": ["id", "title"],
        }
    }


def _snapshot(data_dir: str) -> dict:
    """Every data file's bytes (the queue's aside), by name."""
    out = {}
    for name in JSON_FILES + JOURNALS:
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            with open(path, "rb") as fh:
                out[name] = fh.read()
    return out


def _file_problems(data_dir: str, before: dict) -> list:
    problems = []
    now = _snapshot(data_dir)
    for name in JSON_FILES:
        if name in now:
            try:
                json.loads(now[name].decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                problems.append("%s was left unreadable: %r" % (name, now[name][:80]))
    for name in JOURNALS:
        if name in now:  # a torn last record is no damage: that write never returned
            damaged = []
            JournalMap(os.path.join(data_dir, name), on_corrupt=damaged.append).items()
            problems += ["%s was left damaged: %s" % (name, d) for d in damaged]
    for name in before:
        if not os.path.exists(os.path.join(data_dir, name)):
            problems.append("%s disappeared" % name)
    problems += ["%s was moved aside" % n for n in quarantined_files(data_dir)]
    problems += ["temp file %s left behind" % n for n in os.listdir(data_dir) if ".tmp-" in n]
    damaged = []
    FileQueue(data_dir, on_corrupt=damaged.append).jobs()
    problems += [str(d) for d in damaged]
    return problems


def test_full_disk_during_a_hook_keeps_the_queue_and_says_what_to_do(plugin_dir, full_disk):
    data_dir = os.path.join(plugin_dir, "data")
    os.makedirs(data_dir)
    with open(os.path.join(data_dir, "settings_cache.json"), "w") as fh:
        json.dump({"pause_sync": True}, fh)
    FileQueue(data_dir).enqueue("1", ["title"])
    conn = {"Scheme": "http", "Host": "127.0.0.1", "Port": 9, "PluginDir": plugin_dir}
    problems, trials = [], 0
    for budget in (0, 1, 7, 30, 60, 90):
        trials += 1
        runner = PluginRunner(plugin_dir, python=sys.executable, env=full_disk(data_dir, budget))
        run = runner.run(_hook("2", "t"), conn)
        queued = {j.scene_id for j in FileQueue(data_dir).jobs()}
        if run.output == "queued":
            if "2" not in queued:
                problems.append("budget %d: answered queued, but the change is not in the queue" % budget)
        elif not (
            run.returncode == 1 and run.error and "No space left" in run.error and data_dir in run.error
        ):
            problems.append("budget %d: unclear answer %r / %r" % (budget, run.output, run.error))
        problems += [
            "budget %d: %s" % (budget, p) for p in answer_problems(run.returncode, run.stdout, run.stderr)
        ]
        if "1" not in queued:
            problems.append("budget %d: the change queued before the disk filled up is gone" % budget)
        problems += ["budget %d: %s" % (budget, p) for p in _file_problems(data_dir, {})]
        # Space comes back: the next save is queued normally, the torn record of the failed one is cut.
        assert PluginRunner(plugin_dir, python=sys.executable).run(_hook("3", "t"), conn).output == "queued"
        os.remove(os.path.join(data_dir, "queue.jsonl"))  # back to one queued change for the next budget
        FileQueue(data_dir).enqueue("1", ["title"])
    torture_summary.record("disk full: hook", trials=trials, jobs=1, lost=len(problems))
    assert not problems, "\n".join(problems)


def test_full_disk_during_process_queue_keeps_every_file_and_every_change(plugin_dir, full_disk):
    world = start_world(plugin_dir, recovery_rates="")
    data_dir = os.path.join(plugin_dir, "data")
    rnd = random.Random(11)
    problems, trials, answers = [], scaled(6, 40), []
    try:
        scenes = dict(world.add_scene("full%02d.mp4" % n, title="Start %d" % n) for n in range(8))
        world.run_task("View Queue Status")
        for trial in range(trials):
            for sid in scenes:
                world.stash.update_scene(sid, title="Trial %d scene %s" % (trial, sid))
                FileQueue(data_dir).enqueue(sid, ["title"])
            before = _snapshot(data_dir)
            budget = rnd.choice((0, 10, 100, 400, 1500, 4000, 12000))
            runner = PluginRunner(plugin_dir, python=sys.executable, env=full_disk(data_dir, budget))
            run = runner.run({"mode": "process_queue"}, world.stash.server_connection(), timeout=120)
            answers.append(run.error or "ok")
            problems += [
                "trial %d: %s" % (trial, p) for p in answer_problems(run.returncode, run.stdout, run.stderr)
            ]
            if run.error and not ("No space left" in run.error and "free some disk space" in run.error):
                problems.append(
                    "trial %d: the error does not say the disk is full and what to do: %r"
                    % (trial, run.error)
                )
            problems += ["trial %d: %s" % (trial, p) for p in _file_problems(data_dir, before)]
            queued = {j.scene_id for j in FileQueue(data_dir).jobs()}
            for sid, rk in scenes.items():
                if world.plex.item(rk)["title"] != "Trial %d scene %s" % (trial, sid) and sid not in queued:
                    problems.append("trial %d: scene %s neither synced nor queued" % (trial, sid))
            # Space comes back, and the next drain (after the dead one's leases expire) syncs everything.
            queue = FileQueue(data_dir)
            for job in queue.jobs("inflight"):
                queue.release(job)
            run = world.run_task("Process Queue")
            if run.error:
                problems.append(
                    "trial %d: the drain after the disk was freed failed: %s" % (trial, run.error)
                )
            for sid, rk in scenes.items():
                if world.plex.item(rk)["title"] != "Trial %d scene %s" % (trial, sid):
                    problems.append("trial %d: scene %s was not synced once space came back" % (trial, sid))
    finally:
        world.stop()
    full = sum(1 for a in answers if a != "ok")
    torture_summary.record(
        "disk full: Process Queue",
        trials=trials,
        jobs=len(scenes),
        lost=len(problems),
        note="%d of %d drains hit the full disk" % (full, trials),
    )
    assert not problems, "\n".join(problems[:15])
    assert full > 0, "no drain ran out of space: the budgets are too large"


def test_data_folder_that_cannot_be_created_is_named_in_one_line(plugin_dir, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    world = start_world(plugin_dir, recovery_rates="", data_dir=str(blocker / "data"))
    try:
        sid, rk = world.add_scene("ro.mp4")
        status = world.run_task("View Queue Status")
        world.edit(sid, title="Nowhere to go")
        (hook,) = world.stash.hook_runs
    finally:
        world.stop()
    for error in (status.error, hook.error):
        assert error and "\n" not in error and str(blocker) in error, error
        assert "Data folder" in error, error
    assert hook.returncode == 1
    assert blocker.read_text() == "a file where the data folder should be"


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root writes into read-only folders; the folder-is-a-file test covers this case",
)
def test_read_only_data_folder_is_named_in_one_line(
    plugin_dir, tmp_path
):  # pragma: no cover - not run as root
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    world = start_world(plugin_dir, recovery_rates="", data_dir=str(readonly))
    try:
        sid, rk = world.add_scene("ro.mp4")
        world.run_task("View Queue Status")
        readonly.chmod(0o500)
        world.edit(sid, title="Read-only")
        (hook,) = world.stash.hook_runs
    finally:
        readonly.chmod(0o700)
        world.stop()
    assert hook.returncode == 1 and "\n" not in hook.error and str(readonly) in hook.error
