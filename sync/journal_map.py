"""A durable map (text key -> JSON value) kept as an fsync'd append-only JSON-lines journal.

For per-scene and per-item stores that grow with the library (sync state, match cache, the memo
of written values, the Plex path index): a change writes a few hundred bytes, never the whole
map, so a drain of 1,000 changes writes in proportion to those changes, not to a library of
50,000 scenes. Same rules as the queue's journal (docs/ARCHITECTURE.md, "The queue file"):

* The first line is a header `{"journal": <name>, "v": 1, "gen": <id>}`; every other line is one
  record: `{"k": key, "v": value}` (set) or `{"k": key, "d": 1}` (delete) or `{"clear": 1}`.
* Writers append under `<file>.lock` with `O_APPEND` and fsync: after `put_many` returns, the
  change survives SIGKILL and power loss. With `fsync=False` the line is written at once (it
  survives SIGKILL: the bytes are the kernel's) and made proof against power loss by the next
  `sync()`, so a process writing many changes pays one fsync per group of them (the drain: one
  per batch). A value already in the file is not written again.
  Readers keep the map in memory and read only the bytes appended since their last look; a new
  `gen` (compaction) makes them read from the start.
* In memory each key keeps its record as the line's bytes, decoded when asked for (`get`): a
  map of 50,000 entries then takes about a third of what the decoded values would.
* Compaction rewrites the file atomically (temp file, fsync, replace) as one record per live key
  when it holds more than max(`compact_min`, 4 x live) records.
* A torn last line (a writer killed mid-append; its write never returned) is skipped by readers
  and never cut: the next writer ends it with a newline and a `torn` record naming its length
  (`sync.journal_tail`), as the queue does, so a reader can never cut a record another writer
  is still writing. A line that does not parse and is not marked torn, or a last line that
  cannot be a torn record, is damage: the file is kept aside as `<name>.corrupt-<timestamp>`,
  every readable record is kept, `on_corrupt` is told. Records are parsed by
  `sync.store.loads`: a NaN, an Infinity or an out-of-range number is damage.
* `legacy`, when given, is `(path, to_items)`: an old whole-file JSON store that is migrated on
  first use (its entries written as the journal's first generation, then the old file removed).
"""

from __future__ import annotations

import json
import os
import time

from sync.journal_tail import after_tail, marked_torn, tail_is_damage
from sync.lock import FileLock
from sync.store import PRIVATE, CorruptFile, atomic_write_bytes, fsync_dir, loads, quarantine, write_all

FORMAT_VERSION = 1
DECODE_CHUNK = 2000  # lines decoded per call while reading: bounds the memory a first read takes


