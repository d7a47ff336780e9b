"""Many processes and SIGKILL at random moments: every acknowledged change is accounted for."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from sync.jobs import DEAD
from sync.queue import FileQueue
from sync.store import quarantined_files
from tests.conftest import child_env, scaled

WORKER = [sys.executable, "-m", "tests.reliability.queue_worker"]


def test_eight_producers_and_a_consumer_account_for_every_job_exactly_once(tmp_path):
    d = str(tmp_path)
    env = child_env()
    producers = [
        subprocess.Popen(
            WORKER + ["produce", d, "p%d-" % i, "200"], stdout=subprocess.PIPE, env=env, text=True
        )
        for i in range(8)
    ]
    consumer = subprocess.Popen(WORKER + ["consume", d, "3"], stdout=subprocess.PIPE, env=env, text=True)
    produced = []
    for p in producers:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0
        produced += [line.split()[1] for line in out.splitlines()]
    out, _ = consumer.communicate(timeout=300)
    acked = [line.split()[1] for line in out.splitlines()]
    left = [j.scene_id for j in FileQueue(d).jobs()]
    assert len(produced) == 1600
    assert len(acked) == len(set(acked)), "a job was synced twice"
    assert sorted(acked + left) == sorted(produced), "a job was lost or invented"


def _read_events(stream, events):
    for line in stream:
        kind, _, sid = line.strip().partition(" ")
        if sid:
            events.append((kind, sid))


@pytest.mark.torture
def test_sigkill_at_random_moments_loses_no_acknowledged_job(tmp_path):
    d = str(tmp_path)
    env = child_env()
    rnd = random.Random(1234)
    kills = scaled(100, 600)
    last = {}
    for trial in range(kills):
        proc = subprocess.Popen(WORKER + ["chaos", d, str(trial)], stdout=subprocess.PIPE, env=env, text=True)
        events = []
        reader = threading.Thread(target=_read_events, args=(proc.stdout, events))
        reader.start()
        time.sleep(rnd.uniform(0.06, 0.35))  # past interpreter start, into the work
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join()
        for kind, sid in events:
            last[sid] = kind
        damaged = []
        jobs = FileQueue(d, on_corrupt=damaged.append).jobs()
        assert damaged == [], "trial %d left an unreadable journal: %s" % (trial, damaged)
        assert quarantined_files(d) == []
        by_scene = {}
        for job in jobs:
            by_scene.setdefault(job.scene_id, []).append(job)
        assert all(len(v) == 1 for v in by_scene.values()), "a job is in two places"
        for sid, kind in last.items():
            present = sid in by_scene
            if kind in ("E", "N"):
                assert present, "trial %d lost acknowledged change %s (last step %s)" % (trial, sid, kind)
            elif kind == "D":
                assert present and by_scene[sid][0].state == DEAD
            elif kind == "A":
                assert not present, "trial %d: %s was acked but came back" % (trial, sid)
        # A step in progress when killed ("L") may or may not have been written: both are fine.
    assert len(last) > kills  # the children did real work
