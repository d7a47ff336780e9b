"""One pass over Stash and Plex that finds every gap: each side is paged once, joined in memory.

Stash: `findScenes` in pages of `STASH_PAGE`, only the fields a sync writes, with an
`updated_at` filter for scoped runs. Plex: each selected movie library listed once in pages
(`/library/sections/N/all`), through the path index's own paging code (`ListingIndex`), which
rebuilds `plex_index.jsonl` on the way, so the drain that follows matches without asking Plex.
Scenes are matched with the drain's `Matcher` (match cache, path mapping, filename fallback,
strict mode), against the listing just read. Nothing here asks Plex about a single scene.

**Exact for scenes PlexSync knows nothing about.** A scene never synced, or whose records are
gone (no `sync_state.jsonl` entry, no memo of what was written to its item), cannot be judged
from a listing: listings cut tag lists short, and "never synced" is not "differs". Such scenes
are compared with their full Plex items, read `batch_read.RECONCILE_BATCH` at a time
(`GET /library/metadata/a,b,c`), with the drain's own diff. An item that already shows what a
sync would write is *adopted*: its hash and the fingerprints of its values are recorded as if
PlexSync had written them, and no job is queued. Only the others are gaps. Of covers only
their presence is compared: an item with no poster (background) at all, where PlexSync would
upload one, is a gap; comparing the images themselves would mean downloading every cover from
both servers. An adopted item's cover is uploaded with its next change.
"""

from __future__ import annotations

import time

from reconcile import gaps
from stashplugin import log
from worker.batch_read import RECONCILE_BATCH
from worker.errors import NO_FILE, AmbiguousMatch, NotInPlex, SyncFailure
from worker.plex_index import PlexIndex

STASH_PAGE = 1000
# What build_metadata reads, and nothing more: 20,000 scenes page in seconds.
STASH_FIELDS = """
  id title code details director date organized rating100 updated_at
  stash_ids { stash_id }
  files { path basename size }
  paths { screenshot }
  studio { name parent_studio { name } }
  performers { name }
  tags { name }
  groups { group { name } }
"""
# Plex listing is the first part of the progress bar, Stash paging the rest.
PLEX_SHARE = 0.3
MATCH_CACHE_FLUSH = 5000  # new matches held before one append (a first run makes 50,000)


def since_for(scope_seconds, now: float):
    """Stash's `updated_at` filter value (RFC3339, UTC) for a scope, or None for every scene."""
    if not scope_seconds:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - scope_seconds))


def stash_pages(stash, since=None, fields: str = STASH_FIELDS, per_page: int = STASH_PAGE):
    """Yield (count, scenes) per page of Stash's scenes (oldest id first), each scene once.

    Stops when `count` scenes were seen or a page comes back empty; a Stash that caps page
    sizes (older versions: 1000) is paged consistently because every request asks the same size.
    """
    page, seen = 1, set()
    while True:
        count, scenes = stash.scenes_page(page, per_page, updated_since=since, fields=fields)
        fresh = [s for s in scenes if str(s.get("id")) not in seen]
        seen.update(str(s.get("id")) for s in fresh)
        yield count, fresh
        if not fresh or len(seen) >= count:  # (a Stash that ignores paging must not loop forever)
            return
        page += 1


class ListingIndex(PlexIndex):
    """The path index, rebuilt by one full listing of each library, handing every listed item to
    `on_item(section_id, video)` as it goes by.

    After that listing, the matcher's "refresh once on a miss" is answered from memory: the
    listing is seconds old, and asking again would cost a request per library.
    """

    def __init__(self, data_dir: str, on_item):
        super().__init__(data_dir)
        self.on_item = on_item
        self.listed = False

    def _page(self, server, section_id: int, filters: list, on_page=None):
        for video in super()._page(server, section_id, filters, on_page):
            self.on_item(section_id, video)
            yield video

    def refresh(self, server, library_names, progress=None, full=None) -> dict:
        if self.listed and not full:
            return {"mode": "incremental", "requests": 0, "added": 0}
        result = super().refresh(server, library_names, progress, full=True)
        self.listed = True
        return result


