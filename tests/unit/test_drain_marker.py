"""The drain marker: who asked for a drain, and when a stopped drain wants the next one."""

from __future__ import annotations

import json
import os

import plexsync
from sync.drain_marker import NEW, STALE, DrainMarker, drain_lock, retry_due
from tests.clock import FakeClock

NOW = 1_800_000_000.0


def test_a_burst_asks_once_until_the_request_goes_stale(tmp_path):
    clock = FakeClock(NOW)
    marker = DrainMarker(str(tmp_path), clock=clock)
    assert marker.claim_request() == NEW
    assert marker.claim_request() == ""
    clock.t += 121
    # The earlier request never started: the hook looks at Stash's job queue before asking again.
    assert marker.claim_request() == STALE
    assert marker.claim_request() == ""


def test_a_remembered_retry_holds_nobody_back_and_is_due_at_its_time(tmp_path):
    data = str(tmp_path)
    clock = FakeClock(NOW)
    marker = DrainMarker(data, clock=clock)
    marker.remember_retry(NOW + 30)
    assert not marker.is_fresh()
    assert retry_due(marker.read(), NOW + 29) is False
    assert retry_due(marker.read(), NOW + 30) is True
    # Any invocation - an ignored edit included - asks for a drain once the retry is due.
    assert plexsync.drain_wanted(data, False, NOW + 10) is False
    assert plexsync.drain_wanted(data, False, NOW + 31) is True
    assert marker.claim_request() == NEW  # and the request replaces the idle marker
    assert marker.read()["state"] == "requested" and "retry_at" not in marker.read()


def test_a_request_made_after_the_drain_stopped_is_not_overwritten(tmp_path):
    marker = DrainMarker(str(tmp_path), clock=FakeClock(NOW))
    assert marker.claim_request() == NEW  # a hook's request, after the drain cleared the marker
    marker.remember_retry(NOW + 30)
    assert marker.read()["state"] == "requested"


def test_while_plex_is_down_the_breaker_decides_not_the_retry(tmp_path):
    data = str(tmp_path)
    DrainMarker(data, clock=FakeClock(NOW)).remember_retry(NOW - 5)
    with open(os.path.join(data, "circuit_breaker.json"), "w") as fh:
        json.dump({"state": "open", "next_probe_at": NOW + 60}, fh)
    assert plexsync.drain_wanted(data, False, NOW) is False


def test_a_damaged_marker_asks_for_nothing_and_blocks_nothing(tmp_path):
    data = str(tmp_path)
    for body in (b"", b"{", b"[]", b'{"state": "idle", "retry_at": "soon"}', b'{"state": "idle"}'):
        with open(os.path.join(data, "drain_request.json"), "wb") as fh:
            fh.write(body)
        assert plexsync.drain_wanted(data, False, NOW) is False
        assert DrainMarker(data, clock=FakeClock(NOW)).is_fresh() is False


def test_a_running_marker_counts_only_while_its_drainer_holds_the_drain_lock(tmp_path):
    data = str(tmp_path)
    clock = FakeClock(NOW)
    marker = DrainMarker(data, clock=clock)
    lock = drain_lock(data)
    assert lock.acquire(timeout=0)
    marker.heartbeat()
    clock.t += 3600  # however old its heartbeat, a live drain covers every job
    assert marker.claim_request() == ""
    lock.release()  # the drain was cancelled (SIGKILL): the OS released its lock
    assert marker.claim_request() == NEW


def test_a_paused_drain_holds_requests_back_for_a_minute(tmp_path):
    data = str(tmp_path)
    clock = FakeClock(NOW)
    marker = DrainMarker(data, clock=clock)
    marker.remember_pause()
    assert marker.claim_request() == ""
    assert plexsync.drain_wanted(data, False, NOW + 30) is False
    clock.t += 61
    assert plexsync.drain_wanted(data, False, clock.t) is True
    assert marker.claim_request() == NEW


def test_a_clock_stepped_back_does_not_hold_a_retry_or_a_pause_for_a_day(tmp_path):
    data = str(tmp_path)
    ahead = FakeClock(NOW + 86400)  # the clock ran a day ahead when the drain stopped
    DrainMarker(data, clock=ahead).remember_retry(NOW + 86400 + 30)
    assert retry_due(DrainMarker(data).read(), NOW) is True
    os.remove(os.path.join(data, "drain_request.json"))
    DrainMarker(data, clock=ahead).remember_pause()
    assert DrainMarker(data, clock=FakeClock(NOW)).claim_request() == NEW


def test_the_drainers_last_look_and_a_hooks_decision_never_interleave(tmp_path):
    """The request race: a hook whose job lands after the drainer's last look must find no
    marker. The drainer clears and looks under drain_request.lock; the hook waits for it."""
    import threading

    data = str(tmp_path)
    marker = DrainMarker(data)
    marker.heartbeat()
    lock = drain_lock(data)
    assert lock.acquire(timeout=0)
    in_look, release = threading.Event(), threading.Event()
    answers = []

    def look():
        in_look.set()
        release.wait(10)
        return False  # the queue looked empty: the drainer stops

    drainer = threading.Thread(target=lambda: answers.append(marker.clear_and_look(look)))
    drainer.start()
    assert in_look.wait(10)
    # A hook enqueued just now, after the look read the queue; it decides only after the look.
    hook = threading.Thread(target=lambda: answers.append(DrainMarker(data).claim_request()))
    hook.start()
    hook.join(0.3)
    assert hook.is_alive(), "the hook decided while the drainer was still looking"
    release.set()
    drainer.join(10)
    hook.join(10)
    lock.release()
    assert answers == [False, NEW]


def test_a_marker_with_non_finite_times_is_damage_not_a_request(tmp_path):
    data = str(tmp_path)
    for body in (
        b'{"state": "requested", "at": NaN}',
        b'{"state": "idle", "retry_at": Infinity}',
        b'{"state": "paused", "retry_at": 1e999}',
    ):
        with open(os.path.join(data, "drain_request.json"), "wb") as fh:
            fh.write(body)
        assert DrainMarker(data, clock=FakeClock(NOW)).is_fresh() is False
        assert plexsync.drain_wanted(data, False, NOW) is False
