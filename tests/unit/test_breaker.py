"""The circuit breaker: transitions, persistence across processes, damage, and what it logs."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stashplugin import log
from sync.breaker_file import read_breaker_cheap
from sync.lock import FileLock
from tests.clock import FakeClock
from worker.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    STATES,
    CircuitBreaker,
    FileBreakerStorage,
    LogListener,
    MemoryBreakerStorage,
)
from worker.errors import SyncFailure

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REFUSED = SyncFailure("plex_unreachable", "connection refused")


class Recorder:
    def __init__(self):
        self.seen = []

    def state_change(self, breaker, transition):
        self.seen.append((transition.old, transition.new))


def make(storage=None, clock=None, **kw):
    return CircuitBreaker(
        storage if storage is not None else MemoryBreakerStorage(), clock=clock or FakeClock(), **kw
    )


def open_breaker(breaker, n=5):
    for _ in range(n):
        breaker.record_failure(REFUSED)


def stash_log(capsys):
    """(level, message) pairs written to stderr with Stash's log protocol."""
    out = []
    for line in capsys.readouterr().err.splitlines():
        if line.startswith("\x01") and "\x02" in line:
            level, message = line[1:].split("\x02", 1)
            out.append((level, message))
    return out


# -- transitions ----------------------------------------------------------------------------


def test_closed_breaker_lets_requests_through():
    breaker = make()
    assert breaker.state == CLOSED
    assert breaker.allow_request()
    assert breaker.next_probe_at is None


def test_breaker_opens_after_threshold_consecutive_outage_failures():
    clock = FakeClock()
    breaker = make(clock=clock, threshold=5, open_seconds=60)
    open_breaker(breaker, 4)
    assert breaker.state == CLOSED and breaker.allow_request()
    breaker.record_failure(REFUSED)
    assert breaker.state == OPEN
    assert not breaker.allow_request()
    assert breaker.opened_at == clock.t
    assert breaker.next_probe_at == clock.t + 60
    assert breaker.last_reason == "Plex unreachable (connection refused)"


def test_success_between_failures_resets_the_count():
    breaker = make(threshold=3)
    open_breaker(breaker, 2)
    breaker.record_success()
    open_breaker(breaker, 2)
    assert breaker.state == CLOSED
    assert breaker.failure_count == 2


@pytest.mark.parametrize(
    "error_class",
    ["plex_unauthorized", "ambiguous_match", "not_in_plex", "plex_rejected", "stash_unreachable", "internal"],
)
def test_failures_that_are_not_outages_leave_the_breaker_alone(error_class):
    storage = MemoryBreakerStorage()
    breaker = make(storage, threshold=3)
    open_breaker(breaker, 2)
    before = storage.read()
    for _ in range(10):
        breaker.record_failure(error_class, "detail")
        breaker.record_failure(SyncFailure(error_class))
    assert breaker.state == CLOSED
    assert breaker.failure_count == 2
    assert storage.read() == before


def test_every_outage_class_counts_toward_opening():
    breaker = make(threshold=4)
    for cls in ("plex_unreachable", "plex_timeout", "plex_unavailable", "plex_starting"):
        breaker.record_failure(cls)
    assert breaker.state == OPEN


def test_open_breaker_reads_half_open_once_the_pause_is_over():
    clock = FakeClock()
    storage = MemoryBreakerStorage()
    breaker = make(storage, clock=clock, open_seconds=60)
    open_breaker(breaker)
    clock.t += 59
    assert breaker.state == OPEN and not breaker.allow_request()
    clock.t += 1
    saves = storage.saves
    assert breaker.state == HALF_OPEN
    assert storage.saves == saves  # reading alone writes nothing
    assert storage.read()["state"] == OPEN
    assert breaker.allow_request()  # this request is the probe
    assert storage.read()["state"] == HALF_OPEN


def test_probe_success_closes_the_breaker_and_starts_the_recovery_ramp():
    clock = FakeClock()
    breaker = make(clock=clock)
    open_breaker(breaker)
    clock.t += 60
    assert breaker.allow_request()
    breaker.record_success()
    assert breaker.state == CLOSED
    assert breaker.failure_count == 0
    assert breaker.recovered_at == clock.t
    assert breaker.allow_request()


