"""PlexSync's settings: one table (`SPEC`), one typed object (`Settings`), validated once.

Stash stores plugin settings per plugin id and hands them out through GraphQL
(`configuration { plugins }`); a setting the user never touched is simply absent, so every
setting has a default here. PlexSync.yml lists the same settings for Stash's UI; a test keeps
the two in step.

The hook cannot afford a GraphQL round trip, so every task run writes the few settings the hook
needs (never the token) to `settings_cache.json` in the plugin's default data folder, and the
hook reads them from there.
"""

from __future__ import annotations

import os
import re

PLUGIN_ID = "PlexSync"

# name: (kind, default, display name, description). kind: str, bool, int, float.
SPEC = {
    "plex_url": (
        "str",
        "",
        "Plex URL",
        "Address of your Plex Media Server, e.g. http://192.168.1.10:32400 (required).",
    ),
    "plex_token": (
        "str",
        "",
        "Plex token",
        "Your X-Plex-Token (required). It is never written to logs or files.",
    ),
    "plex_libraries": (
        "str",
        "",
        "Plex libraries",
        "Comma-separated names of the Plex movie libraries to sync into. Default: empty = every movie library.",
    ),
    "path_map": (
        "str",
        "",
        "Path mapping",
        "How Stash paths look in Plex when the two servers mount files differently: stash_prefix=plex_prefix, several pairs separated by ';'. Example: /data=/media/videos. Default: empty = same paths.",
    ),
    "pause_sync": (
        "bool",
        False,
        "Pause sync",
        "Keep queueing changes but send nothing to Plex until switched off again. Default: off.",
    ),
    "sync_title": ("bool", True, "Sync title", "Write the scene title to Plex. Default: on."),
    "sync_summary": ("bool", True, "Sync details", "Write the scene details to Plex's summary. Default: on."),
    "sync_studio": ("bool", True, "Sync studio", "Write the studio to Plex. Default: on."),
    "sync_date": ("bool", True, "Sync date", "Write the scene date to Plex's release date. Default: on."),
    "sync_performers": ("bool", True, "Sync performers", "Write performers as Plex actors. Default: on."),
    "sync_tags": ("bool", True, "Sync tags", "Write tags as Plex genres. Default: on."),
    "sync_collection": (
        "bool",
        False,
        "Studio as collection",
        "Also put each item in a Plex collection named after its studio. Default: off.",
    ),
    "sync_poster": (
        "bool",
        True,
        "Sync poster",
        "Upload the Stash cover as the Plex poster when it changed. Default: on.",
    ),
    "sync_background": (
        "bool",
        False,
        "Sync background",
        "Also upload the Stash cover as the Plex background art. Default: off.",
    ),
    "sync_sort_title": (
        "bool",
        False,
        "Sync sort title",
        "Set Plex's sort title to the scene title. Default: off.",
    ),
    "tagline_source": (
        "str",
        "",
        "Tagline from",
        "Fill Plex's tagline from a Stash field: code, director, or empty for none. Default: empty.",
    ),
    "collections_from": (
        "str",
        "",
        "Collections from",
        "Put each item in Plex collections named after these, comma-separated: studio, parent_studio (the studio's network), groups. PlexSync removes an item only from collections it put it in. Default: empty = none ('Studio as collection' on means studio).",
    ),
    "collection_tag_prefix": (
        "str",
        "",
        "Collection tag prefix",
        "Tags whose name starts with this text become Plex collections (the prefix removed) instead of genres, e.g. 'Collection: '. Default: empty = none.",
    ),
    "content_rating": (
        "str",
        "",
        "Content rating",
        "Written to every synced item's content rating and locked, e.g. XXX, so Plex's restrictions for shared and managed users apply. Default: empty = left alone.",
    ),
    "labels": (
        "str",
        "",
        "Labels",
        "Labels added to every synced item, comma-separated (a name with a comma goes in double quotes). A label removed here is removed from the items PlexSync labelled, never one added in Plex. Default: empty = none.",
    ),
    "sync_rating": (
        "bool",
        False,
        "Sync rating",
        "Write Stash's rating (0-100) as Plex's user rating (0-10); an unrated scene clears it. Default: off.",
    ),
    "only_organized": (
        "bool",
        False,
        "Only organized scenes",
        "Sync only scenes marked organized in Stash; others are skipped and left as they are in Plex. Default: off.",
    ),
    "require_stash_id": (
        "bool",
        False,
        "Only scenes with a StashDB id",
        "Sync only scenes that have a stash-box id (StashDB or another); others are skipped and left as they are in Plex. Default: off.",
    ),
    "exclude_tags": (
        "str",
        "",
        "Never sync scenes with these tags",
        "Tag names, comma-separated: a scene with any of them is skipped and left as it is in Plex. Default: empty = none.",
    ),
    "hide_tags": (
        "str",
        "",
        "Tags never sent as genres",
        "Tag names, comma-separated, that are never written to Plex as genres. Default: empty = none.",
    ),
    "title_template": (
        "str",
        "",
        "Title template",
        "How the Plex title is made, e.g. {studio} - {title}. Placeholders: {title}, {studio}, {parent_studio}, {date}, {year}, {code}, {performers}, {file}; an empty one disappears with its separator, an empty result becomes the file name. Default: empty = the scene title.",
    ),
    "preserve_plex_edits": (
        "bool",
        False,
        "Preserve Plex edits",
        "Never overwrite a Plex field that already has a value or is locked. Default: off.",
    ),
    "lock_fields": (
        "bool",
        True,
        "Lock written fields",
        "Lock every field PlexSync writes so Plex agents do not overwrite it. Default: on.",
    ),
    "keep_plex_when_empty": (
        "bool",
        False,
        "Keep Plex value when Stash is empty",
        "When a Stash field is empty, leave the Plex field as it is instead of clearing it. Default: off.",
    ),
    "max_tags": (
        "int",
        50,
        "Maximum tags",
        "At most this many tags are sent as genres (1-500). Default: 50.",
    ),
    "strict_matching": (
        "bool",
        True,
        "Strict matching",
        "When several Plex items could be the scene's file, skip it with a clear reason instead of guessing. Default: on.",
    ),
    "skip_not_found": (
        "bool",
        False,
        "Skip scenes not in Plex",
        "Drop a change quietly when its file is not in Plex, instead of retrying until Plex has scanned it. Default: off.",
    ),
    "trigger_plex_scan": (
        "bool",
        False,
        "Ask Plex to scan new files",
        "When Stash adds a scene, ask Plex to scan that file's folder. Default: off.",
    ),
    "skip_tls_verify": (
        "bool",
        False,
        "Skip TLS verification",
        "Accept a self-signed certificate from Plex (https). Default: off.",
    ),
    "connect_timeout": (
        "float",
        5.0,
        "Connect timeout (s)",
        "Seconds to wait for Plex to accept a connection (1-120). Default: 5.",
    ),
    "read_timeout": (
        "float",
        30.0,
        "Read timeout (s)",
        "Seconds to wait for Plex to answer (1-600). Default: 30.",
    ),
    "max_retries": (
        "int",
        5,
        "Maximum attempts",
        "Attempts per change before it goes to the dead-letter queue (1-100). Default: 5.",
    ),
    "breaker_threshold": (
        "int",
        5,
        "Failures before pausing",
        "After this many failures in a row that say Plex is down, PlexSync pauses sync and only checks Plex now and then (1-100). Default: 5.",
    ),
    "breaker_open_seconds": (
        "float",
        5.0,
        "First pause (s)",
        "Seconds to wait before the first check after Plex went down; each failed check doubles it, up to 60 s (1-3600). Default: 5.",
    ),
    "recovery_rates": (
        "str",
        "2,5,10",
        "Recovery ramp (jobs/s)",
        "After an outage PlexSync starts at the first value (changes per second), speeds up while Plex answers quickly, halves at once on errors or slow answers, and never sends faster than the last value until Plex has kept up there; then there is no limit. Empty = no ramp. Default: 2,5,10.",
    ),
    "recovery_step_seconds": (
        "float",
        60.0,
        "Ramp step (s)",
        "The ramp lasts at most this many seconds per value of 'Recovery ramp' after Plex came back or last failed, however Plex answers (1-3600). Default: 60.",
    ),
    "recover_error_classes": (
        "str",
        "",
        "Also recover",
        "Extra dead-letter reasons that 'Recover Outage Jobs' moves back to the queue, comma-separated (e.g. plex_unavailable, plex_starting, not_in_plex). Default: empty = only plex_unreachable and plex_timeout.",
    ),
    "reconcile_interval": (
        "str",
        "daily",
        "Reconcile automatically",
        "How often PlexSync looks by itself for scenes that differ from Plex (edits no hook saw, items emptied or re-added in Plex) and queues them: never, hourly, daily or weekly. It runs inside a sync, never while Stash saves. Default: daily.",
    ),
    "reconcile_scope": (
        "str",
        "7d+",
        "Reconcile scope",
        "Which scenes the automatic reconciliation looks at: 7d+ (scenes changed in Stash in the last 7 days, plus every scene whose Plex item is empty or missing), all, 24h or 7d (only scenes changed in that time). Reconcile Now always looks at all. Default: 7d+.",
    ),
    "data_dir": (
        "str",
        "",
        "Data folder",
        "Where PlexSync keeps its queue and state files. Default: empty = the 'data' folder inside the plugin folder.",
    ),
    "debug_logging": (
        "bool",
        False,
        "Debug logging",
        "Log details of every step (at info level, marked [debug]). Default: off.",
    ),
    "obfuscate_paths": (
        "bool",
        False,
        "Hide file paths in logs",
        "Replace file paths in log lines with stable placeholders, for sharing logs. Default: off.",
    ),
}

