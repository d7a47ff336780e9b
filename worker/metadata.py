"""What a Stash scene should look like in Plex, and which Plex fields differ from that.

Pure functions over plain dicts; no I/O. `plex_writer.py` reads the Plex item and sends the edit.

Two dict shapes travel between them:

* desired (`build_metadata`): `title`, `titleSort`, `summary`, `tagline`, `studio`,
  `originallyAvailableAt` (str "YYYY-MM-DD" or ""), `actors`, `genres`, `collections` (lists of
  str), `poster_url`, `art_url`. A key is absent when its setting is off (that field is not
  PlexSync's business); `""`/`[]` means "Stash has nothing here". `skipped` (field -> reason)
  lists values that could not be used (an invalid date); it is not part of the hash.
* current (`plex_writer.read_item`): the same field keys with Plex's values (`""`/`[]` when
  empty), plus `locked` (set of field keys locked in Plex) and `file_stem` (the item's file name
  without extension: the title Plex shows when nobody set one).

`diff_metadata` compares them and returns only what must be sent: scalar field -> new value,
list field -> {"add": [...], "remove": [...]}. An empty dict means zero writes.
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
}
# Plex takes edits in the URL's query string; a 10,000-character CJK summary would be ~90 KB
# there, past what HTTP servers accept in one request line (64 KB in many). So the summary is
# also cut to this many bytes once URL-encoded (about 3,300 CJK or 10,000 plain characters).
SUMMARY_ENCODED_MAX = 30000

SCALAR_FIELDS = ("title", "titleSort", "summary", "tagline", "studio", "originallyAvailableAt")
LIST_FIELDS = ("actors", "genres", "collections")
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
    return (0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF      # variation selectors
            or 0x1F3FB <= code <= 0x1F3FF                                 # skin-tone modifiers
            or 0xE0020 <= code <= 0xE007F)                                # emoji tag sequences


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
        if run % 2 == 1:        # text[i] is the second half of a flag
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
    low, high = 0, len(text)          # the longest prefix that fits
    while low < high:
        mid = (low + high + 1) // 2
        if _encoded_len(text[:mid]) <= SUMMARY_ENCODED_MAX:
            low = mid
        else:
            high = mid - 1
    return _cut(text, low).rstrip()


def _clean_field(field: str, value) -> str:
    if field == "summary":
        return clean_summary(value)
    if field == "originallyAvailableAt":
        return sanitize_text(value, 10)
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


def build_metadata(scene: dict, settings) -> dict:
    """The values a scene should have in Plex, one key per field that is switched on.

    Rules per field (each only when its setting is on):
    - title (sync_title): the scene title; an empty title becomes the first file's name without
      extension, which is what Plex shows for an untitled file (a Plex title cannot be empty).
      With no title and no file the key is absent and `skipped` says why.
    - titleSort (sync_sort_title): the same value as title.
    - summary (sync_summary): the scene details, newlines and tabs kept, at most 10,000
      characters and SUMMARY_ENCODED_MAX bytes URL-encoded; "" clears.
    - tagline (tagline_source = code or director): that Stash field; "" clears. Absent when the
      setting is empty.
    - studio (sync_studio): the studio name; "" clears.
    - originallyAvailableAt (sync_date): "YYYY-MM-DD" (partial dates padded with 01); "" clears;
      an invalid date is absent (Plex is left alone) and its reason is in `skipped`.
    - actors (sync_performers): performer names in Stash's order, de-duplicated.
    - genres (sync_tags): tag names, de-duplicated case-insensitively (first spelling wins),
      at most `max_tags`.
    - collections (sync_collection): [studio name], or [] without a studio.
    - poster_url / art_url (sync_poster / sync_background): Stash's screenshot URL (absent when
      Stash has none).
    Every text is passed through `sanitize_text` with its cap.
    """
    scene = scene or {}
    desired = {}
    skipped = {}
    studio = sanitize_text((scene.get("studio") or {}).get("name"), CAPS["studio"])
    files = scene.get("files") or []

    if settings.sync_title or settings.sync_sort_title:
        title = sanitize_text(scene.get("title"), CAPS["title"])
        if not title and files:
            first = files[0] or {}
            title = sanitize_text(file_stem(first.get("basename") or first.get("path")), CAPS["title"])
        if not title:
            skipped["title"] = "the scene has neither a title nor a file"
        else:
            if settings.sync_title:
                desired["title"] = title
            if settings.sync_sort_title:
                desired["titleSort"] = sanitize_text(title, CAPS["titleSort"])
    if settings.sync_summary:
        desired["summary"] = clean_summary(scene.get("details"))
    if settings.tagline_source in ("code", "director"):
        desired["tagline"] = sanitize_text(scene.get(settings.tagline_source), CAPS["tagline"])
    if settings.sync_studio:
        desired["studio"] = studio
    if settings.sync_date:
        when, reason = normalize_date(scene.get("date"))
        if when is None:
            skipped["originallyAvailableAt"] = reason
        else:
            desired["originallyAvailableAt"] = when
    if settings.sync_performers:
        desired["actors"] = _dedupe(_names(scene.get("performers")))
    if settings.sync_tags:
        desired["genres"] = _dedupe(_names(scene.get("tags")), cap=settings.max_tags)
    if settings.sync_collection:
        desired["collections"] = [sanitize_text(studio, CAPS["tag"])] if studio else []
    screenshot = (scene.get("paths") or {}).get("screenshot")
    if screenshot and settings.sync_poster:
        desired["poster_url"] = screenshot
    if screenshot and settings.sync_background:
        desired["art_url"] = screenshot
    if skipped:
        desired["skipped"] = skipped
    return desired


def metadata_hash(desired: dict) -> str:
    """A stable sha1 of the desired values (`skipped` excluded): equal hashes, equal Plex content."""
    content = {k: v for k, v in desired.items() if k != "skipped"}
    data = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(data.encode("utf-8", "surrogatepass")).hexdigest()


def _fold(names) -> set:
    return {n.casefold() for n in names}


def _current_list(current: dict, field: str) -> list:
    return [sanitize_text(n, CAPS["tag"]) for n in (current.get(field) or []) if sanitize_text(n, CAPS["tag"])]


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
      `written` (field -> `fingerprint` of what PlexSync last wrote, plus "collections": the
      names it added) lets PlexSync keep updating its own values.
    - Collections: PlexSync adds the studio collection and removes only collections it added
      itself (listed in `written`); collections made in Plex are never removed.
    Fields absent from `desired` (setting off) are left alone. Unchanged -> {} (zero writes).
    """
    changes = {}
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
        if field not in desired:
            continue
        want = _dedupe(desired[field])
        have = _current_list(current, field)
        want_folded, have_folded = _fold(want), _fold(have)
        add = [n for n in want if n.casefold() not in have_folded]
        if field == "collections":
            ours = _fold((written or {}).get("collections") or [])
            remove = [n for n in have if n.casefold() in ours and n.casefold() not in want_folded]
        else:
            if not want and settings.keep_plex_when_empty:
                continue
            remove = [n for n in have if n.casefold() not in want_folded]
            if (add or remove) and settings.preserve_plex_edits and _is_plex_edit(field, current, written):
                continue
        if add or remove:
            changes[field] = {"add": add, "remove": remove}
    return changes


def written_after(desired: dict, current: dict, changes: dict, previous: dict | None = None) -> dict:
    """What PlexSync may call its own after sending `changes`: fingerprints of every field whose
    Plex value now equals Stash's, and the collection names PlexSync manages.

    Fields kept because of `preserve_plex_edits` or `keep_plex_when_empty` are left out, so they
    stay the user's.
    """
    written = {}
    for field in FIELDS:
        if field not in desired or field == "collections":
            continue
        if field in changes or fingerprint(field, desired[field]) == fingerprint(field, current.get(field)):
            written[field] = fingerprint(field, desired[field])
    if "collections" in desired:
        written["collections"] = _dedupe(desired["collections"])
    elif previous and previous.get("collections"):
        written["collections"] = list(previous["collections"])
    return written
