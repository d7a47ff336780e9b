"""Small JSON state files, written atomically and durably, read safely.

Each concern (breaker, health, outages, stats, match cache, sync state, reconcile) keeps one
small JSON object in its own file. `JsonFile.write` writes a temp file in the same directory,
fsyncs it, replaces the target and fsyncs the directory: after it returns, the new content
survives SIGKILL and power loss, and a reader never sees a half-written file.

A file that cannot be parsed is never overwritten silently: it is moved aside as
`<name>.corrupt-<timestamp>` (see `quarantine`), reported through `quarantined_files`, and the
reader starts from the default.
"""
from __future__ import annotations

import json
import os
import time

from sync.lock import FileLock

PRIVATE = 0o600


def fsync_dir(directory: str) -> None:
    """Make a rename or a new file in `directory` durable (no-op where unsupported, e.g. Windows)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Replace `path` with `data` so that either the old or the new content survives a crash."""
    directory = os.path.dirname(path) or "."
    tmp = "%s.tmp-%d-%s" % (path, os.getpid(), os.urandom(3).hex())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _remove_quietly(tmp)
        raise
    os.close(fd)
    try:
        _replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise
    fsync_dir(directory)


def _replace(src: str, dst: str) -> None:
    """os.replace, retried briefly on Windows, where a reader holding `dst` open blocks it."""
    if os.name != "nt":
        os.replace(src, dst)
        return
    delay = 0.005  # pragma: no cover - Windows only
    for _ in range(40):  # pragma: no cover
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
    os.replace(src, dst)  # pragma: no cover


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def quarantine(path: str) -> str:
    """Move an unreadable file aside as `<name>.corrupt-<UTC timestamp>`; return the new path."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = "%s.corrupt-%s" % (path, stamp)
    n = 1
    while os.path.exists(target):
        n += 1
        target = "%s.corrupt-%s-%d" % (path, stamp, n)
    os.replace(path, target)
    fsync_dir(os.path.dirname(path) or ".")
    return target


def quarantined_files(directory: str) -> list:
    """Names of files moved aside because they could not be parsed, oldest first."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(n for n in names if ".corrupt-" in n)


def clean_temp_files(directory: str, max_age: float = 3600.0) -> None:
    """Remove temp files left by processes killed between write and replace."""
    now = time.time()
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if ".tmp-" in name:
            path = os.path.join(directory, name)
            try:
                if now - os.path.getmtime(path) > max_age:
                    os.remove(path)
            except OSError:
                pass


class CorruptFile(Exception):
    """A state file could not be parsed; it has been moved aside."""

    def __init__(self, path: str, moved_to: str, reason: str):
        super().__init__(
            "%s could not be read (%s); it was moved aside as %s and a fresh one was started"
            % (os.path.basename(path), reason, os.path.basename(moved_to))
        )
        self.path = path
        self.moved_to = moved_to


class JsonFile:
    """One JSON object in one file: `read()` returns a dict, `write(obj)` replaces it atomically.

    `update(fn)` is read-modify-write under the file's cross-process lock. `on_corrupt` is called
    with a `CorruptFile` when the file had to be quarantined (the caller logs it loudly).
    """

    def __init__(self, path: str, default=None, on_corrupt=None):
        self.path = path
        self._default = default if default is not None else {}
        self.on_corrupt = on_corrupt
        self.lock = FileLock(path + ".lock")

    def default(self):
        return json.loads(json.dumps(self._default))

    def read(self):
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return self.default()
        try:
            value = json.loads(raw.decode("utf-8"))
            if not isinstance(value, type(self._default)):
                raise ValueError("expected a JSON %s" % type(self._default).__name__)
            return value
        except (ValueError, UnicodeDecodeError) as exc:
            self._quarantine(str(exc).split("\n")[0][:120])
            return self.default()

    def _quarantine(self, reason: str) -> None:
        try:
            moved = quarantine(self.path)
        except FileNotFoundError:
            return
        if self.on_corrupt is not None:
            self.on_corrupt(CorruptFile(self.path, moved, reason))

    def write(self, value) -> None:
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        atomic_write_bytes(self.path, data.encode("utf-8"))

    def update(self, fn, timeout: float | None = None):
        """Apply `fn(value) -> new value` under the lock and write the result.

        With a `timeout` the update is skipped (returns None) when the lock cannot be had in time;
        the hook uses `timeout=0` so it never waits on another process.
        """
        if not self.lock.acquire(timeout=timeout):
            return None
        try:
            new = fn(self.read())
            self.write(new)
            return new
        finally:
            self.lock.release()


def read_json_quiet(path: str) -> dict:
    """A small JSON object, or {} when the file is missing or unreadable (no lock, no quarantine).

    For the hook's cheap peeks at state other processes own; they quarantine damage themselves.
    """
    try:
        with open(path, "rb") as fh:
            value = json.loads(fh.read().decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}
