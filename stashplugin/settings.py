"""PlexSync's settings: one typed object (`Settings`) whose class body is the table of settings.

Each setting is declared once, in `Settings`: its name, type and default, its display name and
description (PlexSync.yml lists the same for Stash's UI; a test keeps the two in step), the range
of a number or the choices of a text, a check, and whether the hook needs it. `Settings.from_raw`
validates Stash's settings map once, at the entry; everything below receives the object.

Stash stores plugin settings per plugin id and hands them out through GraphQL
(`configuration { plugins }`); a setting the user never touched is simply absent, so every
setting has a default here. The hook cannot afford a GraphQL round trip, so every task run writes
the few settings the hook needs (never the token) to `settings_cache.json` in the plugin's
default data folder, and the hook reads them from there.
"""

from __future__ import annotations

import os
import re
from functools import cached_property

from sync.plain_data import Field, fields, plain_data

PLUGIN_ID = "PlexSync"
CACHE_NAME = "settings_cache.json"


class SettingsError(ValueError):
    """A setting has a value PlexSync cannot use; the message names it and says what to put there."""

    def __init__(self, name: str, message: str):
        display = SPEC[name][2] if name in SPEC else name
        super().__init__("Setting '%s' (%s): %s" % (display, name, message))
        self.name = name


# --- reading one value ----------------------------------------------------------------------


