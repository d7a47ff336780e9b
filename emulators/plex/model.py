"""The Plex emulator's library: sections, items, tags, and what Plex does with edits and searches.

Everything here is plain data guarded by one lock; nothing knows about HTTP or XML. The server
(`server.py`) turns requests into calls on `Library` and renders what comes back.

The semantics copy what `plexapi` 4.18 sends and what a real Plex Media Server answers:

* field edits are `<field>.value=...` and `<field>.locked=0|1`;
* tag edits with indexed names (`genre[0].tag.tag=A&genre[1].tag.tag=B`) *replace* that tag list,
  removals (`genre[].tag.tag-=A,B`, each name URL-quoted once more) remove from it;
* every edit moves `updatedAt` forward;
* a collection tag makes the collection an object of its own in the section (ratingKey, title,
  children: the items carrying the tag), as Plex does for `addCollection`; an emptied collection
  stays (Plex keeps it until someone deletes it);
* the user rating is not an edit field: plexapi's `RatingMixin.rate` sends
  `PUT /:/rate?key=<ratingKey>&identifier=com.plexapp.plugins.library&rating=<0..10, or -1 to clear>`
  and Plex shows it as `userRating` (with `lastRatedAt`) on the item;
* searches understand the filters `plexapi` builds from the section's filter metadata
  (`title=`, `year>>=`, `updatedAt>>=<epoch or -30d>`, `genre=<id or name>`, ...) and `sort=`.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from datetime import datetime
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple
from urllib.parse import unquote

# Tag kinds: the name used in edits and filters -> the XML element Plex renders for it.
TAG_ELEMENTS = OrderedDict(
    [
        ('genre', 'Genre'),
        ('director', 'Director'),
        ('writer', 'Writer'),
        ('producer', 'Producer'),
        ('country', 'Country'),
        ('collection', 'Collection'),
        ('label', 'Label'),
        ('mood', 'Mood'),
        ('style', 'Style'),
        ('actor', 'Role'),
    ]
)
TAG_ALIASES = {
    'role': 'actor',
    'genres': 'genre',
    'actors': 'actor',
    'roles': 'actor',
    'collections': 'collection',
    'labels': 'label',
}
# Plex's tag type numbers (plexapi.utils.TAGTYPES); used for `tagType` on filter choices.
TAG_TYPES = {
    'genre': 1,
    'collection': 2,
    'director': 4,
    'writer': 5,
    'actor': 6,
    'producer': 7,
    'country': 8,
    'label': 11,
    'mood': 300,
    'style': 301,
}

# Python-side keyword -> tag kind, for add_item/update_item and the item() snapshot.
SNAPSHOT_TAGS = OrderedDict(
    [('genres', 'genre'), ('actors', 'actor'), ('collections', 'collection'), ('labels', 'label')]
)

# Plain attributes an edit can set with `<name>.value=`; all render as XML attributes.
TEXT_FIELDS = (
    'title',
    'titleSort',
    'summary',
    'tagline',
    'studio',
    'originallyAvailableAt',
    'contentRating',
    'originalTitle',
    'editionTitle',
)
INT_FIELDS = ('year', 'addedAt', 'duration')

# THE TABLE OF EDIT PARAMETERS a movie edit may carry; any other parameter is answered 400 (the
# emulator is stricter than we know real Plex to be, so that PlexSync sends only what plexapi sends).
# Source: plexapi/mixins.py `MovieEditMixins` (plexapi 4.15-4.18): `EditFieldMixin.editField` sends
# `<field>.value` and `<field>.locked` for each field below; `EditTagsMixin.editTags`/`_tagHelper`
# send `<tag>[<i>].tag.tag`, `<tag>[].tag.tag-` (removal) and `<tag>.locked`; the lock mixins
# (`PosterLockMixin`, `ArtLockMixin`, `ThemeLockMixin`) send `thumb.locked`, `art.locked`, `theme.locked`.
# To accept a new edit, add one row here (and render the value in server.py if it should show).
MOVIE_EDIT_FIELDS = {
    # field: how its value is checked ('text', 'date', 'number', 'int')
    'title': 'text',  # TitleMixin.editTitle
    'titleSort': 'text',  # SortTitleMixin.editSortTitle
    'originalTitle': 'text',  # OriginalTitleMixin.editOriginalTitle
    'editionTitle': 'text',  # EditionTitleMixin.editEditionTitle
    'summary': 'text',  # SummaryMixin.editSummary
    'tagline': 'text',  # TaglineMixin.editTagline
    'studio': 'text',  # StudioMixin.editStudio
    'contentRating': 'text',  # ContentRatingMixin.editContentRating
    'originallyAvailableAt': 'date',  # OriginallyAvailableMixin.editOriginallyAvailable (no `year`)
    'userRating': 'number',  # UserRatingMixin.editUserRating
    'rating': 'number',  # CriticRatingMixin.editCriticRating
    'audienceRating': 'number',  # AudienceRatingMixin.editAudienceRating
    'addedAt': 'int',  # AddedAtMixin.editAddedAt
}
MOVIE_EDIT_TAGS = (
    'genre',
    'collection',
    'label',
    'director',
    'writer',
    'producer',
    'country',  # the *Mixin.add/remove*
    'actor',  # not a plexapi mixin for movies; Plex's own cast tags (`Role`, filter `actor=`), sent by PlexSync
)
MOVIE_EDIT_LOCKS = ('thumb', 'art', 'theme')  # PosterLockMixin, ArtLockMixin, ThemeLockMixin
MOVIE_TYPE = 1
_DATE_RE = re.compile(r'^(\d{4})-(\d{2})-(\d{2})')
_TAG_EDIT_RE = re.compile(r'^([A-Za-z]+)\[(\d*)\]\.tag\.tag(-?)$')
_TAG_OTHER_RE = re.compile(r'^([A-Za-z]+)\[(\d*)\]\.')
_RELATIVE_RE = re.compile(r'^-?(\d+)(mon|[smhdwy])$')
_RELATIVE_SECONDS = {
    's': 1,
    'm': 60,
    'h': 3600,
    'd': 86400,
    'w': 7 * 86400,
    'mon': 30 * 86400,
    'y': 365 * 86400,
}

# Query parameters that are not filters (they shape the answer, or Plex ignores them).
_NON_FILTER_PARAMS = {
    'type',
    'sort',
    'limit',
    'title',
    'includeGuids',
    'includeMeta',
    'includeAdvanced',
    'includeCollections',
    'includeExternalMedia',
    'checkFiles',
    'push',
    'pop',
    'and',
    'or',
    'clusterZoomLevel',
    'group',
    'having',
    'asyncAugmentMetadata',
    'skipRefresh',
    'query',
    'sectionId',
    'contentDirectoryID',
    'force',
    'path',
    'uri',
    'url',
    'async',
}


class EditError(ValueError):
    """An edit or query Plex would refuse (answered with 400)."""


class NotFoundError(KeyError):
    """A section or item that does not exist (answered with 404)."""


class Upload:
    """One uploaded poster or background: what Plex lists under /posters or /arts."""

    __slots__ = ('key', 'data', 'url', 'created_at')

    def __init__(self, key: str, data: Optional[bytes], url: Optional[str]):
        self.key = key
        self.data = data
        self.url = url
        self.created_at = time.time()


class Section:
    """A library section (only movie-type sections are emulated)."""

    def __init__(
        self, section_id: int, title: str, locations: List[str], type: str, agent: str, scanner: str
    ):
        now = int(time.time())
        self.id = section_id
        self.title = title
        self.locations = list(locations)
        self.type = type
        self.agent = agent
        self.scanner = scanner
        self.uuid = hashlib.sha1(f'section-{section_id}-{title}-{now}'.encode()).hexdigest()
        self.created_at = now
        self.updated_at = now
        self.scanned_at = now
        self.items: 'OrderedDict[int, Item]' = OrderedDict()


class Item:
    """One movie: its attributes, tags, field locks, file and images."""

    __slots__ = (
        'rating_key',
        'section_id',
        'file',
        'size',
        'fields',
        'tags',
        'locked',
        'added_at',
        'updated_at',
        'guid',
        'media_id',
        'part_id',
        'posters',
        'arts',
        'poster_index',
        'art_index',
        'poster_uploads',
        'art_uploads',
        'refreshes',
        'version',
        'user_rating',
        'last_rated_at',
    )

    def __init__(self, rating_key: int, section_id: int, file: str, size: int, title: str, now: int):
        self.rating_key = rating_key
        self.section_id = section_id
        self.file = file
        self.size = int(size)
        self.fields: Dict[str, Any] = {'title': title, 'summary': ''}
        self.tags: Dict[str, List[str]] = {}
        self.locked: Set[str] = set()
        self.added_at = now
        self.updated_at = now
        self.guid = f'local://{rating_key}'
        self.media_id = rating_key
        self.part_id = rating_key
        self.posters: List[Upload] = []
        self.arts: List[Upload] = []
        self.poster_index: Optional[int] = None
        self.art_index: Optional[int] = None
        self.poster_uploads = 0
        self.art_uploads = 0
        self.refreshes = 0
        self.version = 0
        self.user_rating: Optional[float] = None
        self.last_rated_at: Optional[int] = None

    @property
    def title(self) -> str:
        return self.fields.get('title') or ''

    @property
    def title_sort(self) -> str:
        return self.fields.get('titleSort') or self.title

    @property
    def poster(self) -> Optional[Upload]:
        return self.posters[self.poster_index] if self.poster_index is not None else None

    @property
    def art(self) -> Optional[Upload]:
        return self.arts[self.art_index] if self.art_index is not None else None

    def tag_list(self, kind: str) -> List[str]:
        return self.tags.get(kind, [])


class Collection:
    """A collection of one section, as Plex makes it when an item first gets its collection tag."""

    __slots__ = ('rating_key', 'section_id', 'title', 'added_at', 'updated_at')

    def __init__(self, rating_key: int, section_id: int, title: str, now: int):
        self.rating_key = rating_key
        self.section_id = section_id
        self.title = title
        self.added_at = now
        self.updated_at = now


def file_stem(path: str) -> str:
    """The title a Plex scan gives a file it has no agent match for: its name without extension."""
    name = re.split(r'[\\/]', path)[-1]
    stem, dot, _ = name.rpartition('.')
    return stem if dot and stem else name


def date_timestamp(value: Optional[str]) -> Optional[int]:
    """Local-midnight epoch of a YYYY-MM-DD date, as plexapi computes filter values."""
    if not value:
        return None
    m = _DATE_RE.match(value)
    if not m:
        return None
    try:
        return int(datetime(int(m.group(1)), int(m.group(2)), int(m.group(3))).timestamp())
    except ValueError:
        return None


def _canonical_tag(name: str) -> Optional[str]:
    name = TAG_ALIASES.get(name, name)
    return name if name in TAG_ELEMENTS else None


def _dedupe(values: Iterable[str]) -> List[str]:
    seen: Set[str] = set()
    out = []
    for v in values:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


class Filter:
    """One parsed search condition: `field`, Plex operator (`=`, `!=`, `==`, `>>=`, ...), values."""

    __slots__ = ('field', 'op', 'values', 'raw_key')

    def __init__(self, field: str, op: str, values: List[str], raw_key: str):
        self.field = field
        self.op = op
        self.values = values
        self.raw_key = raw_key

    def key(self) -> Tuple:
        return (self.field, self.op, tuple(self.values))


def parse_filter(key: str, value: str, extra_eq: bool) -> Filter:
    """Split `updatedAt>>` + `=` + value into field/operator/values as Plex reads them.

    `extra_eq` is True when the raw value began with a literal `=` (`title==x` is "is"); plexapi
    instead URL-encodes that `=` into the key (`title%3D=x`), which arrives as key `title=`.
    """
    m = re.match(r'^(.*?)([!<>&=]*)$', key)
    field, suffix = m.group(1), m.group(2)
    if '.' in field:  # `movie.title` -> `title`
        field = field.rsplit('.', 1)[1]
    op = suffix + '=' + ('=' if extra_eq else '')
    return Filter(field, op, [value], key)


class Library:
    """All sections and items of the emulated server, behind one re-entrant lock."""

    def __init__(self):
        self.lock = threading.RLock()
        self.sections: 'OrderedDict[int, Section]' = OrderedDict()
        self.items: Dict[int, Item] = {}
        self.collections: Dict[Tuple[int, str], Collection] = {}  # (section, casefolded title)
        self.by_file: Dict[str, List[int]] = {}  # one path can sit in two sections
        self.tag_ids: Dict[Tuple[str, str], int] = {}
        self.version = 0
        self._next_section = 1
        self._next_rk = 1
        self._next_tag = 1000
        self._query_cache: 'OrderedDict[Tuple, List[Item]]' = OrderedDict()
        self.warnings: List[str] = []
        self.warn: Callable[[str], None] = self.warnings.append

    # ----------------------------------------------------------------- sections and items
    def add_section(
        self,
        title: str,
        locations: Iterable[str],
        type: str = 'movie',
        agent: str = 'tv.plex.agents.none',
        scanner: str = 'Plex Video Files Scanner',
    ) -> int:
        if type != 'movie':
            raise ValueError("the Plex emulator only emulates movie-type sections (type='movie')")
        with self.lock:
            sid = self._next_section
            self._next_section += 1
            self.sections[sid] = Section(sid, title, list(locations), type, agent, scanner)
            self.version += 1
            return sid

    def section(self, section_id: int) -> Section:
        try:
            return self.sections[int(section_id)]
        except (KeyError, ValueError):
            raise NotFoundError(f'no section {section_id}') from None

    def item(self, rating_key: int) -> Item:
        try:
            return self.items[int(rating_key)]
        except (KeyError, ValueError):
            raise NotFoundError(f'no item {rating_key}') from None

    def tag_id(self, kind: str, tag: str) -> int:
        key = (kind, tag)
        tid = self.tag_ids.get(key)
        if tid is None:
            tid = self._next_tag
            self._next_tag += 1
            self.tag_ids[key] = tid
        return tid

    def add_item(
        self, section_id: int, file: str, size: int = 0, title: Optional[str] = None, **fields: Any
    ) -> int:
        with self.lock:
            rk = self._add_item(section_id, file, size, title, fields, int(time.time()))
            self.version += 1
            return rk

    def bulk_add(self, section_id: int, items: Iterable[Dict[str, Any]]) -> List[int]:
        now = int(time.time())
        rks = []
        with self.lock:
            for spec in items:
                spec = dict(spec)
                file = spec.pop('file')
                size = spec.pop('size', 0)
                title = spec.pop('title', None)
                rks.append(self._add_item(section_id, file, size, title, spec, now))
            self.version += 1
        return rks

    def _add_item(
        self, section_id: int, file: str, size: int, title: Optional[str], fields: Dict[str, Any], now: int
    ) -> int:
        section = self.section(section_id)
        rk = self._next_rk
        self._next_rk += 1
        item = Item(rk, section.id, file, size, title if title is not None else file_stem(file), now)
        self._set_python_fields(item, fields, creating=True)
        if item.fields.get('year') is None and item.fields.get('originallyAvailableAt'):
            item.fields['year'] = int(item.fields['originallyAvailableAt'][:4])
        self.items[rk] = item
        self.by_file.setdefault(file, []).append(rk)
        section.items[rk] = item
        self._register_collections(item)
        return rk

    def _set_python_fields(self, item: Item, fields: Dict[str, Any], creating: bool) -> None:
        for name, value in fields.items():
            if name in SNAPSHOT_TAGS:
                kind = SNAPSHOT_TAGS[name]
                tags = _dedupe(str(v) for v in (value or []))
                for t in tags:
                    self.tag_id(kind, t)
                item.tags[kind] = tags
            elif name == 'tags':  # {'director': [...], ...}
                for kind, values in (value or {}).items():
                    kind = _canonical_tag(kind) or kind
                    item.tags[kind] = _dedupe(str(v) for v in values)
            elif name == 'title':
                item.fields['title'] = '' if value is None else str(value)
            elif name == 'summary':
                item.fields['summary'] = '' if value is None else str(value)
            elif name == 'originallyAvailableAt':
                item.fields[name] = self._check_date(value)
            elif name in TEXT_FIELDS:
                item.fields[name] = str(value) if value not in (None, '') else None
            elif name == 'year' or name == 'duration':
                item.fields[name] = int(value) if value not in (None, '') else None
            elif name == 'addedAt':
                item.added_at = int(value)
            elif name == 'updatedAt':
                item.updated_at = int(value)
            elif name == 'locked':
                item.locked = set(value or ())
            elif name == 'userRating':
                item.user_rating = float(value) if value not in (None, '') else None
            elif name == 'guid':
                item.guid = str(value)
            elif name == 'file' and not creating:
                self._forget_file(item)
                item.file = str(value)
                self.by_file.setdefault(item.file, []).append(item.rating_key)
            elif name == 'size' and not creating:
                item.size = int(value)
            elif name == 'poster':
                self._store_upload(item, 'poster', value, None, count=False)
            elif name == 'art':
                self._store_upload(item, 'art', value, None, count=False)
            else:
                raise TypeError(f'unknown Plex item field {name!r}')

    def update_item(self, rating_key: int, **fields: Any) -> None:
        with self.lock:
            item = self.item(rating_key)
            explicit_updated = 'updatedAt' in fields
            self._set_python_fields(item, fields, creating=False)
            self._register_collections(item)
            self._touch(item, bump=not explicit_updated)

    def remove_item(self, rating_key: int) -> None:
        with self.lock:
            item = self.item(rating_key)
            del self.items[item.rating_key]
            self._forget_file(item)
            section = self.sections.get(item.section_id)
            if section is not None:
                section.items.pop(item.rating_key, None)
            self.version += 1

    def _forget_file(self, item: Item) -> None:
        rks = self.by_file.get(item.file, [])
        if item.rating_key in rks:
            rks.remove(item.rating_key)
        if not rks:
            self.by_file.pop(item.file, None)

    def find_by_file(self, path: str) -> Optional[int]:
        """The ratingKey of the (first-added) item with exactly this file path, or None."""
        with self.lock:
            rks = self.by_file.get(path)
            return rks[0] if rks else None

    def find_all_by_file(self, path: str) -> List[int]:
        with self.lock:
            return list(self.by_file.get(path, ()))

    def _touch(self, item: Item, bump: bool = True) -> None:
        if bump:
            # Strictly later than before, so an edit is always visible as a change of updatedAt.
            item.updated_at = max(int(time.time()), item.updated_at + 1)
        item.version += 1
        self.version += 1

    def snapshot(self, rating_key: int) -> Dict[str, Any]:
        """A plain-dict copy of one item, for test assertions."""
        with self.lock:
            item = self.item(rating_key)
            poster, art = item.poster, item.art
            snap = {
                'ratingKey': item.rating_key,
                'title': item.title,
                'titleSort': item.title_sort,
                'summary': item.fields.get('summary') or '',
                'tagline': item.fields.get('tagline'),
                'studio': item.fields.get('studio'),
                'originallyAvailableAt': item.fields.get('originallyAvailableAt'),
                'year': item.fields.get('year'),
                'contentRating': item.fields.get('contentRating'),
                'originalTitle': item.fields.get('originalTitle'),
                'duration': item.fields.get('duration'),
                'userRating': item.user_rating,
            }
            for name, kind in SNAPSHOT_TAGS.items():
                snap[name] = list(item.tag_list(kind))
            snap.update(
                {
                    'tags': {k: list(v) for k, v in item.tags.items()},
                    'locked': set(item.locked),
                    'file': item.file,
                    'size': item.size,
                    'section_id': item.section_id,
                    'guid': item.guid,
                    'updatedAt': item.updated_at,
                    'addedAt': item.added_at,
                    'poster': poster.data if poster else None,
                    'poster_url': poster.url if poster else None,
                    'art': art.data if art else None,
                    'art_url': art.url if art else None,
                    'poster_uploads': item.poster_uploads,
                    'art_uploads': item.art_uploads,
                    'refreshes': item.refreshes,
                }
            )
            return snap

    # ----------------------------------------------------------------- images
    def _store_upload(
        self, item: Item, kind: str, data: Optional[bytes], url: Optional[str], count: bool = True
    ) -> None:
        digest = hashlib.sha1(data if data is not None else (url or '').encode()).hexdigest()
        folder = 'posters' if kind == 'poster' else 'art'
        upload = Upload(f'upload://{folder}/{digest}', data, url)
        uploads = item.posters if kind == 'poster' else item.arts
        uploads.append(upload)
        if kind == 'poster':
            item.poster_index = len(uploads) - 1
            if count:
                item.poster_uploads += 1
        else:
            item.art_index = len(uploads) - 1
            if count:
                item.art_uploads += 1

    def upload(self, rating_key: int, kind: str, data: Optional[bytes], url: Optional[str]) -> None:
        """Record an uploaded poster/background (`kind` is 'poster' or 'art') and select it."""
        with self.lock:
            item = self.item(rating_key)
            self._store_upload(item, kind, data, url)
            self._touch(item)

    def select_upload(self, rating_key: int, kind: str, key: str) -> None:
        with self.lock:
            item = self.item(rating_key)
            uploads = item.posters if kind == 'poster' else item.arts
            for i, up in enumerate(uploads):
                if up.key == key or up.url == key:
                    if kind == 'poster':
                        item.poster_index = i
                    else:
                        item.art_index = i
                    self._touch(item)
                    return
            raise NotFoundError(f'no {kind} {key} on item {rating_key}')

    def delete_image(self, rating_key: int, kind: str) -> None:
        with self.lock:
            item = self.item(rating_key)
            if kind == 'poster':
                item.poster_index = None
            else:
                item.art_index = None
            self._touch(item)

    def refresh(self, rating_key: int) -> None:
        with self.lock:
            self.item(rating_key).refreshes += 1

    # ----------------------------------------------------------------- collections and ratings
    def _register_collections(self, item: Item) -> None:
        """Create the section's collection object for every collection tag the item carries."""
        for title in item.tag_list('collection'):
            key = (item.section_id, title.casefold())
            if key not in self.collections:
                rk = self._next_rk
                self._next_rk += 1
                self.collections[key] = Collection(rk, item.section_id, title, int(time.time()))

    def section_collections(self, section_id: int) -> List[Collection]:
        """The collections of a section, by title."""
        with self.lock:
            self.section(section_id)
            found = [c for (sid, _), c in self.collections.items() if sid == int(section_id)]
            return sorted(found, key=lambda c: c.title.casefold())

    def collection(self, rating_key: int) -> Collection:
        with self.lock:
            for c in self.collections.values():
                if c.rating_key == int(rating_key):
                    return c
        raise NotFoundError(f'no collection {rating_key}')

    def collection_children(self, collection: Collection) -> List[Item]:
        """The items of the collection's section that carry its tag (Plex matches tags without case)."""
        with self.lock:
            want = collection.title.casefold()
            section = self.section(collection.section_id)
            return [
                it
                for it in section.items.values()
                if any(t.casefold() == want for t in it.tag_list('collection'))
            ]

    def rate(self, rating_key: int, rating: str) -> None:
        """The user rating, as `PUT /:/rate` sets it: 0..10, or -1 to remove it.

        plexapi's `RatingMixin.rate` refuses values outside 0..10 before sending; Plex answers a
        value that is not a number with 400.
        """
        try:
            value = float(rating)
        except (TypeError, ValueError):
            raise EditError(f'invalid rating {rating!r}') from None
        if value != -1 and not 0 <= value <= 10:
            raise EditError(f'rating {rating!r} out of range 0..10')
        with self.lock:
            item = self.item(rating_key)
            item.user_rating = None if value == -1 else value
            item.last_rated_at = None if value == -1 else int(time.time())
            self._touch(item, bump=False)  # a rating is the user's setting, not item metadata

    # ----------------------------------------------------------------- edits
    def apply_edit(
        self,
        params: List[Tuple[str, str]],
        section_id: Optional[int] = None,
        rating_keys: Optional[List[int]] = None,
    ) -> List[int]:
        """Apply one Plex edit request to the given items (or, with no ids, to a whole section).

        `params` are the decoded query pairs in request order. Returns the edited rating keys.
        """
        values: Dict[str, str] = {}
        locks: Dict[str, bool] = {}
        tag_sets: Dict[str, Dict[int, str]] = {}
        tag_removes: Dict[str, List[str]] = {}
        type_param = None
        for key, value in params:
            if key == 'type':
                type_param = value
                continue
            if key == 'id' or key.startswith('X-Plex-'):
                continue
            m = _TAG_EDIT_RE.match(key)
            if m:
                kind = _canonical_tag(m.group(1))
                if kind not in MOVIE_EDIT_TAGS or m.group(1) != kind:
                    raise EditError(f'unknown edit parameter {key!r}')
                if m.group(3) == '-':
                    # plexapi quotes each name, joins with ',' and the URL quotes it again.
                    tag_removes.setdefault(kind, []).extend(unquote(v) for v in value.split(',') if v != '')
                else:
                    slots = tag_sets.setdefault(kind, {})
                    index = int(m.group(2)) if m.group(2) else len(slots)
                    slots[index] = value
                continue
            if key.endswith('.locked'):
                name = key[: -len('.locked')]
                if (
                    name not in MOVIE_EDIT_FIELDS
                    and name not in MOVIE_EDIT_TAGS
                    and name not in MOVIE_EDIT_LOCKS
                ):
                    raise EditError(f'unknown edit parameter {key!r}')
                locks[name] = value.strip().lower() not in ('0', '', 'false')
                continue
            if key.endswith('.value') and key[: -len('.value')] in MOVIE_EDIT_FIELDS:
                values[key[: -len('.value')]] = value
                continue
            raise EditError(f'unknown edit parameter {key!r}')

        if type_param not in (None, '', '1', 'movie'):
            raise EditError(f'type={type_param} does not match movie items')
        checked = {name: self._check_value(name, v) for name, v in values.items()}

        with self.lock:
            if rating_keys is None:
                if section_id is None:
                    raise EditError('no items to edit')
                targets = list(self.section(section_id).items.values())
            else:
                targets = []
                for rk in rating_keys:
                    item = self.item(rk)
                    if section_id is not None and item.section_id != int(section_id):
                        raise EditError(f'item {rk} is not in section {section_id}')
                    targets.append(item)
            for item in targets:
                for name, v in checked.items():
                    if name == 'addedAt':
                        item.added_at = v if v is not None else item.added_at
                    elif name == 'userRating':  # editUserRating: the same value `rate` sets
                        item.user_rating = v
                    else:
                        item.fields[name] = v
                    if name == 'originallyAvailableAt' and v:
                        # Plex Web's movie edit dialog has a release date and no year, and the year
                        # Plex shows follows the date: Plex derives it (plexapi sends no `year`).
                        item.fields['year'] = int(v[:4])
                for kind, slots in tag_sets.items():
                    tags = _dedupe(v for _, v in sorted(slots.items()) if v != '')
                    for t in tags:
                        self.tag_id(kind, t)
                    item.tags[kind] = tags
                for kind, names in tag_removes.items():
                    drop = set(names) | {n.casefold() for n in names}
                    item.tags[kind] = [
                        t for t in item.tag_list(kind) if t not in drop and t.casefold() not in drop
                    ]
                for name, on in locks.items():
                    if on:
                        item.locked.add(name)
                    else:
                        item.locked.discard(name)
                self._register_collections(item)
                self._touch(item)
            return [item.rating_key for item in targets]

    @staticmethod
    def _check_date(value: Any) -> Optional[str]:
        if value in (None, ''):
            return None
        value = str(value)
        m = _DATE_RE.match(value)
        if not m or date_timestamp(value[:10]) is None:
            raise EditError(f'invalid date {value!r} (expected YYYY-MM-DD)')
        return value[:10]

    def _check_value(self, name: str, value: str) -> Any:
        kind = MOVIE_EDIT_FIELDS.get(name, 'text')
        if kind == 'date':
            return self._check_date(value)
        if kind in ('int', 'number'):
            if value.strip() == '':
                return None
            try:
                return int(float(value)) if kind == 'int' else float(value)
            except ValueError:
                raise EditError(f'invalid number {value!r} for {name}') from None
        if name in ('title', 'summary'):
            return value
        return value if value != '' else None

    # ----------------------------------------------------------------- search
    def query(self, section_id: Optional[int], params: List[Tuple[str, str, bool]]) -> List[Item]:
        """Items of a section (or of all sections) matching Plex filter params, sorted.

        `params` are (key, value, extra_eq) triples as parsed from the raw query string.
        """
        type_ok = True
        sort = None
        limit = None
        filters: List[Filter] = []
        relative = False
        for key, value, extra_eq in params:
            base = key.rstrip('!<>&=')
            if key == 'type':
                type_ok = value in ('1', 'movie')
            elif key == 'sort':
                sort = value
            elif key == 'limit':
                try:
                    limit = int(value)
                except ValueError:
                    raise EditError(f'invalid limit {value!r}') from None
            elif key == 'title' and not extra_eq:
                filters.append(Filter('title', '=', [value], key))
            elif (
                (base in _NON_FILTER_PARAMS and base != 'title')
                or key.startswith('X-Plex-')
                or key.startswith('include')
                or key.startswith('exclude')
            ):
                continue
            else:
                f = parse_filter(key, value, extra_eq)
                if f.field not in _FILTER_FIELDS:
                    self.warn(f'unsupported filter {key!r} ignored')
                    continue
                if any(_RELATIVE_RE.match(v) for v in f.values):
                    relative = True
                filters.append(f)
        with self.lock:
            cache_key = (
                section_id,
                type_ok,
                sort,
                limit,
                tuple(f.key() for f in filters),
                self.version,
                int(time.time()) if relative else 0,
            )
            cached = self._query_cache.get(cache_key)
            if cached is not None:
                self._query_cache.move_to_end(cache_key)
                return cached
            if not type_ok:
                result: List[Item] = []
            else:
                if section_id is None:
                    pool: Iterable[Item] = self.items.values()
                else:
                    pool = self.section(section_id).items.values()
                preds = [self._predicate(f) for f in filters]
                result = [it for it in pool if all(p(it) for p in preds)]
                result = self._sort(result, sort)
                if limit is not None:
                    result = result[: max(limit, 0)]
            self._query_cache[cache_key] = result
            while len(self._query_cache) > 32:
                self._query_cache.popitem(last=False)
            return result

    def _predicate(self, f: Filter) -> Callable[[Item], bool]:
        kind = _canonical_tag(f.field)
        ftype = _FILTER_FIELDS[f.field]
        op = f.op
        if ftype == 'tag':
            wanted_ids: Set[int] = set()
            wanted_names: Set[str] = set()
            for raw in f.values:
                for v in raw.split(','):
                    v = v.strip()
                    if v.isdigit():
                        wanted_ids.add(int(v))
                    if v:
                        wanted_names.add(v.casefold())

            def has(item: Item) -> bool:
                for t in item.tag_list(kind):
                    if t.casefold() in wanted_names or self.tag_ids.get((kind, t)) in wanted_ids:
                        return True
                return False

            if op == '=' or op == '&=':
                return has
            if op == '!=':
                return lambda item: not has(item)
            raise EditError(f'operator {op!r} not valid for tag filter {f.field!r}')

        getter = _GETTERS[f.field]
        if ftype == 'string':
            needle = ','.join(f.values).casefold()

            def text(item: Item) -> str:
                return (getter(item) or '').casefold()

            ops = {
                '=': lambda item: needle in text(item),
                '!=': lambda item: needle not in text(item),
                '==': lambda item: text(item) == needle,
                '!==': lambda item: text(item) != needle,
                '<=': lambda item: text(item).startswith(needle),
                '>=': lambda item: text(item).endswith(needle),
            }
            if op not in ops:
                raise EditError(f'operator {op!r} not valid for string filter {f.field!r}')
            return ops[op]
        if ftype == 'boolean':
            truth = ','.join(f.values).strip().lower() not in ('0', 'false', '')
            want = truth if op == '=' else not truth
            return lambda item: bool(getter(item)) == want
        # integer and date
        numbers: List[float] = []
        for raw in f.values:
            for v in raw.split(','):
                v = v.strip()
                if not v:
                    continue
                rel = _RELATIVE_RE.match(v)
                if ftype == 'date' and rel and v.startswith('-'):
                    numbers.append(time.time() - int(rel.group(1)) * _RELATIVE_SECONDS[rel.group(2)])
                    continue
                if ftype == 'date' and _DATE_RE.match(v):
                    numbers.append(float(date_timestamp(v) or 0))
                    continue
                try:
                    numbers.append(float(v))
                except ValueError:
                    raise EditError(f'invalid value {v!r} for filter {f.field!r}') from None
        if not numbers:
            raise EditError(f'no value for filter {f.field!r}')

        def num(item: Item) -> Optional[float]:
            v = getter(item)
            return None if v is None else float(v)

        if op == '=':
            return lambda item: num(item) in numbers
        if op == '!=':
            return lambda item: num(item) not in numbers
        if op == '>>=':  # "is after" / "is greater than": strictly greater, like Plex
            bound = min(numbers)
            return lambda item: num(item) is not None and num(item) > bound
        if op == '<<=':
            bound = max(numbers)
            return lambda item: num(item) is not None and num(item) < bound
        raise EditError(f'operator {op!r} not valid for filter {f.field!r}')

    @staticmethod
    def _sort(items: List[Item], sort: Optional[str]) -> List[Item]:
        keys = []
        for part in (sort or 'titleSort').split(','):
            part = part.strip()
            if not part:
                continue
            field, _, direction = part.partition(':')
            if '.' in field:
                field = field.rsplit('.', 1)[1]
            if field not in _SORTS:
                raise EditError(f'unknown sort field {field!r}')
            keys.append((_SORTS[field], direction == 'desc'))
        out = sorted(items, key=lambda it: it.rating_key)
        for getter, desc in reversed(keys):
            present = [it for it in out if getter(it) is not None]
            missing = [it for it in out if getter(it) is None]
            present.sort(key=getter, reverse=desc)
            out = present + missing  # missing values always last
        return out


