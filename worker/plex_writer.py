"""Write one Stash scene into its Plex item: one GET, at most one PUT (a second one when the user
rating changed: Plex takes it on its own endpoint), an upload only for a new cover.

`PlexWriter.sync` reads the full item (`/library/metadata/{ratingKey}`: section listings truncate
tags and omit locks), asks `metadata.diff_metadata` what differs, and sends every change in a
single edit request. It then uploads the poster/background only when Stash's cover changed
(`PosterMemo` remembers what each item last got). plexapi and requests exceptions propagate
unchanged: the drain classifies them with `worker.errors.classify`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from urllib.parse import quote

from sync.store import JsonFile
from worker import metadata
from worker.errors import INVALID_DATA, STASH_UNREACHABLE, SyncFailure

# Our field keys -> the field/tag names Plex uses in edits and in <Field name=... locked=1/>.
EDIT_NAMES = {
    "title": "title",
    "titleSort": "titleSort",
    "summary": "summary",
    "tagline": "tagline",
    "studio": "studio",
    "originallyAvailableAt": "originallyAvailableAt",
    "actors": "actor",
    "genres": "genre",
    "collections": "collection",
    "contentRating": "contentRating",
    "labels": "label",
}
# Sent through plexapi's `rate()` endpoint, not the edit: Plex keeps it per user, without a lock.
RATE_FIELD = "userRating"
# Locked whatever 'Lock written fields' says: a content rating an agent can replace does not
# restrict anything (issue: "written to every synced item's content rating and locked").
ALWAYS_LOCKED = ("contentRating",)
_LOCK_NAMES = {name: key for key, name in EDIT_NAMES.items()}
_LOCK_NAMES.update({"role": "actors", "thumb": "poster", "art": "art"})

MOVIE_TYPE = 1  # plexapi.utils.searchType('movie')
COVER_WINDOW = 8  # covers downloaded ahead of the sync that uploads them


@dataclasses.dataclass
class WriteResult:
    """What one `PlexWriter.sync` did (or, with dry_run, would do)."""

    desired_hash: str
    changed: list = dataclasses.field(default_factory=list)  # field keys sent to Plex
    diff: dict = dataclasses.field(default_factory=dict)  # field -> new value / {"add", "remove"}
    skipped: dict = dataclasses.field(default_factory=dict)  # field -> why Stash's value could not be used
    unchanged: bool = True  # nothing was (or would be) written
    poster_uploaded: bool = False
    art_uploaded: bool = False
    plex_requests: int = 0


class PosterMemo:
    """What PlexSync last sent to each Plex item, in `<data_dir>/poster_memo.jsonl`.

    Per rating key: a hash of the cover URL and the sha1 of the poster/background uploaded (so an unchanged
    cover is neither downloaded nor uploaded again) and `written`, the fingerprints of the field
    values PlexSync wrote (so `preserve_plex_edits` can tell its own values from a person's).
    A journal (`sync.journal_map`): each `set` appends one line, so a sync writes a few hundred
    bytes however many items the library holds. The older layout (`poster_memo/NN.json`, 64
    shards rewritten whole) is migrated on first use.

    With `batched` (the drain), `set` keeps an entry in memory until `flush()`, which the drain
    calls before it acknowledges the jobs of a batch: one write and one fsync per batch instead
    of one per scene. A SIGKILL before the flush leaves those jobs unacknowledged, and their
    second sync finds Plex up to date: it records the same written values again, and at worst
    uploads a cover once more. Only an entry that claims or gives up collection or label names
    (`claims=True`) is written at once (without an fsync; the kernel keeps it through a SIGKILL):
    after a SIGKILL a name PlexSync added would otherwise look like one a person added, and
    PlexSync would never remove it.
    """

    FILE = "poster_memo.jsonl"
    LEGACY_FOLDER = "poster_memo"

    def __init__(self, data_dir: str, on_corrupt=None, write_only: bool = False, batched: bool = False):
        from sync.journal_map import JournalMap

        self.batched = batched
        self._pending = {}  # rating key -> entry `set` and not yet written (batched only)
        self.folder = os.path.join(data_dir, self.LEGACY_FOLDER)
        self.on_corrupt = on_corrupt
        self.journal = JournalMap(
            os.path.join(data_dir, self.FILE),
            on_corrupt=on_corrupt,
            legacy=(self.folder, self._read_legacy),
            keep=not write_only,
        )

    def _read_legacy(self, folder: str) -> dict:
        merged = {}
        for name in sorted(os.listdir(folder)):
            if name.endswith(".json"):
                data = JsonFile(os.path.join(folder, name), default={}, on_corrupt=self.on_corrupt).read()
                merged.update({k: v for k, v in data.items() if isinstance(v, dict)})
        return merged

    def get(self, rating_key) -> dict:
        """The entry for `rating_key` ({} when none), a copy its caller may change: the journal
        decodes a fresh value on each get; an entry kept for `flush()` is copied (one level deep:
        a sync sets an entry's keys, it never changes the values in place)."""
        key = str(rating_key)
        if key in self._pending:
            return dict(self._pending[key])
        return self.journal.get(key) or {}

    def set(self, rating_key, entry: dict, claims: bool = False) -> None:
        """Replace the entry for `rating_key`: one appended, fsync'd line; with `batched`, kept
        for `flush()`, or written at once (fsync'd by `flush()`) when it changes `claims`."""
        key = str(rating_key)
        if not self.batched:
            self.journal.put_many({key: entry})
        elif claims:
            self._pending.pop(key, None)
            self.journal.put_many({key: entry}, fsync=False)
        else:
            self._pending[key] = entry

    def flush(self) -> None:
        """Write the entries kept since the last flush and make every one durable (one fsync)."""
        pending, self._pending = self._pending, {}
        if pending:
            self.journal.put_many(pending)
        else:
            self.journal.sync()

    def set_many(self, entries: dict) -> None:
        """Replace the entries of several rating keys (rating key -> entry) with one write."""
        self.journal.put_many({str(k): v for k, v in entries.items()})

    def forget(self, rating_key) -> None:
        """Drop an item's entry (its next sync uploads the cover again)."""
        self.journal.delete_many([str(rating_key)])


def fetch_item(server, rating_key):
    """The full Plex item (one GET of /library/metadata/{ratingKey}), never reloaded behind our back."""
    try:
        key = int(str(rating_key).strip())
    except ValueError:
        raise SyncFailure(INVALID_DATA, "Plex rating key %r is not a number" % (rating_key,))
    item = server.fetchItem(key)
    # plexapi treats an item fetched without its include-parameters as partial and silently
    # reloads it (another GET) the first time an attribute reads None or []. This object is
    # complete for our fields, so switch that off.
    item._autoReload = False
    return item


# Tag elements of an item -> our list fields (plexapi's Role, Genre, Collection, Label: `tag` attribute).
_TAG_LISTS = {"Role": "actors", "Genre": "genres", "Collection": "collections", "Label": "labels"}


def read_item(item) -> dict:
    """The current-values dict (see `worker.metadata`) of a plexapi Movie fetched by rating key.

    Read from the XML element plexapi built the item from (`item._data`, kept by every plexapi
    version) with plexapi's own rules: the same attributes, `utils.cast` and `utils.toDatetime`,
    `titleSort` defaulting to the title, tags and `<Field>` locks from the item's own children,
    files from its `<Media><Part>`. Not through the item's attributes: plexapi builds an object per
    tag and checks every attribute read, which cost a drain more time than its requests to Plex.
    """
    from plexapi import utils

    item._autoReload = False
    attrib = item._data.attrib
    lists = {field: [] for field in _TAG_LISTS.values()}
    locked, files = set(), []
    for elem in item._data:
        field = _TAG_LISTS.get(elem.tag)
        if field is not None:
            if elem.attrib.get("tag"):
                lists[field].append(elem.attrib["tag"])
        elif elem.tag == "Field":
            name = elem.attrib.get("name")
            if utils.cast(bool, elem.attrib.get("locked")) and name in _LOCK_NAMES:
                locked.add(_LOCK_NAMES[name])
        elif elem.tag == "Media":
            files.extend(p.attrib["file"] for p in elem if p.tag == "Part" and p.attrib.get("file"))
    title = attrib.get("title")
    when = utils.toDatetime(attrib.get("originallyAvailableAt"), "%Y-%m-%d")
    current = {
        "title": title or "",
        "titleSort": attrib.get("titleSort", title) or "",
        "summary": attrib.get("summary") or "",
        "tagline": attrib.get("tagline") or "",
        "studio": attrib.get("studio") or "",
        "originallyAvailableAt": when.strftime("%Y-%m-%d") if when else "",
        "contentRating": attrib.get("contentRating") or "",
        "userRating": metadata.rating_text(utils.cast(float, attrib.get("userRating"))),
        "locked": locked,
        "file_stem": metadata.file_stem(files[0]) if files else "",
    }
    current.update(lists)
    return current


def edit_params(changes: dict, current: dict, lock: bool) -> dict:
    """plexapi's edit parameters for `changes` (what `editField`/`editTags` would put in a batch).

    Scalars: `title.value=...` (+ `title.locked=1` when locking). Tags: Plex replaces a tag list
    given with indexes (`genre[0].tag.tag=A`), so the full resulting list is sent when something
    is added, and `genre[].tag.tag-=B,C` (names quoted once more, as plexapi does) removes.
    A date is `originallyAvailableAt` alone, as plexapi's `editOriginallyAvailable` sends it (no
    `year`). Without `lock`, lock state is left as it is rather than unlocking a field a person locked.
    """
    params = {}
    for field, change in changes.items():
        if field == RATE_FIELD:
            continue
        name = EDIT_NAMES[field]
        if field in metadata.LIST_FIELDS:
            removed = {n.casefold() for n in change["remove"]}
            if change["add"]:
                kept = [n for n in current.get(field) or [] if n.casefold() not in removed]
                for i, tag in enumerate(kept + change["add"]):
                    params["%s[%d].tag.tag" % (name, i)] = tag
            if change["remove"]:
                params["%s[].tag.tag-" % name] = ",".join(quote(str(n)) for n in change["remove"])
        else:
            params["%s.value" % name] = change
        if lock or field in ALWAYS_LOCKED:
            params["%s.locked" % name] = 1
    return params


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _url_key(url: str) -> str:
    # Only equality matters; a hash keeps any credential a URL might carry out of the memo file.
    return _sha1(url.encode("utf-8", "surrogatepass"))[:16]


class PlexWriter:
    """Syncs scenes into Plex items through one plexapi `PlexServer` (created once per process).

    `image_source(url) -> bytes` downloads a cover from Stash (e.g. `StashClient.image`); without
    it images are not synced. `memo` (a `PosterMemo`) remembers covers and written values.
    """

    def __init__(self, server, settings, image_source=None, memo=None):
        self.server = server
        self.settings = settings
        self.image_source = image_source
        self.memo = memo
        self._prefetched = {}  # rating key -> item read ahead (`prefetch`), or None: Plex had none
        self._covers = {}  # cover URL -> Future of its bytes (`prefetch_covers`)
        self._cover_order = []  # the batch's cover URLs not yet used, in the order of its jobs
        self._executor = None

    def prefetch(self, rating_keys) -> int:
        """Read these items ahead in one request per URL-length chunk (`worker.batch_read`); the
        next `sync` of each uses its copy once instead of a GET of its own. Returns the requests."""
        from worker.batch_read import fetch_items, key_chunks

        keys = [int(k) for k in rating_keys]
        requests = sum(1 for _ in key_chunks(keys))
        found = fetch_items(self.server, keys)
        self._prefetched = {k: found.get(k) for k in keys}
        return requests

    def _item(self, rating_key):
        """The item as read ahead (used once: a second sync to the same item reads it afresh), or
        one GET. An item the batch read did not find raises NotFound like a single read."""
        try:
            key = int(str(rating_key).strip())
        except ValueError:
            key = None
        if key is not None and key in self._prefetched:
            item = self._prefetched.pop(key)
            if item is None:
                from plexapi.exceptions import NotFound

                raise NotFound("Plex has no item %s" % key)
            return item, 0
        return fetch_item(self.server, rating_key), 1

    def sync(self, scene: dict, rating_key, dry_run: bool = False) -> WriteResult:
        """Make the Plex item `rating_key` show `scene`; send only what differs.

        Costs one GET (none when `prefetch` read the item with its batch), one PUT when a field
        differs (one more for a new user rating), one POST per changed cover. With `dry_run` only
        the GET is made and `result.diff` tells what would change.
        """
        desired = metadata.build_metadata(scene, self.settings)
        result = WriteResult(metadata.metadata_hash(desired))
        result.skipped = dict(desired.get("skipped") or {})
        item, requests = self._item(rating_key)
        result.plex_requests += requests
        if getattr(item, "TYPE", None) != "movie":
            raise SyncFailure(
                INVALID_DATA, "Plex item %s is a %s, not a movie" % (rating_key, getattr(item, "TYPE", "?"))
            )
        current = read_item(item)
        entry = self.memo.get(rating_key) if self.memo is not None else {}
        changes = metadata.diff_metadata(desired, current, self.settings, written=entry.get("written"))
        result.diff = changes
        result.changed = [f for f in metadata.FIELDS if f in changes]

        if dry_run:
            for kind in ("poster", "art"):
                url = desired.get(kind + "_url")
                if url and self.image_source is not None and entry.get(kind + "_source") != _url_key(url):
                    result.diff[kind] = url
            result.unchanged = not result.diff
            return result

        if any(field != RATE_FIELD for field in changes):
            self._send_edit(item, changes, current)
            result.plex_requests += 1
        if RATE_FIELD in changes:
            self._send_rating(item, changes[RATE_FIELD])
            result.plex_requests += 1
        before = dict(entry)
        entry["written"] = metadata.written_after(desired, current, changes, entry.get("written"))
        try:
            for kind in ("poster", "art"):
                if self._sync_image(item, kind, desired.get(kind + "_url"), entry, rating_key):
                    result.plex_requests += 1
                    setattr(result, kind + "_uploaded", True)
        finally:
            # One durable memo line per scene (what was written, what cover was uploaded), kept
            # even when a cover upload fails after the edit went out.
            self._remember(rating_key, entry, before)
        result.unchanged = not (changes or result.poster_uploaded or result.art_uploaded)
        return result

    def _remember(self, rating_key, entry: dict, before: dict) -> None:
        """Keep the memo entry when the sync changed it (PosterMemo: claims of collection and
        label names are written at once)."""
        if self.memo is None or entry == before:
            return
        old, new = before.get("written") or {}, entry.get("written") or {}
        claims = any(new.get(field) != old.get(field) for field in metadata.MANAGED_LISTS)
        self.memo.set(rating_key, entry, claims=claims)

    def _send_edit(self, item, changes: dict, current: dict) -> None:
        """One PUT with every change, as plexapi's saveEdits sends it.

        Not `item.saveEdits()` itself: it finds the item's section through /library and
        /library/sections first (two more GETs), and its tag mixins merge with the tags loaded
        on the item instead of sending exactly the resulting list.
        """
        from plexapi import utils

        section_id = item.librarySectionID
        if section_id is None:
            raise SyncFailure(INVALID_DATA, "Plex item %s has no library section" % item.ratingKey)
        params = {"type": MOVIE_TYPE, "id": item.ratingKey}
        params.update(edit_params(changes, current, bool(self.settings.lock_fields)))
        path = "/library/sections/%s/all%s" % (section_id, utils.joinArgs(params))
        self.server.query(path, method=self.server._session.put)

    def _send_rating(self, item, rating: str) -> None:
        """The user rating, as plexapi's `rate()` sends it (its own request; -1 removes it)."""
        key = "/:/rate?key=%s&identifier=com.plexapp.plugins.library&rating=%s" % (
            item.ratingKey,
            rating or -1,
        )
        self.server.query(key, method=self.server._session.put)

    def _sync_image(self, item, kind: str, url, entry: dict, rating_key) -> bool:
        """Upload the cover as `kind` ("poster" or "art") when it changed; True when uploaded.

        Stash's screenshot URL carries `?t=<updated>`: the same URL as last time means the same
        cover, so nothing is downloaded. A new URL with the same bytes (sha1) is not uploaded.
        """
        if not url or self.image_source is None:
            return False
        if entry.get(kind + "_source") == _url_key(url) and entry.get(kind + "_sha1"):
            return False
        try:
            data = self._download(url)
        except SyncFailure:
            raise
        except Exception as exc:
            from stashplugin.log import redact

            raise SyncFailure(STASH_UNREACHABLE, redact(str(exc))[:200])
        if not data:
            return False
        digest = _sha1(data)
        uploaded = False
        if digest != entry.get(kind + "_sha1"):
            if kind == "poster":
                # A file-like object: plexapi sends its bytes as the POST body on every version
                # from 4.15 (raw bytes only from 4.17.2, utils.openOrRead).
                item.uploadPoster(filepath=io.BytesIO(data))
            else:
                item.uploadArt(filepath=io.BytesIO(data))
            uploaded = True
        entry[kind + "_source"] = _url_key(url)
        entry[kind + "_sha1"] = digest
        return uploaded

    def prefetch_covers(self, pairs) -> int:
        """Download, on one background thread, the covers the next `sync`s of these (rating key,
        scene) pairs will need (Stash's URL differs from the one last uploaded), so the downloads
        from Stash overlap the edits going to Plex. At most COVER_WINDOW are held ahead of the
        sync that uses them (a batch's covers are not all kept in memory). Returns how many."""
        for future in self._covers.values():
            future.cancel()  # left over from a batch that stopped early
        self._covers, self._cover_order = {}, []
        if self.image_source is None:
            return 0
        for rating_key, scene in pairs:
            entry = self.memo.get(rating_key) if self.memo is not None else {}
            for kind, url in metadata.image_urls(scene, self.settings).items():
                if url not in self._cover_order and not (
                    entry.get(kind + "_source") == _url_key(url) and entry.get(kind + "_sha1")
                ):
                    self._cover_order.append(url)
        wanted = len(self._cover_order)
        self._start_downloads(0)
        return wanted

    def _start_downloads(self, start: int) -> None:
        """Keep the downloads of the COVER_WINDOW covers from position `start` on under way; drop
        those before it (their scenes' syncs are past: they failed before needing them)."""
        for url in self._cover_order[:start]:
            future = self._covers.pop(url, None)
            if future is not None:
                future.cancel()
        del self._cover_order[:start]
        for url in self._cover_order[:COVER_WINDOW]:
            if url not in self._covers:
                self._covers[url] = self._pool().submit(self.image_source, url)

    def _pool(self):
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plexsync-covers")
        return self._executor

    def _download(self, url: str) -> bytes:
        """The cover's bytes: from the download `prefetch_covers` started, or downloaded now."""
        future = self._covers.pop(url, None)
        if url in self._cover_order:
            self._start_downloads(self._cover_order.index(url) + 1)
        if future is not None and not future.cancelled():
            return future.result()
        return self.image_source(url)


def trigger_scan(server, section_id, folder: str) -> None:
    """Ask Plex to scan one folder of a section (what `section.update(path=folder)` sends).

    Sent directly so it costs one request instead of three (plexapi looks the section up first).
    """
    from urllib.parse import quote_plus

    key = "/library/sections/%s/refresh" % int(section_id)
    if folder:
        key += "?path=%s" % quote_plus(folder)
    server.query(key)