def _dumps(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


_decode = json.JSONDecoder().decode


def _value(line: bytes):
    """The value of a stored set record (validated when it was read)."""
    return _decode(line.decode("utf-8"))["v"]


class _Damaged(Exception):
    """The journal's first line is not a journal header."""


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
        self._data = {}  # key -> the bytes of its set record (one line, no newline)
        self._gen = None
        self._offset = 0
        self._records = 0
        self._migrated = False
        self._loaded = False
        self._unsynced = False  # lines written with fsync=False and not yet fsync'd (`sync`)

    # ------------------------------------------------------------------ reading
    def get(self, key, default=None):
        """The value of `key` as of this object's last look at the file (the first `get` reads
        it; `refresh`, `items` and every write catch up with other processes' appends). Each call
        decodes a fresh copy."""
        if not self._loaded:
            self.refresh()
        line = self._data.get(str(key))
        return default if line is None else _value(line)

    def items(self) -> dict:
        """A snapshot of the whole map, decoded."""
        self.refresh()
        return {key: _value(line) for key, line in self._data.items()}

    def each(self):
        """Yield (key, value) of every entry as of now, decoding one at a time (no decoded copy
        of the whole map is held)."""
        self.refresh()
        for key, line in list(self._data.items()):
            yield key, _value(line)

    def keys(self) -> list:
        self.refresh()
        return list(self._data)

    def holds(self, key, value) -> bool:
        """Does the map, as of this object's last look, hold exactly `value` for `key`? (Compares
        the encoded record: no decoding.)"""
        if not self._loaded:
            self.refresh()
        key = str(key)
        return self._data.get(key) == _dumps({"k": key, "v": value})

    def __contains__(self, key) -> bool:
        if not self._loaded:
            self.refresh()
        return str(key) in self._data

    def __len__(self) -> int:
        self.refresh()
        return len(self._data)

    def refresh(self) -> None:
        """Bring the in-memory map up to date with the file (only the new bytes are read)."""
        if not self._migrated and self.legacy is not None:
            self._migrate()
        self._loaded = True
        if self._read_new():
            with self.lock:  # damage: set aside and rebuilt under the writers' lock
                self._read_new(repair=True)

    def _read_new(self, repair: bool = False) -> str:
        """Apply the records appended since the last look; returns why the file is damaged ("")
        or, with `repair` (lock held), sets a damaged file aside and keeps its readable records."""
        try:
            data = self._unread()
        except _Damaged as exc:
            if repair:
                self._rewrite_after_damage(str(exc), header_bad=True)
            return str(exc)
        if not data:
            return ""
        reason = self._apply_bytes(data)
        if reason:
            if repair:
                self._rewrite_after_damage(reason)
            else:
                self._reset(None)  # the repair pass reads it again from the start
        return reason

    def _unread(self) -> bytes:
        """The bytes after this object's offset (from the start after a new generation)."""
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            self._reset(None)
            return b""
        with fh:
            header_line = fh.readline()
            gen = _header_gen(header_line)
            if gen is None:
                if not header_line:
                    self._reset(None)  # empty: nothing written yet (headers are written whole)
                    return b""
                raise _Damaged("its first line is not a journal header")
            if gen != self._gen:
                self._reset(gen)
                self._offset = len(header_line)
            fh.seek(self._offset)
            return fh.read()

    def _apply_bytes(self, data: bytes) -> str:
        """Apply every complete line of `data` (read at this object's offset); a last line
        without its newline is left for later (a write in progress, or torn), unless it is
        damage. Returns why the journal is damaged, or ""."""
        end = data.rfind(b"\n") + 1
        lines = [line for line in data[:end].split(b"\n") if line.strip()]
        bad = 0
        for start in range(0, len(lines), DECODE_CHUNK):
            bad += self._apply_lines(lines[start : start + DECODE_CHUNK], lines, start)
        self._offset += end
        if bad:
            return "%d line(s) could not be parsed" % bad
        if tail_is_damage(data[end:]):
            return "the end of the file is unreadable (%d bytes)" % (len(data) - end)
        return ""

    def _apply_lines(self, chunk: list, lines: list, start: int) -> int:
        """Apply one chunk of lines (one decode for all of them; line by line when one does not
        parse). Returns how many lines are damaged: unreadable and not marked torn."""
        try:
            records = loads(b"[" + b",".join(chunk) + b"]")
        except (ValueError, UnicodeDecodeError):
            records = None
        if records is None or len(records) != len(chunk):
            records = [_parse(line) for line in chunk]
        bad = 0
        for n, (rec, line) in enumerate(zip(records, chunk)):
            if isinstance(rec, dict):
                self._apply(rec, line)
            elif not marked_torn(lines, start + n):
                bad += 1
        return bad

    def _apply(self, rec: dict, line: bytes) -> None:
        self._records += 1
        if rec.get("clear"):
            self._data.clear()
            return
        key = rec.get("k")
        if not isinstance(key, str):
            return  # a `torn` mark, or a record of a later version this one does not know
        if rec.get("d"):
            self._data.pop(key, None)
        elif "v" in rec:
            self._data[key] = line

    def _reset(self, gen) -> None:
        self._data, self._gen, self._offset, self._records = {}, gen, 0, 0

    # ------------------------------------------------------------------ writing
    def put(self, key, value) -> None:
        self.put_many({key: value})

    def delete_many(self, keys) -> None:
        self.put_many({k: None for k in keys})

    def put_many(self, changes: dict, fsync: bool = True) -> None:
        """Set (value) or delete (None) several keys with one fsync'd append (written but not
        fsync'd with `fsync=False`: call `sync()` before anything that relies on it surviving
        power loss)."""
        if not changes:
            return
        records = [
            {"k": str(key), "d": 1} if value is None else {"k": str(key), "v": value}
            for key, value in changes.items()
        ]
        self._append(records, fsync)

    def sync(self) -> None:
        """fsync what `put_many(..., fsync=False)` wrote since the last sync (nothing to do if
        a compaction has replaced the file since: a new generation is written fsync'd)."""
        if not self._unsynced:
            return
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            self._unsynced = False
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._unsynced = False

    def clear(self) -> None:
        """Forget every key (one record; the next compaction drops the rest)."""
        self._append([{"clear": 1}])

    def _append(self, records: list, fsync: bool = True) -> None:
        """Append `records` under the lock (fsync'd unless `fsync` is False), leaving out what
        the file already says."""
        lines = [_dumps(rec) for rec in records]
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
        with self.lock:
            if not self._migrated and self.legacy is not None:
                self._migrate(locked=True)
            if not self.keep:
                self._append_blind(b"".join(line + b"\n" for line in lines), fsync)
                return
            self._read_new(repair=True)
            changed = self._changed_only(records, lines)
            if not changed:
                return
            if self._gen is None:
                self._write_generation({})
            end = self._write(b"".join(line + b"\n" for _, line in changed), fsync)
            for rec, line in changed:
                self._apply(rec, line)
            if end is None:
                return  # someone appended beside us: the next read takes the file from our offset
            self._offset = end
            if self._records > max(self.compact_min, 4 * len(self._data)):
                self._write_generation(self._data)

    def _changed_only(self, records: list, lines: list) -> list:
        """The (record, line) pairs that change the map as read to the end of the file (lock
        held): a value the file already holds is not written again."""
        out, cleared = [], False
        for rec, line in zip(records, lines):
            if rec.get("clear"):
                changes = bool(self._data)
            elif rec.get("d"):
                changes = rec["k"] in self._data
            else:
                changes = self._data.get(rec["k"]) != line
            if changes or cleared:
                out.append((rec, line))
                cleared = cleared or bool(rec.get("clear"))
        return out

    def _write(self, blob: bytes, fsync: bool = True):
        """Append `blob` after the file's last line (a torn one is marked, never cut), fsync
        (unless `fsync` is False: then `sync()` does it later);
        returns the file's size after it, or None when it is not what this append alone makes
        it (a lock that excludes nobody let another writer append meanwhile)."""
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), PRIVATE)
        try:
            size = os.fstat(fd).st_size
            blob = after_tail(fd, size, time.time()) + blob
            write_all(fd, blob)
            if fsync:
                os.fsync(fd)
            end = os.fstat(fd).st_size
        finally:
            os.close(fd)
        self._unsynced = self._unsynced or not fsync
        return end if end == size + len(blob) else None

    def _append_blind(self, blob: bytes, fsync: bool = True) -> None:
        """Append without reading the journal (lock held): only its header is looked at, to
        repair a file that is not a journal, and its last bytes, to mark a torn last line."""
        try:
            with open(self.path, "rb") as fh:
                header_line = fh.readline()
        except FileNotFoundError:
            header_line = b""
        if not header_line:
            self._write_generation({})
        elif _header_gen(header_line) is None:
            self._read_new(repair=True)
        self._write(blob, fsync)
        self._reset(None)  # nothing is kept in memory

    def compact(self) -> None:
        """Rewrite the journal as one record per live key."""
        with self.lock:
            self._read_new(repair=True)
            self._write_generation(self._data)

    def _write_generation(self, lines: dict) -> None:
        """Atomically replace the file with a new header and `lines` (key -> the bytes of its set
        record), lock held."""
        gen = os.urandom(6).hex()
        header = _dumps({"journal": self.name, "v": FORMAT_VERSION, "gen": gen}) + b"\n"
        body = b"".join(line + b"\n" for line in lines.values())
        atomic_write_bytes(self.path, header + body)
        lines = dict(lines)
        self._reset(gen)
        self._data = lines
        self._records = len(lines)
        self._offset = len(header) + len(body)

    # ------------------------------------------------------------------ damage and migration
    def _rewrite_after_damage(self, reason: str, header_bad: bool = False) -> None:
        """Keep the damaged journal's bytes aside and start a new one from every readable record."""
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return
        self._reset(None)
        lines = [line for line in raw.split(b"\n")[(0 if header_bad else 1) : -1] if line.strip()]
        for line in lines:
            rec = _parse(line)
            if isinstance(rec, dict) and not rec.get("journal"):
                self._apply(rec, line)
        data = self._data
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
        # Durable before the old file goes.
        self._write_generation({str(k): _dumps({"k": str(k), "v": v}) for k, v in items.items()})
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


def _parse(line: bytes):
    try:
        return loads(line)
    except (ValueError, UnicodeDecodeError):
        return None


def _header_gen(line: bytes):
    """The generation id of a journal's header line, or None when it is not one."""
    header = _parse(line)
    if isinstance(header, dict) and header.get("journal"):
        return header.get("gen")
    return None


def read_legacy_json(path: str, on_corrupt=None):
    """An old whole-file JSON object store, or {} when it cannot be parsed (moved aside, reported)."""
    from sync.store import JsonFile

    return JsonFile(path, default={}, on_corrupt=on_corrupt).read()
