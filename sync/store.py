"""Small JSON state files, written atomically and durably, read safely.

Each small concern (breaker, health, outages, stats, reconcile) keeps one JSON object in its own
file; the per-scene stores that grow with the library (sync state, match cache, the memo of
written values) are journals instead (sync/journal_map.py). `JsonFile.write` writes a temp file in the same directory,
fsyncs it, replaces the target and fsyncs the directory: after it returns, the new content
survives SIGKILL and power loss, and a reader never sees a half-written file.

A file that cannot be parsed is never overwritten silently: under its lock, its bytes are kept
as `<name>.corrupt-<timestamp>` (`keep_copy`) and the file is removed only if it still holds them
(`remove_if_same`); it is reported through `quarantined_files`, and the reader starts from the
default. The rules are in docs/ARCHITECTURE.md, "Durability rules".
"""

from __future__ import annotations

import json
import math
import os
import time

from sync.lock import FileLock

PRIVATE = 0o600
PRIVATE_DIR = 0o700


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number out of range (%s)" % text[:20])
    return value


def _bounded_int(text: str) -> int:
    value = int(text)
    if abs(value) >= 2**63:
        raise ValueError("a number out of range (%s...)" % text[:20])
    return value


def _no_constant(name: str):
    raise ValueError("a non-finite number (%s)" % name)


def loads(data):
    """`json.loads` for our files: NaN, Infinity and numbers no time or count can be are damage.

    Python's json accepts them; a NaN time compares false with everything, so one such value in
    a queue record or a state file would leave a job due but never leased (see docs/ARCHITECTURE.md,
    "Durability rules"). Every reader of a PlexSync file parses through this function.
    """
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    return json.loads(data, parse_float=_finite, parse_int=_bounded_int, parse_constant=_no_constant)


def make_private_dir(path: str) -> None:
    """Create the data folder (and missing parents) readable by the owner only."""
    os.makedirs(path, mode=PRIVATE_DIR, exist_ok=True)


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
    commit_staged(stage_bytes(path, data), path)


def stage_bytes(path: str, data: bytes) -> str:
    """Write `data` to a new temp file beside `path` and fsync it; returns the temp file's path.

    The first step of every replacement ("write new"); `commit_staged` is the last ("replace").
    """
    tmp = "%s.tmp-%d-%s" % (path, os.getpid(), os.urandom(3).hex())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), PRIVATE)
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
    return tmp


def commit_staged(tmp: str, path: str) -> None:
    """Replace `path` with the staged temp file and make the replacement durable."""
    try:
        _replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise
    fsync_dir(os.path.dirname(path) or ".")


def discard_staged(tmp: str) -> None:
    _remove_quietly(tmp)


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


def keep_copy(path: str, data: bytes) -> str:
    """Keep `data` (bytes of `path` that could not be read) as `<name>.corrupt-<UTC timestamp>`.

    The copy gets a name no other process can take at the same moment (O_EXCL), so two copies
    made in the same second never overwrite each other. Returns the copy's path.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = "%s.corrupt-%s" % (path, stamp)
    n = 1
    while True:
        target = base if n == 1 else "%s-%d" % (base, n)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), PRIVATE)
            break
        except FileExistsError:
            n += 1
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(os.path.dirname(path) or ".")
    return target


def quarantine(path: str) -> str:
    """Keep an unreadable file's bytes as `<name>.corrupt-<UTC timestamp>`; return the copy's path.

    The file itself stays where it is: the caller replaces it next with what it could read (write
    new, keep old, replace last - docs/ARCHITECTURE.md, "Durability rules"), so a kill or a full
    disk between the two steps leaves the damaged file in place, to be repaired again, never no
    file at all. FileNotFoundError when the file is gone.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    return keep_copy(path, data)


def remove_if_same(path: str, data: bytes) -> bool:
    """Remove `path` if it holds exactly `data`; a file replaced meanwhile is left in place.

    The file is first renamed to a private name (atomic), so what is checked is what is removed;
    should a writer's new file have slipped in, it is linked back unless a newer one exists.
    """
    held = "%s.tmp-%d-%s" % (path, os.getpid(), os.urandom(3).hex())
    try:
        os.rename(path, held)
    except FileNotFoundError:
        return False
    with open(held, "rb") as fh:
        same = fh.read() == data
    if not same:
        try:
            os.link(held, path)  # fails if an even newer file is there already: that one wins
        except OSError:
            pass
    _remove_quietly(held)
    fsync_dir(os.path.dirname(path) or ".")
    return same