def _casefold_or_none(v: Optional[str]) -> Optional[str]:
    return v.casefold() if v is not None else None


_GETTERS: Dict[str, Callable[[Item], Any]] = {
    'title': lambda it: it.title,
    'titleSort': lambda it: it.title_sort,
    'studio': lambda it: it.fields.get('studio'),
    'summary': lambda it: it.fields.get('summary'),
    'tagline': lambda it: it.fields.get('tagline'),
    'contentRating': lambda it: it.fields.get('contentRating'),
    'originalTitle': lambda it: it.fields.get('originalTitle'),
    'year': lambda it: it.fields.get('year'),
    'duration': lambda it: it.fields.get('duration'),
    'id': lambda it: it.rating_key,
    'addedAt': lambda it: it.added_at,
    'updatedAt': lambda it: it.updated_at,
    'originallyAvailableAt': lambda it: date_timestamp(it.fields.get('originallyAvailableAt')),
    'guid': lambda it: it.guid,
    'unwatched': lambda it: True,
}

_FILTER_FIELDS: Dict[str, str] = {
    'title': 'string',
    'titleSort': 'string',
    'studio': 'string',
    'summary': 'string',
    'tagline': 'string',
    'contentRating': 'string',
    'originalTitle': 'string',
    'guid': 'string',
    'year': 'integer',
    'duration': 'integer',
    'id': 'integer',
    'addedAt': 'date',
    'updatedAt': 'date',
    'originallyAvailableAt': 'date',
    'unwatched': 'boolean',
}
for _kind in TAG_ELEMENTS:
    _FILTER_FIELDS[_kind] = 'tag'
_FILTER_FIELDS['role'] = 'tag'

_SORTS: Dict[str, Callable[[Item], Any]] = {
    'titleSort': lambda it: it.title_sort.casefold(),
    'title': lambda it: it.title.casefold(),
    'studio': lambda it: _casefold_or_none(it.fields.get('studio')),
    'summary': lambda it: it.fields.get('summary') or '',
    'tagline': lambda it: _casefold_or_none(it.fields.get('tagline')),
    'year': lambda it: it.fields.get('year'),
    'duration': lambda it: it.fields.get('duration'),
    'originallyAvailableAt': lambda it: it.fields.get('originallyAvailableAt'),
    'addedAt': lambda it: it.added_at,
    'updatedAt': lambda it: it.updated_at,
    'id': lambda it: it.rating_key,
    'ratingKey': lambda it: it.rating_key,
    'guid': lambda it: it.guid,
}
