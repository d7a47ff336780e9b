"""The circuit breaker's file, read the hook's way: standard library only, no lock, no write.

`worker/breaker.py` owns `circuit_breaker.json` (it alone writes it); this is its cheap reader,
kept apart so that the hook, which must return at once, imports nothing heavier than `sync`.
"""

from __future__ import annotations

import os
import time

from sync.backoff import effective_time
from sync.store import read_json_quiet

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
FILE_NAME = "circuit_breaker.json"


def number(value):
    """A finite-or-not float from a JSON value; None for anything else (a bool too)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def read_breaker_cheap(data_dir: str, now: float | None = None) -> dict:
    """What the hook needs to know, read with the standard library only and without a lock.

    Returns {"state", "next_probe_at", "opened_at", "probe_due"}. `probe_due` is True when the
    breaker is not CLOSED and Plex may be asked again: its probe time has come (an open or
    half-open record alike), or the record has no probe time at all; the hook then requests a
    drain. While not due it should only queue. A missing or unreadable file reads as CLOSED; the
    drain reports damage, not the hook.
    """
    result = {"state": CLOSED, "next_probe_at": None, "opened_at": None, "probe_due": False}
    raw = read_json_quiet(os.path.join(data_dir, FILE_NAME))
    if raw.get("state") not in (OPEN, HALF_OPEN):
        return result
    next_probe = number(raw.get("next_probe_at"))
    now = time.time() if now is None else now
    result.update(
        state=raw["state"],
        next_probe_at=next_probe,
        opened_at=number(raw.get("opened_at")),
        probe_due=next_probe is None or now >= effective_time(next_probe, now),
    )
    return result


def file_damaged(data_dir: str) -> bool:
    """Is there a breaker file that reads as no record (unparsable, or not an object)? Said without
    moving it: whoever next opens the breaker properly moves it aside and reports it."""
    path = os.path.join(data_dir, FILE_NAME)
    return os.path.exists(path) and not read_json_quiet(path)
