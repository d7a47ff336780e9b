"""A child process for the SIGKILL torture: queue operations and state-file writes until it dies.

It reports on stdout `> <step>` before each step and an event line after the step returned, so
the parent knows what was acknowledged and what was in progress when the process died:

    E sid   enqueued            L sid   leased          A sid   acked
    N sid   nacked (pending)    D sid   dead-lettered   R sid   moved back from the DLQ
    S key   sync_state.jsonl holds key       M key   match_cache.json holds key
    T       stats.json counted one more run  B       circuit_breaker.json written (or skipped)
    C       journal compacted

`chaos <dir> <seed> <crash_at>`: with crash_at > 0 the process SIGKILLs itself at its
crash_at-th file-system call (write, fsync, replace, ftruncate, remove), sometimes leaving a
torn write behind, so kills land inside every step rather than only where a timer falls.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time

IO_CALLS = ("write", "fsync", "replace", "ftruncate", "remove", "rename")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def install_crash_point(crash_at: int, rnd: random.Random) -> None:
    """SIGKILL this process at its `crash_at`-th file-system call, before or after it, or mid-write."""
    left = [crash_at]

    def wrap(name):
        real = getattr(os, name)

        def call(*args, **kwargs):
            left[0] -= 1
            if left[0] == 0:
                roll = rnd.random()
                if name == "write" and roll < 0.4:
                    data = bytes(args[1])
                    cut = rnd.randint(0, max(0, len(data) - 1))
                    if cut:
                        real(args[0], data[:cut])  # a torn write: only a prefix reached the file
                elif roll < 0.7:
                    real(*args, **kwargs)  # the call completed; the process dies right after
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        setattr(os, name, call)

    for name in IO_CALLS:
        if hasattr(os, name):
            wrap(name)


def chaos(directory: str, seed: int, crash_at: int) -> None:
    """Queue steps and state-file writes in a random mix, until killed."""
    from sync.jobs import DEAD
    from sync.queue import FileQueue
    from sync.store import JsonFile
    from sync.sync_state import SyncState
    from worker.breaker import CircuitBreaker, FileBreakerStorage
    from worker.errors import SyncFailure
    from worker.stats import SyncStats

    rnd = random.Random(seed)
    if crash_at > 0:
        install_crash_point(crash_at, random.Random(seed * 7 + 1))
    q = FileQueue(directory)
    q.COMPACT_MIN_RECORDS = 40
    # A whole-file JsonFile, in the match cache's former layout (the real one is now a journal,
    # tortured by test_torture_journal.py): updates of a file rewritten whole, killed anywhere.
    match_cache = JsonFile(os.path.join(directory, "match_cache.json"))
    n = 0
    while True:
        roll = rnd.random()
        if roll < 0.40:
            sid = "%d-%d" % (seed, n)
            n += 1
            say("> enqueue")
            q.enqueue(sid, ["title"])
            say("E " + sid)
        elif roll < 0.68:
            say("> lease")
            jobs = q.lease(rnd.randint(1, 4), 300 if rnd.random() < 0.9 else 0.001, owner=str(seed))
            for job in jobs:
                say("L " + job.scene_id)
            for job in jobs:
                r = rnd.random()
                if r < 0.55:
                    say("> ack")
                    q.ack(job)
                    say("A " + job.scene_id)
                elif r < 0.8:
                    say("> nack")
                    q.nack(job, "plex_timeout", "slow", max_retries=3, retry_at=0)
                    say("N " + job.scene_id)
                else:
                    say("> dead-letter")
                    q.dead_letter(job, "ambiguous_match", "x")
                    say("D " + job.scene_id)
        elif roll < 0.72:
            dead = [j for j in q.jobs(DEAD)][:3]
            if dead:
                say("> requeue " + " ".join(j.scene_id for j in dead))
                q.requeue([j.id for j in dead])
                for job in dead:
                    say("R " + job.scene_id)
        elif roll < 0.76:
            say("> compaction")
            q.compact()
            say("C")
        elif roll < 0.82:
            key = "s%d-%d" % (seed, n)
            n += 1
            state = SyncState(directory)
            state.record(key, "hash-" + key, None, time.time())
            say("> sync_state.jsonl")
            state.flush()
            say("S " + key)
        elif roll < 0.88:
            say("> stats.json")
            SyncStats(directory).record_run({"synced": 1, "ended_at": time.time()})
            say("T")
        elif roll < 0.94:
            say("> circuit_breaker.json")
            breaker = CircuitBreaker(FileBreakerStorage(directory), threshold=2, open_seconds=5)
            if rnd.random() < 0.6:
                breaker.record_failure(SyncFailure("plex_unreachable", "connection refused"))
            else:
                breaker.record_success()
            say("B")
        else:
            key = "m%d-%d" % (seed, n)
            n += 1

            def put(value, key=key):
                scenes = value.get("scenes") if isinstance(value.get("scenes"), dict) else {}
                scenes[key] = {"rating_key": n, "file": "/x/%s.mp4" % key, "at": time.time()}
                return {"v": 1, "signature": ["torture"], "scenes": scenes}

            say("> match_cache.json")
            match_cache.update(put)
            say("M " + key)


if __name__ == "__main__":
    if sys.argv[1] != "chaos":
        raise SystemExit("unknown command " + sys.argv[1])
    chaos(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 0)
