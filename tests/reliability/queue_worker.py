"""A child process for the crash and concurrency tests: works on a FileQueue and reports on stdout
each operation *after* it returned, so the parent knows what was acknowledged."""

from __future__ import annotations

import random
import sys
import time

from sync.queue import FileQueue


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def produce(directory: str, prefix: str, count: int) -> None:
    q = FileQueue(directory)
    for i in range(count):
        q.enqueue("%s%d" % (prefix, i), ["title"])
        say("E %s%d" % (prefix, i))


def consume(directory: str, until_empty_after: float) -> None:
    """Lease and ack until the queue stayed empty for `until_empty_after` seconds."""
    q = FileQueue(directory)
    idle_since = time.monotonic()
    while True:
        jobs = q.lease(20, 300, owner="consumer")
        if jobs:
            idle_since = time.monotonic()
        for job in jobs:
            q.ack(job)
            say("A %s" % job.scene_id)
        if not jobs:
            if time.monotonic() - idle_since > until_empty_after:
                return
            time.sleep(0.01)


def chaos(directory: str, seed: int) -> None:
    """Enqueue, lease, ack, nack and dead-letter in a random mix, compacting often, until killed."""
    rnd = random.Random(seed)
    q = FileQueue(directory)
    q.COMPACT_MIN_RECORDS = 30
    n = 0
    while True:
        roll = rnd.random()
        if roll < 0.55:
            sid = "%d-%d" % (seed, n)
            n += 1
            q.enqueue(sid, ["title"])
            say("E " + sid)
        else:
            jobs = q.lease(rnd.randint(1, 4), 300 if rnd.random() < 0.9 else 0.001, owner=str(seed))
            for job in jobs:
                say("L " + job.scene_id)
                r = rnd.random()
                if r < 0.6:
                    q.ack(job)
                    say("A " + job.scene_id)
                elif r < 0.8:
                    q.nack(job, "plex_timeout", "slow", max_retries=3, retry_at=0)
                    say("N " + job.scene_id)
                else:
                    q.dead_letter(job, "ambiguous_match", "x")
                    say("D " + job.scene_id)
            if rnd.random() < 0.05:
                q.compact()


if __name__ == "__main__":
    cmd, directory = sys.argv[1], sys.argv[2]
    if cmd == "produce":
        produce(directory, sys.argv[3], int(sys.argv[4]))
    elif cmd == "consume":
        consume(directory, float(sys.argv[3]))
    elif cmd == "chaos":
        chaos(directory, int(sys.argv[3]))
    else:
        raise SystemExit("unknown command " + cmd)
