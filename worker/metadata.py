"""What a Stash scene should look like in Plex, and which Plex fields differ from that.

Pure functions over plain dicts; no I/O. `plex_writer.py` reads the Plex item and sends the edit.

Two dict shapes travel between them:

* desired (`build_metadata`): `title`, `titleSort`, `summary`, `tagline`, `studio`,
  `originallyAvailableAt` (str "YYYY-MM-DD" or ""), `contentRating`, `userRating` (str "8.5",
  "" when unrated), `actors`, `genres`, `collections`, `labels` (lists of str), `poster_url`,
  `art_url`. A key is absent when its setting is off (that field is not PlexSync's business);
  `""`/`[]` means "Stash has nothing here". `skipped` (field -> reason) lists values that could
  not be used (an invalid date); it is not part of the hash.
* current (`plex_writer.read_item`): the same field keys with Plex's values (`""`/`[]` when
  empty), plus `locked` (set of field keys locked in Plex) and `file_stem` (the item's file name
  without extension: the title Plex shows when nobody set one).

`diff_metadata` compares them and returns only what must be sent: scalar field -> new value,
list field -> {"add": [...], "remove": [...]}. An empty dict means zero writes.

Collections and labels are *managed* lists: PlexSync adds its own names and removes only names
it added itself (kept in `written`), never one someone added in Plex.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from datetime import date
from urllib.parse import quote

CAPS = {
    "title": 255,
    "titleSort": 255,
    "studio": 255,
    "tagline": 255,
    "summary": 10000,
    "tag": 128,
    "contentRating": 64,
}
# {performers} in a title template: at most this many names.
TEMPLATE_PERFORMERS = 3
# Plex takes edits in the URL's query string; a 10,000-character CJK summary would be ~90 KB
# there, past what HTTP servers accept in one request line (64 KB in many). So the summary is
# also cut to this many bytes once URL-encoded (about 3,300 CJK or 10,000 plain characters).
SUMMARY_ENCODED_MAX = 30000

SCALAR_FIELDS = (
    "title",
    "titleSort",
    "summary",
    "tagline",
    "studio",
    "originallyAvailableAt",
    "contentRating",
    "userRating",
)
LIST_FIELDS = ("actors", "genres", "collections", "labels")
MANAGED_LISTS = ("collections", "labels")
FIELDS = SCALAR_FIELDS + LIST_FIELDS
IMAGE_KEYS = ("poster_url", "art_url")

# Characters XML 1.0 cannot carry (Plex answers in XML), DEL, and lone surrogates.
# \t, \n, \r are handled separately: kept in the summary, turned into spaces elsewhere.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")
_LINE_BREAKS = re.compile(r"\r\n?")
_WHITESPACE_CONTROLS = re.compile(r"[\t\n\r]+")
_DATE = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?(?:[T ].*)?$")

_ZWJ = "\u200d"


def _extends_previous(ch: str) -> bool:
    """True when `ch` belongs to the grapheme before it (so a cut must not fall just before it)."""
    code = ord(ch)
    if ch == _ZWJ or unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Mc"):
        return True
    return (
        0xFE00 <= code <= 0xFE0F
        or 0xE0100 <= code <= 0xE01EF  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F
    )  # emoji tag sequences


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _cut(text: str, limit: int) -> str:
    """`text[:limit]`, moved back to a grapheme boundary when one exists (flags, ZWJ emoji, accents)."""
    if len(text) <= limit:
        return text
    i = limit
    while i > 0 and (_extends_previous(text[i]) or text[i - 1] == _ZWJ):
        i -= 1
    if i > 0 and _is_regional_indicator(text[i]):
        run = 0
        while i - run - 1 >= 0 and _is_regional_indicator(text[i - run - 1]):
            run += 1
        if run % 2 == 1:  # text[i] is the second half of a flag
            i -= 1
    # One grapheme longer than the cap: a code point boundary is the best we can do.
    return text[:i] if i > 0 else text[:limit]


def sanitize_text(value, max_len: int, keep_newlines: bool = False) -> str:
    """Make `value` safe for Plex without changing what a reader sees.

    Removes only what XML cannot carry (NUL and other C0 controls except tab/newline, DEL,
    U+FFFE/U+FFFF, lone surrogates). With `keep_newlines` (the summary) tabs and newlines stay and
    CRLF/CR become LF; otherwise any run of tabs/newlines becomes one space. Then NFC, trimmed,
    and capped at `max_len` code points without splitting a grapheme where that is possible.
    Never transliterates: typographic quotes, dashes, emoji, CJK and RTL text pass unchanged.
    NFC can lengthen a few legacy presentation forms; the cap is applied after it.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    text = _FORBIDDEN.sub("", text)
    if keep_newlines:
        text = _LINE_BREAKS.sub("\n", text)
    else:
        text = _WHITESPACE_CONTROLS.sub(" ", text)
    text = unicodedata.normalize("NFC", text).strip()
    return _cut(text, max(0, int(max_len))).rstrip()


