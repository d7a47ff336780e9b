"""Every operator task through the real entry point, started from Stash's task list: each answers
with structured JSON and logs a block a person can read, and none of them leaks a secret."""

from __future__ import annotations

import json
import os
import time

from emulators.world import PLEX_TOKEN, dead_letter
from sync.queue import FileQueue

TASKS = (
    "Process Queue",
    "View Queue Status",
    "Health Check",
    "Outage Summary",
    "Recover Outage Jobs",
    "Clear Pending Queue",
    "Clear Dead Letter Queue",
    "Purge Old DLQ Entries",
    "Clear Match Cache",
)


def data_dir(world) -> str:
    return os.path.join(world.plugin_dir, "data")


def queue(world, clock=time.time) -> FileQueue:
    return FileQueue(data_dir(world), clock=clock)


def info_text(run) -> str:
    return "\n".join(m for level, m in run.logs if level == "i")


def readable(run) -> None:
    """A task's answer: JSON output, no error, and at least one plain-words info line (not JSON)."""
    assert run.error is None, run.error
    assert isinstance(run.output, dict), run.output
    json.dumps(run.output)
    lines = [m for level, m in run.logs if level == "i"]
    assert lines, "the task logged nothing a person could read"
    for line in lines:
        assert not line.lstrip().startswith(("{", "[")), line


def paused(world) -> None:
    world.apply(pause_sync=True)


def assert_no_secrets(world) -> None:
    """The Plex token and the Stash session cookies appear in no answer, log or data file."""
    runs = [h.run for h in world.stash.hook_runs if h.run] + [t.run for t in world.stash.task_runs if t.run]
    secrets = {PLEX_TOKEN}
    for run in runs:
        cookie = (run.input.get("server_connection") or {}).get("SessionCookie") or {}
        if cookie.get("Value"):
            secrets.add(cookie["Value"])
    for run in runs:
        blob = run.stdout + run.stderr + json.dumps(run.output, default=str) + str(run.error)
        assert not [s for s in secrets if s in blob], run.command
    for folder, _dirs, files in os.walk(data_dir(world)):
        for name in files:
            content = open(os.path.join(folder, name), "rb").read()
            assert not [s for s in secrets if s.encode() in content], name


def test_process_queue_reports_what_it_did(world):
    paused(world)
    sid, rk = world.add_scene("task-drain.mp4")
    world.edit(sid, title="Drained by hand")
    assert world.stash.wait_idle(60)  # the drain that edit asked for found sync paused and ended
    world.configure(pause_sync=False)
    run = world.run_task("Process Queue")
    readable(run)
    assert run.output["synced"] == 1 and run.output["failed"] == run.output["dead_lettered"] == 0
    assert run.output["stopped"] == "" and run.progress and run.progress[-1] == 1.0
    assert "Process Queue: 1 synced, 0 unchanged" in info_text(run)
    assert world.plex.item(rk)["title"] == "Drained by hand"
    assert_no_secrets(world)


def test_view_queue_status_shows_queue_plex_and_last_sync(world):
    sid, _ = world.add_scene("task-status.mp4")
    world.edit(sid, title="Synced")
    assert world.stash.wait_idle(120)
    dead_letter(world, world.add_scene("task-dead.mp4")[0], "ambiguous_match")
    run = world.run_task("View Queue Status")
    readable(run)
    out = run.output
    assert out["queue"]["dead_lettered"] == 1 and out["queue"]["dead_by_reason"] == {"ambiguous_match": 1}
    assert out["plex"]["breaker"] == "closed" and out["sync"]["totals"]["synced"] == 1
    text = info_text(run)
    for words in (
        "PlexSync status",
        "Plex: reachable",
        "Queue: 0 pending",
        "Dead-lettered: 1 (ambiguous_match 1)",
        "Last sync:",
        "Action:",
    ):
        assert words in text, text
    assert_no_secrets(world)


def test_view_queue_status_during_an_outage_says_when_plex_is_checked_next(world):
    world.configure(breaker_threshold=1, breaker_open_seconds=600)
    paused(world)
    sid, _ = world.add_scene("task-outage.mp4")
    world.edit(sid, title="Waits")
    world.configure(pause_sync=False)
    world.plex.set_fault("down")
    world.run_task("Process Queue")
    run = world.run_task("View Queue Status")
    readable(run)
    assert run.output["plex"]["breaker"] == "open" and run.output["plex"]["next_probe_at"] > time.time()
    assert run.output["plex"]["current_outage"]["end"] is None
    text = info_text(run)
    assert "Plex: DOWN since" in text and "next check in" in text and "Queue: 1 pending" in text, text


def test_health_check_says_whether_plex_is_up_and_what_to_do(world):
    run = world.run_task("Health Check")
    readable(run)
    assert run.output["plex"]["healthy"] and run.output["plex"]["version"]
    assert run.output["breaker"]["state"] == "closed" and "queue" in run.output
    text = info_text(run)
    assert "PlexSync health check" in text and "reachable and its library answers" in text
    assert "Sync: running normally" in text

    world.plex.set_fault("down")
    down = world.run_task("Health Check")
    warned = "\n".join(m for level, m in down.logs if level == "w")
    assert "not reachable" in warned and "Action: Nothing answers at" in warned
    assert "Plex is not running" in down.error  # the problem is the task's error (tests/e2e/test_install.py)
    world.plex.set_fault("db_loading")
    loading = world.run_task("Health Check")
    assert "reachable but not ready" in "\n".join(m for level, m in loading.logs if level == "w")
    assert "still starting" in loading.error
    assert_no_secrets(world)


