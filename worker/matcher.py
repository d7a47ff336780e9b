"""Which Plex item is this Stash scene? `Matcher.match(scene)` answers without paging a library.

Order of evidence: the persisted match cache (zero requests; the writer's GET of the item
verifies it and calls `invalidate` when it is wrong), then the Plex path index (zero requests on
a hit; on a miss, one incremental refresh - at most one every REFRESH_EVERY seconds, because a
scene's file may have been scanned into Plex after the index was read, also while a drain runs
and waits for a retry). A file that was moved or renamed inside Plex keeps its item and its
addedAt, so no incremental refresh finds its new path: a miss that survives the refresh pages the
libraries again, once per process and only when the index is older than REBUILD_ON_MISS_AFTER.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from stashplugin import log
from sync.journal_map import JournalMap
from sync.store import JsonFile, PendingWrites, remove_files
from worker.errors import NO_FILE, AmbiguousMatch, NotInPlex, SyncFailure
from worker.paths import PathMapper, loose_key, path_key
from worker.plex_index import RULES, PlexIndex

REFRESH_EVERY = 2.0  # seconds between incremental refreshes of the path index on a miss
REBUILD_ON_MISS_AFTER = 900.0  # seconds: an index at least this old is paged again on a miss
CACHE_NAME = "match_cache.json"  # the older whole-file layout, migrated on first use
JOURNAL_NAME = "match_cache.jsonl"
CACHE_FORMAT = 1

CONFIDENCE = {"exact": 1.0, "loose": 0.9, "name_size": 0.75, "name": 0.5}
# Said to the user in ambiguity messages and debug lines.
RULE_WORDS = {
    "exact": "exact path",
    "loose": "path ignoring case",
    "name_size": "file name and size",
    "name": "file name",
}


@dataclass
class Match:
    """The Plex item chosen for a scene.

    `how` is the rule that found it ("exact", "loose", "name_size", "name") or "cache";
    `confidence` is 0..1; `candidates` are every item the rule found (empty for a cache hit);
    `file` is the Stash path matched and `plex_file` the Plex path it corresponds to.
    """

    rating_key: int
    how: str
    confidence: float
    candidates: list = ()
    file: str = ""
    plex_file: str = ""
    section_id: int | None = None

    def __post_init__(self):
        self.rating_key = int(self.rating_key)
        self.candidates = list(self.candidates)

    def __repr__(self) -> str:
        return "Match(rating_key=%r, how=%r, confidence=%.2f)" % (self.rating_key, self.how, self.confidence)


def _log_corrupt(exc) -> None:
    log.error("Match cache: %s; scenes will be matched again from the Plex path index." % exc)


SIGNATURE_KEY = "\u0000signature"  # the journal entry holding the settings the matches belong to


class MatchCache:
    """scene id -> {rating_key, file, plex_file, section, how, at}, in `match_cache.jsonl`.

    Writes are batched (`flush_every` changes) and appended to a journal (`sync.journal_map`),
    so a flush writes only the new matches, never the whole cache; a change lost to a crash
    only costs a repeat lookup in the index. `signature` ties the cache to the settings that
    produced it (Plex server, libraries, path mapping): when they change, it starts empty.
    The older whole-file `match_cache.json` is migrated on first use.
    """

    def __init__(self, data_dir: str, signature=None, flush_every: int = 200):
        self.data_dir = data_dir
        self.signature = signature
        legacy = os.path.join(data_dir, CACHE_NAME)
        self._journal = JournalMap(
            os.path.join(data_dir, JOURNAL_NAME), on_corrupt=_log_corrupt, legacy=(legacy, _legacy_items)
        )
        self._pending = PendingWrites(self._write, every=flush_every)  # scene id -> entry, None: removal

    def _valid(self) -> bool:
        return self._journal.get(SIGNATURE_KEY) == self.signature

    def get(self, scene_id):
        """The cached entry for a scene, or None."""
        key = str(scene_id)
        if key in self._pending:
            return self._pending.changes[key]
        if not self._valid():
            return None
        entry = self._journal.get(key)
        return entry if isinstance(entry, dict) else None

    def put(self, scene_id, entry: dict) -> None:
        """Remember a match (written at the next flush)."""
        self._pending.note(str(scene_id), dict(entry))

    def drop(self, scene_id) -> None:
        """Forget a scene's match."""
        self._pending.note(str(scene_id), None)

    def flush(self) -> None:
        """Append pending changes (other processes' entries stay: the journal is shared)."""
        self._pending.flush()

    def _write(self, pending: dict) -> None:
        if not self._valid():
            self._journal.clear()  # matches made under other settings mean nothing now
            pending[SIGNATURE_KEY] = self.signature
        self._journal.put_many(pending)

    def clear(self) -> int:
        """Forget every match (the Clear Match Cache task); returns how many there were."""
        counted = len(self)
        self._journal.clear()
        self._pending.discard()
        return counted

    def __len__(self) -> int:
        keys = set(k for k in self._journal.keys() if k != SIGNATURE_KEY) if self._valid() else set()
        for key, entry in self._pending.changes.items():
            (keys.add if entry is not None else keys.discard)(key)
        return len(keys)