def test_probe_failure_reopens_with_a_longer_pause_up_to_the_cap():
    clock = FakeClock()
    breaker = make(clock=clock, open_seconds=60, max_open_seconds=300)
    open_breaker(breaker)
    pauses = []
    for _ in range(5):
        clock.t = breaker.next_probe_at
        assert breaker.allow_request()
        breaker.record_failure("plex_timeout", "read timeout")
        assert breaker.state == OPEN
        pauses.append(breaker.next_probe_at - clock.t)
    assert pauses == [120, 240, 300, 300, 300]


def test_a_new_outage_starts_again_with_the_first_pause():
    clock = FakeClock()
    breaker = make(clock=clock, open_seconds=60)
    open_breaker(breaker)
    clock.t = breaker.next_probe_at
    breaker.allow_request()
    breaker.record_failure(REFUSED)  # pause now 120 s
    clock.t = breaker.next_probe_at
    breaker.allow_request()
    breaker.record_success()
    open_breaker(breaker)
    assert breaker.next_probe_at - clock.t == 60


def test_success_while_open_closes_the_breaker():
    breaker = make()
    open_breaker(breaker)
    breaker.record_success()
    assert breaker.state == CLOSED


def test_late_failure_while_open_does_not_lengthen_the_pause():
    clock = FakeClock()
    breaker = make(clock=clock)
    open_breaker(breaker)
    probe_at = breaker.next_probe_at
    clock.t += 10
    breaker.record_failure(REFUSED)
    assert breaker.next_probe_at == probe_at


def test_healthy_jobs_cost_no_writes():
    storage = MemoryBreakerStorage()
    breaker = make(storage)
    for _ in range(100):
        assert breaker.allow_request()
        breaker.record_success()
    assert storage.saves == 0


def test_busy_storage_keeps_the_change_in_memory_only():
    storage = MemoryBreakerStorage()
    storage.busy = True
    breaker = make(storage)
    open_breaker(breaker)
    assert breaker.state == OPEN
    assert storage.read() == {}


def test_opening_clears_a_running_recovery_ramp():
    clock = FakeClock()
    breaker = make(clock=clock)
    open_breaker(breaker)
    breaker.record_success()
    assert breaker.recovered_at is not None
    breaker.save_ramp(clock.t, 2)
    assert breaker.ramp_errors == 2
    open_breaker(breaker)
    assert breaker.recovered_at is None and breaker.ramp_errors == 0


def test_trip_pauses_a_recovering_plex_that_keeps_failing(capsys):
    clock = FakeClock()
    breaker = make(clock=clock, open_seconds=5, listeners=[LogListener()])
    open_breaker(breaker)
    clock.t += 5
    breaker.allow_request()
    breaker.record_success()
    breaker.record_failure(REFUSED)  # one failure of five: still closed
    capsys.readouterr()
    breaker.trip("Plex answered with a server error (HTTP 500); 5 errors while sync was resuming")
    assert breaker.state == OPEN and breaker.next_probe_at == clock.t + 5
    assert breaker.recovered_at is None and breaker.ramp_errors == 0
    assert stash_log(capsys) == [
        (
            "w",
            "Plex answered with a server error (HTTP 500); 5 errors while sync was "
            "resuming — pausing sync for 5 s; changes keep being queued",
        )
    ]
    opened_at = breaker.opened_at
    clock.t += 1
    breaker.trip("again")  # already open: the pause is not lengthened
    assert breaker.opened_at == opened_at


def test_listeners_hear_each_transition_once():
    clock = FakeClock()
    rec = Recorder()
    breaker = make(clock=clock, listeners=[rec])
    open_breaker(breaker, 7)
    clock.t += 60
    breaker.allow_request()
    breaker.allow_request()
    breaker.record_failure(REFUSED)
    clock.t += 120
    breaker.allow_request()
    breaker.record_success()
    breaker.record_success()
    assert rec.seen == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]


def test_a_broken_listener_does_not_break_the_breaker():
    class Broken:
        def state_change(self, breaker, transition):
            raise RuntimeError("boom")

    breaker = make(listeners=[Broken()])
    open_breaker(breaker)
    assert breaker.state == OPEN