RANGES = {
    "max_tags": (1, 500),
    "connect_timeout": (1, 120),
    "read_timeout": (1, 600),
    "max_retries": (1, 100),
    "breaker_threshold": (1, 100),
    "breaker_open_seconds": (1, 3600),
    "recovery_step_seconds": (1, 3600),
}

# What the hook needs, cached by tasks (never secrets).
HOOK_KEYS = (
    "pause_sync",
    "data_dir",
    "debug_logging",
    "obfuscate_paths",
    "trigger_plex_scan",
    "sync_title",
    "sync_summary",
    "sync_studio",
    "sync_date",
    "sync_performers",
    "sync_tags",
    "sync_collection",
    "sync_poster",
    "sync_background",
    "sync_sort_title",
    "tagline_source",
    "reconcile_interval",
    "reconcile_scope",
)

CACHE_NAME = "settings_cache.json"

# --- succeeding the Community "Plex Sync" ---------------------------------------------------
# The Community source's "Plex Sync" (stashapp/CommunityScripts plugins/PlexSync) has the same
# plugin id, so Stash keeps its settings under the same key after it was removed, beside ours.
# When PlexSync's own Plex settings are empty, a task takes them over (stashplugin.task stores the
# result, so it happens once) and never deletes the old ones.
# One row per setting: (PlexSync setting, Community settings it is made of, conversion). A setting
# with the same meaning takes one row, e.g. a PlexSync switch for "skip unorganized scenes" would be
# ("skip_unorganized", ("skipUnorganized",), _legacy_value).


