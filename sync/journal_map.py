"""A durable map (text key -> JSON value) kept as an fsync'd append-only JSON-lines journal.

For per-scene and per-item stores that grow with the library (sync state, match cache, the memo
of written values): a change writes a few hundred bytes, never the whole map, so a drain of
1,000 changes writes in proportion to those changes, not to a library of 50,000 scenes. Same
rules as the queue's journal (docs/ARCHITECTURE.md, "The queue file"):

* The first line is a header `{"journal": <name>, "v": 1, "gen": <id>}`; every other line is one
  record: `{"k": key, "v": value}` (set) or `{"k": key, "d": 1}` (delete) or `{"clear": 1}`.
* Writers append under `<file>.lock` and fsync: after `put_many` returns, the change survives
  SIGKILL and power loss. Readers keep the map in memory and read only the bytes appended since
  their last look; a new `gen` (compaction) makes them read from the start.
* Compaction rewrites the file atomically (temp file, fsync, replace) as one record per live key
  when it holds more than max(`compact_min`, 4 x live) records.
* A torn last line (a writer killed mid-append; its write never returned) is ignored by readers
  and cut by the next writer. A complete line that does not parse is damage: the file is moved
  aside as `<name>.corrupt-<timestamp>`, every readable record is kept, `on_corrupt` is told.
  Records are parsed by `sync.store.loads`: a NaN, an Infinity or an out-of-range number is damage.
* `legacy`, when given, is `(path, to_items)`: an old whole-file JSON store that is migrated on
  first use (its entries written as the journal's first generation, then the old file removed).
"""

from __future__ import annotations

import json
import os

from sync.lock import FileLock
from sync.store import PRIVATE, CorruptFile, atomic_write_bytes, fsync_dir, loads, quarantine, write_all

FORMAT_VERSION = 1


