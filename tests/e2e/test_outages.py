"""Plex goes down, restarts, loads its database, refuses the token: changes wait safely, only
health probes reach a Plex known to be down, and the backlog drains by itself when it returns.

Everything runs as in real life: scenes are saved through the Stash emulator's GraphQL API (which
runs the hook), drains are the plugin's own Process Queue task queued by the plugin, and Plex is
the emulator over real HTTP. No test presses Process Queue unless it says so. No timing
assertions: the tests wait for the breaker's pause with a deadline and count requests.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from emulators.world import data_dir, dead_letter, wait_for
from sync.queue import FileQueue
from sync.store import read_json_quiet
from tests.e2e.test_tasks import assert_no_secrets


def breaker(world) -> dict:
    return read_json_quiet(os.path.join(data_dir(world), "circuit_breaker.json"))


def invoke_when_probe_due(world):
    """Wait until the breaker's pause is over, then glance at View Queue Status, as a user might.

    The task itself never talks to Plex; it only notices that a probe is due and asks for a drain.
    """
    due = breaker(world).get("next_probe_at") or 0
    wait_for(lambda: time.time() >= due + 0.05, timeout=180, what="the breaker's pause to end")
    run = world.run_task("View Queue Status")
    assert world.stash.wait_idle(180)
    return run


def drains(world) -> list:
    return [t for t in world.stash.task_runs if t.task_name == "Process Queue"]


def all_logs(world) -> list:
    lines = [m for h in world.stash.hook_runs for _, m in h.logs]
    lines += [m for t in world.stash.task_runs for _, m in t.logs]
    return lines


def open_breaker_while_plex_is_down(world, what: str = "the breaker to open") -> None:
    """Drains requested by the hooks count failures; each further invocation requests one more."""
    deadline = time.monotonic() + 120
    while breaker(world).get("state") != "open":
        assert time.monotonic() < deadline, "gave up waiting for %s" % what
        world.run_task("View Queue Status")
        assert world.stash.wait_idle(120)


def puts_by_item(world) -> dict:
    out = {}
    for r in world.plex.requests:
        if r.method == "PUT":
            rk = r.query.get("id") or r.path.rsplit("/", 1)[-1]
            out[str(rk)] = out.get(str(rk), 0) + 1
    return out


# -- the whole outage, end to end -------------------------------------------------------------


def test_changes_made_while_plex_is_down_reach_plex_by_themselves_when_it_returns(world):
    world.apply(breaker_threshold=2, breaker_open_seconds=1)
    scenes = [world.add_scene("down%02d.mp4" % i) for i in range(30)]
    unrelated, _ = world.add_scene("unrelated.mp4")

    world.plex.set_fault("down")
    for i, (sid, _rk) in enumerate(scenes):
        world.edit(sid, title="Edited while down %02d" % i)
    assert world.stash.wait_idle(120)
    assert [h.output for h in world.stash.hook_runs] == ["queued"] * 30
    assert all(h.error is None for h in world.stash.hook_runs)
    open_breaker_while_plex_is_down(world)
    opened = [m for m in all_logs(world) if "pausing sync" in m]
    assert any("Plex unreachable (connection refused) 2 times in a row" in m for m in opened), opened

    status = world.run_task("View Queue Status").output
    assert status["queue"]["pending"] + status["queue"]["waiting_for_retry"] == 30
    assert status["queue"]["dead_lettered"] == 0
    assert status["plex"]["current_outage"] is not None

    # Plex restarts: first its port answers 503, then /identity answers while the library loads.
    # While the breaker is open, nothing but the health probe may reach it.
    world.plex.clear_log()
    for mode in ("503", "db_loading"):
        world.plex.set_fault(mode)
        seen = len(world.plex.requests)
        deadline = time.monotonic() + 120
        while len(world.plex.requests) == seen:
            assert time.monotonic() < deadline, "no health probe reached Plex in %s mode" % mode
            invoke_when_probe_due(world)
        assert breaker(world)["state"] == "open"
    paths = [(r.method, r.path) for r in world.plex.requests]
    assert set(paths) <= {("GET", "/identity"), ("GET", "/library/sections")}, paths
    assert ("GET", "/library/sections") in paths  # the deep check ran in db_loading mode
    assert world.plex.count(method="PUT") == 0

    # Plex is back. The next invocation after the pause - a save of an unrelated field on another
    # scene - brings every queued change into Plex; nobody runs Process Queue.
    world.plex.set_fault(None)
    due = breaker(world)["next_probe_at"]
    wait_for(lambda: time.time() >= due + 0.05, timeout=180, what="the breaker's pause to end")
    world.edit(unrelated, play_count=3)
    assert world.stash.hook_runs[-1].output.startswith("ignored")
    assert world.stash.wait_idle(180)

    for i, (_sid, rk) in enumerate(scenes):
        assert world.plex.item(rk)["title"] == "Edited while down %02d" % i
    puts = puts_by_item(world)
    assert all(puts.get(str(rk)) == 1 for _sid, rk in scenes), puts  # nothing sent twice
    status = world.run_task("View Queue Status").output
    assert status["queue"]["pending"] == status["queue"]["in_flight"] == 0
    assert status["queue"]["waiting_for_retry"] == status["queue"]["dead_lettered"] == 0
    assert status["plex"]["breaker"] == "closed"
    back = [m for m in all_logs(world) if m.startswith("Plex is back after")]
    assert back and back[-1].endswith("30 change(s) waiting — syncing"), back

    outages = read_json_quiet(os.path.join(data_dir(world), "outages.json"))["outages"]
    assert len(outages) == 1
    assert outages[0]["end"] > outages[0]["start"] and outages[0]["jobs_affected"] == 30
    assert "unreachable" in outages[0]["cause"]
    assert_no_secrets(world)


# -- the breaker's state lives in a file: restarts, damage ------------------------------------


def test_a_restart_during_an_outage_keeps_sync_paused(world):
    world.apply(breaker_threshold=1, breaker_open_seconds=600)
    first, _ = world.add_scene("first.mp4")
    second, _ = world.add_scene("second.mp4")
    world.plex.set_fault("503")
    world.edit(first, title="One")
    assert world.stash.wait_idle(120)
    assert breaker(world)["state"] == "open"
    world.plex.clear_log()
    drains_before = len(drains(world))

    # Every invocation below is a new process: the pause holds across all of them.
    world.edit(second, title="Two")
    assert world.stash.hook_runs[-1].output == "queued"
    assert world.stash.wait_idle(120)
    assert len(drains(world)) == drains_before, "a hook asked for a drain while Plex is known to be down"
    status = world.run_task("View Queue Status")
    assert status.output["plex"]["breaker"] == "open"
    assert any("Plex: DOWN" in m for _, m in status.logs)
    run = world.run_task("Process Queue")
    assert run.error is None and run.output["stopped"].startswith("Plex is down")
    assert any("2 change(s) wait safely" in m for _, m in run.logs)
    assert world.plex.requests == [], "nothing may reach a Plex known to be down before its pause ends"


def test_a_damaged_breaker_file_means_closed_with_a_warning_and_is_kept_aside(world):
    world.apply(breaker_threshold=1, breaker_open_seconds=600)
    sid, rk = world.add_scene("damaged.mp4")
    world.plex.set_fault("down")
    world.edit(sid, title="Before the damage")
    assert world.stash.wait_idle(120)
    assert breaker(world)["state"] == "open"
    path = os.path.join(data_dir(world), "circuit_breaker.json")
    with open(path, "w") as fh:
        fh.write('{"state": "open", "opened_at": 17')  # torn by a disk error
    world.plex.set_fault(None)

    status = world.run_task("View Queue Status")
    warnings = [m for level, m in status.logs if level == "w"]
    assert any("circuit_breaker.json could not be read" in m and "starts CLOSED" in m for m in warnings), (
        warnings
    )
    assert status.output["plex"]["breaker"] == "closed"
    assert any(n.startswith("circuit_breaker.json.corrupt-") for n in status.output["quarantined_files"])
    assert not os.path.exists(path) or json.load(open(path)).get("state") != "open"
    # CLOSED means the next save syncs at once.
    world.edit(sid, title="After the damage")
    assert world.stash.wait_idle(120)
    assert world.plex.item(rk)["title"] == "After the damage"


# -- what counts as down -----------------------------------------------------------------------


def test_plex_still_loading_its_database_is_down_until_the_library_answers(world):
    world.apply(breaker_threshold=2, breaker_open_seconds=1)
    (a, rk_a), (b, rk_b) = world.add_scene("load-a.mp4"), world.add_scene("load-b.mp4")
    world.plex.set_fault("db_loading")  # /identity answers, the library does not
    world.edit(a, title="Loading A")
    assert world.stash.wait_idle(120)
    world.edit(b, title="Loading B")
    assert world.stash.wait_idle(120)
    state = breaker(world)
    assert state["state"] == "open", "two failed syncs in a row against a loading Plex must pause sync"
    assert state["last_error_class"] in ("plex_starting", "plex_unavailable")

    world.plex.clear_log()
    invoke_when_probe_due(world)  # still loading: the deep check keeps the breaker open
    assert breaker(world)["state"] == "open"
    assert ("GET", "/library/sections") in [(r.method, r.path) for r in world.plex.requests]
    assert world.plex.count(method="PUT") == 0

    world.plex.set_fault(None)
    deadline = time.monotonic() + 120
    while not (
        world.plex.item(rk_a)["title"] == "Loading A" and world.plex.item(rk_b)["title"] == "Loading B"
    ):
        assert time.monotonic() < deadline, "the changes made while Plex was loading never arrived"
        invoke_when_probe_due(world)
    assert breaker(world)["state"] == "closed"


@pytest.mark.parametrize(
    "mode, delay, error_class",
    [
        ("slow", 3.0, "plex_timeout"),
        ("503", 0.0, "plex_unavailable"),
    ],
)
def test_slow_or_failing_plex_counts_toward_pausing_sync(world, mode, delay, error_class):
    world.apply(breaker_threshold=1, breaker_open_seconds=1, read_timeout=1)
    sid, rk = world.add_scene("%s.mp4" % mode)
    world.plex.set_fault(mode, delay=delay)
    world.edit(sid, title="Through a %s Plex" % mode)
    assert world.stash.wait_idle(120)
    state = breaker(world)
    assert state["state"] == "open" and state["last_error_class"] == error_class
    assert world.plex.count(method="PUT") == 0

    world.plex.set_fault(None)
    # Back to the default read timeout for the recovery (the next task hands it to its drain): a
    # healthy Plex on a busy test machine may take longer than 1 s, which would be a timeout too.
    world.configure(read_timeout=30)
    invoke_when_probe_due(world)
    assert world.plex.item(rk)["title"] == "Through a %s Plex" % mode
    assert breaker(world)["state"] == "closed"


def test_a_refused_token_is_not_an_outage(world):
    world.apply(breaker_threshold=1)
    sid, rk = world.add_scene("token.mp4")
    world.plex.set_fault("401")
    world.edit(sid, title="Needs a token")
    assert world.stash.wait_idle(120)
    drain = drains(world)[-1]
    assert drain.error and "Plex token" in drain.error
    assert breaker(world).get("state", "closed") == "closed"
    assert breaker(world).get("failure_count", 0) == 0
    assert read_json_quiet(os.path.join(data_dir(world), "outages.json")).get("outages", []) == []
    health = world.run_task("Health Check")
    assert health.output["breaker"]["state"] == "closed"
    assert "Plex refused the token" in health.error and any("Plex token" in m for _, m in health.logs)

    world.plex.set_fault(None)
    world.run_task("Process Queue")
    assert world.plex.item(rk)["title"] == "Needs a token"


# -- graduated recovery ------------------------------------------------------------------------


def test_backlog_after_an_outage_starts_gently_and_stays_under_the_upper_bound_while_it_ramps(world):
    """Recovery follows Plex (worker/ratelimit.py): from the setting's first value, up while Plex
    answers well, never above its last value until Plex has kept up there; then no limit."""
    world.apply(breaker_threshold=1, breaker_open_seconds=1, recovery_rates="2,5", recovery_step_seconds=60)
    scenes = [world.add_scene("ramp%02d.mp4" % i) for i in range(40)]
    world.plex.set_fault("down")
    for i, (sid, _rk) in enumerate(scenes):
        world.edit(sid, title="Ramp %02d" % i)
    assert world.stash.wait_idle(120)
    open_breaker_while_plex_is_down(world)

    world.plex.set_fault(None)
    world.plex.clear_log()
    invoke_when_probe_due(world)
    assert all(world.plex.item(rk)["title"] == "Ramp %02d" % i for i, (_sid, rk) in enumerate(scenes))

    puts = sorted(r.time for r in world.plex.requests if r.method == "PUT")
    assert len(puts) == 40
    start = puts[0]
    assert sum(1 for u in puts if u < start + 1.0) <= 2 + 2, "the first second sent more than the first value"
    # 2 -> 5 jobs/s takes 6 changes, then 10 changes at 5/s (2 s' worth) before the limit is lifted
    ramping = puts[:16]
    for t in ramping:
        # generous: one extra for a window edge, one for a job that was already under way
        assert sum(1 for u in ramping if t <= u < t + 1.0) <= 5 + 2, "above the upper bound while ramping"
    assert breaker(world)["recovered_at"] is None, "Plex kept up: the ramp is over"


# -- dead-lettered outage jobs -----------------------------------------------------------------


def queue_snapshot(world) -> list:
    return sorted((j.scene_id, j.state, j.error_class) for j in FileQueue(data_dir(world)).jobs())


def test_recover_outage_jobs_requeues_once_plex_is_healthy_and_a_second_run_changes_nothing(world):
    world.apply(pause_sync=True)  # keep the queue still while we look at it
    scenes = {
        name: world.add_scene("%s.mp4" % name, title="Recovered %s" % name)
        for name in ("down", "timeout", "deleted", "queued", "ambiguous")
    }
    for name, cls in (
        ("down", "plex_unreachable"),
        ("timeout", "plex_timeout"),
        ("deleted", "plex_unreachable"),
        ("queued", "plex_unreachable"),
        ("ambiguous", "ambiguous_match"),
    ):
        dead_letter(world, scenes[name][0], cls)
    world.stash.delete_scene(scenes["deleted"][0])
    world.edit(scenes["queued"][0], title="Recovered queued")  # a newer change is already queued
    assert world.stash.wait_idle(60)  # the drain that edit asked for found sync paused and ended
    before = queue_snapshot(world)

    world.plex.set_fault("down")
    refused = world.run_task("Recover Outage Jobs")
    assert refused.error and "Plex is not healthy yet" in refused.error
    assert queue_snapshot(world) == before

    world.plex.set_fault(None)
    first = world.run_task("Recover Outage Jobs")
    assert first.error is None
    assert first.output == {"recovered": 2, "skipped_deleted": 1, "skipped_queued": 1}
    assert any("Recovered 2 dead-lettered change(s)" in m for _, m in first.logs)
    after_first = queue_snapshot(world)
    second = world.run_task("Recover Outage Jobs")
    assert second.output["recovered"] == 0
    assert queue_snapshot(world) == after_first, "a second run must change nothing"

    world.apply(pause_sync=False)  # this task run also asks for the drain
    assert world.stash.wait_idle(120)
    for name in ("down", "timeout", "queued"):
        assert world.plex.item(scenes[name][1])["title"] == "Recovered %s" % name
    assert world.plex.item(scenes["ambiguous"][1])["title"] != "Recovered ambiguous"
    left = {(sid, cls) for sid, state, cls in queue_snapshot(world) if state == "dead"}
    assert left == {(scenes["deleted"][0], "plex_unreachable"), (scenes["ambiguous"][0], "ambiguous_match")}
    third = world.run_task("Recover Outage Jobs")
    assert third.output == {"recovered": 0, "skipped_deleted": 1, "skipped_queued": 0}


def test_health_check_that_finds_plex_back_resumes_sync_without_waiting_for_the_next_check(world):
    world.apply(breaker_threshold=1, breaker_open_seconds=600)
    sid, rk = world.add_scene("health.mp4")
    world.plex.set_fault("down")
    world.edit(sid, title="Back with the health check")
    assert world.stash.wait_idle(120)
    assert breaker(world)["state"] == "open" and breaker(world)["next_probe_at"] > time.time() + 60

    world.plex.set_fault(None)
    run = world.run_task("Health Check")
    assert run.output["plex"]["healthy"] and run.output["breaker"]["state"] == "closed"
    assert any("Plex answered again after" in m for _, m in run.logs)
    assert world.stash.wait_idle(120)
    assert world.plex.item(rk)["title"] == "Back with the health check"
    (outage,) = read_json_quiet(os.path.join(data_dir(world), "outages.json"))["outages"]
    assert outage["end"] is not None and outage["jobs_affected"] == 1