def _encoded_len(text: str) -> int:
    return len(quote(text, safe=""))


def clean_summary(value) -> str:
    """`sanitize_text` for the summary: newlines kept, capped in characters and in encoded size."""
    text = sanitize_text(value, CAPS["summary"], keep_newlines=True)
    if _encoded_len(text) <= SUMMARY_ENCODED_MAX:
        return text
    low, high = 0, len(text)  # the longest prefix that fits
    while low < high:
        mid = (low + high + 1) // 2
        if _encoded_len(text[:mid]) <= SUMMARY_ENCODED_MAX:
            low = mid
        else:
            high = mid - 1
    return _cut(text, low).rstrip()


def rating_text(value) -> str:
    """A 0-10 rating as PlexSync compares and sends it: "8.5", "10", "" for none (one decimal)."""
    if value is None or value == "" or isinstance(value, bool):
        return ""
    try:
        number = round(float(value), 1)
    except (TypeError, ValueError):
        return ""
    if number != number or not 0 <= number <= 10:
        return ""
    return "%g" % number


def stash_rating(rating100) -> str:
    """Stash's rating (1-100) as Plex's user rating (0-10, one decimal); "" when unrated."""
    if rating100 is None or isinstance(rating100, bool):
        return ""
    try:
        return rating_text(min(100.0, max(0.0, float(rating100))) / 10.0)
    except (TypeError, ValueError):
        return ""


def _clean_field(field: str, value) -> str:
    if field == "summary":
        return clean_summary(value)
    if field == "originallyAvailableAt":
        return sanitize_text(value, 10)
    if field == "userRating":
        return rating_text(value)
    return sanitize_text(value, CAPS[field])


def normalize_date(value):
    """Stash date -> ("YYYY-MM-DD", None), ("", None) when empty, or (None, reason) when invalid.

    Stash allows partial dates ("2021", "2021-06"); Plex needs a full one, so they become the first
    day of that year or month (Plex shows the year, which is what the user entered).
    """
    text = sanitize_text(value, 64)
    if not text:
        return "", None
    match = _DATE.match(text)
    if match:
        year, month, day = int(match.group(1)), int(match.group(2) or 1), int(match.group(3) or 1)
        try:
            if year >= 1:
                return date(year, month, day).isoformat(), None
        except ValueError:
            pass
    return None, "invalid date %r (expected YYYY-MM-DD)" % text[:32]


def _dedupe(names, cap: int | None = None) -> list:
    """Sanitized, non-empty, de-duplicated case-insensitively (first spelling wins), capped."""
    seen = set()
    out = []
    for name in names:
        clean = sanitize_text(name, CAPS["tag"])
        key = clean.casefold()
        if not clean or key in seen:
            continue
        seen.add(key)
        out.append(clean)
        if cap is not None and len(out) >= cap:
            break
    return out


def _names(items) -> list:
    return [i.get("name") if isinstance(i, dict) else i for i in (items or [])]


def file_stem(path) -> str:
    """A file's name without folder and extension, for Windows and POSIX paths alike."""
    name = re.split(r"[\\/]", str(path or ""))[-1]
    stem, dot, ext = name.rpartition(".")
    return stem if dot and stem else name


_PLACEHOLDER = re.compile(r"\(\{(\w+)\}\)|\[\{(\w+)\}\]|\{(\w+)\}")


def template_values(scene: dict) -> dict:
    """What each title-template placeholder stands for in `scene` (sanitized; "" when missing)."""
    studio = scene.get("studio") or {}
    when, _reason = normalize_date(scene.get("date"))
    files = scene.get("files") or [{}]
    first = files[0] or {}
    performers = _dedupe(_names(scene.get("performers")), cap=TEMPLATE_PERFORMERS)
    return {
        "title": sanitize_text(scene.get("title"), CAPS["title"]),
        "studio": sanitize_text(studio.get("name"), CAPS["studio"]),
        "parent_studio": sanitize_text((studio.get("parent_studio") or {}).get("name"), CAPS["studio"]),
        "date": sanitize_text(scene.get("date"), 32),
        "year": (when or "")[:4],
        "code": sanitize_text(scene.get("code"), CAPS["title"]),
        "performers": ", ".join(performers),
        "file": sanitize_text(file_stem(first.get("basename") or first.get("path")), CAPS["title"]),
    }