def _legacy_plex_url(host, port) -> str:
    """The Community plugin connected to "https://" + plexHost + ":" + plexPort (PlexSync.py)."""
    from urllib.parse import urlsplit

    host = str(host or "").strip().rstrip("/")
    port = str(port or "").strip() or "32400"
    if not host:
        return ""
    if "://" not in host:
        return "https://%s:%s" % (host, port)
    try:  # an address typed with its scheme despite the old description
        has_port = urlsplit(host).port is not None
    except ValueError:
        return host
    return host if has_port else "%s:%s" % (host, port)


def _legacy_tls(host) -> bool:
    """It ignored certificate errors on every request (`requests.put(..., verify=False)`), which a
    Plex reached by IP address or LAN name with https needs; PlexSync keeps that as it was."""
    return bool(str(host or "").strip())


def _legacy_value(value):
    return value


LEGACY_SETTINGS = (
    ("plex_url", ("plexHost", "plexPort"), _legacy_plex_url),
    ("plex_token", ("plexToken",), _legacy_value),
    ("skip_tls_verify", ("plexHost",), _legacy_tls),
    ("only_organized", ("skipUnorganized",), _legacy_value),
)


def take_over_legacy(raw: dict) -> tuple:
    """(settings map with the Community plugin's values filled in, names taken over).

    Only when PlexSync's own Plex settings are both empty; only into settings that are unset;
    the old keys stay in the map."""
    raw = dict(raw) if isinstance(raw, dict) else {}
    if str(raw.get("plex_url") or "").strip() or str(raw.get("plex_token") or "").strip():
        return raw, []
    taken = []
    for name, old_names, convert in LEGACY_SETTINGS:
        if raw.get(name) not in (None, "") or all(raw.get(o) in (None, "") for o in old_names):
            continue
        value = convert(*(raw.get(o) for o in old_names))
        if value not in (None, ""):
            raw[name] = value
            taken.append(name)
    return raw, taken


