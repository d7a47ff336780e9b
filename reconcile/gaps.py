"""Is this scene a gap, and of which kind? Pure functions over plain dicts; no I/O.

A gap is a scene whose Plex item does not show what PlexSync would write, found without
asking Plex about the scene itself: from the scene as Stash lists it, its `sync_state.jsonl`
entry, the item as a section listing shows it (`listed_item`), and the fingerprints PlexSync
kept of what it wrote to that item (`PosterMemo` "written").

Each scene gets at most one type, the first that applies:

* missing_from_plex - no Plex item holds the scene's file (decided by the matcher);
* ambiguous         - several items could (strict matching): reported, never queued, because
                      syncing it cannot succeed until the user fixes the libraries or mapping;
* empty_in_plex     - the item shows nothing where Stash has something: the file name as title,
                      or no summary, studio, date, actors or genres;
* stale             - what PlexSync would write now differs from what it last wrote (the hash
                      in `sync_state.jsonl`), the scene was never synced, or the item it was
                      synced to has been replaced in Plex;
* drift             - the item shows a value other than the one PlexSync wrote: someone edited
                      it in Plex. Queued unless 'Preserve Plex edits' is on.

Listings carry at most a few tags of each kind, so tag lists count as empty only when the
listing shows none; differences inside tag lists are left to the hash. Why the hash decides
staleness rather than `updated_at`: Stash bumps `updated_at` for edits PlexSync does not sync
(ratings, play counts), while a changed setting (say "Studio as collection" switched on)
changes what should be written without touching `updated_at`. The hash sees both correctly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from worker.metadata import (
    CAPS,
    LIST_FIELDS,
    SCALAR_FIELDS,
    file_stem,
    fingerprint,
    rating_text,
    sanitize_text,
)

MISSING = "missing_from_plex"
AMBIGUOUS = "ambiguous"
EMPTY = "empty_in_plex"
STALE = "stale"
DRIFT = "drift"

# The gap types reconciliation counts and queues (ambiguous scenes are reported apart).
GAP_TYPES = (STALE, EMPTY, MISSING, DRIFT)
WORDS = {
    STALE: "stale",
    EMPTY: "empty in Plex",
    MISSING: "missing from Plex",
    DRIFT: "edited in Plex",
    AMBIGUOUS: "ambiguous in Plex",
}

# Fields whose emptiness a listing shows reliably (tag lists: only "none at all").
EMPTY_CHECKED = ("title", "summary", "studio", "originallyAvailableAt", "actors", "genres")
# Scalars a listing shows in full, so a difference there is real: every scalar PlexSync writes.
DRIFT_CHECKED = SCALAR_FIELDS


FIELD_WORDS = {
    "title": "title",
    "titleSort": "sort title",
    "summary": "summary",
    "tagline": "tagline",
    "studio": "studio",
    "originallyAvailableAt": "release date",
    "actors": "actors",
    "genres": "genres",
    "collections": "collections",
    "poster": "poster",
    "art": "background",
    "contentRating": "content rating",
    "userRating": "rating",
    "labels": "labels",
}


def field_words(fields) -> str:
    """ "title, release date" - field keys as a person reads them."""
    return ", ".join(FIELD_WORDS.get(f, f) for f in fields)


def empty_reason(fields: list) -> str:
    rest = [f for f in fields if f != "title"]
    if "title" not in fields:
        return "Plex shows no " + field_words(rest)
    return "Plex shows the file name as title" + (" and no " + field_words(rest) if rest else "")


@dataclass
class Gap:
    """One scene that needs a sync (or, when `enqueue` is False, only a mention in the report)."""

    scene_id: str
    kind: str
    fields: list = ()
    reason: str = ""
    enqueue: bool = True
    rating_key: int | None = None

    def __post_init__(self):
        self.scene_id = str(self.scene_id)
        self.fields = list(self.fields)

    def to_dict(self) -> dict:
        return asdict(self)

    def __repr__(self) -> str:
        return "Gap(%s, %s, fields=%r, enqueue=%r)" % (self.scene_id, self.kind, self.fields, self.enqueue)


def _clean(field: str, value) -> str:
    return sanitize_text(value, CAPS.get(field, 255), keep_newlines=field == "summary")


def empty_fields(desired: dict, listed: dict) -> list:
    """Fields Stash has a value for that the listed Plex item shows empty.

    Title counts as empty when Plex shows the file name (what a scan gives an unmatched file)
    and Stash's title is something else.
    """
    out = []
    for field in EMPTY_CHECKED:
        if field not in desired:
            continue
        want = desired[field]  # already sanitized by build_metadata
        if not want:
            continue
        have = listed.get(field)
        if field in LIST_FIELDS:
            if not have:
                out.append(field)
        elif field == "title":
            if have != want and _clean("title", have) == _clean("title", listed.get("file_stem")) != want:
                out.append(field)
        elif not (have or "").strip():
            out.append(field)
    return out


def parse_time(value):
    """An RFC3339 time from Stash ("2024-05-01T10:00:00Z", "...+02:00", fractions) -> epoch, or None."""
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "." in text:  # Python 3.9 wants exactly 3 or 6 fraction digits
        head, _, rest = text.partition(".")
        count = 0
        while count < len(rest) and rest[count].isdigit():
            count += 1
        digits, zone = rest[:count], rest[count:]
        text = head + "." + (digits + "000000")[:6] + zone
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def stale_reason(desired_hash: str, updated_at, state, written) -> str:
    """Why the scene must be synced again although Plex shows all its fields, or "".

    `state` is the scene's `sync_state.jsonl` entry (None: never synced); `written` the
    fingerprints PlexSync kept for the matched item (None: it never wrote to this item).
    An entry without a hash (older layout) falls back to comparing `updated_at`.
    """
    if not state:
        return "never synced by PlexSync"
    recorded = state.get("hash")
    if recorded:
        if recorded != desired_hash:
            return "changed in Stash since the last sync"
    else:
        now, then = parse_time(updated_at), parse_time(state.get("updated_at"))
        if now is None or then is None or now > then:
            return "changed in Stash since the last sync"
    if written is None:
        return "the Plex item was replaced since the last sync"
    return ""


def unverified(state, written) -> bool:
    """True when PlexSync has no record to judge the scene by: never synced (or its entry is
    gone), or no fingerprints of what was written to its item. Reconciliation then compares the
    full Plex item instead of calling the scene stale (see `reconcile.scan`)."""
    return not state or written is None


def drift_fields(desired: dict, listed: dict, written) -> list:
    """Scalar fields whose Plex value is neither what PlexSync wrote nor Stash's value."""
    if not written:
        return []
    out = []
    for field in DRIFT_CHECKED:
        if field not in desired or field not in written:
            continue
        have = listed.get(field)
        if field == "titleSort" and not have:
            have = listed.get("title")  # Plex sorts by the title when no sort title is set
        if have == desired[field]:  # the common case, without hashing anything
            continue
        fp = fingerprint(field, have)
        if fp == written[field] or fp == fingerprint(field, desired[field]):
            continue
        out.append(field)
    return out


