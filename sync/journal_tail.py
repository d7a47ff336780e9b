"""The end of an append-only journal: what a writer puts after a torn last line, and how a reader
tells a torn record from damage. One rule for the queue (`sync/queue.py`) and the per-scene
journals (`sync/journal_map.py`); docs/ARCHITECTURE.md, "The queue file", says why.

A writer killed mid-append leaves an incomplete last line. Nobody cuts it: where a lock is
granted without excluding anyone, what looks torn may be another writer's record still being
written, and cutting it would lose an acknowledged change. The next writer ends it with a
newline and a `torn` record naming its length (`after_tail`); readers skip a line so marked
(`marked_torn`). A last line that cannot be a torn record (`tail_is_damage`) is damage.
"""

from __future__ import annotations

import json
import os

from sync.store import loads

# No record a journal appends is longer than this (the queue writes a `drop` in chunks), so a
# last line without its newline that is longer, or holds NUL bytes, was not torn by a writer: it
# is damage (storage that lost the end of the file), kept aside and reported, never cut silently.
MAX_RECORD_BYTES = 65536
TORN = "torn"  # a record saying "the line before me was torn by a writer killed mid-append"


def tail_is_damage(tail: bytes) -> bool:
    """Is this last line without a newline damage rather than a record torn by a killed writer?

    A writer dies mid-append leaving a prefix of one record: shorter than MAX_RECORD_BYTES and
    never NUL bytes (JSON escapes them). Storage that lost the end of the file leaves NULs or
    garbage whose newlines are gone.
    """
    return b"\0" in tail or len(tail) > MAX_RECORD_BYTES


def after_tail(fd: int, size: int, now: float) -> bytes:
    """What an append to the open file `fd` of `size` bytes writes before its records, so that
    the file's last line stays what it is.

    Nothing when the file ends with a newline. After damage (see `tail_is_damage`) a newline, so
    the damage becomes a line of its own for the next reader to report. After a record torn by a
    writer killed mid-append, a newline and a `torn` record naming the torn line's length, so the
    reader skips that line without calling it damage. Nothing is ever cut.
    """
    if size == 0:
        return b""
    os.lseek(fd, size - 1, os.SEEK_SET)
    if os.read(fd, 1) == b"\n":
        return b""
    start = max(0, size - MAX_RECORD_BYTES - 1)
    os.lseek(fd, start, os.SEEK_SET)
    block = os.read(fd, size - start)
    idx = block.rfind(b"\n")
    if idx < 0 and start > 0:
        return b"\n"  # no newline in the last MAX_RECORD_BYTES: not one torn record
    tail = block[idx + 1 :]
    if tail_is_damage(tail):
        return b"\n"
    return (
        b"\n"
        + json.dumps({"op": TORN, "len": len(tail), "t": now}, separators=(",", ":")).encode("utf-8")
        + b"\n"
    )


def marked_torn(lines: list, index: int) -> bool:
    """Is the unreadable line `lines[index]` a record torn by a killed writer, as the next
    writer marked it (`after_tail`)? Then it is no damage: that write never returned."""
    if index + 1 >= len(lines):
        return False
    try:
        rec = loads(lines[index + 1])
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(rec, dict) and rec.get("op") == TORN and rec.get("len") == len(lines[index])
