"""A child process for the journal SIGKILL torture: the per-scene stores, written until killed.

Prints `> <store> <key>` before each write and `P <store> <key> <value>` after it returned
(durable). `<dir> <seed> <crash_at>`: with crash_at > 0 the process SIGKILLs itself at its
crash_at-th file-system call (see torture_worker.install_crash_point), torn writes included.

The path index is written through its own code (`PlexIndex.refresh`, full and incremental, and
`forget`) against a small in-process Plex that holds what the index held when the process
started: each write moves one item to a new file, which the refresh then records.
"""

from __future__ import annotations

import random
import sys
import time
from urllib.parse import parse_qsl
from xml.etree import ElementTree


class TinyPlex:
    """Answers the two queries the path index sends: the library list and a library's listing."""

    machineIdentifier = "torture"

    def __init__(self, items: dict):
        self.items = dict(items)  # rating key -> (file, addedAt)

    def query(self, key: str):
        root = ElementTree.Element("MediaContainer")
        if key == "/library/sections":
            section = ElementTree.SubElement(root, "Directory", key="1", type="movie", title="Movies")
            ElementTree.SubElement(section, "Location", path="/m")
            return root
        params = dict(parse_qsl(key.split("?", 1)[1]))
        after = int(params.get("addedAt>>", -1))
        rows = sorted((added, rk, f) for rk, (f, added) in self.items.items() if added > after)
        start, size = int(params["X-Plex-Container-Start"]), int(params["X-Plex-Container-Size"])
        root.set("totalSize", str(len(rows)))
        for added, rk, f in rows[start : start + size]:
            video = ElementTree.SubElement(root, "Video", ratingKey=rk, addedAt=str(added))
            ElementTree.SubElement(ElementTree.SubElement(video, "Media"), "Part", file=f, size="1")
        return root


def index_values(index) -> dict:
    """rating key -> the value in its file's name, as the index holds it."""
    from worker.plex_index import META

    return {
        k: v[1][0].rsplit("/", 1)[1][: -len(".mp4")] for k, v in index.journal.items().items() if k != META
    }


def main(directory: str, seed: int, crash_at: int) -> None:
    from sync.sync_state import SyncState
    from tests.reliability.torture_worker import install_crash_point, say
    from worker.matcher import MatchCache
    from worker.plex_index import PlexIndex
    from worker.plex_writer import PosterMemo

    rnd = random.Random(seed)
    index = PlexIndex(directory)
    index.journal.compact_min = 30
    plex = TinyPlex({k: (v[1][0], v[3]) for k, v in index.journal.items().items() if isinstance(v, list)})
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
        if roll < 0.3:
            say("> sync_state -")
            batch = {str(rnd.randint(1, 60)): value for _ in range(rnd.randint(1, 5))}
            for k in batch:
                state.record(k, value, None, 0.0)
            state.flush()
            for k in batch:
                say("P sync_state %s %s" % (k, value))
        elif roll < 0.55:
            say("> memo %s" % key)
            memo.set(key, {"poster_sha1": value})
            say("P memo %s %s" % (key, value))
        elif roll < 0.75:
            say("> match_cache %s" % key)
            cache.put(key, {"rating_key": n, "v": value})
            cache.flush()
            say("P match_cache %s %s" % (key, value))
        else:
            say("> plex_index %s" % key)
            plex.items[key] = ("/m/%s/%s.mp4" % (key, value), int(time.time() * 1000))
            if rnd.random() < 0.2 and index.forget(key):
                index.flush()  # gone from the index until the refresh below lists it again
            index.refresh(plex, [], full=True if rnd.random() < 0.3 else None)
            say("P plex_index %s %s" % (key, value))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
