"""Read many full Plex items in one request: `GET /library/metadata/12,13,14`.

Plex answers a comma-separated list of rating keys with the same complete items a single-key
read gives (every tag, the `<Field locked>` elements); plexapi builds that URL itself when
`fetchItems` gets a list of ints (`plexapi/base.py`, `PlexObject.fetchItems`). The drain reads a
whole lease batch this way before it diffs each scene (`prefetch_batch`), and the first
reconciliation reads never-synced scenes' items this way in batches of `RECONCILE_BATCH`.

Keys are split so that no request path grows beyond `MAX_PATH` characters (proxies and
servers commonly refuse URLs past a few thousand). An item that disappeared between the listing
and the read is simply absent from the answer; when none of the keys exists Plex answers 404.
"""

from __future__ import annotations

from worker.metadata import filter_reason

PATH_PREFIX = "/library/metadata/"
MAX_PATH = 1900  # characters of the request path, prefix included
RECONCILE_BATCH = 200  # items per request in reconciliation (the drain reads its lease batch)


def key_chunks(keys, max_path: int = MAX_PATH, most: int = 0):
    """Split rating keys (ints) into lists whose `/library/metadata/a,b,c` path fits `max_path`
    characters and, with `most`, holds at most `most` keys. Order kept, duplicates dropped."""
    chunk, length, seen = [], len(PATH_PREFIX), set()
    for key in keys:
        key = int(key)
        if key in seen:
            continue
        seen.add(key)
        extra = len(str(key)) + (1 if chunk else 0)
        if chunk and (length + extra > max_path or (most and len(chunk) >= most)):
            yield chunk
            chunk, length, extra = [], len(PATH_PREFIX), len(str(key))
        chunk.append(key)
        length += extra
    if chunk:
        yield chunk


def fetch_items(server, keys, max_path: int = MAX_PATH, most: int = 0) -> dict:
    """rating key -> full plexapi item, for every key Plex still has; one request per chunk.

    Keys Plex no longer has are missing from the result. Other errors propagate (the caller
    classifies them).
    """
    from plexapi import utils
    from plexapi.exceptions import NotFound

    found = {}
    for chunk in key_chunks(keys, max_path, most):
        try:
            # container_size: one request for the whole chunk (plexapi would page at 100 otherwise).
            items = server.fetchItems(chunk, container_size=len(chunk))
        except NotFound:
            continue
        for item in items:
            # Complete for our fields: no hidden reload (see plex_writer.fetch_item).
            item._autoReload = False
            data = getattr(item, "_data", None)
            # plexapi stamps the container's librarySectionID on every item of the answer; a batch
            # may span libraries, so keep the one each item carries itself.
            own = utils.cast(int, data.attrib.get("librarySectionID")) if data is not None else None
            if own:
                item.librarySectionID = own
            rk = utils.cast(int, getattr(item, "ratingKey", None))
            if rk is not None:
                found[rk] = item
    return found


def prefetch_batch(drain, jobs, scenes) -> int:
    """Read the Plex items of a lease batch in one request and hand them to the drain's writer,
    and start downloading the batch's new covers from Stash in the background.

    Scenes that do not match without asking Plex (a miss, an ambiguity) are left to the drain's
    per-job step, which reports them as before. A failed read is not an error here: each job
    then reads its own item and fails (or succeeds) on its own. Returns the requests made.
    """
    writer, matcher = getattr(drain, "writer", None), getattr(drain, "matcher", None)
    if writer is None or matcher is None or not hasattr(writer, "prefetch"):
        return 0
    pairs = []
    for job in jobs:
        scene = (scenes or {}).get(job.scene_id)
        if scene is None or filter_reason(scene, drain.settings):
            continue  # a scene a filter setting keeps out is neither read nor its cover fetched
        try:
            rating_key = matcher.peek(scene)
        except Exception:  # noqa: BLE001 - the job's own step meets (and classifies) it again
            rating_key = None
        if rating_key is not None:
            pairs.append((rating_key, scene))
    keys = [rk for rk, _ in pairs]
    if hasattr(writer, "prefetch_covers"):
        try:
            writer.prefetch_covers(pairs)  # Stash downloads overlap the Plex requests below
        except Exception:  # noqa: BLE001 - each sync downloads its own cover then
            pass
    if len(keys) < 2:
        return 0  # one item: the job's own GET costs the same
    try:
        return writer.prefetch(keys)
    except Exception:  # noqa: BLE001 - every job reads its own item and is classified there
        return 0