def remove_match_cache(data_dir: str) -> list:
    """Forget every match, in both layouts, by removing the files (Clear Match Cache, run while
    no drain holds a cache open). Returns the names of the files removed."""
    return remove_files(data_dir, (JOURNAL_NAME, CACHE_NAME))


def _legacy_items(path: str):
    """The entries of the older `match_cache.json` (a damaged one is moved aside and reported)."""
    data = JsonFile(path, default={}, on_corrupt=_log_corrupt).read()
    scenes = data.get("scenes")
    if data.get("v") != CACHE_FORMAT or not isinstance(scenes, dict):
        return {}
    items = {k: v for k, v in scenes.items() if isinstance(v, dict)}
    items[SIGNATURE_KEY] = data.get("signature")
    return items


def settings_signature(server, settings) -> list:
    """What a cached match depends on besides the files: Plex server, libraries, path mapping."""
    return [
        getattr(server, "machineIdentifier", None) or "",
        sorted(n.casefold() for n in settings.libraries),
        [list(pair) for pair in settings.path_pairs],
    ]


class Matcher:
    """Matches Stash scenes to Plex items for one process (one per drain).

    `requests` counts the Plex requests made here, for the drain's report.
    """

    def __init__(
        self, server, settings, data_dir: str, index: PlexIndex | None = None, cache: MatchCache | None = None
    ):
        self.server = server
        self.settings = settings
        self.mapper = PathMapper(settings.path_pairs)
        self.index = index if index is not None else PlexIndex(data_dir)
        self.cache = (
            cache if cache is not None else MatchCache(data_dir, settings_signature(server, settings))
        )
        self._index_checked = False  # full-rebuild check done in this process
        self._refreshed_at = None  # when this process last refreshed the index on a miss
        self._rebuilt = False  # full rebuild on a miss done in this process (at most once)

    @property
    def requests(self) -> int:
        return self.index.requests

    def match(self, scene: dict) -> Match:
        """The Plex item for `scene` (a dict shaped by stashplugin.stash.SCENE_FIELDS).

        Raises SyncFailure(NO_FILE) for a scene without files, NotInPlex when no Plex item
        has its file, AmbiguousMatch when several could and 'Strict matching' is on.
        """
        scene_id = str(scene.get("id"))
        files = [f for f in (scene.get("files") or []) if isinstance(f, dict) and f.get("path")]
        if not files:
            raise SyncFailure(NO_FILE, "scene %s" % scene_id)
        cached = self._from_cache(scene_id, files)
        if cached is not None:
            return cached
        self._ensure_index()
        found, file = self._lookup(files)
        if found.rule is None and self._may_refresh():
            self._refresh()
            found, file = self._lookup(files)
        if found.rule is None and not self._rebuilt and self.index.age() >= REBUILD_ON_MISS_AFTER:
            self._rebuilt = True
            self.index.refresh(
                self.server,
                self.settings.libraries,
                full="a scene's file was not in it; files may have moved in Plex",
            )
            found, file = self._lookup(files)
        log.add_path(found.plex_path)  # hidden whole in logs when 'obfuscate_paths' is on
        if found.rule is None:
            raise NotInPlex(
                "no Plex item has the file %s (looked for %s in %s)"
                % (file["path"], found.plex_path, self._where(found.plex_path))
            )
        match = self._choose(scene_id, found, file)
        self.cache.put(
            scene_id,
            {
                "rating_key": match.rating_key,
                "file": match.file,
                "plex_file": match.plex_file,
                "section": match.section_id,
                "how": match.how,
                "at": int(time.time()),
            },
        )
        return match

    def peek(self, scene: dict):
        """The rating key `match` would give without asking Plex (match cache or the index as it
        is), or None when that would take a request or fail. Records nothing."""
        scene_id = str(scene.get("id"))
        files = [f for f in (scene.get("files") or []) if isinstance(f, dict) and f.get("path")]
        if not files:
            return None
        entry = self.cache.get(scene_id)
        if (
            entry
            and entry.get("rating_key") is not None
            and path_key(entry.get("file") or "") in {path_key(f["path"]) for f in files}
        ):
            return int(entry["rating_key"])
        self._ensure_index()
        found, file = self._lookup(files)
        if found.rule is None:
            return None
        try:
            return self._choose(scene_id, found, file).rating_key
        except SyncFailure:
            return None

    def still_matches(self, match: Match, plex_files) -> bool:
        """Does the Plex item (its current file paths) still hold the file this match was made for?

        Reconciliation (reconcile/scan.py) calls this with the item's files from its listing; on
        False it calls `invalidate` and matches once more. The drain does not call it: it matches
        again only when Plex answers 404 for the item.
        """
        if not match.plex_file:
            return True
        want = loose_key(match.plex_file)
        return any(loose_key(f) == want for f in plex_files or ())

    def invalidate(self, scene_id, rating_key=None) -> None:
        """Forget a scene's match because its Plex item is gone (404) or holds another file now.

        The item is also dropped from the path index, so the next `match` looks again.
        """
        entry = self.cache.get(scene_id)
        self.cache.drop(scene_id)
        for rk in {rating_key, (entry or {}).get("rating_key")}:
            if rk is not None:
                self.index.forget(rk)

    def flush(self) -> None:
        """Write the match cache and path index changes (the drain calls this before it exits)."""
        self.cache.flush()
        self.index.flush()

    # ------------------------------------------------------------------ steps
    def _from_cache(self, scene_id: str, files: list):
        entry = self.cache.get(scene_id)
        if not entry:
            return None
        paths = {path_key(f["path"]) for f in files}
        if path_key(entry.get("file") or "") not in paths or entry.get("rating_key") is None:
            # The scene's file changed in Stash since it was matched: match it afresh.
            self.cache.drop(scene_id)
            return None
        return Match(
            entry["rating_key"],
            "cache",
            CONFIDENCE.get(entry.get("how"), 0.5),
            (),
            entry.get("file") or "",
            entry.get("plex_file") or "",
            entry.get("section"),
        )

    def _ensure_index(self) -> None:
        if self._index_checked:
            return
        if self.index.full_rebuild_needed(self.server, self.settings.libraries):
            self.index.refresh(self.server, self.settings.libraries)
        self._index_checked = True

    def _may_refresh(self) -> bool:
        # Not counting a full build: a file may be scanned into Plex while a long drain runs.
        return self._refreshed_at is None or time.monotonic() - self._refreshed_at >= REFRESH_EVERY

    def _refresh(self) -> None:
        self.index.refresh(self.server, self.settings.libraries)
        self._refreshed_at = time.monotonic()

    def _lookup(self, files: list):
        """The best rule over the scene's files; the primary (first) file wins ties."""
        best = None
        for n, f in enumerate(files):
            found = self.index.lookup(f["path"], self.mapper, size=f.get("size") or None)
            if found.rule is None:
                continue
            rank = (RULES.index(found.rule), n)
            if best is None or rank < best[0]:
                best = (rank, found, f)
        if best is None:
            return self.index.lookup(files[0]["path"], self.mapper), files[0]
        return best[1], best[2]

    def _choose(self, scene_id: str, found, file: dict) -> Match:
        candidates, stash_file = found.candidates, file["path"]
        # "name" with sizes known on both sides means no same-named file had the scene's size.
        size_differs = (
            found.rule == "name" and bool(file.get("size")) and all(c.size is not None for c in candidates)
        )
        if self.settings.strict_matching and size_differs:
            raise NotInPlex(
                "a Plex file is named like %s but its size differs, so it is another file" % stash_file
            )
        if len(candidates) > 1 and self.settings.strict_matching:
            raise AmbiguousMatch(
                "%d Plex items match %s by %s (rating keys %s); limit 'Plex libraries' or fix "
                "'Path mapping' so only one does, or turn off 'Strict matching'"
                % (
                    len(candidates),
                    stash_file,
                    RULE_WORDS[found.rule],
                    ", ".join(str(c.rating_key) for c in candidates),
                )
            )
        best = sorted(candidates, key=lambda c: self._preference(c, found.plex_path))[0]
        confidence = CONFIDENCE[found.rule] / len(candidates)
        if size_differs:
            confidence = min(confidence, 0.25)
        if len(candidates) > 1:
            log.debug(
                "Scene %s: %d Plex items match %s by %s; chose %s (%s)"
                % (
                    scene_id,
                    len(candidates),
                    stash_file,
                    RULE_WORDS[found.rule],
                    best.rating_key,
                    "its library holds the mapped path, newest first",
                )
            )
        elif found.rule != "exact":
            log.debug(
                "Scene %s: matched Plex item %s by %s (%s)"
                % (scene_id, best.rating_key, RULE_WORDS[found.rule], best.file)
            )
        return Match(
            best.rating_key, found.rule, confidence, candidates, stash_file, best.file, best.section_id
        )

    def _preference(self, candidate, plex_path: str) -> tuple:
        """Sort key: a library whose folder holds the mapped path first, then the newest item."""
        covered = any(_under(plex_path, loc) for loc in self.index.locations(candidate.section_id))
        return (not covered, -(candidate.added_at or 0), candidate.rating_key)

    def _where(self, plex_path: str) -> str:
        """Which libraries were searched, and a hint when the path lies outside all their folders."""
        sections = self.index.sections()
        if not sections:
            return "Plex"
        text = "Plex libraries " + ", ".join("'%s'" % t for t in sorted(sections.values()))
        folders = [loc for sid in sections for loc in self.index.locations(sid)]
        if folders and not any(_under(plex_path, loc) for loc in folders):
            text += "; that path is outside their folders %s, so check 'Path mapping'" % ", ".join(folders)
        return text


def _under(path: str, folder: str) -> bool:
    """Is `path` inside `folder` (compared case-insensitively, separators normalised)?"""
    p, f = loose_key(path), loose_key(folder).rstrip("/")
    return bool(f) and (p == f or p.startswith(f + "/"))