def render_title(template: str, values: dict) -> str:
    """Fill a title template; an empty placeholder disappears with its separator.

    Text before the first placeholder and after the last is kept when any placeholder has a
    value; between two placeholders with values, the text right after the first of them is the
    separator ("{studio} - {date} - {title}" without a date: "Studio - Title"). Brackets right
    around a placeholder ("({year})", "[{code}]") go with it. The result is sanitized; "" when
    every placeholder is empty.
    """
    literals, tokens, pos = [], [], 0
    for m in _PLACEHOLDER.finditer(template):
        literals.append(template[pos : m.start()])
        value = values.get(m.group(1) or m.group(2) or m.group(3), "")
        brackets = ("(", ")") if m.group(1) else ("[", "]") if m.group(2) else ("", "")
        tokens.append(brackets[0] + value + brackets[1] if value else "")
        pos = m.end()
    literals.append(template[pos:])
    if not tokens:
        return sanitize_text(template, CAPS["title"])
    kept = [i for i, token in enumerate(tokens) if token]
    if not kept:
        return ""
    out = literals[0]
    for n, i in enumerate(kept):
        out += tokens[i] + (literals[i + 1] if n + 1 < len(kept) else "")
    return sanitize_text(out + literals[-1], CAPS["title"])


FILTER_WORDS = {
    "not_organized": "not organized",
    "no_stash_id": "no stash-box id",
    "excluded_tag": "has a tag in 'Never sync scenes with these tags'",
}


def filter_reason(scene: dict, settings) -> str:
    """Why the filter settings keep `scene` out of Plex (a key of FILTER_WORDS), or "" to sync it."""
    if settings.only_organized and not scene.get("organized"):
        return "not_organized"
    if settings.require_stash_id and not [
        s for s in scene.get("stash_ids") or () if (s or {}).get("stash_id")
    ]:
        return "no_stash_id"
    excluded = _fold(settings.exclude_tag_names)
    if excluded and any(
        sanitize_text(n, CAPS["tag"]).casefold() in excluded for n in _names(scene.get("tags"))
    ):
        return "excluded_tag"
    return ""


def _tag_split(scene: dict, settings) -> tuple:
    """(genre names, collection names from prefixed tags), hidden tags left out of both."""
    hidden = _fold(settings.hide_tag_names)
    prefix = (settings.collection_tag_prefix or "").casefold()
    genres, collections = [], []
    for name in _names(scene.get("tags")):
        clean = sanitize_text(name, CAPS["tag"])
        if clean.casefold() in hidden:
            continue
        if prefix and clean.casefold().startswith(prefix):
            collections.append(clean[len(prefix) :])
        else:
            genres.append(clean)
    return genres, collections


def _collections(scene: dict, settings, tag_collections: list) -> list:
    studio = scene.get("studio") or {}
    names = []
    for source in settings.collection_sources:
        if source == "studio":
            names.append(studio.get("name"))
        elif source == "parent_studio":
            names.append((studio.get("parent_studio") or {}).get("name"))
        elif source == "groups":
            names.extend(((g or {}).get("group") or {}).get("name") for g in scene.get("groups") or ())
    return _dedupe([n for n in names + tag_collections if n])


def _title(scene: dict, settings, skipped: dict) -> str:
    values = template_values(scene)
    title = render_title(settings.title_template, values) if settings.title_template else values["title"]
    if not title:
        title = values["file"]
    if not title:
        skipped["title"] = "the scene has neither a title nor a file"
    return title


def build_metadata(scene: dict, settings) -> dict:
    """The values a scene should have in Plex, one key per field that is switched on.

    Each field only when its setting is on: the single values (`_single_values`), the lists
    (`_list_values`) and the images (`image_urls`), in that order. Every text is passed through
    `sanitize_text` with its cap. A value that cannot be sent (no title and no file, an invalid
    date) is absent, Plex is left alone, and `skipped` says why, per field.
    """
    scene = scene or {}
    skipped = {}
    desired = _single_values(scene, settings, skipped)
    desired.update(_list_values(scene, settings))
    for kind, url in image_urls(scene, settings).items():
        desired[kind + "_url"] = url
    if skipped:
        desired["skipped"] = skipped
    return desired


