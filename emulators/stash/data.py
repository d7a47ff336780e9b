"""The Stash emulator's in-memory database and Stash's query semantics.

Everything here is plain Python (no HTTP, no GraphQL): scenes, files, studios,
performers, tags and groups as dicts, the edit semantics of ``sceneUpdate`` /
``bulkSceneUpdate`` (pkg/api changeset translator), and the filter / sort /
pagination rules of ``findScenes`` (pkg/sqlite criterion handlers).

Fidelity notes (what real Stash does, and so does this):
* ``title``, ``code``, ``details`` and ``director`` are Go strings: an unset or
  cleared value reads back as ``""``, never ``null``; edits are whitespace-trimmed.
* ``created_at`` / ``updated_at`` are stored with one-second precision (RFC3339
  without fractions) and every ``sceneUpdate`` bumps ``updated_at``, even when no
  value changed.
* String criteria use SQL ``LIKE`` (ASCII case-insensitive, ``%``/``_`` wildcards);
  path INCLUDES/EXCLUDES split the value into words (any word / no word).
* ``per_page`` -1 returns everything; ``max_per_page`` (None = current Stash, no
  cap; 1000 = older Stash) caps larger pages silently.

Records are mutated by assigning new values (lists are replaced, never
mutated in place) so lock-free readers see consistent values.
"""

from __future__ import annotations

import random
import re
import struct
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

# Every field of SceneUpdateInput (graphql/schema/types/scene.graphql), null unless sent: what
# Stash puts in a Scene.Update.Post hook's hookContext.input. Used by bench/hook.py and the hook tests.
SCENE_UPDATE_INPUT_FIELDS = (
    "clientMutationId",
    "id",
    "title",
    "code",
    "url",
    "urls",
    "date",
    "details",
    "director",
    "rating100",
    "organized",
    "o_counter",
    "studio_id",
    "gallery_ids",
    "performer_ids",
    "movies",
    "groups",
    "tag_ids",
    "cover_image",
    "stash_ids",
    "resume_time",
    "play_duration",
    "play_count",
    "primary_file_id",
)

ZERO_TIME = "0001-01-01T00:00:00Z"


class StashError(Exception):
    """An error Stash would report as a GraphQL error."""


# --------------------------------------------------------------------------- time
def now_ts() -> int:
    return int(time.time())