def unset_switches(raw: dict) -> dict:
    """The switches that are on by default but absent from Stash's stored settings, with their
    defaults. Stash shows an absent switch as off, so these would look off while PlexSync acts
    as if they were on; `stashplugin.task` stores them so the settings page tells the truth."""
    raw = raw if isinstance(raw, dict) else {}
    return {
        name: default
        for name, (kind, default, _d, _t) in SPEC.items()
        if kind == "bool" and default is True and raw.get(name) is None
    }


class SettingsError(ValueError):
    """A setting has a value PlexSync cannot use; the message names it and says what to put there."""

    def __init__(self, name: str, message: str):
        display = SPEC[name][2] if name in SPEC else name
        super().__init__("Setting '%s' (%s): %s" % (display, name, message))
        self.name = name


def _to_bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off", ""):
        return False
    raise ValueError("expected on or off")


def _convert(name: str, kind: str, value):
    if kind == "bool":
        try:
            return _to_bool(value)
        except ValueError:
            raise SettingsError(name, "switch it on or off")
    if kind in ("int", "float"):
        low, high = RANGES.get(name, (None, None))
        what = "a whole number" if kind == "int" else "a number"
        if low is not None:
            what += " from %s to %s" % (low, high)
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value) if kind == "float" else float(str(value).strip())
            if kind == "int":
                if number != int(number):
                    raise ValueError
                number = int(number)
        except (TypeError, ValueError, OverflowError):
            raise SettingsError(name, "enter %s" % what)
        if number != number or (low is not None and not low <= number <= high):
            raise SettingsError(name, "enter %s" % what)
        return number
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    return value.strip()


def parse_path_map(text: str) -> list:
    """ "/data=/media;D:\\\\Videos=/mnt/videos" -> [("/data", "/media"), ("D:\\\\Videos", "/mnt/videos")]."""
    pairs = []
    for chunk in re.split(r"[;\n]", text or ""):
        chunk = chunk.strip()
        if not chunk:
            continue
        if chunk.count("=") != 1:
            raise SettingsError(
                "path_map",
                "write each pair as stash_prefix=plex_prefix, pairs separated by ';' (got %r)" % chunk,
            )
        left, right = (part.strip() for part in chunk.split("="))
        if not left or not right:
            raise SettingsError(
                "path_map", "both sides of %r need a folder, e.g. /data=/media/videos" % chunk
            )
        pairs.append((left, right))
    return pairs


def parse_rates(text: str) -> tuple:
    """ "2,5,10" -> (2.0, 5.0, 10.0); empty -> () (no ramp)."""
    rates = []
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            rate = float(part)
        except ValueError:
            rate = -1.0
        if not 0 < rate <= 10000:
            raise SettingsError(
                "recovery_rates", "enter jobs per second as positive numbers separated by commas, e.g. 2,5,10"
            )
        rates.append(rate)
    return tuple(rates)


def parse_error_classes(text: str) -> tuple:
    """ "plex_unavailable, not_in_plex" -> ("plex_unavailable", "not_in_plex")."""
    names = tuple(p.strip().lower() for p in (text or "").replace(";", ",").split(",") if p.strip())
    for name in names:
        if not re.fullmatch(r"[a-z_]+", name):
            raise SettingsError(
                "recover_error_classes",
                "enter dead-letter reasons such as plex_unavailable, separated by commas",
            )
    return names


RECONCILE_INTERVALS = ("never", "hourly", "daily", "weekly")
RECONCILE_SCOPES = ("all", "24h", "7d", "7d+")
# Spellings people type for the same choice.
_CHOICE_ALIASES = {
    "": None,
    "off": "never",
    "none": "never",
    "1h": "hourly",
    "hour": "hourly",
    "day": "daily",
    "24 h": "24h",
    "1d": "24h",
    "week": "weekly",
    "7 d": "7d",
    "1w": "7d",
    "everything": "all",
}


