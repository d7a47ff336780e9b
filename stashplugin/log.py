"""Stash's plugin log protocol on stderr: `\\x01<level>\\x02message` and `\\x01p\\x02<0..1>`.

A few lines of our own instead of `stashapi.log` keep the hook's imports at the standard
library. Every line passes through `redact`: secrets registered with `add_secret` (the Plex
token, the Stash session and API key) are replaced before anything is written, and with
`obfuscate_paths` on, file paths are replaced by stable placeholders so logs can be shared.
A background drain (no Stash reading stderr) writes the same lines to a size-capped file.
"""

from __future__ import annotations

import os
import re
import sys

LEVELS = {"trace": "t", "debug": "d", "info": "i", "warning": "w", "error": "e"}
FILE_NAME = "plexsync.log"  # in the data folder, for processes no Stash reads the stderr of

_secrets = set()
_settings = {"debug": False, "obfuscate_paths": False}
_file = {"path": None, "max_bytes": 1_000_000, "backups": 2}
_stream = {"err": None}

_PATH_RE = re.compile(r"(?:[A-Za-z]:[\\/]|\\\\|/)(?:[^\s\"'<>|,;:]+[\\/])+[^\s\"'<>|,;:]*")
# A quoted string holding a folder separator is taken whole: paths often contain spaces.
_QUOTED_PATH_RE = re.compile(r"(?<![\w])([\"'])((?:[A-Za-z]:)?[^\"'\n]*[\\/][^\"'\n]*)\1")
_paths = {}


def add_secret(value) -> None:
    """Never write `value` anywhere (nor its URL-encoded form)."""
    if value and isinstance(value, str) and len(value) >= 4:
        _secrets.add(value)
        try:
            from urllib.parse import quote

            _secrets.add(quote(value, safe=""))
        except Exception:  # pragma: no cover - urllib is always there
            pass


def configure(
    debug: bool | None = None,
    obfuscate_paths: bool | None = None,
    file_path: str | None = None,
    max_bytes: int | None = None,
) -> None:
    if debug is not None:
        _settings["debug"] = bool(debug)
    if obfuscate_paths is not None:
        _settings["obfuscate_paths"] = bool(obfuscate_paths)
    if file_path is not None:
        _file["path"] = file_path or None
    if max_bytes is not None:
        _file["max_bytes"] = max_bytes


def log_to_data_folder(data_dir: str) -> None:
    """Also write every line to `plexsync.log` in the data folder (a background drain, the watcher)."""
    configure(file_path=os.path.join(data_dir, FILE_NAME))


def _placeholder(match) -> str:
    import hashlib  # only when hiding paths: the hook should not pay for it

    path = match.group(0)
    digest = hashlib.sha1(path.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    ext = os.path.splitext(path)[1]
    if not re.fullmatch(r"\.[A-Za-z0-9]{1,5}", ext or ""):
        ext = ""
    return "<path:%s%s>" % (digest, ext)


def add_path(path) -> None:
    """A file path that may appear in log lines (a scene's file): hidden whole when
    `obfuscate_paths` is on, spaces and all."""
    if _settings["obfuscate_paths"] and isinstance(path, str) and ("/" in path or "\\" in path):
        _paths[path] = None


class _Match:
    def __init__(self, text):
        self.text = text

    def group(self, _n=0):
        return self.text


def redact(text) -> str:
    text = str(text)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    if _settings["obfuscate_paths"]:
        for path in sorted(_paths, key=len, reverse=True):
            if path in text:
                text = text.replace(path, _placeholder(_Match(path)))
        text = _QUOTED_PATH_RE.sub(lambda m: m.group(1) + _placeholder(_Match(m.group(2))) + m.group(1), text)
        text = _PATH_RE.sub(_placeholder, text)
    return text


def _emit(code: str, message) -> None:
    message = redact(message)
    stream = _stream["err"] or sys.stderr
    lines = message.splitlines() or [""]
    try:
        stream.write("".join("\x01%s\x02%s\n" % (code, line) for line in lines))
        stream.flush()
    except (OSError, ValueError):
        pass
    if _file["path"] and code != "p":
        _write_file(code, message)


def _write_file(code: str, message: str) -> None:
    import time

    path = _file["path"]
    try:
        if os.path.exists(path) and os.path.getsize(path) > _file["max_bytes"]:
            for n in range(_file["backups"], 0, -1):
                older = "%s.%d" % (path, n)
                newer = path if n == 1 else "%s.%d" % (path, n - 1)
                if os.path.exists(newer):
                    os.replace(newer, older)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        name = {v: k for k, v in LEVELS.items()}.get(code, code).upper()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, ("%s %-7s %s\n" % (stamp, name, message)).encode("utf-8", "replace"))
        finally:
            os.close(fd)
    except OSError:
        pass


def debug(message) -> None:
    """Detail for troubleshooting, shown only with the `debug_logging` setting on.

    Written at Stash's info level with a "[debug]" prefix: Stash's default log level hides
    debug lines, and a user who switched `debug_logging` on wants to see them.
    """
    if _settings["debug"]:
        _emit("i", "[debug] " + str(message))


def info(message) -> None:
    _emit("i", message)


def warning(message) -> None:
    _emit("w", message)


def error(message) -> None:
    _emit("e", message)


class Capture:
    """`with log.capture() as out:` writes the log lines to `out` (an `io.StringIO`, in Stash's
    protocol) instead of stderr, starting from the default settings and no log file; on leaving,
    the stream, the settings, the log file and the known paths are put back. Registered secrets
    stay: a secret is never forgotten. For tests and for running the entry point in-process."""

    def __enter__(self):
        import io  # only when capturing: the hook should not pay for it

        self._saved = (_stream["err"], dict(_settings), dict(_file), dict(_paths))
        self.out = io.StringIO()
        _stream["err"] = self.out
        _settings.update(debug=False, obfuscate_paths=False)
        _file["path"] = None
        return self.out

    def __exit__(self, *exc_info) -> bool:
        stream, settings, file, paths = self._saved
        _stream["err"] = stream
        for live, saved in ((_settings, settings), (_file, file), (_paths, paths)):
            live.clear()
            live.update(saved)
        return False


def capture() -> Capture:
    return Capture()


def progress(fraction: float) -> None:
    fraction = min(1.0, max(0.0, float(fraction)))
    stream = _stream["err"] or sys.stderr
    try:
        stream.write("\x01p\x02%.4f\n" % fraction)
        stream.flush()
    except (OSError, ValueError):
        pass