def test_log_listener_says_what_happened_in_plain_words(capsys):
    clock = FakeClock()
    breaker = make(clock=clock, open_seconds=60, listeners=[LogListener()])
    capsys.readouterr()
    open_breaker(breaker)
    clock.t += 60
    breaker.allow_request()
    clock.t += 60
    breaker.record_success()
    lines = stash_log(capsys)
    assert lines[0] == (
        "w",
        "Plex unreachable (connection refused) 5 times in a row — pausing sync for 60 s; "
        "changes keep being queued",
    )
    assert lines[1][0] == "i" and "checking whether Plex answers again" in lines[1][1]
    assert lines[2] == ("i", "Plex answered again after 2 min — resuming sync")
    assert len(lines) == 3


def test_token_in_a_failure_detail_never_reaches_the_file(tmp_path):
    token = "tok-breaker-6a1f9e"
    log.add_secret(token)
    breaker = make(FileBreakerStorage(str(tmp_path)))
    open_breaker(breaker, 1)
    breaker.record_failure("plex_unreachable", "http://plex:32400/?X-Plex-Token=%s refused" % token)
    assert token not in (tmp_path / "circuit_breaker.json").read_text()
    assert token not in breaker.last_reason


@given(st.lists(st.sampled_from(["ok", "outage", "other", "wait", "allow"]), max_size=60))
@settings(max_examples=200, deadline=None)
def test_any_sequence_keeps_the_breaker_consistent_and_a_success_closes_it(events):
    clock = FakeClock()
    breaker = make(clock=clock, threshold=3, open_seconds=10, max_open_seconds=40)
    for event in events:
        if event == "ok":
            breaker.record_success()
        elif event == "outage":
            breaker.record_failure(REFUSED)
        elif event == "other":
            breaker.record_failure("not_in_plex")
        elif event == "wait":
            clock.t += 7
        else:
            allowed = breaker.allow_request()
            assert allowed == (breaker.state != OPEN)
        assert breaker.state in STATES
        if breaker.state != CLOSED:
            snap = breaker.snapshot()
            assert 10 <= snap["open_seconds"] <= 40
            assert snap["next_probe_at"] == snap["opened_at"] + snap["open_seconds"]
        else:
            assert breaker.failure_count < 3
    breaker.record_success()
    assert breaker.state == CLOSED and breaker.failure_count == 0


# -- persistence ---------------------------------------------------------------------------


def test_a_new_process_sees_the_breaker_still_open(tmp_path):
    clock = FakeClock()
    first = make(FileBreakerStorage(str(tmp_path)), clock=clock)
    open_breaker(first)
    again = make(FileBreakerStorage(str(tmp_path)), clock=clock)
    assert again.state == OPEN
    assert not again.allow_request()
    assert again.next_probe_at == first.next_probe_at
    assert again.last_reason == "Plex unreachable (connection refused)"


def test_failures_from_separate_processes_add_up(tmp_path):
    clock = FakeClock()
    for _ in range(5):
        make(FileBreakerStorage(str(tmp_path)), clock=clock).record_failure(REFUSED)
    assert make(FileBreakerStorage(str(tmp_path)), clock=clock).state == OPEN


def test_corrupt_breaker_file_means_closed_with_a_warning_and_is_kept_aside(tmp_path, capsys):
    path = tmp_path / "circuit_breaker.json"
    path.write_text('{"state": "open", "opened_at": 12')
    breaker = make(FileBreakerStorage(str(tmp_path)))
    assert breaker.state == CLOSED and breaker.allow_request()
    warnings = [m for level, m in stash_log(capsys) if level == "w"]
    assert len(warnings) == 1 and "circuit_breaker.json" in warnings[0] and "CLOSED" in warnings[0]
    moved = [n for n in os.listdir(tmp_path) if n.startswith("circuit_breaker.json.corrupt-")]
    assert len(moved) == 1
    assert (tmp_path / moved[0]).read_text() == '{"state": "open", "opened_at": 12'
    open_breaker(breaker)
    assert json.loads(path.read_text())["state"] == OPEN


