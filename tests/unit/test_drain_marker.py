"""The drain marker: who asked for a drain, and when a stopped drain wants the next one."""
from __future__ import annotations

import json
import os

import plexsync
from sync.drain_marker import DrainMarker, retry_due

NOW = 1_800_000_000.0


class Clock:
    def __init__(self, now=NOW):
        self.now = now

    def __call__(self):
        return self.now


def test_a_burst_asks_once_until_the_request_goes_stale(tmp_path):
    clock = Clock()
    marker = DrainMarker(str(tmp_path), clock=clock)
    assert marker.claim_request() is True
    assert marker.claim_request() is False
    clock.now += 121
    assert marker.claim_request() is True


def test_a_remembered_retry_holds_nobody_back_and_is_due_at_its_time(tmp_path):
    data = str(tmp_path)
    clock = Clock()
    marker = DrainMarker(data, clock=clock)
    marker.remember_retry(NOW + 30)
    assert not marker.is_fresh()
    assert retry_due(marker.read(), NOW + 29) is False
    assert retry_due(marker.read(), NOW + 30) is True
    # Any invocation - an ignored edit included - asks for a drain once the retry is due.
    assert plexsync.drain_wanted(data, False, NOW + 10) is False
    assert plexsync.drain_wanted(data, False, NOW + 31) is True
    assert marker.claim_request() is True  # and the request replaces the idle marker
    assert marker.read()["state"] == "requested" and "retry_at" not in marker.read()


def test_a_request_made_after_the_drain_stopped_is_not_overwritten(tmp_path):
    marker = DrainMarker(str(tmp_path), clock=Clock())
    assert marker.claim_request() is True  # a hook's request, after the drain cleared the marker
    marker.remember_retry(NOW + 30)
    assert marker.read()["state"] == "requested"


def test_while_plex_is_down_the_breaker_decides_not_the_retry(tmp_path):
    data = str(tmp_path)
    DrainMarker(data, clock=Clock()).remember_retry(NOW - 5)
    with open(os.path.join(data, "circuit_breaker.json"), "w") as fh:
        json.dump({"state": "open", "next_probe_at": NOW + 60}, fh)
    assert plexsync.drain_wanted(data, False, NOW) is False


def test_a_damaged_marker_asks_for_nothing_and_blocks_nothing(tmp_path):
    data = str(tmp_path)
    for body in (b"", b"{", b"[]", b'{"state": "idle", "retry_at": "soon"}', b'{"state": "idle"}'):
        with open(os.path.join(data, "drain_request.json"), "wb") as fh:
            fh.write(body)
        assert plexsync.drain_wanted(data, False, NOW) is False
        assert DrainMarker(data, clock=Clock()).is_fresh() is False
