"""The hook reads the breaker through one cheap reader (sync/breaker_file.py), and agrees with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import plexsync
from sync.breaker_file import CLOSED, HALF_OPEN, OPEN, read_breaker_cheap

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOW = 1_700_000_000.0


def write(tmp_path, **record):
    (tmp_path / "circuit_breaker.json").write_text(json.dumps(record))
    return str(tmp_path)


def test_an_open_record_without_a_probe_time_is_open_and_due(tmp_path):
    data = write(tmp_path, state=OPEN)
    assert read_breaker_cheap(data, now=NOW) == {
        "state": OPEN,
        "next_probe_at": None,
        "opened_at": None,
        "probe_due": True,
    }
    assert plexsync.drain_wanted(data, True, NOW) is True


def test_half_open_waits_for_its_probe_time_like_open(tmp_path):
    data = write(tmp_path, state=HALF_OPEN, next_probe_at=NOW + 30, opened_at=NOW - 30)
    result = read_breaker_cheap(data, now=NOW)
    assert (result["state"], result["probe_due"]) == (HALF_OPEN, False)
    assert plexsync.drain_wanted(data, True, NOW) is False
    assert read_breaker_cheap(data, now=NOW + 30)["probe_due"] is True


def test_open_and_not_due_keeps_the_hook_from_asking(tmp_path):
    data = write(tmp_path, state=OPEN, next_probe_at=NOW + 60, opened_at=NOW)
    assert read_breaker_cheap(data, now=NOW)["probe_due"] is False
    assert plexsync.drain_wanted(data, True, NOW) is False


def test_closed_or_damaged_reads_closed_and_the_hook_asks_for_a_new_job(tmp_path):
    data = write(tmp_path, state=CLOSED)
    assert read_breaker_cheap(data, now=NOW)["state"] == CLOSED
    (tmp_path / "circuit_breaker.json").write_text("[1, 2")
    assert read_breaker_cheap(data, now=NOW)["state"] == CLOSED
    assert plexsync.drain_wanted(data, True, NOW) is True


def test_the_cheap_reader_imports_nothing_of_worker(tmp_path):
    code = (
        "import sys; from sync.breaker_file import read_breaker_cheap; read_breaker_cheap(sys.argv[1]); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('worker', 'requests', 'plexapi')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
