"""The paths the first torture suite never took: repairing a damaged journal while being killed or
while the disk is full, damage at the end of the journal, locks that exclude nobody, the race
between a stopping drainer and a hook's request, and a clock stepped back.

Every trial ends with the same question a user would ask: is every acknowledged change still
queued or in Plex (0 lost), and will something drain it without anyone pressing a button
(0 stranded)?
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from sync.drain_marker import DrainMarker, drain_running
from sync.queue import FileQueue
from sync.store import quarantined_files
from tests.conftest import child_env, scaled
from tests.reliability import torture_summary
from tests.reliability.test_torture_diskfull import SITECUSTOMIZE

pytestmark = pytest.mark.torture

WORKER = [sys.executable, "-m", "tests.reliability.repair_worker"]
JOBS = 20


def _damage(directory: str, kind: str) -> bytes:
    """A journal of JOBS changes with damage in it; returns the damaged bytes."""
    queue = FileQueue(directory)
    for n in range(JOBS):
        queue.enqueue(str(n), ["title"])
    path = os.path.join(directory, "queue.jsonl")
    with open(path, "ab") as fh:
        fh.write(b"{\"op\": \"enq\", \"id\": torn by a bad sector}\n" if kind == "garbage" else b"\0" * 3000)
    with open(path, "rb") as fh:
        return fh.read()


def _damage_kept(directory: str, damaged: bytes) -> bool:
    """The damaged bytes are still the journal, or kept byte for byte in a .corrupt- copy."""
    names = ["queue.jsonl"] + [n for n in quarantined_files(directory) if n.startswith("queue.jsonl.")]
    for name in names:
        try:
            with open(os.path.join(directory, name), "rb") as fh:
                if fh.read().startswith(damaged):
                    return True
        except FileNotFoundError:
            continue
    return False


def _run(args: list, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        WORKER + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True, timeout=timeout
    )


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX only")
def test_sigkill_at_every_step_of_a_repair_loses_no_job_and_keeps_the_damage(tmp_path):
    env = child_env()
    trials = scaled(24, 200)
    lost, kills = [], 0
    for trial in range(trials):
        directory = str(tmp_path / ("t%d" % trial))
        os.makedirs(directory)
        damaged = _damage(directory, "garbage" if trial % 2 else "nul")
        crash_at = 1 + trial // 2 % 12 if trial < 24 else random.Random(trial).randint(1, 14)
        proc = _run(["salvage", directory, str(crash_at), str(trial)], env)
        kills += proc.returncode == -signal.SIGKILL
        after = {j.scene_id for j in FileQueue(directory).jobs()}
        if after != {str(n) for n in range(JOBS)}:
            lost.append(
                "trial %d (killed at I/O call %d): %d of %d jobs left" % (trial, crash_at, len(after), JOBS)
            )
        if not _damage_kept(directory, damaged):
            lost.append("trial %d: the damaged bytes are gone" % trial)
    torture_summary.record(
        "repair: SIGKILL at each step", trials=trials, kills=kills, jobs=trials * JOBS, lost=len(lost)
    )
    assert not lost, "\n".join(lost[:10])
    assert kills >= trials // 2, "the kills did not land inside the repair"


def test_repair_on_a_full_disk_loses_no_job_at_any_point(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    budgets = list(range(0, 4000, 250)) + [scaled(4000, 20000)]
    lost = []
    for n, budget in enumerate(budgets):
        directory = str(tmp_path / ("b%d" % n))
        os.makedirs(directory)
        damaged = _damage(directory, "garbage" if n % 2 else "nul")
        env = child_env()
        env["PYTHONPATH"] = str(site) + os.pathsep + env["PYTHONPATH"]
        env["PLEXSYNC_TEST_ENOSPC"] = "%s:%d" % (directory, budget)
        proc = _run(["salvage", directory, "0", "1"], env)
        if proc.returncode != 0:
            lost.append("budget %d: the reader failed: %s" % (budget, proc.stderr.strip().splitlines()[-1:]))
        after = {j.scene_id for j in FileQueue(directory).jobs()}  # space freed: a normal reader
        if after != {str(i) for i in range(JOBS)}:
            lost.append("budget %d: %d of %d jobs left" % (budget, len(after), JOBS))
        if not _damage_kept(directory, damaged):
            lost.append("budget %d: the damaged bytes are gone" % budget)
    torture_summary.record(
        "repair: disk full at each byte budget", trials=len(budgets), jobs=len(budgets) * JOBS, lost=len(lost)
    )
    assert not lost, "\n".join(lost[:10])


def test_concurrent_hooks_on_locks_that_exclude_nobody_lose_no_change(tmp_path):
    directory = str(tmp_path)
    env = child_env()
    producers, per = 16, scaled(25, 100)
    procs = [
        subprocess.Popen(
            WORKER + ["noop_produce", directory, "p%d-" % i, str(per)],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for i in range(producers)
    ]
    acknowledged = set()
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
        acknowledged |= {line.split()[1] for line in out.splitlines() if line.startswith("E ")}
    left = {j.scene_id for j in FileQueue(directory).jobs()}
    missing = acknowledged - left
    torture_summary.record(
        "no-op locks: %d hooks at once" % producers,
        trials=producers * per,
        jobs=len(acknowledged),
        lost=len(missing),
    )
    assert len(acknowledged) == producers * per
    assert not missing, "%d of %d acknowledged changes were overwritten" % (len(missing), len(acknowledged))


def test_hooks_racing_a_stopping_drainer_never_strand_a_change(tmp_path):
    """Stash's side of the race: every request a hook makes starts one drainer, one at a time."""
    env = child_env()
    trials, hooks, per = scaled(30, 300), 3, 4
    stranded, requests_total = [], 0
    for trial in range(trials):
        directory = str(tmp_path / ("r%d" % trial))
        os.makedirs(directory)
        requests = []
        lock = threading.Lock()

        def hook(i):
            out = subprocess.run(
                WORKER + ["race_hook", directory, "t%d-h%d-" % (trial, i), str(per), str(i)],
                stdout=subprocess.PIPE,
                env=env,
                text=True,
                timeout=300,
            ).stdout
            with lock:
                requests.extend(line for line in out.splitlines() if line == "R")

        threads = [threading.Thread(target=hook, args=(i,)) for i in range(hooks)]
        for t in threads:
            t.start()
        served = 0
        while any(t.is_alive() for t in threads) or served < len(requests):
            if served < len(requests):  # Stash's job queue: one drain per request, one at a time
                served += 1
                subprocess.run(
                    WORKER + ["race_drain", directory, str(served)],
                    stdout=subprocess.DEVNULL,
                    env=env,
                    timeout=300,
                )
            else:
                time.sleep(0.005)
        requests_total += served
        left = FileQueue(directory).jobs()
        if left and not DrainMarker(directory).is_fresh() and not drain_running(directory):
            stranded.append(
                "trial %d: %d change(s) queued with no drain running or requested" % (trial, len(left))
            )
        elif left:
            stranded.append(
                "trial %d: %d change(s) left although every request was served" % (trial, len(left))
            )
    torture_summary.record(
        "request race: hooks vs a stopping drainer",
        trials=trials,
        jobs=trials * hooks * per,
        lost=len(stranded),
        note="%d drains for %d changes" % (requests_total, trials * hooks * per),
    )
    assert not stranded, "\n".join(stranded)


def test_changes_failed_while_the_clock_ran_a_day_ahead_are_drained_after_it_is_corrected(tmp_path):
    directory = str(tmp_path)
    env = child_env()
    count = scaled(20, 200)
    out = _run(["clock_ahead", directory, "c", str(count)], env, timeout=300).stdout
    acknowledged = {line.split()[1] for line in out.splitlines() if line.startswith("E ")}
    queue = FileQueue(directory)  # the corrected clock
    summary = queue.summary()
    drained = set()
    for _ in range(len(acknowledged) + 1):
        jobs = queue.lease(25, 300, owner="drain-now")
        if not jobs:
            break
        for job in jobs:
            queue.ack(job)
            drained.add(job.scene_id)
    stranded = acknowledged - drained
    torture_summary.record("clock stepped back a day", trials=1, jobs=len(acknowledged), lost=len(stranded))
    assert len(acknowledged) == 2 * count
    assert summary.waiting == summary.inflight == 0, summary.to_dict()
    assert not stranded, "%d change(s) wait for the old clock" % len(stranded)
