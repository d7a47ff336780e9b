"""Child processes for the repair and race torture (tests/reliability/test_torture_repair.py).

Each reports on stdout, after the step returned, what was acknowledged:

    E sid   enqueued (durable)      R       this hook asked for a drain      A sid   acked

`salvage <dir> <crash_at> <seed>`   read a damaged journal (which repairs it), SIGKILLed at its
                                    crash_at-th file-system call (torture_worker's crash points)
`noop_produce <dir> <prefix> <n>`   enqueue n changes with file locks that exclude nobody
                                    (a network share with locking off)
`race_hook <dir> <prefix> <n> <seed>` n hooks: enqueue, then claim a drain request; the decision
                                    is held open a few ms to widen the race with the drainer
`race_drain <dir> <seed>`           one drainer: ack everything due, then clear-and-look; the
                                    last look pauses a few ms before it reads the queue
`clock_ahead <dir> <prefix> <n>`    a process whose clock runs a day ahead fails n changes once
"""

from __future__ import annotations

import random
import sys
import time


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def salvage(directory: str, crash_at: int, seed: int) -> None:
    from sync.queue import FileQueue
    from tests.reliability.torture_worker import install_crash_point

    install_crash_point(crash_at, random.Random(seed))
    FileQueue(directory).jobs()
    say("done")


def noop_locks() -> None:
    """Locks that are granted without excluding anyone, as on a share with locking off."""
    import sync.lock

    sync.lock._try_lock = lambda fd: True
    sync.lock._lock_blocking = lambda fd: None
    sync.lock._unlock = lambda fd: None


def noop_produce(directory: str, prefix: str, count: int) -> None:
    from sync.queue import FileQueue

    noop_locks()
    for i in range(count):
        FileQueue(directory).enqueue("%s%d" % (prefix, i), ["title"])  # a new process per hook
        say("E %s%d" % (prefix, i))


def race_hook(directory: str, prefix: str, count: int, seed: int) -> None:
    from sync.drain_marker import DrainMarker
    from sync.queue import FileQueue

    rnd = random.Random(seed)
    real = DrainMarker.covering

    def slow_decision(self, now=None):
        answer = real(self, now)
        time.sleep(rnd.uniform(0, 0.03))  # the decision stays open while the drainer may stop
        return answer

    DrainMarker.covering = slow_decision
    for i in range(count):
        sid = "%s%d" % (prefix, i)
        FileQueue(directory).enqueue(sid, ["title"])
        say("E " + sid)
        if DrainMarker(directory).claim_request():
            say("R")
        time.sleep(rnd.uniform(0, 0.04))


def race_drain(directory: str, seed: int) -> None:
    from sync.drain_marker import DrainMarker, drain_lock
    from sync.queue import FileQueue

    rnd = random.Random(seed)
    lock = drain_lock(directory)
    if not lock.acquire(timeout=2.0):
        say("busy")
        return
    queue, marker = FileQueue(directory), DrainMarker(directory)

    def last_look():
        time.sleep(rnd.uniform(0, 0.01))  # a hook's job may land during the look
        return queue.summary().pending > 0

    try:
        while True:
            marker.heartbeat()
            for job in queue.lease(100, 300, owner="drain-race"):
                queue.ack(job)
                say("A " + job.scene_id)
            if not marker.clear_and_look(last_look):
                break
    finally:
        lock.release()


def clock_ahead(directory: str, prefix: str, count: int) -> None:
    from sync.queue import FileQueue

    queue = FileQueue(directory, clock=lambda: time.time() + 86400)
    for i in range(count):
        queue.enqueue("%s%d" % (prefix, i), ["title"])
        say("E %s%d" % (prefix, i))
    for job in queue.lease(count, 300, owner="drain-ahead"):
        queue.nack(job, "plex_timeout", "Plex was slow", max_retries=5)
    for i in range(count, 2 * count):  # and some it leased when it was killed
        queue.enqueue("%s%d" % (prefix, i), ["title"])
        say("E %s%d" % (prefix, i))
    queue.lease(count, 300, owner="drain-ahead")


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "salvage":
        salvage(args[0], int(args[1]), int(args[2]))
    elif mode == "noop_produce":
        noop_produce(args[0], args[1], int(args[2]))
    elif mode == "race_hook":
        race_hook(args[0], args[1], int(args[2]), int(args[3]))
    elif mode == "race_drain":
        race_drain(args[0], int(args[1]))
    elif mode == "clock_ahead":
        clock_ahead(args[0], args[1], int(args[2]))
    else:
        raise SystemExit("unknown mode " + mode)
