"""SIGKILL at random points of the per-scene stores' journals (sync state, memo of written values,
match cache, Plex path index): every acknowledged write survives, each key holds the last
acknowledged value or the one in flight when the process died, nothing is quarantined,
compaction included."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from sync.store import quarantined_files
from tests.conftest import child_env, scaled
from tests.reliability import torture_summary

pytestmark = [
    pytest.mark.torture,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX only"),
]

WORKER = [sys.executable, "-m", "tests.reliability.journal_worker"]


def _trial(directory: str, trial: int, rnd: random.Random, env: dict) -> list:
    by_io = trial % 2 == 1
    crash_at = rnd.randint(1, 200) if by_io else 0
    proc = subprocess.Popen(
        WORKER + [directory, str(trial), str(crash_at)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout))
    reader.start()
    if by_io:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    else:
        time.sleep(rnd.uniform(0.08, 0.3))
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join()
    assert proc.returncode == -signal.SIGKILL, "trial %d: the worker ended by itself" % trial
    return [line.split() for line in lines if line.strip()]


def _read_back(directory: str) -> dict:
    from sync.sync_state import SyncState
    from tests.reliability.journal_worker import index_values
    from worker.matcher import MatchCache
    from worker.plex_index import PlexIndex
    from worker.plex_writer import PosterMemo

    cache = MatchCache(directory, signature=["torture"])
    return {
        "sync_state": {k: v["hash"] for k, v in SyncState(directory).read().items()},
        "memo": {k: v.get("poster_sha1") for k, v in PosterMemo(directory).journal.items().items()},
        "match_cache": {k: (cache.get(k) or {}).get("v") for k in map(str, range(1, 61)) if cache.get(k)},
        "plex_index": index_values(PlexIndex(directory)),
    }


def _older(have: str, value: str) -> bool:
    """Was `have` ("<trial>-<n>") written before `value`?"""
    (ht, hn), (vt, vn) = (map(int, have.split("-")), map(int, value.split("-")))
    return (ht, hn) < (vt, vn)


def test_sigkill_during_journal_writes_loses_no_acknowledged_value(tmp_path):
    directory = str(tmp_path)
    env = child_env()
    rnd = random.Random(20261130)
    trials = scaled(30, 300)
    acked = {"sync_state": {}, "memo": {}, "match_cache": {}, "plex_index": {}}
    problems, killed_in = [], {}
    for trial in range(trials):
        in_flight = None
        for parts in _trial(directory, trial, rnd, env):
            if parts[0] == ">":
                in_flight = (parts[1], parts[2])
            elif parts[0] == "P":
                acked[parts[1]][parts[2]] = parts[3]
                in_flight = None
        where = in_flight[0] if in_flight else "between writes"
        killed_in[where] = killed_in.get(where, 0) + 1
        found = _read_back(directory)
        for store, values in acked.items():
            for key, value in values.items():
                have = found[store].get(key)
                # The path index may lack the one item it was forgetting when killed (a miss, which
                # the next refresh lists again); everything else holds the value acknowledged
                # last, or a later one (the write in flight when killed).
                if have is None and in_flight == (store, key) and store == "plex_index":
                    continue
                if have is None or _older(have, value):
                    problems.append(
                        "trial %d: %s[%s] is %r, acknowledged %r" % (trial, store, key, have, value)
                    )
        # What the next process reads is what later trials must build on.
        for store in acked:
            acked[store] = dict(found[store])
        if quarantined_files(directory):
            problems.append("trial %d: quarantined %s" % (trial, quarantined_files(directory)))
            break
    torture_summary.record(
        "sigkill: per-scene journals",
        trials=trials,
        kills=trials,
        jobs=sum(len(v) for v in acked.values()),
        lost=len(problems),
        corrupt=0,
        note="killed in: " + ", ".join("%s %d" % kv for kv in sorted(killed_in.items())),
    )
    assert not problems, "\n".join(problems[:10])
