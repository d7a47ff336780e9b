"""The watcher's decisions with a fake clock, a fake probe and a fake Stash (no processes)."""

from __future__ import annotations

import json
import os

from sync.drain_marker import DrainMarker, drain_lock
from sync.lock import FileLock
from sync.queue import FileQueue
from tests.clock import FakeClock
from worker.health import HealthResult
from worker.watcher import LOCK_NAME, RECORD_NAME, STASH_GONE_AFTER, Watcher, start_watcher, watcher_status

UP = HealthResult(True, True, "1.40", 3.0, "", "")
DOWN = HealthResult(False, False, None, None, "plex_unreachable", "connection refused")


class Fake:
    def __init__(self, data_dir, plex=(), stash=(), t=1000.0, threshold=100):
        self.clock = FakeClock(t)
        self.plex = list(plex)
        self.stash = list(stash)
        self.probes, self.asks = [], []
        config = {
            "data_dir": data_dir,
            "plex_url": "http://plex",
            "breaker_threshold": threshold,
            "breaker_open_seconds": 5,
        }
        self.watcher = Watcher(
            {"Host": "127.0.0.1", "Port": 9},
            config,
            clock=self.clock,
            sleep=self.clock.sleep,
            probe=self.probe,
            ask=self.ask,
        )
        self.watcher.renew = lambda conn: 3600.0

    def probe(self, *args, **kwargs):
        self.probes.append(self.clock.t)
        return self.plex.pop(0) if self.plex else UP

    def ask(self, conn):
        self.asks.append(self.clock.t)
        return self.stash.pop(0) if self.stash else ""


def queue_one(data_dir, retry_at=None, clock=None):
    q = FileQueue(data_dir, clock=clock or (lambda: 1000.0))
    q.enqueue("5", ["title"])
    if retry_at is not None:
        (job,) = q.lease(1, 300.0, owner="drain-1")
        q.nack(job, "plex_unavailable", "HTTP 500", retry_at=retry_at)
    return q


def test_nothing_waiting_means_the_watcher_exits_at_once(tmp_path):
    fake = Fake(str(tmp_path))
    assert fake.watcher.run() == "nothing is waiting"
    assert fake.probes == [] and fake.asks == []
    assert not os.path.exists(os.path.join(str(tmp_path), RECORD_NAME))


def test_it_sleeps_until_the_retry_probes_and_asks_stash_once(tmp_path):
    queue_one(str(tmp_path), retry_at=1300.0)
    fake = Fake(str(tmp_path))
    assert fake.watcher.run() == "asked Stash for a drain"
    assert fake.probes == [1300.0] and fake.asks == [1300.0]
    assert DrainMarker(str(tmp_path)).read()["state"] == "requested", "hooks do not ask a second time"


def test_probes_back_off_while_plex_stays_down_and_only_then_stash_is_asked(tmp_path):
    queue_one(str(tmp_path))
    fake = Fake(str(tmp_path), plex=[DOWN] * 7)
    assert fake.watcher.run() == "asked Stash for a drain"
    gaps = [b - a for a, b in zip(fake.probes, fake.probes[1:])]
    assert gaps == [2.0, 4.0, 8.0, 15.0, 30.0, 30.0, 30.0]
    assert len(fake.asks) == 1 and fake.asks[0] == fake.probes[-1]


def test_failed_probes_open_the_breaker_and_then_follow_its_pauses(tmp_path):
    """The watcher's probes count like a drain's: the outage is recorded, probes back off to
    the breaker's pauses (5, 10, 20, 40, 60 s), and the drain that finds Plex back ramps up."""
    queue_one(str(tmp_path))
    fake = Fake(str(tmp_path), plex=[DOWN] * 8, threshold=3)
    assert fake.watcher.run() == "asked Stash for a drain"
    gaps = [round(b - a) for a, b in zip(fake.probes, fake.probes[1:])]
    assert gaps[:2] == [2, 4] and gaps[2:] == [5, 10, 20, 40, 60, 60]
    with open(os.path.join(str(tmp_path), "circuit_breaker.json")) as fh:
        assert json.load(fh)["state"] == "half_open", "the drain's deep probe closes it and starts the ramp"
    with open(os.path.join(str(tmp_path), "outages.json")) as fh:
        assert "start" in json.dumps(json.load(fh))


def test_a_stash_that_restarts_is_asked_again_with_backoff(tmp_path):
    queue_one(str(tmp_path))
    refused = "Stash could not be reached (ConnectionRefusedError)"
    fake = Fake(str(tmp_path), stash=[refused, refused])
    assert fake.watcher.run() == "asked Stash for a drain"
    assert [b - a for a, b in zip(fake.asks, fake.asks[1:])] == [5.0, 10.0]


def test_a_stash_gone_for_good_ends_the_watcher_within_the_hour(tmp_path):
    queue_one(str(tmp_path))
    fake = Fake(str(tmp_path), plex=[DOWN] * 10000)
    fake.watcher.renew = lambda conn: None
    assert fake.watcher.run() == "Stash has not answered for an hour"
    assert fake.clock.t - 1000.0 <= STASH_GONE_AFTER + 120
    assert fake.asks == []


def test_it_only_waits_while_a_drain_runs(tmp_path):
    queue_one(str(tmp_path))
    fake = Fake(str(tmp_path))
    drain = drain_lock(str(tmp_path))
    drain.acquire()  # a drain is alive: it holds the drain lock and keeps the marker fresh
    DrainMarker(str(tmp_path), clock=fake.clock).heartbeat()
    calls = []
    original = fake.clock.sleep

    def sleep(seconds):
        calls.append(seconds)
        if len(calls) == 3:
            DrainMarker(str(tmp_path)).clear()
            drain.release()
        original(seconds)

    fake.watcher.sleep = sleep
    assert fake.watcher.run() == "asked Stash for a drain"
    assert len(calls) >= 3 and fake.probes[0] >= 1000.0 + sum(calls[:3])


def test_a_second_watcher_exits_while_the_first_lives(tmp_path):
    queue_one(str(tmp_path))
    held = FileLock(os.path.join(str(tmp_path), LOCK_NAME))
    held.acquire()
    try:
        assert Fake(str(tmp_path)).watcher.run() == "another watcher is waiting"
    finally:
        held.release()


class Settings:
    plex_url, plex_token, skip_tls_verify, connect_timeout, read_timeout = (
        "http://plex",
        "t0ken",
        False,
        5.0,
        30.0,
    )


def test_start_watcher_starts_none_while_one_lives_or_is_starting(tmp_path):
    d = str(tmp_path)
    held = FileLock(os.path.join(d, LOCK_NAME))
    held.acquire()
    try:
        assert start_watcher({}, d, d, Settings()) == "running"
    finally:
        held.release()
    with open(os.path.join(d, RECORD_NAME), "w") as fh:
        json.dump({"state": "starting", "at": 1000.0}, fh)
    assert start_watcher({}, d, d, Settings(), clock=lambda: 1010.0) == "running"
    assert watcher_status(d, now=1010.0) == {"waiting": True, "until": None, "pid": None}
    assert watcher_status(d, now=2000.0) is None, "a start that never took its lock is forgotten"
    # The record was planted by hand, at a made-up time: no process will ever take its lock, so
    # remove it rather than let the teardown's watcher sweep wait out its 10 s for one starting.
    os.remove(os.path.join(d, RECORD_NAME))
