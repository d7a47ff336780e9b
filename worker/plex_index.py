"""A persisted index of the files in Plex's movie libraries: file path -> Plex item.

Finding a scene's Plex item by asking Plex costs a whole-library listing (Plex cannot search by
file path), so the index pages each selected movie library once, keeps what it learned in
`plex_index.jsonl`, and afterwards asks only for items added since (`addedAt>>=`, one small
request per library). Items that moved or were deleted are caught by `forget` (the writer found
the item gone), by the matcher's full rebuild when a scene's file is missing from an index older
than a few minutes (worker/matcher.py), and by a full rebuild once the index is older than
`max_age` (default 24 h); so is a movie library created in Plex after the index was built
(with 'Plex libraries' empty).

The file is a journal (`sync.journal_map`): one record per Plex item, so what is written is what
changed in Plex, not the whole index. A full rebuild (or reconciliation's listing) compares each
listed item with what the index holds and appends only new, changed and vanished items, plus the
header record. Entries (about 120 bytes per item):

    "\\u0000meta": {"v": 2, "server": <machineIdentifier>, "libraries": [<configured names, casefolded>],
                   "built_at": <epoch>, "sections": {"<id>": {"title": ..., "locations": [...],
                   "refreshed_at": <max addedAt seen>}}}
    "<ratingKey>": [<section id>, [files], [sizes], addedAt]

The older whole-file `plex_index.json` is migrated on first use.
"""

from __future__ import annotations

import os
import time
from collections import namedtuple
from urllib.parse import urlencode

from plexapi.exceptions import NotFound

from stashplugin import log
from sync.journal_map import JournalMap
from sync.store import JsonFile, remove_files
from worker.errors import INVALID_SETTINGS, SyncFailure
from worker.paths import loose_key, name_key, path_key

FILE_NAME = "plex_index.jsonl"
LEGACY_NAME = "plex_index.json"
META = "\u0000meta"  # the journal entry that says what the index covers
FORMAT = 2
PAGE_SIZE = 1000
MAX_AGE = 24 * 3600.0
WRITE_CHUNK = 5000  # changed items appended per write while a full listing is read

# Rules in order of trust; `Matcher` ranks candidates by this order.
RULES = ("exact", "loose", "name_size", "name")
KEYS = {"exact": path_key, "loose": loose_key, "name": name_key}

Candidate = namedtuple("Candidate", "rating_key section_id file size added_at")
Lookup = namedtuple("Lookup", "rule candidates plex_path")


def _log_corrupt(exc) -> None:
    log.error("Plex path index: %s; what is missing is read from Plex again." % exc)


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _library_key(names) -> list:
    return sorted({n.strip().casefold() for n in (names or []) if n and n.strip()})