def detect(
    scene_id,
    desired: dict,
    desired_hash: str,
    updated_at,
    state,
    listed: dict,
    written,
    settings,
    rating_key=None,
):
    """The gap of a matched scene, or None when Plex shows what PlexSync would write.

    `listed` is the item as the section listing shows it (see `listed_item`).
    """
    empty = empty_fields(desired, listed)
    if empty:
        return Gap(scene_id, EMPTY, empty, empty_reason(empty), rating_key=rating_key)
    reason = stale_reason(desired_hash, updated_at, state, written)
    if reason:
        return Gap(scene_id, STALE, (), reason, rating_key=rating_key)
    drift = drift_fields(desired, listed, written)
    if drift:
        keep = bool(settings.preserve_plex_edits)
        return Gap(
            scene_id,
            DRIFT,
            drift,
            "edited in Plex: %s%s"
            % (field_words(drift), " (kept: 'Preserve Plex edits' is on)" if keep else ""),
            enqueue=not keep,
            rating_key=rating_key,
        )
    return None


def missing(scene_id, reason: str, settings) -> Gap:
    """A scene whose file no Plex item holds; queued unless 'Skip scenes not in Plex' is on."""
    skip = bool(settings.skip_not_found)
    return Gap(
        scene_id,
        MISSING,
        (),
        reason + (" (not queued: 'Skip scenes not in Plex' is on)" if skip else ""),
        enqueue=not skip,
    )


def ambiguous(scene_id, reason: str) -> Gap:
    """A scene several Plex items could hold: reported, never queued (it could only dead-letter)."""
    return Gap(scene_id, AMBIGUOUS, (), reason, enqueue=False)


@dataclass
class Listed:
    """The values a section listing's `<Video>` element shows (tag lists may be cut short), read
    like a dict (`listed["title"]`, `listed.get("genres")`). Reconciliation keeps one per Plex
    item, 50,000 at once: slots and tuples take a third of what a dict of lists would."""

    # The fields worker/metadata.py compares, and the file (Python 3.9 has no dataclass(slots=True)).
    __slots__ = SCALAR_FIELDS + LIST_FIELDS + ("file_stem", "files")
    title: str
    titleSort: str
    summary: str
    tagline: str
    studio: str
    originallyAvailableAt: str
    actors: tuple
    genres: tuple
    collections: tuple
    contentRating: str
    userRating: str
    labels: tuple
    file_stem: str
    files: tuple

    def get(self, field: str, default=None):
        return getattr(self, field) if field in self.__slots__ else default

    def __getitem__(self, field: str):
        if field not in self.__slots__:
            raise KeyError(field)
        return getattr(self, field)


def _tags(video, kind: str) -> tuple:
    return tuple(t.get("tag") for t in video.findall(kind) if t.get("tag"))


def listed_item(video) -> Listed:
    """The values a section listing's `<Video>` element shows (tag lists may be cut short)."""
    files = tuple(
        part.get("file")
        for media in video.findall("Media")
        for part in media.findall("Part")
        if part.get("file")
    )
    return Listed(
        title=video.get("title") or "",
        titleSort=video.get("titleSort") or "",
        summary=video.get("summary") or "",
        tagline=video.get("tagline") or "",
        studio=video.get("studio") or "",
        originallyAvailableAt=(video.get("originallyAvailableAt") or "")[:10],
        actors=_tags(video, "Role"),
        genres=_tags(video, "Genre"),
        collections=_tags(video, "Collection"),
        contentRating=video.get("contentRating") or "",
        userRating=rating_text(video.get("userRating")),
        labels=_tags(video, "Label"),
        file_stem=file_stem(files[0]) if files else "",
        files=files,
    )
