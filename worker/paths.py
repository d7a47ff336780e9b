"""How a Stash file path looks on the Plex server, and the keys paths are compared by.

Pure functions over strings: no I/O, no knowledge of Plex or Stash. Stash and Plex often mount
the same files differently (`/data/x.mp4` in Stash's container, `/media/videos/x.mp4` or
`D:\\Videos\\x.mp4` on the Plex machine); the user's `path_map` setting lists the prefix pairs.
"""

from __future__ import annotations

import re
import unicodedata

_DRIVE_RE = re.compile(r"^[A-Za-z]:(?:[\\/]|$)")
_SEPARATORS_RE = re.compile(r"[\\/]+")


def looks_windows(path: str) -> bool:
    """True for `C:\\...`, `C:/...` and UNC `\\\\server\\share` paths (and any with a backslash)."""
    return bool(_DRIVE_RE.match(path)) or "\\" in path


def _split(path: str, windows: bool) -> tuple:
    """(root, components): root is "/", "//" (UNC), "C:" or "" (relative)."""
    if windows:
        if path.startswith(("\\\\", "//")):
            root, rest = "//", path[2:]
        elif _DRIVE_RE.match(path):
            root, rest = path[:2], path[2:]
        elif path.startswith(("/", "\\")):
            root, rest = "/", path[1:]
        else:
            root, rest = "", path
        parts = [p for p in re.split(r"[\\/]", rest) if p]
    else:
        root, rest = ("/", path[1:]) if path.startswith("/") else ("", path)
        parts = [p for p in rest.split("/") if p]
    return root, parts


def _join(root: str, parts: list, windows: bool) -> str:
    sep = "\\" if windows else "/"
    if root == "//":
        head = sep * 2
    elif root == "/":
        head = sep
    elif root:  # drive letter: "C:" + "\\"
        head = root + sep
    else:
        head = ""
    return head + sep.join(parts)


class _Pair:
    __slots__ = (
        "stash",
        "plex",
        "windows",
        "root",
        "parts",
        "plex_root",
        "plex_parts",
        "plex_windows",
        "stash_windows",
    )

    def __init__(self, stash: str, plex: str):
        self.stash, self.plex = stash, plex
        self.plex_windows = looks_windows(plex)
        # Either side on Windows means the files live on a case-insensitive filesystem somewhere
        # along the way, and users type drive letters and folder names in any case.
        self.windows = looks_windows(stash) or self.plex_windows
        self.stash_windows = looks_windows(stash)
        self.root, self.parts = _split(stash, self.stash_windows)
        self.plex_root, self.plex_parts = _split(plex, self.plex_windows)

    def fold(self, text: str) -> str:
        return text.casefold() if self.windows else text

    def remainder(self, path: str):
        """The path's components after this pair's Stash prefix, or None when it does not match."""
        # Split with the Stash side's rules: on Linux a backslash is part of a file name.
        root, parts = _split(path, self.stash_windows)
        if self.fold(root) != self.fold(self.root) or len(parts) < len(self.parts):
            return None
        for mine, theirs in zip(self.parts, parts):
            if self.fold(mine) != self.fold(theirs):
                return None
        return parts[len(self.parts) :]


class PathMapper:
    """Maps Stash file paths to the paths Plex sees, from `settings.path_pairs`.

    The longest matching Stash prefix wins, matched whole folder by whole folder ("/data" never
    matches "/database/x"). The result uses the Plex side's separator style.
    """

    def __init__(self, pairs):
        built = [_Pair(stash, plex) for stash, plex in (pairs or [])]
        # Longest prefix first; the user's order breaks ties (sorted() is stable).
        self._pairs = sorted(built, key=lambda p: -len(p.parts))
        self._raw = [(stash, plex) for stash, plex in (pairs or [])]

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def to_plex(self, stash_path: str) -> str:
        """The Plex-side path of `stash_path`; unchanged when no pair matches (or there are none)."""
        for pair in self._pairs:
            rest = pair.remainder(stash_path)
            if rest is None:
                continue
            return _join(pair.plex_root, pair.plex_parts + rest, pair.plex_windows)
        return stash_path

    def to_stash(self, plex_path: str) -> str:
        """The inverse mapping: a Plex file path as Stash sees it (for reconciliation and logs)."""
        return PathMapper([(plex, stash) for stash, plex in self._raw]).to_plex(plex_path)


def path_key(path: str) -> str:
    """Exact-match key: "/" separators, no duplicate or trailing separators, Unicode NFC.

    NFC matters because macOS stores names decomposed (NFD) while Linux and Windows keep what
    was written, so the same "é" can arrive as two different strings.
    """
    text = path or ""
    # Fast paths: an index of 50,000 files is keyed in one go, and most paths are already clean.
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if "\\" in text or "//" in text:
        text = _SEPARATORS_RE.sub("/", text)
    if len(text) > 1:
        text = text.rstrip("/")
    return text


def loose_key(path: str) -> str:
    """`path_key`, casefolded: for Windows and macOS, whose filesystems ignore case."""
    return path_key(path).casefold()


def name_key(path: str) -> str:
    """The casefolded NFC file name (last component), for the filename fallback."""
    return path_key(path).rsplit("/", 1)[-1].casefold()