class PlexIndex:
    """Stash-independent map of Plex movie files, persisted in `<data_dir>/plex_index.jsonl`."""

    def __init__(self, data_dir: str, max_age: float = MAX_AGE, clock=time.time):
        self.data_dir = data_dir
        self.max_age = max_age
        self.clock = clock
        self.requests = 0
        self.journal = JournalMap(
            os.path.join(data_dir, FILE_NAME),
            on_corrupt=_log_corrupt,
            legacy=(os.path.join(data_dir, LEGACY_NAME), _legacy_items),
        )
        self._meta = None
        self._maps = {}  # kind -> {key: rating key, or a tuple of them}: hints, checked on lookup
        self._forgotten = {}  # rating key (str) -> None: removals not written yet (`flush`)

    # ------------------------------------------------------------------ state
    def _state(self) -> dict:
        if self._meta is None:
            meta = self.journal.get(META)
            if (
                not isinstance(meta, dict)
                or meta.get("v") != FORMAT
                or not isinstance(meta.get("sections"), dict)
            ):
                meta = {}  # never built, or an unknown layout: rebuilt, not an error
            self._meta = meta
        return self._meta

    def _entry(self, rating_key):
        """[section id, files, sizes, addedAt] of an item the index holds, or None."""
        key = str(rating_key)
        if key in self._forgotten:
            return None
        entry = self.journal.get(key)
        if not (isinstance(entry, list) and len(entry) == 4 and isinstance(entry[1], list)):
            return None
        return entry

    def flush(self) -> None:
        """Write pending removals (`forget`) to disk; cheap when there are none."""
        if self._forgotten:
            self.journal.delete_many(list(self._forgotten))
            self._forgotten = {}

    @property
    def size(self) -> int:
        """How many Plex items the index knows."""
        keys = self.journal.keys()
        return sum(1 for k in keys if not k.startswith("\u0000") and k not in self._forgotten)

    def sections(self) -> dict:
        """{section id: title} of the libraries the index covers."""
        return {int(sid): s.get("title", "") for sid, s in self._state().get("sections", {}).items()}

    def locations(self, section_id) -> list:
        """The folders Plex lists for a library (its Location paths)."""
        return list(self._state().get("sections", {}).get(str(section_id), {}).get("locations", []))

    def age(self) -> float:
        """Seconds since the last full build (infinite when never built)."""
        built = self._state().get("built_at")
        return self.clock() - float(built) if isinstance(built, (int, float)) else float("inf")

    def full_rebuild_needed(self, server=None, library_names=None) -> str:
        """Why the index must be paged again from scratch, or "" when an incremental refresh will do.

        Reasons: never built; built for another Plex server or another 'Plex libraries' setting;
        older than `max_age` (files moved or deleted in Plex are only noticed by a full pass).
        """
        data = self._state()
        if not data.get("sections"):
            return "not built yet"
        machine = getattr(server, "machineIdentifier", None) if server is not None else None
        if machine and data.get("server") and machine != data.get("server"):
            return "a different Plex server"
        if library_names is not None and _library_key(library_names) != data.get("libraries", []):
            return "the 'Plex libraries' setting changed"
        age = self.clock() - float(data.get("built_at") or 0)
        if age > self.max_age or age < -3600:
            return "older than %d hours" % (self.max_age // 3600)
        return ""

    # ------------------------------------------------------------------ refresh
    def refresh(self, server, library_names, progress=None, full=None) -> dict:
        """Bring the index up to date with Plex; returns {"mode", "requests", "added"}.

        `full=None` decides by `full_rebuild_needed`; `full` may be the reason, as a string, for
        the log line. An incremental refresh of an unchanged
        library costs one small request per library and writes nothing. `progress(fraction)`
        is called during a full build.
        """
        before = self.requests
        if full is None:
            reason = self.full_rebuild_needed(server, library_names)
        else:
            reason = (full if isinstance(full, str) else "a full rebuild was asked for") if full else ""
        added = None
        if not reason:
            try:
                added = self._incremental(server)
            except NotFound:  # a library deleted in Plex answers 404
                reason = "a library is gone"
        if reason:
            log.info("Reading Plex's movie libraries into the path index (%s)." % reason)
            added = self._full(server, library_names, progress)
            log.info(
                "Plex path index: %d items from %d libraries in %d requests."
                % (self.size, len(self._state()["sections"]), self.requests - before)
            )
        self.flush()
        return {
            "mode": "full" if reason else "incremental",
            "requests": self.requests - before,
            "added": added,
        }

    def _query(self, server, key: str):
        self.requests += 1
        return server.query(key)

    def _select_sections(self, server, library_names) -> list:
        root = self._query(server, "/library/sections")
        found = []
        for d in root.findall("Directory"):
            found.append(
                {
                    "id": _int(d.get("key")),
                    "type": d.get("type"),
                    "title": d.get("title") or "",
                    "locations": [loc.get("path") for loc in d.findall("Location") if loc.get("path")],
                }
            )
        movies = [s for s in found if s["type"] == "movie" and s["id"] is not None]
        names = [n.strip() for n in (library_names or []) if n and n.strip()]
        if not names:
            if not movies:
                raise SyncFailure(
                    INVALID_SETTINGS, "Plex has no movie library; create one for your Stash files"
                )
            return movies
        chosen, missing = [], []
        for name in names:
            hits = [s for s in found if s["title"] == name] or [
                s for s in found if s["title"].casefold() == name.casefold()
            ]
            if not hits:
                missing.append(name)
                continue
            for s in hits:
                if s["type"] != "movie":
                    raise SyncFailure(
                        INVALID_SETTINGS,
                        "setting 'Plex libraries': '%s' is a %s library, PlexSync syncs "
                        "into movie libraries (%s)" % (s["title"], s["type"], _names(movies)),
                    )
                if s not in chosen:
                    chosen.append(s)
        if missing:
            raise SyncFailure(
                INVALID_SETTINGS,
                "setting 'Plex libraries' names %s, which Plex does not have; Plex's "
                "movie libraries are: %s" % (", ".join("'%s'" % n for n in missing), _names(movies)),
            )
        return chosen

    def _page(self, server, section_id: int, filters: list, on_page=None):
        """Yield (video element) of one library listing, PAGE_SIZE items per request."""
        start = 0
        while True:
            params = (
                [("type", "1")]
                + filters
                + [
                    ("sort", "addedAt"),
                    ("X-Plex-Container-Start", str(start)),
                    ("X-Plex-Container-Size", str(PAGE_SIZE)),
                ]
            )
            # Plex filter operators live in the key (`addedAt>>=`); urlencode would escape them twice.
            query = "&".join(
                k + "=" + v if k.endswith((">>", "<<")) else urlencode([(k, v)]) for k, v in params
            )
            root = self._query(server, "/library/sections/%d/all?%s" % (section_id, query))
            videos = root.findall("Video")
            for video in videos:
                yield video
            start += len(videos)
            total = _int(root.get("totalSize"))
            if on_page is not None and total:
                on_page(start, total)
            if len(videos) < PAGE_SIZE or (total is not None and start >= total):
                return

    def _full(self, server, library_names, progress) -> int:
        """Page every chosen library; append what differs from the index (new, changed and
        vanished items, in chunks) and the new header record. Returns how many items Plex has."""
        chosen = self._select_sections(server, library_names)
        unseen = {k for k in self.journal.keys() if k != META}
        changes, sections, listed = {}, {}, 0
        for n, sec in enumerate(chosen):
            newest = 0

            def on_page(done, total, n=n):
                if progress is not None:
                    progress((n + min(1.0, done / float(total))) / len(chosen))

            for video in self._page(server, sec["id"], [], on_page):
                rk, entry = _entry(video, sec["id"])
                if rk is None:
                    continue
                listed += 1
                unseen.discard(str(rk))
                newest = max(newest, entry[3])
                if not self.journal.holds(rk, entry):
                    changes[str(rk)] = entry
                if len(changes) >= WRITE_CHUNK:
                    self._write_changes(changes)
            sections[str(sec["id"])] = {
                "title": sec["title"],
                "locations": sec["locations"],
                "refreshed_at": newest,
            }
        changes.update(dict.fromkeys(unseen))
        changes[META] = {
            "v": FORMAT,
            "server": getattr(server, "machineIdentifier", None),
            "libraries": _library_key(library_names),
            "built_at": self.clock(),
            "sections": sections,
        }
        self._forgotten = {}  # the listing is the truth now
        self._write_changes(changes)
        return listed

    def _write_changes(self, changes: dict) -> None:
        """Append `changes` (rating key or META -> value, None removes) and empty it."""
        if any(k != META for k in changes):
            self._maps = {}
        self.journal.put_many(changes)
        if META in changes:
            self._meta = None
        changes.clear()

    def _incremental(self, server) -> int:
        fresh = []
        for sid, sec in self._state()["sections"].items():
            since = max(int(sec.get("refreshed_at") or 0) - 1, 0)
            # `>>=` is "strictly after"; asking from one second earlier also catches items
            # Plex added in the same second the last listing was read (already-known ones are skipped).
            for video in self._page(server, int(sid), [("addedAt>>", str(since))]):
                rk, entry = _entry(video, int(sid))
                if rk is not None and (str(rk) in self._forgotten or not self.journal.holds(rk, entry)):
                    fresh.append((str(rk), entry))
        if fresh:
            self._insert(fresh)
            log.debug("Plex path index: %d new or changed items" % len(fresh))
        return len(fresh)

    def _insert(self, fresh: list) -> None:
        meta = dict(self._state())
        meta["sections"] = sections = {sid: dict(sec) for sid, sec in meta["sections"].items()}
        changes = {}
        for rk, entry in fresh:
            sid = entry[0]
            # Plex holds a file in one item per library: an older item with the same file was
            # deleted and re-added (a rescan), so it must not linger as a second candidate.
            for f in entry[1]:
                for c in self._candidates("exact", path_key(f)):
                    if c.section_id == sid and str(c.rating_key) != rk:
                        changes[str(c.rating_key)] = None
            changes[rk] = entry
            self._forgotten.pop(rk, None)
            sec = sections[str(sid)]
            sec["refreshed_at"] = max(int(sec.get("refreshed_at") or 0), entry[3])
        changes[META] = meta
        self._write_changes(changes)

    def forget(self, rating_key) -> bool:
        """Drop an item that turned out to be gone (or to hold another file); True if it was known.

        Written to disk by the next `flush`.
        """
        if self._entry(rating_key) is None:
            return False
        self._forgotten[str(rating_key)] = None
        return True

    # ------------------------------------------------------------------ lookup
    def _map(self, kind: str) -> dict:
        """{key of a file: rating key, or a tuple of them}, built once per change of the index.
        A hint only: `_candidates` checks each item against the index as it is now."""
        found = self._maps.get(kind)
        if found is not None:
            return found
        keyfn = KEYS[kind]
        found = {}
        for key, entry in self.journal.each():
            rk = _int(key)
            if rk is None or not isinstance(entry, list) or len(entry) != 4:
                continue  # (META, or what no version of this code writes)
            for f in entry[1] if isinstance(entry[1], list) else ():
                k = keyfn(f)
                have = found.get(k)
                if have is None:
                    found[k] = rk
                elif have != rk and not (isinstance(have, tuple) and rk in have):
                    found[k] = (have if isinstance(have, tuple) else (have,)) + (rk,)
        self._maps[kind] = found
        return found

    def _candidates(self, kind: str, key: str) -> list:
        """The items holding a file whose `kind` key is `key`, one Candidate per item."""
        hit = self._map(kind).get(key)
        if hit is None:
            return []
        keyfn, out = KEYS[kind], []
        for rk in hit if isinstance(hit, tuple) else (hit,):
            entry = self._entry(rk)
            if entry is None:
                continue
            sid, files, sizes, added = entry
            for i, f in enumerate(files):
                if keyfn(f) == key:
                    size = sizes[i] if isinstance(sizes, list) and i < len(sizes) else None
                    out.append(Candidate(rk, sid, f, size, added))
                    break
        return out

    def lookup(self, stash_path: str, mapper, size=None) -> Lookup:
        """Plex items that may hold `stash_path`, and which rule found them.

        Rules, most trusted first: "exact" (mapped path), "loose" (ignoring case), "name_size"
        (same file name and size, any folder), "name" (same file name; sizes unknown, or known to
        differ when no other same-named file is left).
        An empty `candidates` with rule None means no rule matched.
        """
        plex_path = mapper.to_plex(stash_path)
        for rule, key in (("exact", path_key(plex_path)), ("loose", loose_key(plex_path))):
            hits = self._candidates(rule, key)
            if hits:
                return Lookup(rule, hits, plex_path)
        hits = self._candidates("name", name_key(plex_path))
        if not hits:
            return Lookup(None, [], plex_path)
        if size:
            same = [c for c in hits if c.size == size]
            if same:
                return Lookup("name_size", same, plex_path)
            # Prefer files whose size Plex did not report over ones that are known to differ.
            hits = [c for c in hits if c.size is None] or hits
        return Lookup("name", hits, plex_path)


def _entry(video, section_id: int):
    """(ratingKey, [section id, files, sizes, addedAt]) of one listed <Video>."""
    files, sizes = [], []
    for media in video.findall("Media"):
        for part in media.findall("Part"):
            if part.get("file"):
                files.append(part.get("file"))
                sizes.append(_int(part.get("size")))
    return _int(video.get("ratingKey")), [section_id, files, sizes, _int(video.get("addedAt"), 0)]


def _legacy_items(path: str) -> dict:
    """The entries of the older whole-file `plex_index.json` (format 1); {} when it is of another
    layout or cannot be read (moved aside and reported): the index is then read from Plex again."""
    data = JsonFile(path, default={}, on_corrupt=_log_corrupt).read()
    if data.get("v") != 1 or not isinstance(data.get("sections"), dict):
        return {}
    items, sections = {}, {}
    for sid, sec in data["sections"].items():
        if _int(sid) is None or not isinstance(sec, dict):
            continue
        sections[sid] = {k: sec.get(k) for k in ("title", "locations", "refreshed_at")}
        for rk, old in (sec.get("items") or {}).items():
            if _int(rk) is not None and isinstance(old, list) and len(old) == 3:
                items[rk] = [int(sid), old[0], old[1], old[2]]
    items[META] = {
        "v": FORMAT,
        "server": data.get("server"),
        "libraries": data.get("libraries", []),
        "built_at": data.get("built_at"),
        "sections": sections,
    }
    return items


def _names(sections) -> str:
    return ", ".join("'%s'" % s["title"] for s in sections) or "none"


def remove_index(data_dir: str) -> list:
    """Forget the index (Clear Match Cache); the next sync pages the libraries again. Returns the
    names of the files removed."""
    return remove_files(data_dir, (FILE_NAME, LEGACY_NAME))