def test_outage_summary_lists_outages_with_mttr_mtbf_and_availability(world):
    empty = world.run_task("Outage Summary")
    readable(empty)
    assert empty.output["count"] == 0 and "No Plex outages recorded." in info_text(empty)

    now = time.time()
    # Two ended outages of 60 s and 180 s, 600 s apart, in a window of 1,000 s.
    outages = [
        {
            "start": now - 1000,
            "end": now - 940,
            "cause": "Plex unreachable (connection refused)",
            "jobs_affected": 3,
        },
        {
            "start": now - 340,
            "end": now - 160,
            "cause": "Plex answered with a server error (HTTP 503)",
            "jobs_affected": 1,
        },
    ]
    with open(os.path.join(data_dir(world), "outages.json"), "w") as fh:
        json.dump({"outages": outages}, fh)
    run = world.run_task("Outage Summary")
    readable(run)
    out = run.output
    assert out["count"] == 2 and not out["ongoing"]
    assert abs(out["mttr_seconds"] - 120) < 1e-6
    assert abs(out["mtbf_seconds"] - 600) < 1e-6
    assert abs(out["availability"] - (1 - 240 / out["window_seconds"])) < 1e-6
    text = info_text(run)
    assert (
        "2 outages" in text
        and "mean time to recovery 2 min" in text
        and "mean time between outages 10 min" in text
    )
    assert "3 changes waited" in text and "1 change waited" in text


def test_recover_outage_jobs_answers_with_counts(world):
    paused(world)
    sid, _ = world.add_scene("task-recover.mp4")
    dead_letter(world, sid, "plex_timeout")
    run = world.run_task("Recover Outage Jobs")
    readable(run)
    assert run.output == {"recovered": 1, "skipped_deleted": 0, "skipped_queued": 0}
    again = world.run_task("Recover Outage Jobs")
    readable(again)
    assert again.output["recovered"] == 0 and "No dead-lettered changes from outages" in info_text(again)


def test_clear_pending_queue_drops_waiting_changes_but_keeps_dead_letters(world):
    paused(world)
    dead_letter(world, world.add_scene("clear-dead.mp4")[0], "ambiguous_match")
    for name in ("clear-a.mp4", "clear-b.mp4"):
        world.edit(world.add_scene(name)[0], title="Dropped")
    run = world.run_task("Clear Pending Queue")
    readable(run)
    assert run.output == {"cleared": 2}
    assert "2 change(s) dropped" in info_text(run)
    summary = queue(world).summary()
    assert summary.pending == 0 and summary.dead == 1
    assert world.run_task("Clear Pending Queue").output == {"cleared": 0}


def test_clear_dead_letter_queue_forgets_failed_changes(world):
    paused(world)
    dead_letter(world, world.add_scene("dlq-a.mp4")[0], "ambiguous_match")
    dead_letter(world, world.add_scene("dlq-b.mp4")[0], "no_file")
    run = world.run_task("Clear Dead Letter Queue")
    readable(run)
    assert run.output == {"cleared": 2} and "2 entries removed" in info_text(run)
    assert queue(world).summary().dead == 0


def test_purge_old_dlq_entries_removes_only_old_ones(world):
    paused(world)
    dead_letter(
        world, world.add_scene("old.mp4")[0], "ambiguous_match", clock=lambda: time.time() - 40 * 86400
    )
    dead_letter(world, world.add_scene("recent.mp4")[0], "ambiguous_match")
    run = world.run_task("Purge Old DLQ Entries")
    readable(run)
    assert run.output == {"purged": 1, "days": 30.0}
    assert "older than 30 days" in info_text(run)
    assert queue(world).summary().dead == 1
    bad = world.run_task("Purge Old DLQ Entries", {"days": "soon"})
    assert bad.error and "'days'" in bad.error


def test_clear_match_cache_forgets_matches_and_the_next_sync_matches_again(world):
    sid, rk = world.add_scene("cache.mp4")
    world.edit(sid, title="Matched once")
    assert world.stash.wait_idle(120)
    assert os.path.exists(os.path.join(data_dir(world), "match_cache.jsonl"))
    run = world.run_task("Clear Match Cache")
    readable(run)
    assert "match_cache.jsonl" in run.output["removed"]
    assert "Cleared the match cache" in info_text(run)
    again = world.run_task("Clear Match Cache")
    assert again.output == {"removed": []} and "already empty" in info_text(again)
    world.edit(sid, title="Matched again")
    assert world.stash.wait_idle(120)
    assert world.plex.item(rk)["title"] == "Matched again"


def test_every_task_in_the_manifest_is_covered_here(world):
    assert set(world.stash.runner.tasks) >= set(TASKS)


def test_switches_nobody_touched_are_stored_so_stash_shows_them_as_plexsync_uses_them(world):
    from stashplugin.settings import unset_switches

    untouched = sorted(unset_switches({}))
    assert "sync_title" in untouched and "lock_fields" in untouched and "pause_sync" not in untouched
    fresh = {k: v for k, v in world.stash.plugin_settings.items() if k not in untouched}
    fresh["sync_tags"] = False  # the one switch this user did set: off
    world.stash.plugin_settings = fresh
    run = world.run_task("View Queue Status")
    readable(run)
    stored = world.stash.plugin_settings
    assert all(stored[k] is True for k in untouched if k != "sync_tags"), stored
    assert stored["sync_tags"] is False, "a switch the user set is kept"
    assert {k: stored[k] for k in fresh} == fresh, "every other setting is kept as it was"
    assert set(stored) == set(fresh) | set(untouched), (
        "nothing else is added (off-by-default switches show right)"
    )
    assert any("Stored the defaults" in m for _, m in run.logs)

    again = world.run_task("View Queue Status")
    assert not any("Stored the defaults" in m for _, m in again.logs), "stored once, not on every task"
    assert_no_secrets(world)