def test_breaker_file_with_nonsense_state_means_closed_with_a_warning(tmp_path, capsys):
    (tmp_path / "circuit_breaker.json").write_text('{"state": "banana", "failure_count": "x"}')
    breaker = make(FileBreakerStorage(str(tmp_path)))
    assert breaker.state == CLOSED and breaker.failure_count == 0
    open_breaker(breaker)
    assert breaker.state == OPEN
    warnings = [m for level, m in stash_log(capsys) if level == "w"]
    assert len(warnings) == 1 and "CLOSED" in warnings[0]


def test_unreadable_breaker_file_means_closed_with_a_warning(tmp_path, capsys):
    (tmp_path / "circuit_breaker.json").mkdir()  # exists, but cannot be read as a file
    breaker = make(FileBreakerStorage(str(tmp_path)))
    assert breaker.state == CLOSED
    open_breaker(breaker)  # cannot be saved either: still works in memory
    assert breaker.state == OPEN
    assert any(level == "w" and "circuit_breaker.json" in m for level, m in stash_log(capsys))


def test_save_is_skipped_without_waiting_while_another_process_holds_the_lock(tmp_path):
    storage = FileBreakerStorage(str(tmp_path))
    breaker = make(storage)
    done = threading.Event()

    def fail_five_times():
        open_breaker(breaker)
        done.set()

    with FileLock(storage.lock_path):
        worker = threading.Thread(target=fail_five_times, daemon=True)
        worker.start()
        # Generous: a blocking save would never finish while the lock is held.
        assert done.wait(30), "a breaker save waited for the lock"
        assert breaker.state == OPEN
    assert not (tmp_path / "circuit_breaker.json").exists()
    assert make(FileBreakerStorage(str(tmp_path))).state == CLOSED


def _hammer(data_dir, seed, rounds):
    import random

    rng = random.Random(seed)
    for _ in range(rounds):
        breaker = CircuitBreaker(FileBreakerStorage(data_dir), threshold=3, open_seconds=0.01)
        for _ in range(5):
            choice = rng.random()
            if choice < 0.5:
                breaker.record_failure(REFUSED)
            elif choice < 0.8:
                breaker.record_success()
            else:
                breaker.allow_request()


def test_four_processes_at_once_never_corrupt_the_breaker_file(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), seed, 40)) for seed in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    data = json.loads((tmp_path / "circuit_breaker.json").read_text())
    assert data["state"] in STATES
    leftovers = [n for n in os.listdir(tmp_path) if ".corrupt-" in n or ".tmp-" in n]
    assert leftovers == []


# -- the hook's cheap read -------------------------------------------------------------------


def test_cheap_read_of_a_missing_or_damaged_file_says_closed(tmp_path):
    assert read_breaker_cheap(str(tmp_path))["state"] == CLOSED
    (tmp_path / "circuit_breaker.json").write_text("{not json")
    result = read_breaker_cheap(str(tmp_path))
    assert result == {"state": CLOSED, "next_probe_at": None, "opened_at": None, "probe_due": False}
    assert os.path.exists(tmp_path / "circuit_breaker.json")  # the hook leaves the damage to the drain


def test_cheap_read_says_when_a_probe_is_due(tmp_path):
    clock = FakeClock()
    breaker = make(FileBreakerStorage(str(tmp_path)), clock=clock, open_seconds=60)
    open_breaker(breaker)
    paused = read_breaker_cheap(str(tmp_path), now=clock.t + 30)
    assert paused == {"state": OPEN, "next_probe_at": clock.t + 60, "opened_at": clock.t, "probe_due": False}
    assert read_breaker_cheap(str(tmp_path), now=clock.t + 60)["probe_due"]
    clock.t += 60
    breaker.allow_request()
    assert read_breaker_cheap(str(tmp_path), now=clock.t)["state"] == HALF_OPEN
    assert read_breaker_cheap(str(tmp_path), now=clock.t)["probe_due"]


def test_cheap_read_imports_no_http_library(tmp_path):
    code = (
        "import sys; from sync.breaker_file import read_breaker_cheap; read_breaker_cheap(sys.argv[1]); "
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('requests', 'plexapi', 'urllib3', 'stashapi')]; "
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