def _dumps(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


class JournalMap:
    """A key -> value map in `path` (a `.jsonl` journal); see the module docstring."""

    def __init__(self, path: str, on_corrupt=None, compact_min: int = 2000, legacy=None, keep: bool = True):
        self.keep = keep  # False: a writer that never reads the map (no memory for it, no compaction)
        self.path = path
        self.name = os.path.basename(path)
        self.on_corrupt = on_corrupt
        self.compact_min = compact_min
        self.legacy = legacy
        self.lock = FileLock(path + ".lock")
        self._data = {}
        self._gen = None
        self._offset = 0
        self._records = 0
        self._migrated = False
        self._loaded = False

    # ------------------------------------------------------------------ reading
    def get(self, key, default=None):
        """The value of `key` as of this object's last look at the file (the first `get` reads
        it; `refresh`, `items` and every write catch up with other processes' appends)."""
        if not self._loaded:
            self.refresh()
        return self._data.get(str(key), default)

    def items(self) -> dict:
        """A snapshot of the whole map (a shallow copy)."""
        self.refresh()
        return dict(self._data)

    def __len__(self) -> int:
        self.refresh()
        return len(self._data)

    def refresh(self) -> None:
        """Bring the in-memory map up to date with the file (only the new bytes are read)."""
        if not self._migrated and self.legacy is not None:
            self._migrate()
        self._loaded = True
        if self._read_new(cut_torn=False):
            with self.lock:  # damage: set aside and rebuilt under the writers' lock
                self._read_new(cut_torn=True, repair=True)

    def _read_new(self, cut_torn: bool, repair: bool = False) -> str:
        """Apply the records appended since the last look; returns why the file is damaged ("")
        or, with `repair` (lock held), sets a damaged file aside and keeps its readable records."""
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            self._reset(None)
            return ""
        with fh:
            header_line = fh.readline()
            header = self._parse(header_line)
            gen = header.get("gen") if isinstance(header, dict) and header.get("journal") else None
            if gen is None:
                if not header_line:
                    self._reset(None)  # empty: nothing written yet (headers are written whole)
                    return ""
                reason = "its first line is not a journal header"
                if repair:
                    self._rewrite_after_damage(reason, header_bad=True)
                return reason
            if gen != self._gen:
                self._reset(gen)
                self._offset = len(header_line)
            fh.seek(self._offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1
        bad = 0
        lines = [line for line in data[:end].split(b"\n") if line.strip()]
        # One decode for all the lines: the decoder then shares the key strings of every record,
        # which keeps a map of 50,000 entries tens of megabytes smaller. Line by line on damage.
        try:
            records = loads(b"[" + b",".join(lines) + b"]") if lines else []
        except (ValueError, UnicodeDecodeError):
            records = [self._parse(line) for line in lines]
        for rec in records:
            if not isinstance(rec, dict):
                bad += 1
                continue
            self._apply(rec)
        self._offset += end
        if bad:
            reason = "%d line(s) could not be parsed" % bad
            if repair:
                self._rewrite_after_damage(reason)
            else:
                self._reset(None)  # the repair pass reads it again from the start
            return reason
        if data[end:] and cut_torn:
            # Only a writer killed mid-append leaves this; we hold the lock, so it is dead.
            with open(self.path, "r+b") as out:
                out.truncate(self._offset)
                os.fsync(out.fileno())
        return ""

    @staticmethod
    def _parse(line: bytes):
        try:
            return loads(line)
        except (ValueError, UnicodeDecodeError):
            return None

    def _apply(self, rec: dict) -> None:
        self._records += 1
        if rec.get("clear"):
            self._data.clear()
            return
        key = rec.get("k")
        if not isinstance(key, str):
            return
        if rec.get("d"):
            self._data.pop(key, None)
        elif "v" in rec:
            self._data[key] = rec["v"]

    def _reset(self, gen) -> None:
        self._data, self._gen, self._offset, self._records = {}, gen, 0, 0

    # ------------------------------------------------------------------ writing
    def put(self, key, value) -> None:
        self.put_many({key: value})

    def delete_many(self, keys) -> None:
        self.put_many({k: None for k in keys})

    def put_many(self, changes: dict) -> None:
        """Set (value) or delete (None) several keys with one fsync'd append."""
        if not changes:
            return
        records = [
            {"k": str(key), "d": 1} if value is None else {"k": str(key), "v": value}
            for key, value in changes.items()
        ]
        self._append(records)

    def clear(self) -> None:
        """Forget every key (one record; the next compaction drops the rest)."""
        self._append([{"clear": 1}])

    def _append(self, records: list) -> None:
        """Append `records` durably under the lock; the in-memory map applies them as they are
        (values are kept, not copied: callers do not change a value after handing it over)."""
        blob = b"".join(_dumps(rec) + b"\n" for rec in records)
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
        with self.lock:
            if not self._migrated and self.legacy is not None:
                self._migrate(locked=True)
            if not self.keep:
                self._append_blind(blob)
                return
            self._read_new(cut_torn=True, repair=True)
            if self._gen is None:
                self._write_generation({})
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE)
            try:
                write_all(fd, blob)
                os.fsync(fd)
            finally:
                os.close(fd)
            # We read to the end under the lock, so these bytes follow our offset directly.
            for rec in records:
                self._apply(rec)
            self._offset += len(blob)
            if self._records > max(self.compact_min, 4 * len(self._data)):
                self._write_generation(self._data)

    def _append_blind(self, blob: bytes) -> None:
        """Append without reading the journal (lock held): only its header and its last bytes
        are looked at, to repair damage and cut a torn last line."""
        try:
            with open(self.path, "rb") as fh:
                header = self._parse(fh.readline())
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - 65536))
                tail = fh.read()
        except FileNotFoundError:
            header, size, tail = None, 0, b""
        if size == 0:
            self._write_generation({})
            self._data = {}
        elif not (isinstance(header, dict) and header.get("journal") and header.get("gen")):
            self._read_new(cut_torn=True, repair=True)
            self._data = {}
        elif not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n")
            if cut >= 0:  # (a line longer than the look-back is left for a reading writer to cut)
                with open(self.path, "r+b") as out:
                    out.truncate(size - len(tail) + cut + 1)
                    os.fsync(out.fileno())
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE)
        try:
            write_all(fd, blob)
            os.fsync(fd)
        finally:
            os.close(fd)

    def compact(self) -> None:
        """Rewrite the journal as one record per live key."""
        with self.lock:
            self._read_new(cut_torn=True, repair=True)
            self._write_generation(self._data)

    def _write_generation(self, data: dict) -> None:
        """Atomically replace the file with a new header and one record per key (lock held)."""
        gen = os.urandom(6).hex()
        parts = [_dumps({"journal": self.name, "v": FORMAT_VERSION, "gen": gen}) + b"\n"]
        parts.extend(_dumps({"k": k, "v": v}) + b"\n" for k, v in data.items())
        atomic_write_bytes(self.path, b"".join(parts))
        data = dict(data)
        self._reset(gen)
        self._data = data
        self._records = len(data)
        self._offset = len(parts[0]) + sum(len(p) for p in parts[1:])

    # ------------------------------------------------------------------ damage and migration
    def _rewrite_after_damage(self, reason: str, header_bad: bool = False) -> None:
        """Move the damaged journal aside and start a new one from every readable record."""
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return
        data = {}
        lines = raw.split(b"\n")
        for line in lines[1:-1] if not header_bad else lines[:-1]:
            rec = self._parse(line) if line.strip() else None
            if isinstance(rec, dict):
                if rec.get("clear"):
                    data.clear()
                elif isinstance(rec.get("k"), str):
                    if rec.get("d"):
                        data.pop(rec["k"], None)
                    elif "v" in rec:
                        data[rec["k"]] = rec["v"]
        try:
            moved = quarantine(self.path)
        except FileNotFoundError:
            return
        self._write_generation(data)
        if self.on_corrupt is not None:
            self.on_corrupt(CorruptFile(self.path, moved, reason))

    def _migrate(self, locked: bool = False) -> None:
        """Turn the old whole-file store into this journal's first generation, once."""
        self._migrated = True
        path, to_items = self.legacy
        if os.path.exists(self.path) or not os.path.exists(path):
            return
        if not locked:
            with self.lock:
                return self._migrate_now(path, to_items)
        return self._migrate_now(path, to_items)

    def _migrate_now(self, path: str, to_items) -> None:
        if os.path.exists(self.path) or not os.path.exists(path):
            return  # another process migrated it meanwhile
        items = to_items(path)
        if items is None:
            return
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
        self._write_generation(dict(items))  # durable before the old file goes
        try:
            if os.path.isdir(path):
                for name in os.listdir(path):
                    os.remove(os.path.join(path, name))
                os.rmdir(path)
            else:
                os.remove(path)
            fsync_dir(os.path.dirname(path) or ".")
        except OSError:
            pass


def read_legacy_json(path: str, on_corrupt=None):
    """An old whole-file JSON object store, or {} when it cannot be parsed (moved aside, reported)."""
    from sync.store import JsonFile

    return JsonFile(path, default={}, on_corrupt=on_corrupt).read()
