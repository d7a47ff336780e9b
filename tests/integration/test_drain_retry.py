"""Retries and relapses with the real drain over real HTTP: a change that failed is retried
without anyone editing it again, and a Plex that keeps failing while sync resumes is paused again."""

from __future__ import annotations

import re
import time

import plexsync
import worker.drain
import worker.watcher
from emulators.world import wait_for
from sync.drain_marker import DrainMarker
from worker.breaker import OPEN, breaker_for
from worker.errors import SyncFailure
from worker.status import collect_status, render_status


def test_a_short_backoff_is_waited_for_by_the_drain_itself(lib):
    sid, rk = lib.add("once.mp4", title="Refused once")
    lib.ctx().queue().enqueue(sid, ["title"])
    lib.plex.fail_next(1, status=500, method="PUT")
    report = lib.drain()
    assert (report["failed"], report["synced"]) == (1, 1)
    assert lib.plex.item(rk)["title"] == "Refused once"
    assert report["next_retry_at"] is None
    assert DrainMarker(lib.data_dir).read() == {}  # nothing left for later


def test_a_later_retry_is_left_where_the_next_invocation_finds_it(lib, monkeypatch):
    # A retry further away than the drain is willing to wait (here: any) is not waited for; and no
    # linger either, so a slow machine cannot reach the retry's time while the drain still runs.
    monkeypatch.setattr(worker.drain, "RETRY_WAIT_SECONDS", 0.0)
    monkeypatch.setattr(worker.drain, "LINGER_SECONDS", 0.0)
    # What every invocation finds is under test here, not the watcher that would otherwise ask for
    # the drain at the retry's time by itself (tests/e2e/test_watcher.py).
    monkeypatch.setattr(worker.watcher, "continue_after_drain", lambda ctx, report: None)
    sid, rk = lib.add("later.mp4", title="Refused, then later")
    lib.ctx().queue().enqueue(sid, ["title"])
    lib.plex.fail_next(1, status=500, method="PUT")
    report = lib.drain()
    assert (report["failed"], report["synced"]) == (1, 0)
    retry_at = report["next_retry_at"]
    assert retry_at and DrainMarker(lib.data_dir).read()["retry_at"] == retry_at
    status = render_status(collect_status(lib.ctx()))
    assert re.search(
        r"Queue: 0 pending, 0 in flight, 1 waiting for retry \(oldest \d+ s\); next retry (now|in \d+ s)",
        status,
    ), status
    assert "All good: nothing to do." in status  # nothing for the user to press

    # Before its time no invocation asks for a drain; after it, any does (an ignored edit too).
    assert plexsync.drain_wanted(lib.data_dir, False, retry_at - 1) is False
    wait_for(lambda: time.time() >= retry_at, timeout=60, what="the retry's time")
    assert plexsync.drain_wanted(lib.data_dir, False, time.time()) is True
    report = lib.drain()
    assert report["synced"] == 1 and lib.plex.item(rk)["title"] == "Refused, then later"
    assert DrainMarker(lib.data_dir).read() == {}


def test_a_stash_that_did_not_answer_leaves_its_retry_for_later(lib):
    sid, rk = lib.add("stash.mp4", title="Stash was away")
    lib.ctx().queue().enqueue(sid, ["title"])
    lib.stash.stop()
    report = lib.drain()
    assert report["failed"] == 1 and "Stash" in report["stopped"]
    assert DrainMarker(lib.data_dir).read()["retry_at"] == report["next_retry_at"]
    assert lib.ctx().queue().summary().waiting == 1


def test_a_plex_that_keeps_failing_while_sync_resumes_is_paused_again(lib):
    settings = dict(
        breaker_threshold=3, breaker_open_seconds=1, recovery_rates="50", recovery_step_seconds=600
    )
    scenes = [lib.add("flap%02d.mp4" % i, title="Flap %02d" % i) for i in range(12)]
    ctx = lib.ctx(**settings)
    for sid, _rk in scenes:
        ctx.queue().enqueue(sid, ["title"])
    # Plex went down: three refused connections in a row paused sync.
    breaker = breaker_for(ctx.settings, lib.data_dir)
    for _ in range(3):
        breaker.record_failure(SyncFailure("plex_unreachable", "connection refused"))
    assert breaker.state == OPEN
    wait_for(lambda: time.time() >= breaker.next_probe_at, timeout=60, what="the pause to end")

    # Plex is back but flaps: every other edit fails, so failures are never consecutive.
    for _sid, rk in scenes[1:6:2]:
        lib.plex.fail_next(1, status=500, method="PUT", item=rk)
    report = lib.drain(**settings)
    assert (report["synced"], report["failed"]) == (3, 3)
    breaker.refresh()
    assert breaker.state == OPEN, "three errors while resuming must pause sync again"
    assert "3 errors while sync was resuming" in breaker.last_reason
    assert lib.plex.count(method="PUT") == 6  # nothing was sent after the pause began
    waiting = lib.ctx(**settings).queue().summary()
    assert waiting.pending + waiting.waiting == 9 and waiting.dead == 0

    # The flapping stops: the next drain after the pause sends everything.
    wait_for(lambda: time.time() >= breaker.next_probe_at, timeout=60, what="the second pause to end")
    report = lib.drain(**settings)
    assert [lib.plex.item(rk)["title"] for _sid, rk in scenes] == ["Flap %02d" % i for i in range(12)]
    summary = lib.ctx(**settings).queue().summary()
    assert summary.pending == summary.waiting == summary.dead == 0