def format_time(ts: Optional[float]) -> Optional[str]:
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_REL_RE = re.compile(r"^([<>])\s*(\d+)\s*([smhdwy]?)$", re.I)
_UNIT = {"s": 1, "": 60, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_FRAC_RE = re.compile(r"\.(\d+)")


def parse_timestamp(value: str, now: Optional[float] = None) -> int:
    """Parse Stash's Timestamp input: RFC3339, a date, "YYYY-MM-DD HH:MM[:SS]",
    or relative "<4h" (4 hours ago) / ">5m" (5 minutes ahead).  Naive times are UTC."""
    text = str(value).strip()
    rel = _REL_RE.match(text)
    if rel:
        delta = int(rel.group(2)) * _UNIT[rel.group(3).lower()]
        base = now if now is not None else time.time()
        return int(base - delta if rel.group(1) == "<" else base + delta)
    iso = text.replace(" ", "T", 1) if re.match(r"^\d{4}-\d{2}-\d{2} \d", text) else text
    if iso.endswith(("Z", "z")):
        iso = iso[:-1] + "+00:00"
    iso = _FRAC_RE.sub(lambda m: "." + (m.group(1) + "000000")[:6], iso, count=1)
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        raise StashError("invalid timestamp %r" % value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


def to_timestamp(value: Any) -> int:
    """int/float epoch seconds, datetime (naive = UTC) or string -> int epoch seconds."""
    if isinstance(value, bool):
        raise TypeError("not a time: %r" % (value,))
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp())
    if isinstance(value, str):
        return parse_timestamp(value)
    raise TypeError("not a time: %r" % (value,))


_DATE_RE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def parse_date(value: Optional[str]) -> Optional[str]:
    """Stash dates: "YYYY-MM-DD", "YYYY-MM" or "YYYY"; "" / null clear the date."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    m = _DATE_RE.match(text)
    if not m:
        raise StashError("error parsing date %r: expected YYYY-MM-DD" % value)
    try:
        datetime(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1))
    except ValueError:
        raise StashError("error parsing date %r" % value)
    return text


# --------------------------------------------------------------------------- images
def _segment(marker: int, payload: bytes) -> bytes:
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def make_jpeg(comment: str) -> bytes:
    """A minimal valid baseline JPEG (8x8, mid-grey) carrying ``comment`` in a COM
    segment, so different comments give different bytes.  No PIL needed."""
    parts = [
        b"\xff\xd8",
        _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
        _segment(0xFE, comment.encode("utf-8")[:60000]),
        _segment(0xDB, b"\x00" + bytes([1] * 64)),
        _segment(0xC0, struct.pack(">BHHB", 8, 8, 8, 1) + b"\x01\x11\x00"),
        _segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00"),  # DC table 0: "0" -> category 0
        _segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00"),  # AC table 0: "0" -> EOB
        _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
        b"\x3f",  # DC diff 0, EOB, padded with 1 bits
        b"\xff\xd9",
    ]
    return b"".join(parts)


# --------------------------------------------------------------------------- matching helpers
def like_regex(pattern: str) -> "re.Pattern[str]":
    """SQLite LIKE: % and _ wildcards, ASCII-only case folding, whole-string match."""
    out = []
    for ch in pattern:
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.IGNORECASE | re.ASCII | re.DOTALL)


def _like(pattern: str) -> Callable[[str], bool]:
    rx = like_regex(pattern)
    return lambda s: rx.fullmatch(s or "") is not None


def _words(value: str) -> List[str]:
    q = value.strip()
    trimmed = q.strip('"')
    if trimmed != q:
        return [trimmed]
    return [w for w in re.split(r"\s+", q) if w]


def string_predicate(crit: Dict[str, Any], split_words: bool = False) -> Callable[[Optional[str]], bool]:
    """StringCriterionInput -> predicate over one string value ("" / None = null)."""
    mod = crit.get("modifier")
    value = crit.get("value") or ""
    if mod == "EQUALS":
        return _like(value)
    if mod == "NOT_EQUALS":
        f = _like(value)
        return lambda s: not f(s)
    if mod in ("INCLUDES", "EXCLUDES"):
        words = _words(value) if split_words else [value]
        fs = [_like("%" + w + "%") for w in words] or [lambda s: True]
        if mod == "INCLUDES":
            return lambda s: any(f(s) for f in fs)
        return lambda s: not any(f(s) for f in fs)
    if mod in ("MATCHES_REGEX", "NOT_MATCHES_REGEX"):
        try:
            rx = re.compile(value)
        except re.error as exc:
            raise StashError("error parsing regexp: %s" % exc)
        if mod == "MATCHES_REGEX":
            return lambda s: bool(s) and rx.search(s) is not None
        return lambda s: not s or rx.search(s) is None
    if mod == "IS_NULL":
        return lambda s: not (s or "").strip()
    if mod == "NOT_NULL":
        return lambda s: bool((s or "").strip())
    raise StashError("unsupported string filter modifier %s" % mod)


def number_predicate(crit: Dict[str, Any]) -> Callable[[Optional[float]], bool]:
    mod = crit.get("modifier")
    v = crit.get("value")
    v2 = crit.get("value2")
    if mod == "IS_NULL":
        return lambda x: x is None
    if mod == "NOT_NULL":
        return lambda x: x is not None
    if mod == "EQUALS":
        return lambda x: x is not None and x == v
    if mod == "NOT_EQUALS":
        return lambda x: x is not None and x != v
    if mod == "GREATER_THAN":
        return lambda x: x is not None and x > v
    if mod == "LESS_THAN":
        return lambda x: x is not None and x < v
    if mod in ("BETWEEN", "NOT_BETWEEN"):
        lo, hi = v, v2 if v2 is not None else v
        if mod == "BETWEEN":
            return lambda x: x is not None and lo <= x <= hi
        return lambda x: x is not None and not (lo <= x <= hi)
    raise StashError("unsupported int filter modifier %s" % mod)


def timestamp_predicate(crit: Dict[str, Any]) -> Callable[[Optional[int]], bool]:
    """TimestampCriterionInput (second precision, like Stash's stored values).
    BETWEEN without value2 uses now + 1 day as the upper bound (as Stash does)."""
    mod = crit.get("modifier")
    if mod in ("IS_NULL", "NOT_NULL"):
        return number_predicate(crit)
    value = parse_timestamp(crit.get("value") or "")
    value2 = crit.get("value2")
    upper = parse_timestamp(value2) if value2 else now_ts() + 86400
    return number_predicate({"modifier": mod, "value": value, "value2": upper})


def date_predicate(crit: Dict[str, Any]) -> Callable[[Optional[str]], bool]:
    mod = crit.get("modifier")
    if mod in ("IS_NULL", "NOT_NULL"):
        return number_predicate(crit)

    def norm(d: Optional[str]) -> Optional[str]:
        if not d:
            return None
        parts = (d.split("-") + ["01", "01"])[:3]
        return "-".join(parts)

    value = norm(parse_date(crit.get("value")))
    value2 = norm(parse_date(crit.get("value2"))) if crit.get("value2") else value
    pred = number_predicate({"modifier": mod, "value": value, "value2": value2})
    return lambda d: pred(norm(d))


def multi_predicate(
    crit: Dict[str, Any], expand: Optional[Callable[[List[int], Optional[int]], set]] = None
) -> Callable[[Sequence[int]], bool]:
    """MultiCriterionInput / HierarchicalMultiCriterionInput over a list of ids."""
    mod = crit.get("modifier")
    values = [int(v) for v in (crit.get("value") or [])]
    excludes = [int(v) for v in (crit.get("excludes") or [])]
    depth = crit.get("depth")
    if expand is not None and depth not in (None, 0):
        values_set = expand(values, depth)
        excludes_set = expand(excludes, depth)
    else:
        values_set, excludes_set = set(values), set(excludes)
    if mod == "IS_NULL":
        return lambda ids: not ids
    if mod == "NOT_NULL":
        return lambda ids: bool(ids)
    if mod == "EXCLUDES":
        excludes_set = excludes_set | values_set
        return lambda ids: not (set(ids) & excludes_set)

    def excl(ids: Sequence[int]) -> bool:
        return not excludes_set or not (set(ids) & excludes_set)

    if not values:
        return excl
    if mod == "INCLUDES":
        return lambda ids: bool(set(ids) & values_set) and excl(ids)
    if mod == "INCLUDES_ALL":
        return lambda ids: set(values) <= set(ids) and excl(ids)
    if mod == "EQUALS":
        return lambda ids: set(ids) == set(values) and excl(ids)
    if mod == "NOT_EQUALS":
        return lambda ids: set(ids) != set(values) and excl(ids)
    raise StashError("unsupported multi filter modifier %s" % mod)


def _basename(path: str) -> Tuple[str, str]:
    idx = max(path.rfind("/"), path.rfind("\\"))
    if idx < 0:
        return "", path
    return path[:idx] or path[:1], path[idx + 1 :]


_WORDS = (
    "Amber",
    "Blue",
    "Crimson",
    "Dawn",
    "Echo",
    "Fern",
    "Golden",
    "Harbor",
    "Iris",
    "Jade",
    "Kite",
    "Lunar",
    "Maple",
    "Nova",
    "Ocean",
    "Pine",
    "Quartz",
    "River",
    "Silver",
    "Tide",
    "Umber",
    "Velvet",
    "Willow",
    "Xenon",
    "Yarrow",
    "Zephyr",
)

SCENE_SORTS = (
    "id",
    "title",
    "path",
    "date",
    "created_at",
    "updated_at",
    "rating",
    "rating100",
    "duration",
    "filesize",
    "file_mod_time",
    "o_counter",
    "play_count",
    "random",
    "code",
    "organized",
    "bitrate",
    "framerate",
    "last_played_at",
    "resume_time",
    "play_duration",
    "interactive",
    "perceptual_similarity",
    "performer_count",
    "tag_count",
    "studio",
)


class StashData:
    """Thread-safe in-memory Stash library."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.scenes: Dict[int, Dict[str, Any]] = {}
        self.studios: Dict[int, Dict[str, Any]] = {}
        self.performers: Dict[int, Dict[str, Any]] = {}
        self.tags: Dict[int, Dict[str, Any]] = {}
        self.groups: Dict[int, Dict[str, Any]] = {}
        self.folders: Dict[str, Dict[str, Any]] = {}
        self.files: Dict[int, Dict[str, Any]] = {}
        self._names: Dict[str, Dict[str, int]] = {"studio": {}, "performer": {}, "tag": {}, "group": {}}
        self._next: Dict[str, int] = {}
        self.max_per_page: Optional[int] = None

    # ------------------------------------------------------------------ ids
    def _new_id(self, kind: str) -> int:
        n = self._next.get(kind, 1)
        self._next[kind] = n + 1
        return n

    def _table(self, kind: str) -> Dict[int, Dict[str, Any]]:
        return {"studio": self.studios, "performer": self.performers, "tag": self.tags, "group": self.groups}[
            kind
        ]

    def _add_named(self, kind: str, name: str, **fields: Any) -> int:
        name = str(name).strip()
        if not name:
            raise StashError("%s name must not be blank" % kind)
        key = name.lower()
        with self.lock:
            if key in self._names[kind]:
                raise StashError("%s with name '%s' already exists" % (kind, name))
            oid = self._new_id(kind)
            ts = now_ts()
            rec = {
                "id": oid,
                "name": name,
                "aliases": [],
                "urls": [],
                "details": None,
                "image_version": 0,
                "created_at": ts,
                "updated_at": ts,
            }
            rec.update(fields)
            self._table(kind)[oid] = rec
            self._names[kind][key] = oid
            return oid

    def add_studio(self, name: str, parent: Any = None) -> int:
        parent_id = self.ref("studio", parent, create=True) if parent is not None else None
        return self._add_named("studio", name, parent_id=parent_id)

    def add_performer(self, name: str, **fields: Any) -> int:
        base = {"disambiguation": None, "gender": None}
        base.update(fields)
        return self._add_named("performer", name, **base)

    def add_tag(self, name: str, **fields: Any) -> int:
        base = {"description": None}
        base.update(fields)
        return self._add_named("tag", name, **base)

    def add_group(self, name: str, **fields: Any) -> int:
        return self._add_named("group", name, **fields)

    def ref(self, kind: str, value: Any, create: bool = False) -> int:
        """Resolve an id (int or digit string) or a name to an id; create by name if asked."""
        table = self._table(kind)
        if isinstance(value, bool):
            raise StashError("invalid %s reference %r" % (kind, value))
        if isinstance(value, int):
            if value in table:
                return value
            raise StashError("%s with id %d not found" % (kind, value))
        text = str(value).strip()
        with self.lock:
            by_name = self._names[kind].get(text.lower())
            if by_name is not None:
                return by_name
            if text.isdigit() and int(text) in table:
                return int(text)
            if create:
                return {
                    "studio": self.add_studio,
                    "performer": self.add_performer,
                    "tag": self.add_tag,
                    "group": self.add_group,
                }[kind](text)
        raise StashError("%s %r not found" % (kind, value))

    def id_ref(self, kind: str, value: Any) -> int:
        """A GraphQL ID input that must name an existing object."""
        try:
            oid = int(str(value).strip())
        except ValueError:
            raise StashError("converting %s id %r: invalid syntax" % (kind, value))
        if oid not in self._table(kind):
            raise StashError("%s with id %d not found" % (kind, oid))
        return oid

    # -- renames, deletions and merges of tags, performers, studios and groups ------------------
    # As in Stash's SQLite store: the scenes' join rows follow (ON DELETE CASCADE, Merge's UPDATE of
    # the join tables) and no scene's updated_at changes (pkg/sqlite/tag.go Destroy/Merge).
    _SCENE_REFS = {"tag": "tag_ids", "performer": "performer_ids"}

    def rename(self, kind: str, oid: Any, name: str) -> None:
        name = str(name).strip()
        if not name:
            raise StashError("%s name must not be blank" % kind)
        with self.lock:
            oid = self.id_ref(kind, oid)
            rec = self._table(kind)[oid]
            other = self._names[kind].get(name.lower())
            if other is not None and other != oid:
                raise StashError("%s with name '%s' already exists" % (kind, name))
            self._names[kind].pop(rec["name"].lower(), None)
            rec["name"] = name
            rec["updated_at"] = now_ts()
            self._names[kind][name.lower()] = oid

    def destroy(self, kind: str, oid: Any) -> None:
        with self.lock:
            oid = self.id_ref(kind, oid)
            rec = self._table(kind).pop(oid)
            self._names[kind].pop(rec["name"].lower(), None)
            for scene in self.scenes.values():
                self._replace_ref(kind, scene, oid, None)
            if kind == "studio":
                for studio in self.studios.values():
                    if studio.get("parent_id") == oid:
                        studio["parent_id"] = None

    def merge(self, kind: str, sources: Iterable[Any], destination: Any) -> None:
        with self.lock:
            dest = self.id_ref(kind, destination)
            for src in [self.id_ref(kind, s) for s in sources]:
                if src == dest:
                    continue
                rec = self._table(kind).pop(src)
                self._names[kind].pop(rec["name"].lower(), None)
                for scene in self.scenes.values():
                    self._replace_ref(kind, scene, src, dest)

    def _replace_ref(self, kind: str, scene: Dict[str, Any], old: int, new: Optional[int]) -> None:
        if kind == "studio":
            if scene["studio_id"] == old:
                scene["studio_id"] = new
        elif kind == "group":
            groups = [(new if g == old else g, i) for g, i in scene["groups"]]
            scene["groups"] = [(g, i) for g, i in groups if g is not None]
        else:
            key = self._SCENE_REFS[kind]
            if old in scene[key]:
                scene[key] = self._unique(
                    new if x == old else x for x in scene[key] if x != old or new is not None
                )

    def studio_descendants(self, ids: Iterable[int], depth: Optional[int]) -> set:
        result = set(ids)
        frontier = set(ids)
        level = 0
        while frontier and (depth is None or depth < 0 or level < depth):
            frontier = {
                s["id"] for s in list(self.studios.values()) if s.get("parent_id") in frontier
            } - result
            result |= frontier
            level += 1
        return result

    # ------------------------------------------------------------------ files
    def _folder(self, path: str) -> Dict[str, Any]:
        folder = self.folders.get(path)
        if folder is None:
            ts = now_ts()
            folder = {
                "id": self._new_id("folder"),
                "path": path,
                "created_at": ts,
                "updated_at": ts,
                "mod_time": ts,
            }
            self.folders[path] = folder
        return folder

    def _make_file(self, path: str, size: int, duration: float, **extra: Any) -> Dict[str, Any]:
        folder_path, basename = _basename(str(path))
        fid = self._new_id("file")
        ts = now_ts()
        rec = {
            "id": fid,
            "path": str(path),
            "basename": basename,
            "folder_id": self._folder(folder_path)["id"],
            "folder_path": folder_path,
            "size": int(size),
            "duration": float(duration),
            "width": 1920,
            "height": 1080,
            "video_codec": "h264",
            "audio_codec": "aac",
            "format": "mp4",
            "frame_rate": 29.97,
            "bit_rate": 8000000,
            "oshash": "%016x" % (random.Random(str(path)).getrandbits(64)),
            "md5": None,
            "mod_time": ts,
            "created_at": ts,
            "updated_at": ts,
        }
        for key, value in extra.items():
            if key not in rec:
                raise TypeError("unknown file field %r" % key)
            rec[key] = value
        self.files[fid] = rec
        return rec

    # ------------------------------------------------------------------ scenes
    _FILE_FIELDS = (
        "width",
        "height",
        "video_codec",
        "audio_codec",
        "format",
        "frame_rate",
        "bit_rate",
        "oshash",
        "md5",
    )
    _SCENE_EXTRA = (
        "rating100",
        "o_counter",
        "stash_ids",
        "groups",
        "created_at",
        "updated_at",
        "custom_fields",
        "play_count",
        "resume_time",
        "play_duration",
        "extra_paths",
    )

    def add_scene(
        self,
        path: Optional[str],
        size: int = 1000,
        title: Optional[str] = None,
        details: Optional[str] = None,
        date: Optional[str] = None,
        code: Optional[str] = None,
        director: Optional[str] = None,
        urls: Iterable[str] = (),
        studio: Any = None,
        performers: Iterable[Any] = (),
        tags: Iterable[Any] = (),
        organized: bool = False,
        duration: float = 60.0,
        **extra: Any,
    ) -> int:
        file_extra = {k: extra.pop(k) for k in list(extra) if k in self._FILE_FIELDS}
        unknown = [k for k in extra if k not in self._SCENE_EXTRA]
        if unknown:
            raise TypeError("add_scene() got unexpected field(s): %s" % ", ".join(unknown))
        with self.lock:
            ts = now_ts()
            created = to_timestamp(extra["created_at"]) if extra.get("created_at") is not None else ts
            updated = (
                to_timestamp(extra["updated_at"]) if extra.get("updated_at") is not None else max(ts, created)
            )
            files = []
            if path is not None:
                files.append(self._make_file(path, size, duration, **file_extra))
            for other in extra.get("extra_paths") or ():
                files.append(self._make_file(other, size, duration))
            groups = []
            for g in extra.get("groups") or ():
                if isinstance(g, (tuple, list)):
                    groups.append((self.ref("group", g[0], create=True), g[1] if len(g) > 1 else None))
                else:
                    groups.append((self.ref("group", g, create=True), None))
            sid = self._new_id("scene")
            rec = {
                "id": sid,
                "title": (title or "").strip(),
                "code": (code or "").strip(),
                "details": (details or "").strip(),
                "director": (director or "").strip(),
                "urls": [str(u).strip() for u in urls],
                "date": parse_date(date),
                "rating100": extra.get("rating100"),
                "organized": bool(organized),
                "o_counter": int(extra.get("o_counter") or 0),
                "studio_id": self.ref("studio", studio, create=True) if studio not in (None, "") else None,
                "performer_ids": self._unique(self.ref("performer", p, create=True) for p in performers),
                "tag_ids": self._unique(self.ref("tag", t, create=True) for t in tags),
                "groups": groups,
                "gallery_ids": [],
                "stash_ids": [dict(s) for s in (extra.get("stash_ids") or ())],
                "files": files,
                "created_at": created,
                "updated_at": updated,
                "cover_version": 0,
                "custom_fields": dict(extra.get("custom_fields") or {}),
                "play_count": int(extra.get("play_count") or 0),
                "resume_time": extra.get("resume_time"),
                "play_duration": extra.get("play_duration"),
            }
            self.scenes[sid] = rec
            return sid

    @staticmethod
    def _unique(ids: Iterable[int]) -> List[int]:
        out: List[int] = []
        for i in ids:
            if i not in out:
                out.append(i)
        return out

    def seed_scenes(
        self,
        n: int,
        path_prefix: str = "/data/videos",
        seed: int = 0,
        studios: int = 12,
        performers: int = 150,
        tags: int = 40,
        metadata: bool = True,
        updated_at: Any = None,
        created_at: Any = None,
        size: int = 1000,
    ) -> List[int]:
        """Add ``n`` scenes fast, with deterministic metadata drawn from pools of
        studios/performers/tags (created on first use).  Paths are
        ``{path_prefix}/scene_{id:06d}.mp4``."""
        rng = random.Random(seed)
        prefix = path_prefix.rstrip("/\\")
        with self.lock:
            studio_ids = (
                [self.ref("studio", "Studio %02d" % i, create=True) for i in range(1, studios + 1)]
                if metadata and studios
                else []
            )
            perf_ids = (
                [self.ref("performer", "Performer %03d" % i, create=True) for i in range(1, performers + 1)]
                if metadata and performers
                else []
            )
            tag_ids = (
                [self.ref("tag", "Tag %02d" % i, create=True) for i in range(1, tags + 1)]
                if metadata and tags
                else []
            )
            ts = now_ts()
            created = to_timestamp(created_at) if created_at is not None else ts
            updated = to_timestamp(updated_at) if updated_at is not None else max(ts, created)
            ids = []
            folder = self._folder(prefix)
            for _ in range(n):
                sid = self._new_id("scene")
                fid = self._new_id("file")
                path = "%s/scene_%06d.mp4" % (prefix, sid)
                f = {
                    "id": fid,
                    "path": path,
                    "basename": "scene_%06d.mp4" % sid,
                    "folder_id": folder["id"],
                    "folder_path": prefix,
                    "size": int(size),
                    "duration": float(rng.randint(300, 3600)),
                    "width": 1920,
                    "height": 1080,
                    "video_codec": "h264",
                    "audio_codec": "aac",
                    "format": "mp4",
                    "frame_rate": 29.97,
                    "bit_rate": 8000000,
                    "oshash": "%016x" % rng.getrandbits(64),
                    "md5": None,
                    "mod_time": ts,
                    "created_at": ts,
                    "updated_at": ts,
                }
                self.files[fid] = f
                rec = {
                    "id": sid,
                    "title": "",
                    "code": "",
                    "details": "",
                    "director": "",
                    "urls": [],
                    "date": None,
                    "rating100": None,
                    "organized": False,
                    "o_counter": 0,
                    "studio_id": None,
                    "performer_ids": [],
                    "tag_ids": [],
                    "groups": [],
                    "gallery_ids": [],
                    "stash_ids": [],
                    "files": [f],
                    "created_at": created,
                    "updated_at": updated,
                    "cover_version": 0,
                    "custom_fields": {},
                    "play_count": 0,
                    "resume_time": None,
                    "play_duration": None,
                }
                if metadata:
                    rec["title"] = "%s %s %d" % (rng.choice(_WORDS), rng.choice(_WORDS), sid)
                    rec["details"] = "Seeded scene %d.\nA %s story." % (sid, rng.choice(_WORDS).lower())
                    rec["code"] = "SC-%06d" % sid
                    rec["date"] = "%04d-%02d-%02d" % (
                        rng.randint(2010, 2024),
                        rng.randint(1, 12),
                        rng.randint(1, 28),
                    )
                    rec["urls"] = ["https://example.com/scenes/%d" % sid]
                    if studio_ids:
                        rec["studio_id"] = rng.choice(studio_ids)
                    if perf_ids:
                        rec["performer_ids"] = sorted(
                            rng.sample(perf_ids, rng.randint(0, min(3, len(perf_ids))))
                        )
                    if tag_ids:
                        rec["tag_ids"] = sorted(rng.sample(tag_ids, rng.randint(0, min(5, len(tag_ids)))))
                self.scenes[sid] = rec
                ids.append(sid)
            return ids

    def get_scene(self, scene_id: Any) -> Dict[str, Any]:
        try:
            sid = int(scene_id)
        except (TypeError, ValueError):
            raise StashError("scene id %r: invalid syntax" % (scene_id,))
        rec = self.scenes.get(sid)
        if rec is None:
            raise StashError("scene with id %d not found" % sid)
        return rec

    def delete_scene(self, scene_id: Any) -> Dict[str, Any]:
        with self.lock:
            rec = self.get_scene(scene_id)
            del self.scenes[rec["id"]]
            for f in rec["files"]:
                self.files.pop(f["id"], None)
            return rec

    def update_scene_direct(self, scene_id: Any, **fields: Any) -> None:
        """Change data behind the plugin's back (Python helper, no hooks).  Accepts
        add_scene's keyword names; bumps updated_at unless ``updated_at`` is given."""
        with self.lock:
            rec = self.get_scene(scene_id)
            touch = fields.pop("touch", True)
            for key, value in fields.items():
                if key in ("title", "code", "details", "director"):
                    rec[key] = (value or "").strip()
                elif key == "date":
                    rec["date"] = parse_date(value)
                elif key == "urls":
                    rec["urls"] = [str(u).strip() for u in (value or ())]
                elif key == "studio":
                    rec["studio_id"] = (
                        self.ref("studio", value, create=True) if value not in (None, "") else None
                    )
                elif key == "performers":
                    rec["performer_ids"] = self._unique(
                        self.ref("performer", p, create=True) for p in (value or ())
                    )
                elif key == "tags":
                    rec["tag_ids"] = self._unique(self.ref("tag", t, create=True) for t in (value or ()))
                elif key == "groups":
                    groups = []
                    for g in value or ():
                        if isinstance(g, (tuple, list)):
                            groups.append(
                                (self.ref("group", g[0], create=True), g[1] if len(g) > 1 else None)
                            )
                        else:
                            groups.append((self.ref("group", g, create=True), None))
                    rec["groups"] = groups
                elif key == "organized":
                    rec["organized"] = bool(value)
                elif key in ("rating100", "o_counter", "play_count", "resume_time", "play_duration"):
                    rec[key] = value
                elif key == "stash_ids":
                    rec["stash_ids"] = [dict(s) for s in (value or ())]
                elif key == "custom_fields":
                    rec["custom_fields"] = dict(value or {})
                elif key in ("created_at", "updated_at"):
                    rec[key] = to_timestamp(value)
                elif key in ("path", "size", "duration") or key in self._FILE_FIELDS:
                    if not rec["files"]:
                        raise StashError("scene %d has no file" % rec["id"])
                    f = dict(rec["files"][0])
                    if key == "path":
                        folder_path, basename = _basename(str(value))
                        f.update(
                            path=str(value),
                            basename=basename,
                            folder_path=folder_path,
                            folder_id=self._folder(folder_path)["id"],
                        )
                    else:
                        f[key] = value
                    self.files[f["id"]] = f
                    rec["files"] = [f] + rec["files"][1:]
                elif key == "cover":
                    if value:
                        rec["cover_version"] = rec["cover_version"] + 1
                else:
                    raise TypeError("update_scene() got unexpected field %r" % key)
            if touch and "updated_at" not in fields:
                rec["updated_at"] = now_ts()

    def set_cover(self, scene_id: Any, touch: bool = True) -> int:
        with self.lock:
            rec = self.get_scene(scene_id)
            rec["cover_version"] = rec["cover_version"] + 1
            if touch:
                rec["updated_at"] = now_ts()
            return rec["cover_version"]

    # ------------------------------------------------------------------ GraphQL edit semantics
    def _ids(self, kind: str, values: Optional[Iterable[Any]]) -> List[int]:
        return self._unique(self.id_ref(kind, v) for v in (values or ()))

    @staticmethod
    def _bulk_ids(current: List[int], new: List[int], mode: str) -> List[int]:
        if mode == "ADD":
            return current + [i for i in new if i not in current]
        if mode == "REMOVE":
            return [i for i in current if i not in new]
        return list(new)

    def _apply_common(self, rec: Dict[str, Any], inp: Dict[str, Any]) -> None:
        for key in ("title", "code", "details", "director"):
            if key in inp:
                rec[key] = (inp[key] or "").strip()
        if "date" in inp:
            rec["date"] = parse_date(inp["date"])
        if "rating100" in inp:
            rec["rating100"] = inp["rating100"]
        if "organized" in inp:
            rec["organized"] = bool(inp["organized"])
        if "studio_id" in inp:
            rec["studio_id"] = (
                self.id_ref("studio", inp["studio_id"]) if inp["studio_id"] not in (None, "") else None
            )

    def apply_scene_update(self, scene_id: Any, inp: Dict[str, Any]) -> Dict[str, Any]:
        """SceneUpdateInput semantics; only keys present in ``inp`` are changed."""
        with self.lock:
            rec = self.get_scene(scene_id)
            new = dict(rec)
            self._apply_common(new, inp)
            if "urls" in inp:
                new["urls"] = [u.strip() for u in (inp["urls"] or [])]
            elif "url" in inp:
                new["urls"] = [inp["url"].strip()] if inp["url"] else []
            for key, kind in (("performer_ids", "performer"), ("tag_ids", "tag")):
                if key in inp:
                    new[key] = self._ids(kind, inp[key])
            if "gallery_ids" in inp:
                new["gallery_ids"] = [int(g) for g in (inp["gallery_ids"] or [])]
            if "groups" in inp:
                new["groups"] = [
                    (self.id_ref("group", g["group_id"]), g.get("scene_index")) for g in (inp["groups"] or [])
                ]
            elif "movies" in inp:
                new["groups"] = [
                    (self.id_ref("group", g["movie_id"]), g.get("scene_index")) for g in (inp["movies"] or [])
                ]
            if inp.get("cover_image"):
                new["cover_version"] = rec["cover_version"] + 1
            if "stash_ids" in inp:
                new["stash_ids"] = [dict(s) for s in (inp["stash_ids"] or [])]
            for key in ("resume_time", "play_duration"):
                if key in inp:
                    new[key] = inp[key]
            if inp.get("custom_fields") is not None:
                new["custom_fields"] = self._custom_fields(rec["custom_fields"], inp["custom_fields"])
            new["updated_at"] = now_ts()
            rec.update(new)
            return rec

    def apply_bulk_update(self, scene_id: Any, inp: Dict[str, Any]) -> Dict[str, Any]:
        """BulkSceneUpdateInput semantics for one scene."""
        with self.lock:
            rec = self.get_scene(scene_id)
            new = dict(rec)
            self._apply_common(new, inp)
            if inp.get("urls") is not None:
                upd = inp["urls"]
                values = [v.strip() for v in (upd.get("values") or [])]
                new["urls"] = self._bulk_ids(list(rec["urls"]), values, upd.get("mode", "SET"))  # type: ignore[arg-type]
            elif "url" in inp:
                new["urls"] = [inp["url"].strip()] if inp["url"] else []
            for key, kind in (("performer_ids", "performer"), ("tag_ids", "tag")):
                upd = inp.get(key)
                if upd is not None:
                    new[key] = self._bulk_ids(
                        list(rec[key]), self._ids(kind, upd.get("ids")), upd.get("mode", "SET")
                    )
            if inp.get("gallery_ids") is not None:
                upd = inp["gallery_ids"]
                new["gallery_ids"] = self._bulk_ids(
                    list(rec["gallery_ids"]), [int(g) for g in upd.get("ids") or []], upd.get("mode", "SET")
                )
            upd = inp.get("group_ids") if inp.get("group_ids") is not None else inp.get("movie_ids")
            if upd is not None:
                current = [g for g, _ in rec["groups"]]
                index = dict(rec["groups"])
                ids = self._bulk_ids(current, self._ids("group", upd.get("ids")), upd.get("mode", "SET"))
                new["groups"] = [(g, index.get(g)) for g in ids]
            if inp.get("custom_fields") is not None:
                new["custom_fields"] = self._custom_fields(rec["custom_fields"], inp["custom_fields"])
            new["updated_at"] = now_ts()
            rec.update(new)
            return rec

    def create_scene_from_input(self, inp: Dict[str, Any]) -> Dict[str, Any]:
        """SceneCreateInput semantics (files are not created through GraphQL)."""
        with self.lock:
            sid = self.add_scene(None)
            rec = self.scenes[sid]
            try:
                self.apply_scene_update(sid, {k: v for k, v in inp.items() if k not in ("file_ids",)})
            except Exception:
                del self.scenes[sid]
                raise
            rec["updated_at"] = rec["created_at"]
            return rec

    @staticmethod
    def _custom_fields(current: Dict[str, Any], cf: Dict[str, Any]) -> Dict[str, Any]:
        if cf.get("full") is not None:
            return dict(cf["full"])
        out = dict(current)
        out.update(cf.get("partial") or {})
        for key in cf.get("remove") or []:
            out.pop(key, None)
        return out

    # ------------------------------------------------------------------ queries
    def compile_scene_filter(self, f: Optional[Dict[str, Any]]) -> Callable[[Dict[str, Any]], bool]:
        if not f:
            return lambda rec: True
        preds: List[Callable[[Dict[str, Any]], bool]] = []
        or_pred: Optional[Callable[[Dict[str, Any]], bool]] = None
        for key, crit in f.items():
            if crit is None:
                continue
            if key == "AND":
                preds.append(self.compile_scene_filter(crit))
            elif key == "OR":
                or_pred = self.compile_scene_filter(crit)
            elif key == "NOT":
                sub = self.compile_scene_filter(crit)
                preds.append(lambda rec, sub=sub: not sub(rec))
            else:
                preds.append(self._criterion(key, crit))

        def pred(rec: Dict[str, Any]) -> bool:
            ok = all(p(rec) for p in preds)
            if or_pred is not None:
                return ok or or_pred(rec)
            return ok

        return pred

    def _criterion(self, key: str, crit: Any) -> Callable[[Dict[str, Any]], bool]:
        if key in ("title", "code", "details", "director"):
            p = string_predicate(crit)
            return lambda rec: p(rec[key])
        if key == "path":
            p = string_predicate(crit, split_words=True)
            if crit.get("modifier") in ("NOT_EQUALS", "EXCLUDES", "NOT_MATCHES_REGEX", "IS_NULL"):
                return lambda rec: all(p(f["path"]) for f in rec["files"]) if rec["files"] else p("")
            return lambda rec: any(p(f["path"]) for f in rec["files"])
        if key in ("oshash", "checksum"):
            fk = "oshash" if key == "oshash" else "md5"
            p = string_predicate(crit)
            return lambda rec: any(p(f.get(fk)) for f in rec["files"]) if rec["files"] else p(None)
        if key == "url":
            p = string_predicate(crit)
            if crit.get("modifier") in ("NOT_EQUALS", "EXCLUDES", "NOT_MATCHES_REGEX", "IS_NULL"):
                return lambda rec: all(p(u) for u in rec["urls"]) if rec["urls"] else p("")
            return lambda rec: any(p(u) for u in rec["urls"])
        if key in ("id", "rating100", "o_counter", "play_count"):
            p = number_predicate(crit)
            return lambda rec: p(rec.get(key))
        if key == "duration":
            p = number_predicate(crit)
            return lambda rec: p(int(rec["files"][0]["duration"]) if rec["files"] else None)
        if key == "file_count":
            p = number_predicate(crit)
            return lambda rec: p(len(rec["files"]))
        if key in ("tag_count", "performer_count", "stash_id_count"):
            src = {"tag_count": "tag_ids", "performer_count": "performer_ids", "stash_id_count": "stash_ids"}[
                key
            ]
            p = number_predicate(crit)
            return lambda rec: p(len(rec[src]))
        if key in ("organized", "interactive"):
            want = bool(crit)
            return lambda rec: bool(rec.get(key, False)) == want
        if key in ("created_at", "updated_at"):
            p = timestamp_predicate(crit)
            return lambda rec: p(rec[key])
        if key == "date":
            p = date_predicate(crit)
            return lambda rec: p(rec["date"])
        if key == "studios":
            crit = dict(crit)
            crit["modifier"] = {"EQUALS": "INCLUDES", "NOT_EQUALS": "EXCLUDES"}.get(
                crit.get("modifier"), crit.get("modifier")
            )
            p = multi_predicate(crit, self.studio_descendants)
            return lambda rec: p([rec["studio_id"]] if rec["studio_id"] is not None else [])
        if key in ("tags", "performers", "galleries"):
            src = {"tags": "tag_ids", "performers": "performer_ids", "galleries": "gallery_ids"}[key]
            p = multi_predicate(crit)
            return lambda rec: p(rec[src])
        if key in ("groups", "movies"):
            p = multi_predicate(crit)
            return lambda rec: p([g for g, _ in rec["groups"]])
        if key == "is_missing":
            checks = {
                "title": lambda rec: not rec["title"],
                "details": lambda rec: not rec["details"],
                "url": lambda rec: not rec["urls"],
                "date": lambda rec: rec["date"] is None,
                "studio": lambda rec: rec["studio_id"] is None,
                "performers": lambda rec: not rec["performer_ids"],
                "tags": lambda rec: not rec["tag_ids"],
                "galleries": lambda rec: not rec["gallery_ids"],
                "movie": lambda rec: not rec["groups"],
                "groups": lambda rec: not rec["groups"],
                "stash_id": lambda rec: not rec["stash_ids"],
                "cover": lambda rec: False,
                "code": lambda rec: not rec["code"],
                "director": lambda rec: not rec["director"],
            }
            if crit not in checks:
                raise StashError("scene_filter.is_missing=%r is not implemented by the Stash emulator" % crit)
            return checks[crit]
        if key == "has_markers":
            want = str(crit).lower() == "true"
            return lambda rec: want is False
        raise StashError("scene_filter.%s is not implemented by the Stash emulator" % key)

    def _sort_key(self, sort: str) -> Callable[[Dict[str, Any]], Any]:
        def first_file(rec: Dict[str, Any], field: str, default: Any = None) -> Any:
            return rec["files"][0][field] if rec["files"] else default

        keys: Dict[str, Callable[[Dict[str, Any]], Any]] = {
            "id": lambda r: r["id"],
            "title": lambda r: (r["title"] or first_file(r, "basename", "")).lower(),
            "path": lambda r: first_file(r, "path", ""),
            "date": lambda r: r["date"],
            "created_at": lambda r: r["created_at"],
            "updated_at": lambda r: r["updated_at"],
            "rating": lambda r: r["rating100"],
            "rating100": lambda r: r["rating100"],
            "duration": lambda r: first_file(r, "duration"),
            "filesize": lambda r: first_file(r, "size"),
            "file_mod_time": lambda r: first_file(r, "mod_time"),
            "bitrate": lambda r: first_file(r, "bit_rate"),
            "framerate": lambda r: first_file(r, "frame_rate"),
            "o_counter": lambda r: r["o_counter"],
            "play_count": lambda r: r["play_count"],
            "code": lambda r: r["code"].lower(),
            "organized": lambda r: r["organized"],
            "performer_count": lambda r: len(r["performer_ids"]),
            "tag_count": lambda r: len(r["tag_ids"]),
            "studio": lambda r: (
                (self.studios.get(r["studio_id"]) or {}).get("name", "").lower() if r["studio_id"] else None
            ),
        }
        if sort in keys:
            return keys[sort]
        return lambda r: None

    def find_scenes(
        self,
        find_filter: Optional[Dict[str, Any]] = None,
        scene_filter: Optional[Dict[str, Any]] = None,
        ids: Optional[Iterable[Any]] = None,
        path_regex: bool = False,
    ) -> Tuple[int, List[Dict[str, Any]], float, float]:
        """Returns (count, page of scene records, total duration, total size)."""
        ff = dict(find_filter or {})
        pred = self.compile_scene_filter(scene_filter)
        q = ff.get("q")
        qpred: Optional[Callable[[Dict[str, Any]], bool]] = None
        if q:
            if path_regex:
                try:
                    rx = re.compile(q)
                except re.error as exc:
                    raise StashError("error parsing regexp: %s" % exc)
                qpred = lambda rec: any(rx.search(f["path"]) for f in rec["files"])  # noqa: E731
            else:
                words = [_like("%" + w + "%") for w in _words(q)]

                def qpred(rec: Dict[str, Any]) -> bool:  # type: ignore[misc]
                    hay = (
                        [rec["title"], rec["details"], rec["code"]]
                        + [f["path"] for f in rec["files"]]
                        + [f["oshash"] or "" for f in rec["files"]]
                    )
                    return all(any(w(h) for h in hay) for w in words)

        with self.lock:
            if ids is not None:
                wanted = []
                for i in ids:
                    try:
                        wanted.append(int(i))
                    except (TypeError, ValueError):
                        raise StashError("invalid scene id %r" % (i,))
                candidates = [self.scenes[i] for i in dict.fromkeys(wanted) if i in self.scenes]
            else:
                candidates = list(self.scenes.values())
        matched = [r for r in candidates if pred(r) and (qpred is None or qpred(r))]
        sort = ff.get("sort") or "id"
        direction = ff.get("direction") or "ASC"
        if sort.startswith("random"):
            seed_text = sort[len("random_") :] if sort.startswith("random_") else ""
            rng = random.Random(seed_text or None)
            matched.sort(key=lambda r: r["id"])
            rng.shuffle(matched)
        else:
            if sort not in SCENE_SORTS:
                raise StashError("invalid sort: %s" % sort)
            keyf = self._sort_key(sort)

            def full_key(r: Dict[str, Any]) -> Tuple[Any, ...]:
                v = keyf(r)
                return (v is not None, v if v is not None else 0, r["id"])

            matched.sort(key=full_key, reverse=(direction == "DESC"))
        count = len(matched)
        duration = float(sum(r["files"][0]["duration"] for r in matched if r["files"]))
        size = float(sum(r["files"][0]["size"] for r in matched if r["files"]))
        per_page = ff.get("per_page")
        if per_page is None:
            per_page = 25
        if per_page < 0:
            page_items = matched
        else:
            if self.max_per_page is not None and per_page > self.max_per_page:
                per_page = self.max_per_page
            page = ff.get("page") or 1
            if page < 1:
                page = 1
            start = (page - 1) * per_page
            page_items = matched[start : start + per_page]
        return count, page_items, duration, size

    # ------------------------------------------------------------------ plain dicts
    def studio_plain(self, sid: Optional[int], depth: int = 0) -> Optional[Dict[str, Any]]:
        s = self.studios.get(sid) if sid is not None else None
        if s is None:
            return None
        parent = self.studio_plain(s.get("parent_id"), depth + 1) if depth < 5 else None
        return {"id": str(s["id"]), "name": s["name"], "parent_studio": parent}

    def scene_plain(self, scene_id: Any, base_url: str = "") -> Optional[Dict[str, Any]]:
        rec = self.scenes.get(int(scene_id))
        if rec is None:
            return None
        sid = rec["id"]
        return {
            "id": str(sid),
            "title": rec["title"],
            "code": rec["code"],
            "details": rec["details"],
            "director": rec["director"],
            "urls": list(rec["urls"]),
            "date": rec["date"],
            "rating100": rec["rating100"],
            "organized": rec["organized"],
            "o_counter": rec["o_counter"],
            "created_at": format_time(rec["created_at"]),
            "updated_at": format_time(rec["updated_at"]),
            "files": [
                {
                    "id": str(f["id"]),
                    "path": f["path"],
                    "basename": f["basename"],
                    "size": f["size"],
                    "duration": f["duration"],
                    "width": f["width"],
                    "height": f["height"],
                    "video_codec": f["video_codec"],
                    "audio_codec": f["audio_codec"],
                    "format": f["format"],
                    "frame_rate": f["frame_rate"],
                    "bit_rate": f["bit_rate"],
                    "fingerprints": [{"type": "oshash", "value": f["oshash"]}],
                }
                for f in rec["files"]
            ],
            "paths": scene_paths(base_url, rec),
            "studio": self.studio_plain(rec["studio_id"]),
            "performers": [
                {"id": str(p), "name": self.performers[p]["name"]}
                for p in rec["performer_ids"]
                if p in self.performers
            ],
            "tags": [{"id": str(t), "name": self.tags[t]["name"]} for t in rec["tag_ids"] if t in self.tags],
            "groups": [
                {"group": {"id": str(g), "name": self.groups[g]["name"]}, "scene_index": idx}
                for g, idx in rec["groups"]
                if g in self.groups
            ],
            "stash_ids": [dict(s) for s in rec["stash_ids"]],
            "custom_fields": dict(rec["custom_fields"]),
            "cover_version": rec["cover_version"],
        }


def scene_paths(base_url: str, rec: Dict[str, Any]) -> Dict[str, Optional[str]]:
    sid = rec["id"]
    root = "%s/scene/%d" % (base_url, sid)
    return {
        "screenshot": "%s/screenshot?t=%d" % (root, rec["updated_at"]),
        "preview": "%s/preview" % root,
        "stream": "%s/stream" % root,
        "webp": "%s/webp" % root,
        "vtt": "%s/vtt/chapter" % root,
        "sprite": "%s/vtt/sprite" % root,
        "funscript": "%s/funscript" % root,
        "interactive_heatmap": "%s/interactive_heatmap" % root,
        "caption": "%s/caption" % root,
    }


__all__ = [
    "StashData",
    "StashError",
    "make_jpeg",
    "format_time",
    "parse_timestamp",
    "to_timestamp",
    "parse_date",
    "now_ts",
    "scene_paths",
    "ZERO_TIME",
    "like_regex",
]