def _to_bool(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    text = value.strip().lower() if isinstance(value, str) else None
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise SettingsError(name, "switch it on or off")


def _to_number(name: str, value, whole: bool, limits: tuple):
    low, high = limits or (None, None)
    what = "a whole number" if whole else "a number"
    if low is not None:
        what += " from %s to %s" % (low, high)
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(str(value).strip()) if whole else float(value)
        if whole:
            if number != int(number):
                raise ValueError
            number = int(number)
    except (TypeError, ValueError, OverflowError):
        raise SettingsError(name, "enter %s" % what)
    if number != number or (low is not None and not low <= number <= high):
        raise SettingsError(name, "enter %s" % what)
    return number


def _to_text(value) -> str:
    return (value if isinstance(value, str) else str(value)).strip()


# --- parsing the settings that are lists --------------------------------------------------


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


def parse_names(text: str) -> tuple:
    """'A, "B, with comma", C' -> ("A", "B, with comma", "C"): comma-separated names, a name
    holding a comma in double quotes (as a spreadsheet writes it); line breaks separate too;
    empty names dropped."""
    import csv

    text = re.sub(r"[\r\n]+", ",", text or "")  # a name never spans lines
    rows = list(csv.reader([text], skipinitialspace=True)) if text.strip() else []
    return tuple(n.strip() for n in (rows[0] if rows else []) if n.strip())


# --- checks ------------------------------------------------------------------------------------

COLLECTION_SOURCES = ("studio", "parent_studio", "groups")
TITLE_PLACEHOLDERS = ("title", "studio", "parent_studio", "date", "year", "code", "performers", "file")
CONTENT_RATING_MAX = 64
NAME_MAX = 128
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


def _choice(name: str, value: str, allowed: tuple, default: str) -> str:
    """One of `allowed` (case-insensitive, a few aliases), `default` when empty, else SettingsError."""
    text = (value or "").strip().lower()
    if text in _CHOICE_ALIASES:
        text = _CHOICE_ALIASES[text]
    if text is None:
        return default
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


def _check_plex(url: str, token: str) -> str:
    """The Plex URL to use, when both Plex settings are there and usable."""
    url = _check_url(url)
    if not token:
        raise SettingsError(
            "plex_token",
            "enter your X-Plex-Token (Plex Web: any item > Get Info > View XML shows it in the address)",
        )
    return url


def _check_tagline(name: str, text: str) -> str:
    if text.lower() not in ("", "code", "director"):
        raise SettingsError(name, "enter code, director, or leave it empty")
    return text.lower()


def _collection_sources(text: str, studio_switch: bool) -> tuple:
    sources = [p.strip().lower() for p in (text or "").split(",") if p.strip()]
    if any(p not in COLLECTION_SOURCES for p in sources):
        raise SettingsError(
            "collections_from",
            "enter studio, parent_studio and/or groups separated by commas, or leave it empty",
        )
    if studio_switch and "studio" not in sources:
        sources.insert(0, "studio")
    return tuple(dict.fromkeys(sources))


def _check_collections_from(name: str, text: str) -> str:
    _collection_sources(text, False)
    return text


def _check_names(name: str, text: str) -> str:
    if any(len(n) > NAME_MAX for n in parse_names(text)):
        raise SettingsError(name, "enter names separated by commas, each at most %d characters" % NAME_MAX)
    return text


def _one_line(limit: int, example: str):
    """A check: one line of at most `limit` characters."""

    def check(name: str, text: str) -> str:
        if len(text or "") > limit or "\n" in (text or ""):
            raise SettingsError(name, "enter one line of at most %d characters, e.g. %s" % (limit, example))
        return text

    return check


def _parsed(parse):
    """A check: the text must parse (`parse` raises SettingsError naming the setting)."""

    def check(name: str, text: str) -> str:
        parse(text)
        return text

    return check


def _check_title_template(name: str, text: str) -> str:
    unknown = [p for p in re.findall(r"\{([^{}]*)\}", text or "") if p not in TITLE_PLACEHOLDERS]
    if unknown or (text or "").count("{") != (text or "").count("}"):
        raise SettingsError(
            "title_template",
            "use only the placeholders %s, e.g. {studio} - {title}"
            % ", ".join("{%s}" % p for p in TITLE_PLACEHOLDERS),
        )
    return text


# --- the table -------------------------------------------------------------------------------


class Setting(Field):
    """One row of the table: a setting's default, how Stash's UI shows it, and what it accepts.
    (The table's row type, as `dataclasses.Field` is a dataclass's; `plain_data` fills in `name`
    and `kind`.)"""

    def __init__(self, default, display, description, limits=(), choices=(), check=None, hook=False):
        super().__init__(default)
        self.display = display  # as in PlexSync.yml
        self.description = description
        self.limits = limits  # (lowest, highest) of a number
        self.choices = choices  # the words a text may be (a few aliases too, `_CHOICE_ALIASES`)
        self.check = check  # check(name, value) -> the value to use; raises SettingsError
        self.hook = hook  # the hook needs it: cached in settings_cache.json (never a secret)

    def parse(self, value):
        """The value to use for `value` as Stash stored it (None: never set); SettingsError when it
        cannot be used."""
        if value is None:
            return self.default
        if self.kind == "bool":
            return _to_bool(self.name, value)
        if self.kind in ("int", "float"):
            return _to_number(self.name, value, self.kind == "int", self.limits)
        value = _to_text(value)
        if self.choices:
            value = _choice(self.name, value, self.choices, self.default)
        return self.check(self.name, value) if self.check else value


@plain_data
class Settings:
    """Every setting as a typed attribute, plus values derived from them (`path_pairs`, `libraries`).

    Build it with `from_raw` (validates); `Settings()` holds every default."""

    plex_url: str = Setting(
        "", "Plex URL", "Address of your Plex Media Server, e.g. http://192.168.1.10:32400 (required)."
    )
    plex_token: str = Setting(
        "", "Plex token", "Your X-Plex-Token (required). It is never written to logs or files."
    )
    plex_libraries: str = Setting(
        "",
        "Plex libraries",
        "Comma-separated names of the Plex movie libraries to sync into. Default: empty = every movie library.",
    )
    path_map: str = Setting(
        "",
        "Path mapping",
        "How Stash paths look in Plex when the two servers mount files differently: stash_prefix=plex_prefix, several pairs separated by ';'. Example: /data=/media/videos. Default: empty = same paths.",
        check=_parsed(parse_path_map),
    )
    pause_sync: bool = Setting(
        False,
        "Pause sync",
        "Keep queueing changes but send nothing to Plex until switched off again. Default: off.",
        hook=True,
    )
    sync_title: bool = Setting(True, "Sync title", "Write the scene title to Plex. Default: on.", hook=True)
    sync_summary: bool = Setting(
        True, "Sync details", "Write the scene details to Plex's summary. Default: on.", hook=True
    )
    sync_studio: bool = Setting(True, "Sync studio", "Write the studio to Plex. Default: on.", hook=True)
    sync_date: bool = Setting(
        True, "Sync date", "Write the scene date to Plex's release date. Default: on.", hook=True
    )
    sync_performers: bool = Setting(
        True, "Sync performers", "Write performers as Plex actors. Default: on.", hook=True
    )
    sync_tags: bool = Setting(True, "Sync tags", "Write tags as Plex genres. Default: on.", hook=True)
    sync_collection: bool = Setting(
        False,
        "Studio as collection",
        "Also put each item in a Plex collection named after its studio. Default: off.",
        hook=True,
    )
    sync_poster: bool = Setting(
        True,
        "Sync poster",
        "Upload the Stash cover as the Plex poster when it changed. Default: on.",
        hook=True,
    )
    sync_background: bool = Setting(
        False,
        "Sync background",
        "Also upload the Stash cover as the Plex background art. Default: off.",
        hook=True,
    )
    sync_sort_title: bool = Setting(
        False, "Sync sort title", "Set Plex's sort title to the scene title. Default: off.", hook=True
    )
    tagline_source: str = Setting(
        "",
        "Tagline from",
        "Fill Plex's tagline from a Stash field: code, director, or empty for none. Default: empty.",
        check=_check_tagline,
        hook=True,
    )
    collections_from: str = Setting(
        "",
        "Collections from",
        "Put each item in Plex collections named after these, comma-separated: studio, parent_studio (the studio's network), groups. PlexSync removes an item only from collections it put it in. Default: empty = none ('Studio as collection' on means studio).",
        check=_check_collections_from,
    )
    collection_tag_prefix: str = Setting(
        "",
        "Collection tag prefix",
        "Tags whose name starts with this text become Plex collections (the prefix removed) instead of genres, e.g. 'Collection: '. Default: empty = none.",
        check=_one_line(NAME_MAX, "Collection: "),
    )
    content_rating: str = Setting(
        "",
        "Content rating",
        "Written to every synced item's content rating and locked, e.g. XXX, so Plex's restrictions for shared and managed users apply. Default: empty = left alone.",
        check=_one_line(CONTENT_RATING_MAX, "XXX"),
    )
    labels: str = Setting(
        "",
        "Labels",
        "Labels added to every synced item, comma-separated (a name with a comma goes in double quotes). A label removed here is removed from the items PlexSync labelled, never one added in Plex. Default: empty = none.",
        check=_check_names,
    )
    sync_rating: bool = Setting(
        False,
        "Sync rating",
        "Write Stash's rating (0-100) as Plex's user rating (0-10); an unrated scene clears it. Default: off.",
    )
    only_organized: bool = Setting(
        False,
        "Only organized scenes",
        "Sync only scenes marked organized in Stash; others are skipped and left as they are in Plex. Default: off.",
    )
    require_stash_id: bool = Setting(
        False,
        "Only scenes with a StashDB id",
        "Sync only scenes that have a stash-box id (StashDB or another); others are skipped and left as they are in Plex. Default: off.",
    )
    exclude_tags: str = Setting(
        "",
        "Never sync scenes with these tags",
        "Tag names, comma-separated: a scene with any of them is skipped and left as it is in Plex. Default: empty = none.",
        check=_check_names,
    )
    hide_tags: str = Setting(
        "",
        "Tags never sent as genres",
        "Tag names, comma-separated, that are never written to Plex as genres. Default: empty = none.",
        check=_check_names,
    )
    title_template: str = Setting(
        "",
        "Title template",
        "How the Plex title is made, e.g. {studio} - {title}. Placeholders: {title}, {studio}, {parent_studio}, {date}, {year}, {code}, {performers}, {file}; an empty one disappears with its separator, an empty result becomes the file name. Default: empty = the scene title.",
        check=_check_title_template,
    )
    preserve_plex_edits: bool = Setting(
        False,
        "Preserve Plex edits",
        "Never overwrite a Plex field that already has a value or is locked. Default: off.",
    )
    lock_fields: bool = Setting(
        True,
        "Lock written fields",
        "Lock every field PlexSync writes so Plex agents do not overwrite it. Default: on.",
    )
    keep_plex_when_empty: bool = Setting(
        False,
        "Keep Plex value when Stash is empty",
        "When a Stash field is empty, leave the Plex field as it is instead of clearing it. Default: off.",
    )
    max_tags: int = Setting(
        50, "Maximum tags", "At most this many tags are sent as genres (1-500). Default: 50.", limits=(1, 500)
    )
    strict_matching: bool = Setting(
        True,
        "Strict matching",
        "When several Plex items could be the scene's file, skip it with a clear reason instead of guessing. Default: on.",
    )
    skip_not_found: bool = Setting(
        False,
        "Skip scenes not in Plex",
        "Drop a change quietly when its file is not in Plex, instead of retrying until Plex has scanned it. Default: off.",
    )
    trigger_plex_scan: bool = Setting(
        False,
        "Ask Plex to scan new files",
        "When Stash adds a scene, ask Plex to scan that file's folder. Default: off.",
        hook=True,
    )
    skip_tls_verify: bool = Setting(
        False, "Skip TLS verification", "Accept a self-signed certificate from Plex (https). Default: off."
    )
    connect_timeout: float = Setting(
        5.0,
        "Connect timeout (s)",
        "Seconds to wait for Plex to accept a connection (1-120). Default: 5.",
        limits=(1, 120),
    )
    read_timeout: float = Setting(
        30.0, "Read timeout (s)", "Seconds to wait for Plex to answer (1-600). Default: 30.", limits=(1, 600)
    )
    max_retries: int = Setting(
        5,
        "Maximum attempts",
        "Attempts per change before it goes to the dead-letter queue (1-100). Default: 5.",
        limits=(1, 100),
    )
    breaker_threshold: int = Setting(
        5,
        "Failures before pausing",
        "After this many failures in a row that say Plex is down, PlexSync pauses sync and only checks Plex now and then (1-100). Default: 5.",
        limits=(1, 100),
    )
    breaker_open_seconds: float = Setting(
        5.0,
        "First pause (s)",
        "Seconds to wait before the first check after Plex went down; each failed check doubles it, up to 60 s (1-3600). Default: 5.",
        limits=(1, 3600),
    )
    recovery_rates: str = Setting(
        "2,5,10",
        "Recovery ramp (jobs/s)",
        "After an outage PlexSync starts at the first value (changes per second), speeds up while Plex answers quickly, halves at once on errors or slow answers, and never sends faster than the last value until Plex has kept up there; then there is no limit. Empty = no ramp. Default: 2,5,10.",
        check=_parsed(parse_rates),
    )
    recovery_step_seconds: float = Setting(
        60.0,
        "Ramp step (s)",
        "The ramp lasts at most this many seconds per value of 'Recovery ramp' after Plex came back or last failed, however Plex answers (1-3600). Default: 60.",
        limits=(1, 3600),
    )
    recover_error_classes: str = Setting(
        "",
        "Also recover",
        "Extra dead-letter reasons that 'Recover Outage Jobs' moves back to the queue, comma-separated (e.g. plex_unavailable, plex_starting, not_in_plex). Default: empty = only plex_unreachable and plex_timeout.",
        check=_parsed(parse_error_classes),
    )
    reconcile_interval: str = Setting(
        "daily",
        "Reconcile automatically",
        "How often PlexSync looks by itself for scenes that differ from Plex (edits no hook saw, items emptied or re-added in Plex) and queues them: never, hourly, daily or weekly. It runs inside a sync, never while Stash saves. Default: daily.",
        choices=RECONCILE_INTERVALS,
        hook=True,
    )
    reconcile_scope: str = Setting(
        "7d+",
        "Reconcile scope",
        "Which scenes the automatic reconciliation looks at: 7d+ (scenes changed in Stash in the last 7 days, plus every scene whose Plex item is empty or missing), all, 24h or 7d (only scenes changed in that time). Reconcile Now always looks at all. Default: 7d+.",
        choices=RECONCILE_SCOPES,
        hook=True,
    )
    data_dir: str = Setting(
        "",
        "Data folder",
        "Where PlexSync keeps its queue and state files. Default: empty = the 'data' folder inside the plugin folder.",
        hook=True,
    )
    debug_logging: bool = Setting(
        False,
        "Debug logging",
        "Log details of every step (at info level, marked [debug]). Default: off.",
        hook=True,
    )
    obfuscate_paths: bool = Setting(
        False,
        "Hide file paths in logs",
        "Replace file paths in log lines with stable placeholders, for sharing logs. Default: off.",
        hook=True,
    )

    # -- derived values (computed from checked settings, so they cannot fail) ----------------
    @cached_property
    def path_pairs(self) -> list:
        return parse_path_map(self.path_map)

    @cached_property
    def libraries(self) -> list:
        return [x.strip() for x in self.plex_libraries.split(",") if x.strip()]

    @cached_property
    def recovery_rate_steps(self) -> tuple:
        return parse_rates(self.recovery_rates)

    @cached_property
    def recover_classes(self) -> tuple:
        return parse_error_classes(self.recover_error_classes)

    @cached_property
    def collection_sources(self) -> tuple:
        return _collection_sources(self.collections_from, self.sync_collection)

    @cached_property
    def label_names(self) -> tuple:
        return parse_names(self.labels)

    @cached_property
    def exclude_tag_names(self) -> tuple:
        return parse_names(self.exclude_tags)

    @cached_property
    def hide_tag_names(self) -> tuple:
        return parse_names(self.hide_tags)

    # -- building and saving ----------------------------------------------------------------
    @classmethod
    def from_raw(cls, raw, strict: bool = True, need_plex: bool = False) -> "Settings":
        """Validate Stash's settings map. Lenient mode (the hook) uses a bad setting's default in its
        place instead of failing; the other settings keep their values."""
        raw = raw if isinstance(raw, dict) else {}
        values = {}
        for setting in fields(cls):
            try:
                values[setting.name] = setting.parse(raw.get(setting.name))
            except SettingsError:
                if strict:
                    raise
                values[setting.name] = setting.default
        if need_plex:
            values["plex_url"] = _check_plex(values["plex_url"], values["plex_token"])
        return cls(**values)

    def __repr__(self) -> str:
        shown = ("%s=%r" % (name, getattr(self, name)) for name in SPEC if name != "plex_token")
        return "Settings(%s)" % ", ".join(shown)  # never the token

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in SPEC}

    def hook_view(self) -> dict:
        return {name: getattr(self, name) for name in HOOK_KEYS}


# name -> (kind, default, display name, description): the table as PlexSync.yml lists it.
SPEC = {s.name: (s.kind, s.default, s.display, s.description) for s in fields(Settings)}
# What the hook needs, cached by tasks (never secrets).
HOOK_KEYS = tuple(s.name for s in fields(Settings) if s.hook)


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
    from sync.store import read_json_quiet

    return Settings.from_raw(
        read_json_quiet(os.path.join(default_data_dir(plugin_dir), CACHE_NAME)), strict=False
    )


def write_hook_cache(plugin_dir: str, settings: Settings) -> None:
    from sync.store import JsonFile, make_private_dir

    directory = default_data_dir(plugin_dir)
    make_private_dir(directory)
    cache = JsonFile(os.path.join(directory, CACHE_NAME))
    view = settings.hook_view()
    if cache.read() != view:
        cache.write(view)
