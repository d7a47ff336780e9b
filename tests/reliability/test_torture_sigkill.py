"""SIGKILL at random points of every queue step and every state-file write: nothing acknowledged is
lost, every file still parses, no job is in two places.

Half the trials are killed from outside after a random delay; the other half kill themselves at
a random file-system call (see torture_worker.py), which lands kills inside enqueue, lease, ack,
nack, dead-letter, compaction and the atomic writes of the JSON state files, including torn
writes. After every kill the parent reads everything back the way the next process would.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from sync.jobs import DEAD
from sync.queue import FileQueue
from sync.store import JsonFile, quarantined_files
from tests.conftest import child_env, scaled
from tests.reliability import torture_summary

pytestmark = [
    pytest.mark.torture,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX only"),
]

WORKER = [sys.executable, "-m", "tests.reliability.torture_worker", "chaos"]
# The whole-file JSON files the worker writes; sync_state.jsonl, a journal, is read by SyncState.
STATE_FILES = ("stats.json", "circuit_breaker.json", "match_cache.json")


def _read_events(stream, events):
    for line in stream:
        kind, _, rest = line.strip().partition(" ")
        events.append((kind, rest))


def _run_trial(directory: str, trial: int, rnd: random.Random, env: dict) -> list:
    """One child, killed at a random moment; returns its event lines."""
    by_io = trial % 2 == 1
    crash_at = rnd.randint(1, 250) if by_io else 0
    proc = subprocess.Popen(
        WORKER + [directory, str(trial), str(crash_at)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    events = []
    reader = threading.Thread(target=_read_events, args=(proc.stdout, events))
    reader.start()
    if by_io:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    else:
        time.sleep(rnd.uniform(0.06, 0.3))  # past interpreter start, into the work
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join()
    assert proc.returncode == -signal.SIGKILL, "trial %d: the worker ended by itself (%s)" % (
        trial,
        proc.returncode,
    )
    return events


class Ledger:
    """What the children reported as done, across all trials."""

    def __init__(self):
        self.last_job_event = {}  # scene id -> last acknowledged queue event
        self.sync_state = set()
        self.match_cache = set()
        self.stats_acked = 0
        self.stats_started = 0
        self.killed_in = {}  # step in progress when the process died -> count

    def add(self, events: list) -> None:
        step = "between steps"
        for kind, rest in events:
            if kind == ">":
                step, _, scenes = rest.partition(" ")
                if step == "stats.json":
                    self.stats_started += 1
                for sid in scenes.split():
                    self.last_job_event[sid] = "r"  # being moved back from the DLQ: dead or pending
                continue
            step = "between steps"
            if kind in ("E", "L", "A", "N", "D", "R"):
                self.last_job_event[rest] = kind
            elif kind == "S":
                self.sync_state.add(rest)
            elif kind == "M":
                self.match_cache.add(rest)
            elif kind == "T":
                self.stats_acked += 1
        self.killed_in[step] = self.killed_in.get(step, 0) + 1


def check(directory: str, ledger: Ledger) -> tuple:
    """Read everything back as the next process would; returns (lost, corrupt) problem lists."""
    lost, corrupt = [], []
    damaged = []
    jobs = FileQueue(directory, on_corrupt=damaged.append).jobs()
    corrupt += ["queue.jsonl: %s" % d for d in damaged]
    for name in STATE_FILES:
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            continue
        with open(path, "rb") as fh:
            raw = fh.read()
        try:
            if not isinstance(json.loads(raw.decode("utf-8")), dict):
                corrupt.append("%s is not a JSON object" % name)
        except (ValueError, UnicodeDecodeError) as exc:
            corrupt.append("%s does not parse (%s): %r" % (name, exc, raw[:80]))
    corrupt += ["quarantined: %s" % n for n in quarantined_files(directory)]
    if corrupt:
        return lost, corrupt

    by_scene = {}
    for job in jobs:
        by_scene.setdefault(job.scene_id, []).append(job)
    lost += ["scene %s is in %d places" % (sid, len(v)) for sid, v in by_scene.items() if len(v) > 1]
    for sid, kind in ledger.last_job_event.items():
        present = by_scene.get(sid)
        if kind in ("E", "N", "R", "r") and not present:
            lost.append("acknowledged change of scene %s is gone (last step %s)" % (sid, kind))
        elif kind == "D" and not (present and present[0].state == DEAD):
            lost.append("dead-lettered scene %s is not in the DLQ" % sid)
        elif kind == "R" and present and present[0].state == DEAD:
            lost.append("scene %s was moved back from the DLQ but is dead again" % sid)
        elif kind == "A" and present:
            lost.append("scene %s was acked but came back" % sid)
        # "L": killed while the job was leased; the job may or may not have moved on. Both are fine.

    from sync.sync_state import SyncState  # sync_state.jsonl, a journal (sync/journal_map.py)

    states = SyncState(directory, on_corrupt=corrupt.append).read()
    lost += ["sync state lost %s" % k for k in sorted(ledger.sync_state - set(states))]
    cache = JsonFile(os.path.join(directory, "match_cache.json"), on_corrupt=corrupt.append).read()
    scenes = cache.get("scenes") if isinstance(cache.get("scenes"), dict) else {}
    lost += ["match_cache.json lost %s" % k for k in sorted(ledger.match_cache - set(scenes))]
    stats = JsonFile(os.path.join(directory, "stats.json"), on_corrupt=corrupt.append).read()
    synced = int((stats.get("totals") or {}).get("synced", 0))
    if not ledger.stats_acked <= synced <= ledger.stats_started:
        lost.append(
            "stats.json counts %d runs; %d were acknowledged, %d started"
            % (synced, ledger.stats_acked, ledger.stats_started)
        )
    from worker.breaker import STATES, CircuitBreaker, FileBreakerStorage

    if CircuitBreaker(FileBreakerStorage(directory)).state not in STATES:
        corrupt.append("circuit_breaker.json holds no valid state")
    return lost, corrupt


def test_sigkill_at_random_points_of_queue_steps_and_state_writes_loses_nothing(tmp_path):
    directory = str(tmp_path)
    env = child_env()
    rnd = random.Random(20240501)
    trials = scaled(100, 600)
    ledger = Ledger()
    lost, corrupt = [], []
    for trial in range(trials):
        ledger.add(_run_trial(directory, trial, rnd, env))
        trial_lost, trial_corrupt = check(directory, ledger)
        lost += ["trial %d: %s" % (trial, p) for p in trial_lost]
        corrupt += ["trial %d: %s" % (trial, p) for p in trial_corrupt]
        if trial_corrupt:
            break  # later trials would only report the same damage
    steps = ", ".join("%s %d" % kv for kv in sorted(ledger.killed_in.items(), key=lambda kv: -kv[1]))
    torture_summary.record(
        "sigkill: queue steps and state files",
        trials=trials,
        kills=trials,
        jobs=len(ledger.last_job_event),
        lost=len(lost),
        corrupt=len(corrupt),
        note="killed in: " + steps,
    )
    assert not corrupt, "files damaged by a kill:\n" + "\n".join(corrupt[:10])
    assert not lost, "acknowledged work lost:\n" + "\n".join(lost[:10])
    # The kills really landed inside the steps that matter, not only between them.
    for step in ("enqueue", "ack", "lease", "compaction", "sync_state.jsonl", "stats.json"):
        assert ledger.killed_in.get(step, 0) > 0 or trials < 100, "no kill landed in %s" % step