def quarantined_files(directory: str) -> list:
    """Names of files moved aside because they could not be parsed, oldest first."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(n for n in names if ".corrupt-" in n)


def clean_temp_files(directory: str, max_age: float = 3600.0) -> None:
    """Remove temp files (`*.tmp-*`) older than `max_age` seconds: left by processes killed between
    write and replace. Every task calls it once, when it first opens the data folder
    (`stashplugin.task.TaskContext.ensure_data_dir`); a younger one may be a write in progress."""
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


class FileProblem(Exception):
    """A state file could not be read or saved (permissions, a full disk); its owner goes on
    without it. The message names the file, never its folder (which may be a private path)."""

    def __init__(self, path: str, saving: bool, error: OSError):
        super().__init__(
            "%s could not be %s (%s)"
            % (os.path.basename(path), "saved" if saving else "read", error.strerror or type(error).__name__)
        )
        self.path = path
        self.saving = saving
        self.error = error


class JsonFile:
    """One JSON object in one file: `read()` returns a dict, `write(obj)` replaces it atomically.

    `update(fn)` is read-modify-write under the file's cross-process lock. `on_corrupt` is called
    with a `CorruptFile` when the file had to be quarantined (the caller logs it loudly). With
    `on_error`, an I/O error is handled here too: `on_error` is called with a `FileProblem`, `read`
    returns the default and `update` returns None (skipped); without it the OSError is raised.
    `peek()` reads without lock, quarantine or report, for a status report.
    """

    def __init__(self, path: str, default=None, on_corrupt=None, on_error=None):
        self.path = path
        self._default = default if default is not None else {}
        self.on_corrupt = on_corrupt
        self.on_error = on_error
        self.lock = FileLock(path + ".lock")

    def default(self):
        return json.loads(json.dumps(self._default))

    def _failed(self, exc: OSError, saving: bool) -> None:
        if self.on_error is None:
            raise exc
        self.on_error(FileProblem(self.path, saving, exc))

    def peek(self) -> dict:
        """The stored object, or {} when missing or damaged (see `read_json_quiet`)."""
        return read_json_quiet(self.path)

    def read(self):
        try:
            return self._read()
        except OSError as exc:
            self._failed(exc, saving=False)
            return self.default()

    def _read(self):
        raw = _read_bytes(self.path)
        if raw is None:
            return self.default()
        value, reason = self._parse(raw)
        if reason is None:
            return value
        return self._recover(raw, reason)

    def _parse(self, raw: bytes) -> tuple:
        """(value, None) for a good file, (None, why) for one that must be quarantined."""
        try:
            value = loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return None, str(exc).split("\n")[0][:120]
        if not isinstance(value, type(self._default)):
            return None, "expected a JSON %s" % type(self._default).__name__
        return value, None

    def _recover(self, raw: bytes, reason: str):
        """Quarantine under the file's lock, and only the bytes that failed to parse: another
        process may have written a good file since this one read it."""
        held = self.lock.held
        if not held and not self.lock.acquire(timeout=10.0):
            return self.default()  # whoever holds the lock is writing; the damage is handled next time
        try:
            again = _read_bytes(self.path)
            if again is None:
                return self.default()
            if again != raw:
                value, reason = self._parse(again)
                if reason is None:
                    return value
            self._quarantine(again, reason)
        finally:
            if not held:
                self.lock.release()
        return self.default()

    def _quarantine(self, raw: bytes, reason: str) -> None:
        try:
            moved = keep_copy(self.path, raw)
            remove_if_same(self.path, raw)
        except OSError:
            return  # e.g. a full disk or, on Windows, a file another process holds open: next time
        if self.on_corrupt is not None:
            self.on_corrupt(CorruptFile(self.path, moved, reason))

    def write(self, value) -> None:
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        atomic_write_bytes(self.path, data.encode("utf-8"))

    def update(self, fn, timeout: float | None = None):
        """Apply `fn(value) -> new value` under the lock and write the result.

        With a `timeout` the update is skipped (returns None) when the lock cannot be had in time;
        `timeout=0` tries once (the breaker's storage does, so a drain never waits for it).
        """
        try:
            if not self.lock.acquire(timeout=timeout):
                return None
            try:
                new = fn(self._read())
                self.write(new)
                return new
            finally:
                self.lock.release()
        except OSError as exc:
            self._failed(exc, saving=True)
            return None


def _read_bytes(path: str):
    """The file's bytes, or None when it does not exist."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def read_json_quiet(path: str) -> dict:
    """A small JSON object, or {} when the file is missing or unreadable (no lock, no quarantine).

    For the hook's cheap peeks at state other processes own; they quarantine damage themselves.
    """
    try:
        with open(path, "rb") as fh:
            value = loads(fh.read())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of `data` to `fd` (os.write may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def remove_files(directory: str, names) -> list:
    """Remove the named files of `directory` that exist; returns the names removed."""
    removed = []
    for name in names:
        try:
            os.remove(os.path.join(directory, name))
        except FileNotFoundError:
            continue
        removed.append(name)
    return removed


class PendingWrites:
    """Changes kept in memory and written together: the one way a store batches its writes.

    `note(key, value)` keeps the latest value per key; `flush()` hands everything noted to
    `write(changes)` in one call and forgets it, so N changes cost one write. With `every`, a note
    that makes `every` changes pending flushes at once. What was never flushed is never written.
    """

    def __init__(self, write, every: int = 0):
        self._write = write
        self.every = every
        self.changes = {}

    def __contains__(self, key) -> bool:
        return key in self.changes

    def __len__(self) -> int:
        return len(self.changes)

    def note(self, key, value) -> None:
        self.changes[key] = value
        if self.every and len(self.changes) >= self.every:
            self.flush()

    def flush(self) -> None:
        if not self.changes:
            return
        changes, self.changes = self.changes, {}
        self._write(changes)

    def discard(self) -> None:
        """Forget what is pending without writing it."""
        self.changes = {}
