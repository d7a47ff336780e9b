"""A child process for the journal SIGKILL torture: the per-scene stores, written until killed.

Prints `> <store>` before each write and `P <store> <key> <value>` after it returned (durable).
`<dir> <seed> <crash_at>`: with crash_at > 0 the process SIGKILLs itself at its crash_at-th
file-system call (see torture_worker.install_crash_point), torn writes included.
"""

from __future__ import annotations

import random
import sys


def main(directory: str, seed: int, crash_at: int) -> None:
    from sync.sync_state import SyncState
    from tests.reliability.torture_worker import install_crash_point, say
    from worker.matcher import MatchCache
    from worker.plex_writer import PosterMemo

    rnd = random.Random(seed)
    if crash_at > 0:
        install_crash_point(crash_at, random.Random(seed * 7 + 1))
    state = SyncState(directory)
    state.journal.compact_min = 30
    memo = PosterMemo(directory)
    memo.journal.compact_min = 30
    cache = MatchCache(directory, signature=["torture"], flush_every=10**9)
    cache._journal.compact_min = 30
    n = 0
    while True:
        n += 1
        key = str(rnd.randint(1, 60))
        value = "%d-%d" % (seed, n)
        roll = rnd.random()
        if roll < 0.4:
            say("> sync_state")
            batch = {str(rnd.randint(1, 60)): value for _ in range(rnd.randint(1, 5))}
            for k in batch:
                state.record(k, value, None, 0.0)
            state.flush()
            for k in batch:
                say("P sync_state %s %s" % (k, value))
        elif roll < 0.75:
            say("> memo")
            memo.set(key, {"poster_sha1": value})
            say("P memo %s %s" % (key, value))
        else:
            say("> match_cache")
            cache.put(key, {"rating_key": n, "v": value})
            cache.flush()
            say("P match_cache %s %s" % (key, value))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