class Scan:
    """Finds the gaps of one scope. Use once: `for scene, gap in scan.gaps(since): ...`.

    `connect()` returns (plexapi server, request counter) and is called only when the scope holds
    at least one scene. Counters for the report: `scenes_checked`, `plex_items`, `no_file`,
    `stash_requests`, `plex_requests`.
    """

    def __init__(
        self,
        settings,
        stash,
        data_dir: str,
        connect=None,
        heartbeat=None,
        progress=None,
        exact: bool = True,
        adopt: bool = True,
    ):
        self.exact = exact  # read the full items of scenes PlexSync has no record of
        self.adopt = adopt  # record the matching ones as synced (off for previews)
        self.adopted = 0
        self._light_before = None
        self._state_store = None
        self._adoption_stores = None
        self._unverified = []  # (scene, rating key, desired, hash) waiting for a batch read
        self._adoptions = {}  # scene id -> (rating key, hash, updated_at, written)
        self.settings = settings
        self.stash = stash
        self.data_dir = data_dir
        self._connect = connect
        self.heartbeat = heartbeat or (lambda: None)
        self.progress = progress or log.progress
        self.server = None
        self.counter = None
        self.matcher = None
        self.listed = {}  # rating key -> gaps.listed_item(...)
        self.scenes_in_scope = 0
        self.scenes_checked = 0
        self.plex_items = 0
        self.no_file = 0
        self._stash_before = stash.requests

    @property
    def stash_requests(self) -> int:
        return self.stash.requests - self._stash_before

    @property
    def plex_requests(self) -> int:
        return self.counter.total if self.counter is not None else 0

    # ------------------------------------------------------------------ the pass
    def gaps(self, since=None, light_before=None):
        """Yield (scene, Gap) for every scene of the scope that is a gap (each scene once).

        With `light_before` (an RFC3339 time), scenes Stash last changed before it are checked
        only for a missing or empty Plex item, from the listing (the "7d+" scope)."""
        self._light_before = gaps.parse_time(light_before) if light_before else None
        from sync.sync_state import SyncState
        from worker.plex_writer import PosterMemo

        done, state, memo = 0, None, None
        for count, scenes in stash_pages(self.stash, since):
            self.scenes_in_scope = count
            self.heartbeat()
            if not count:
                break
            if self.server is None:
                self._read_plex()
                # Read per scene (`get`), never copied whole: 50,000 decoded records would cost
                # more memory than the rest of the pass.
                state = self._state_store = SyncState(self.data_dir, on_corrupt=_log_corrupt)
                memo = PosterMemo(self.data_dir, on_corrupt=_log_corrupt)
            for scene in scenes:
                gap = self._check(scene, state, memo)
                self.scenes_checked += 1
                if gap is not None:
                    yield scene, gap
                if len(self._unverified) >= RECONCILE_BATCH:
                    for pair in self._verify(memo):
                        yield pair
            done += len(scenes)
            self.progress(PLEX_SHARE + (1 - PLEX_SHARE) * min(1.0, done / float(max(count, 1))))
        for pair in self._verify(memo):
            yield pair
        if self.matcher is not None:
            self.matcher.flush()
        self.progress(1.0)

    def _verify(self, memo):
        """Compare the waiting never-synced scenes with their full Plex items (one request per
        batch); yield (scene, Gap) for each that differs, remember the others for adoption."""
        from worker.batch_read import fetch_items

        pending, self._unverified = self._unverified, []
        if not pending:
            return
        self.heartbeat()
        try:
            items = fetch_items(self.server, [rk for _, rk, _, _ in pending], most=RECONCILE_BATCH)
        except Exception as exc:  # noqa: BLE001 - one sentence for the user, whatever went wrong
            from stashplugin.task import TaskError
            from worker.errors import classify

            raise TaskError("Reconciliation could not read Plex items: %s" % classify(exc))
        for scene, rk, desired, desired_hash in pending:
            gap = self._judge(scene, rk, desired, desired_hash, items.get(rk), memo)
            if gap is not None:
                yield scene, gap
        self._save_adoptions(memo)  # per batch: memory stays bounded, progress is kept

    def _judge(self, scene: dict, rk: int, desired: dict, desired_hash: str, item, memo):
        """The gap of a never-synced scene from its full Plex item, or None: adopted (recorded
        for `_save_adoptions` unless this is a preview)."""
        from worker import metadata
        from worker.plex_writer import read_item

        sid = str(scene.get("id"))
        if item is None or getattr(item, "TYPE", None) != "movie":
            return gaps.missing(sid, "the Plex item %s that held its file is gone" % rk, self.settings)
        current = read_item(item)  # (also switches plexapi's reload of "missing" attributes off)
        changes = metadata.diff_metadata(desired, current, self.settings, written=None)
        fields = [f for f in metadata.FIELDS if f in changes] + missing_images(desired, item)
        if fields:
            reason = "never synced by PlexSync; Plex differs: %s" % gaps.field_words(fields)
            return gaps.Gap(sid, gaps.STALE, fields, reason, rating_key=rk)
        self.adopted += 1
        if self.adopt:
            previous = memo.get(rk).get("written") if memo is not None else None
            written = metadata.written_after(desired, current, {}, previous)
            self._adoptions[sid] = (rk, desired_hash, scene.get("updated_at"), written)
        return None

    def _save_adoptions(self, memo) -> None:
        """Record the adopted scenes as synced: one append to the sync state, one to the memo."""
        adoptions, self._adoptions = self._adoptions, {}
        if not adoptions:
            return
        from sync.sync_state import SyncState
        from worker.plex_writer import PosterMemo

        now = time.time()
        if self._adoption_stores is None:  # writers only: a first run adopts 50,000 scenes
            self._adoption_stores = (
                SyncState(self.data_dir, on_corrupt=_log_corrupt, write_only=True),
                PosterMemo(self.data_dir, on_corrupt=_log_corrupt, write_only=True),
            )
        state, memo_out = self._adoption_stores
        entries = {}
        for sid, (rk, desired_hash, updated_at, written) in adoptions.items():
            state.record(sid, desired_hash, updated_at, now)
            entry = entries.get(rk) or memo.get(rk)
            entry["written"] = written
            entries[rk] = entry
        state.flush()
        memo_out.set_many(entries)

    def _read_plex(self) -> None:
        from worker.matcher import MatchCache, Matcher, settings_signature

        self.server, self.counter = self._connect()
        index = ListingIndex(self.data_dir, self._keep)

        def on_progress(fraction):
            self.heartbeat()
            self.progress(PLEX_SHARE * fraction)

        try:
            index.refresh(self.server, self.settings.libraries, progress=on_progress)
        except Exception as exc:  # noqa: BLE001 - one sentence for the user, whatever went wrong
            from stashplugin.task import TaskError
            from worker.errors import classify

            raise TaskError("Reconciliation could not read Plex's libraries: %s" % classify(exc))
        self.plex_items = len(self.listed)
        # New matches are written in a few large appends, not one per 200 (the drain's pace).
        cache = MatchCache(
            self.data_dir, settings_signature(self.server, self.settings), flush_every=MATCH_CACHE_FLUSH
        )
        self.matcher = Matcher(self.server, self.settings, self.data_dir, index=index, cache=cache)

    def _keep(self, section_id, video) -> None:
        rk = video.get("ratingKey")
        if rk is not None and rk.isdigit():
            self.listed[int(rk)] = gaps.listed_item(video)

    def _check(self, scene: dict, state, memo):
        from worker.metadata import build_metadata, filter_reason, metadata_hash

        sid = str(scene.get("id"))
        if filter_reason(scene, self.settings):
            return None  # kept out of Plex by a filter setting: not a gap
        try:
            rk = self._match(scene)
        except NotInPlex as exc:
            return gaps.missing(sid, exc.detail or str(exc), self.settings)
        except AmbiguousMatch as exc:
            return gaps.ambiguous(sid, exc.detail or str(exc))
        except SyncFailure as exc:
            if exc.error_class != NO_FILE:
                raise
            self.no_file += 1  # nothing to match: not a gap PlexSync can close
            return None
        desired = build_metadata(scene, self.settings)
        if self._light_before is not None:
            changed = gaps.parse_time(scene.get("updated_at"))
            if changed is not None and changed < self._light_before:
                empty = gaps.empty_fields(desired, self.listed[rk])
                return (
                    gaps.Gap(sid, gaps.EMPTY, empty, gaps.empty_reason(empty), rating_key=rk)
                    if empty
                    else None
                )
        written = (memo.journal.get(str(rk)) or {}).get("written")
        record = state.get(sid)  # (SyncState: one record decoded, the store is never copied whole)
        desired_hash = metadata_hash(desired)
        gap = gaps.detect(
            sid,
            desired,
            desired_hash,
            scene.get("updated_at"),
            record,
            self.listed[rk],
            written,
            self.settings,
            rating_key=rk,
        )
        if self.exact and gap is not None and gap.kind == gaps.STALE and gaps.unverified(record, written):
            self._unverified.append((scene, rk, desired, desired_hash))  # decided by `_verify`
            return None
        return gap

    def _match(self, scene: dict) -> int:
        """The rating key of the scene's item in the listing (a stale cached match is redone once)."""
        match = self.matcher.match(scene)
        listed = self.listed.get(match.rating_key)
        if listed is None or not self.matcher.still_matches(match, listed["files"]):
            self.matcher.invalidate(str(scene.get("id")), match.rating_key)
            match = self.matcher.match(scene)
            if match.rating_key not in self.listed:
                raise NotInPlex("the Plex item matched before (%s) is gone" % match.rating_key)
        return match.rating_key


# (gap field, the desired value naming Stash's image, the Plex item's attribute for its image)
IMAGES = (("poster", "poster_url", "thumb"), ("art", "art_url", "art"))


def missing_images(desired: dict, item) -> list:
    """The images PlexSync would upload ('Sync poster' / 'Sync background' on) of which the full
    Plex item has none at all: no `thumb` (poster) or `art` (background) attribute in its XML.
    Whether an image Plex has *is* Stash's cannot be told without downloading both (see
    docs/ARCHITECTURE.md, "Reconciliation"), so an item with any image counts as matching."""
    return [field for field, key, attr in IMAGES if desired.get(key) and not getattr(item, attr, None)]


def _log_corrupt(exc) -> None:
    log.error("%s; reconciliation goes on without it." % exc)