def _single_values(scene: dict, settings, skipped: dict) -> dict:
    """Title, sort title, summary, tagline, studio, date, content rating and rating.

    - title (sync_title): the scene title, or `title_template` filled in (see `render_title`);
      an empty result becomes the first file's name without extension, which is what Plex shows
      for an untitled file (a Plex title cannot be empty). With no title and no file the key is
      absent and `skipped` says why.
    - titleSort (sync_sort_title): the same value as title.
    - summary (sync_summary): the scene details, newlines and tabs kept, at most 10,000
      characters and SUMMARY_ENCODED_MAX bytes URL-encoded; "" clears.
    - tagline (tagline_source = code or director): that Stash field; "" clears. Absent when the
      setting is empty.
    - studio (sync_studio): the studio name; "" clears.
    - originallyAvailableAt (sync_date): "YYYY-MM-DD" (partial dates padded with 01); "" clears;
      an invalid date is absent (Plex is left alone) and its reason is in `skipped`.
    - contentRating (content_rating not empty): the setting's value.
    - userRating (sync_rating): Stash's rating100 / 10, one decimal; "" (unrated) clears.
    """
    desired = {}
    if settings.sync_title or settings.sync_sort_title:
        title = _title(scene, settings, skipped)
        if title and settings.sync_title:
            desired["title"] = title
        if title and settings.sync_sort_title:
            desired["titleSort"] = sanitize_text(title, CAPS["titleSort"])
    if settings.sync_summary:
        desired["summary"] = clean_summary(scene.get("details"))
    if settings.tagline_source in ("code", "director"):
        desired["tagline"] = sanitize_text(scene.get(settings.tagline_source), CAPS["tagline"])
    if settings.sync_studio:
        desired["studio"] = sanitize_text((scene.get("studio") or {}).get("name"), CAPS["studio"])
    if settings.sync_date:
        when, reason = normalize_date(scene.get("date"))
        if when is None:
            skipped["originallyAvailableAt"] = reason
        else:
            desired["originallyAvailableAt"] = when
    if settings.content_rating:
        desired["contentRating"] = sanitize_text(settings.content_rating, CAPS["contentRating"])
    if settings.sync_rating:
        desired["userRating"] = stash_rating(scene.get("rating100"))
    return desired


def _list_values(scene: dict, settings) -> dict:
    """Actors, genres, collections and labels.

    - actors (sync_performers): performer names in Stash's order, de-duplicated.
    - genres (sync_tags): tag names, de-duplicated case-insensitively (first spelling wins),
      at most `max_tags`, without `hide_tags` and without tags that became collections.
    - collections (collections_from / Studio as collection / collection_tag_prefix): the studio,
      its parent studio, the groups, the prefixed tags (prefix removed), as chosen.
    - labels (labels not empty): the setting's names.
    """
    desired = {}
    if settings.sync_performers:
        desired["actors"] = _dedupe(_names(scene.get("performers")))
    genres, tag_collections = _tag_split(scene, settings)
    if settings.sync_tags:
        desired["genres"] = _dedupe(genres, cap=settings.max_tags)
    if settings.collection_sources or settings.collection_tag_prefix:
        desired["collections"] = _collections(scene, settings, tag_collections)
    if settings.label_names:
        desired["labels"] = _dedupe(settings.label_names)
    return desired


def image_urls(scene: dict, settings) -> dict:
    """The Stash URL of each cover to upload, by kind ("poster", "art"): a key only when its
    setting is on and Stash has a screenshot (`build_metadata`'s poster_url and art_url)."""
    screenshot = ((scene or {}).get("paths") or {}).get("screenshot")
    if not screenshot:
        return {}
    kinds = [("poster", settings.sync_poster), ("art", settings.sync_background)]
    return {kind: screenshot for kind, on in kinds if on}


def metadata_hash(desired: dict) -> str:
    """A stable sha1 of the desired values (`skipped` excluded): equal hashes, equal Plex content."""
    content = {k: v for k, v in desired.items() if k != "skipped"}
    data = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(data.encode("utf-8", "surrogatepass")).hexdigest()


def _fold(names) -> set:
    return {n.casefold() for n in names}


def _current_list(current: dict, field: str) -> list:
    return [
        sanitize_text(n, CAPS["tag"]) for n in (current.get(field) or []) if sanitize_text(n, CAPS["tag"])
    ]