def _choice(name: str, value: str, allowed: tuple) -> str:
    """One of `allowed` (case-insensitive, a few aliases), the default when empty, else SettingsError."""
    text = (value or "").strip().lower()
    if text in _CHOICE_ALIASES:
        text = _CHOICE_ALIASES[text]
    if text is None:
        return SPEC[name][1]
    if text not in allowed:
        raise SettingsError(name, "enter %s or %s (got %r)" % (", ".join(allowed[:-1]), allowed[-1], value))
    return text


def _check_url(url: str) -> str:
    from urllib.parse import urlsplit

    if not url:
        raise SettingsError("plex_url", "enter your Plex server's address, e.g. http://192.168.1.10:32400")
    if "://" not in url:
        url = "http://" + url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # e.g. unbalanced [ ] of an IPv6 address, or a port that is not a number
        raise SettingsError(
            "plex_url",
            "enter an address like http://192.168.1.10:32400 (http or https, a host, an optional port)",
        )
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or port == -1
        or (port is not None and not 0 < port < 65536)
    ):
        raise SettingsError(
            "plex_url",
            "enter an address like http://192.168.1.10:32400 (http or https, a host, an optional port)",
        )
    return url.rstrip("/")


COLLECTION_SOURCES = ("studio", "parent_studio", "groups")
TITLE_PLACEHOLDERS = ("title", "studio", "parent_studio", "date", "year", "code", "performers", "file")
CONTENT_RATING_MAX = 64
NAME_MAX = 128


def parse_names(text: str) -> tuple:
    """'A, "B, with comma", C' -> ("A", "B, with comma", "C"): comma-separated names, a name
    holding a comma in double quotes (as a spreadsheet writes it); line breaks separate too;
    empty names dropped."""
    import csv

    text = re.sub(r"[\r\n]+", ",", text or "")  # a name never spans lines
    rows = list(csv.reader([text], skipinitialspace=True)) if text.strip() else []
    return tuple(n.strip() for n in (rows[0] if rows else []) if n.strip())


def _names_setting(name: str, text: str) -> tuple:
    names = parse_names(text)
    if any(len(n) > NAME_MAX for n in names):
        raise SettingsError(name, "enter names separated by commas, each at most %d characters" % NAME_MAX)
    return names


def _collection_sources(values: dict) -> tuple:
    sources = [p.strip().lower() for p in (values["collections_from"] or "").split(",") if p.strip()]
    if any(p not in COLLECTION_SOURCES for p in sources):
        raise SettingsError(
            "collections_from",
            "enter studio, parent_studio and/or groups separated by commas, or leave it empty",
        )
    if values["sync_collection"] and "studio" not in sources:
        sources.insert(0, "studio")
    return tuple(dict.fromkeys(sources))


def _check_title_template(text: str) -> str:
    unknown = [p for p in re.findall(r"\{([^{}]*)\}", text or "") if p not in TITLE_PLACEHOLDERS]
    if unknown or (text or "").count("{") != (text or "").count("}"):
        raise SettingsError(
            "title_template",
            "use only the placeholders %s, e.g. {studio} - {title}"
            % ", ".join("{%s}" % p for p in TITLE_PLACEHOLDERS),
        )
    return text


def _check_short(name: str, text: str, limit: int, example: str) -> str:
    if len(text or "") > limit or "\n" in (text or ""):
        raise SettingsError(name, "enter one line of at most %d characters, e.g. %s" % (limit, example))
    return text


def _content_values(values: dict) -> dict:
    """The derived values of the content settings (collections, labels, filters, title); raises
    SettingsError for the first that cannot be used."""
    return {
        "collection_sources": _collection_sources(values),
        "collection_tag_prefix": _check_short(
            "collection_tag_prefix", values["collection_tag_prefix"], NAME_MAX, "Collection: "
        ),
        "content_rating": _check_short("content_rating", values["content_rating"], CONTENT_RATING_MAX, "XXX"),
        "label_names": _names_setting("labels", values["labels"]),
        "exclude_tag_names": _names_setting("exclude_tags", values["exclude_tags"]),
        "hide_tag_names": _names_setting("hide_tags", values["hide_tags"]),
        "title_template": _check_title_template(values["title_template"]),
    }


class Settings:
    """Every setting as a typed attribute, plus derived values (`path_pairs`, `libraries`)."""

    def __init__(self, values: dict):
        for name, (_kind, default, _d, _desc) in SPEC.items():
            setattr(self, name, values.get(name, default))
        self.path_pairs = values.get("path_pairs", [])
        self.recovery_rate_steps = values.get("recovery_rate_steps", (2.0, 5.0, 10.0))
        self.recover_classes = values.get("recover_classes", ())
        self.libraries = [x.strip() for x in self.plex_libraries.split(",") if x.strip()]
        self.collection_sources = values.get(
            "collection_sources", ("studio",) if self.sync_collection else ()
        )
        self.label_names = values.get("label_names", ())
        self.exclude_tag_names = values.get("exclude_tag_names", ())
        self.hide_tag_names = values.get("hide_tag_names", ())

    @classmethod
    def from_raw(cls, raw, strict: bool = True, need_plex: bool = False) -> "Settings":
        """Validate Stash's settings map. Lenient mode (the hook) falls back to defaults instead of failing."""
        raw = raw if isinstance(raw, dict) else {}
        values = {}
        for name, (kind, default, _d, _desc) in SPEC.items():
            if name not in raw or raw[name] is None:
                values[name] = default
                continue
            try:
                values[name] = _convert(name, kind, raw[name])
            except SettingsError:
                if strict:
                    raise
                values[name] = default
        try:
            values["path_pairs"] = parse_path_map(values["path_map"])
            if values["tagline_source"] and values["tagline_source"].lower() not in ("code", "director"):
                raise SettingsError("tagline_source", "enter code, director, or leave it empty")
            values["tagline_source"] = values["tagline_source"].lower()
            values["reconcile_interval"] = _choice(
                "reconcile_interval", values["reconcile_interval"], RECONCILE_INTERVALS
            )
            values["reconcile_scope"] = _choice(
                "reconcile_scope", values["reconcile_scope"], RECONCILE_SCOPES
            )
            values["recovery_rate_steps"] = parse_rates(values["recovery_rates"])
            values["recover_classes"] = parse_error_classes(values["recover_error_classes"])
        except SettingsError:
            if strict:
                raise
            values["path_pairs"], values["tagline_source"] = [], ""
            values["reconcile_interval"], values["reconcile_scope"] = (
                SPEC["reconcile_interval"][1],
                SPEC["reconcile_scope"][1],
            )
            values["recovery_rate_steps"], values["recover_classes"] = (2.0, 5.0, 10.0), ()
        try:
            values.update(_content_values(values))
        except SettingsError:
            if strict:
                raise
            for name in (
                "collections_from",
                "collection_tag_prefix",
                "content_rating",
                "labels",
                "exclude_tags",
                "hide_tags",
                "title_template",
            ):
                values[name] = SPEC[name][1]
            values.update(_content_values(values))
        if need_plex:
            values["plex_url"] = _check_url(values["plex_url"])
            if not values["plex_token"]:
                raise SettingsError(
                    "plex_token",
                    "enter your X-Plex-Token (Plex Web: any item > Get Info > View XML shows it in the address)",
                )
        return cls(values)

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in SPEC}

    def hook_view(self) -> dict:
        return {name: getattr(self, name) for name in HOOK_KEYS}


def default_data_dir(plugin_dir: str) -> str:
    return os.path.join(plugin_dir or ".", "data")


def resolve_data_dir(settings: Settings, plugin_dir: str) -> str:
    """The data folder: the setting (a relative one is inside the plugin folder, never the
    process's working folder, which Stash does not define) or `<plugin folder>/data`."""
    if not settings.data_dir:
        return default_data_dir(plugin_dir)
    path = os.path.expanduser(settings.data_dir)
    if not os.path.isabs(path):
        path = os.path.join(plugin_dir or ".", path)
    return os.path.abspath(path)


def read_hook_cache(plugin_dir: str) -> Settings:
    """The settings the last task saw, for the hook (defaults when no task ever ran)."""
    try:
        from sync.store import loads

        with open(os.path.join(default_data_dir(plugin_dir), CACHE_NAME), "rb") as fh:
            raw = loads(fh.read())
    except (OSError, ValueError, UnicodeDecodeError):
        raw = {}
    return Settings.from_raw(raw, strict=False)


def write_hook_cache(plugin_dir: str, settings: Settings) -> None:
    from sync.store import JsonFile, make_private_dir

    directory = default_data_dir(plugin_dir)
    make_private_dir(directory)
    cache = JsonFile(os.path.join(directory, CACHE_NAME))
    view = settings.hook_view()
    if cache.read() != view:
        cache.write(view)