def fingerprint(field: str, value) -> str:
    """A short hash of a field value as Plex compares it (lists: case-insensitive, unordered)."""
    if field in LIST_FIELDS:
        canonical = json.dumps(sorted(_fold(value or [])), ensure_ascii=False)
    else:
        canonical = _clean_field(field, value)
    return hashlib.sha1(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _is_plex_edit(field: str, current: dict, written: dict | None) -> bool:
    """Does Plex hold a value for `field` that `preserve_plex_edits` must keep?

    A value PlexSync wrote itself (its fingerprint is in `written`) is not an edit, even though
    PlexSync locked it. Plex's defaults are not edits either: the file name as title, the title
    as sort title. Otherwise any locked or non-empty value counts.
    """
    value = current.get(field)
    if written and written.get(field) == fingerprint(field, value):
        return False
    if field in (current.get("locked") or ()):
        return True
    if field in LIST_FIELDS:
        return bool(_current_list(current, field))
    clean = _clean_field(field, value)
    if field == "title" and clean == _clean_field("title", current.get("file_stem")):
        return False
    if field == "titleSort" and clean == _clean_field("title", current.get("title")):
        return False
    return bool(clean)


def diff_metadata(desired: dict, current: dict, settings, written: dict | None = None) -> dict:
    """Only the fields Plex must change: scalar -> new value, list -> {"add": [...], "remove": [...]}.

    - Scalars are compared after the same sanitizing (a Plex summary longer than the cap equals
      Stash's capped one); lists case-insensitively and unordered (Plex keeps no order).
    - An empty Stash value clears the Plex field (all actors/genres removed), unless
      `keep_plex_when_empty`.
    - `preserve_plex_edits` never touches a field a person set in Plex (see `_is_plex_edit`);
      `written` (field -> `fingerprint` of what PlexSync last wrote, plus "collections" and
      "labels": the names it added) lets PlexSync keep updating its own values.
    - Collections and labels (`MANAGED_LISTS`): PlexSync adds its names and removes only names it
      added itself (listed in `written`), also when their setting was switched off; names added
      in Plex are never removed.
    Other fields absent from `desired` (setting off) are left alone. Unchanged -> {} (zero writes).
    """
    changes = {}
    for field in MANAGED_LISTS:
        change = _managed_change(field, desired, current, written)
        if change:
            changes[field] = change
    for field in SCALAR_FIELDS:
        if field not in desired:
            continue
        want = _clean_field(field, desired[field])
        have = _clean_field(field, current.get(field))
        if want == have:
            continue
        if not want and (settings.keep_plex_when_empty or field == "title"):
            continue
        if settings.preserve_plex_edits and _is_plex_edit(field, current, written):
            continue
        changes[field] = want
    for field in LIST_FIELDS:
        if field not in desired or field in MANAGED_LISTS:
            continue
        want = _dedupe(desired[field])
        have = _current_list(current, field)
        want_folded, have_folded = _fold(want), _fold(have)
        add = [n for n in want if n.casefold() not in have_folded]
        if not want and settings.keep_plex_when_empty:
            continue
        remove = [n for n in have if n.casefold() not in want_folded]
        if (add or remove) and settings.preserve_plex_edits and _is_plex_edit(field, current, written):
            continue
        if add or remove:
            changes[field] = {"add": add, "remove": remove}
    return changes


def _managed_change(field: str, desired: dict, current: dict, written: dict | None):
    """{"add", "remove"} for a managed list, or None: add what is wanted and missing, remove
    what PlexSync added earlier and no longer wants (an absent field wants nothing)."""
    want = _dedupe(desired.get(field) or [])
    have = _current_list(current, field)
    ours = _fold((written or {}).get(field) or [])
    want_folded, have_folded = _fold(want), _fold(have)
    add = [n for n in want if n.casefold() not in have_folded]
    remove = [n for n in have if n.casefold() in ours and n.casefold() not in want_folded]
    return {"add": add, "remove": remove} if add or remove else None


def written_after(desired: dict, current: dict, changes: dict, previous: dict | None = None) -> dict:
    """What PlexSync may call its own after sending `changes`: fingerprints of every field whose
    Plex value now equals Stash's, and the collection and label names PlexSync manages.

    Fields kept because of `preserve_plex_edits` or `keep_plex_when_empty` are left out, so they
    stay the user's. A managed name Plex already had before PlexSync wanted it (someone added it
    in Plex) is not claimed, so it is never removed later.
    """
    written = {}
    for field in FIELDS:
        if field not in desired or field in MANAGED_LISTS:
            continue
        if field in changes or fingerprint(field, desired[field]) == fingerprint(field, current.get(field)):
            written[field] = fingerprint(field, desired[field])
    for field in MANAGED_LISTS:
        ours = _fold((previous or {}).get(field) or [])
        added = _fold((changes.get(field) or {}).get("add") or [])
        names = [n for n in _dedupe(desired.get(field) or []) if n.casefold() in ours | added]
        if names:
            written[field] = names
    return written
