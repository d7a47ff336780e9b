"""What a new user meets on a stock Stash: the Stash version check, one Plex device across runs,
and a Health Check that names the likely cause of a Plex it cannot use."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from emulators.world import wait_for
from sync.queue import FileQueue
from tests.conftest import ROOT


def queue(world) -> FileQueue:
    return FileQueue(os.path.join(world.plugin_dir, "data"))


# --- Stash version ---------------------------------------------------------------------------


def test_an_older_stash_gets_one_sentence_and_no_change_is_dead_lettered(world):
    sid, rk = world.add_scene("old-stash.mp4")
    world.stash.version = "v0.26.2"
    world.edit(sid, title="Waits for a newer Stash")
    drain = world.run_task("Process Queue")
    assert drain.error == (
        "PlexSync needs Stash v0.27.0 or newer and this Stash is v0.26.2: update Stash; "
        "queued changes are kept and sync once Stash is updated."
    )
    assert not [m for level, m in drain.logs if level == "e" and m != drain.error]
    summary = queue(world).summary()
    assert summary.dead == 0 and summary.pending + summary.waiting == 1
    assert world.plex.item(rk)["title"] != "Waits for a newer Stash"

    world.stash.version = "v0.27.0"
    assert world.run_task("Process Queue").error is None
    assert world.plex.item(rk)["title"] == "Waits for a newer Stash"


def test_a_development_build_without_a_version_is_not_refused(world):
    world.stash.version = ""
    assert world.run_task("View Queue Status").error is None


# --- one Plex device -------------------------------------------------------------------------


def identities(world) -> set:
    return {
        (
            r.headers.get("X-Plex-Client-Identifier"),
            r.headers.get("X-Plex-Product"),
            r.headers.get("X-Plex-Device-Name"),
        )
        for r in world.plex.requests
    }


def test_plex_sees_one_device_across_runs(world):
    sid, rk = world.add_scene("device.mp4")
    assert world.run_task("Health Check").error is None
    world.edit(sid, title="Same device")
    wait_for(lambda: world.plex.item(rk)["title"] == "Same device", 60, "the sync")
    assert world.run_task("Health Check").error is None
    (identity,) = identities(world)  # probes and plexapi's requests alike, from several processes
    identifier, product, device = identity
    assert product == "PlexSync" and device == "Stash"
    import plexapi

    assert identifier and identifier != plexapi.X_PLEX_IDENTIFIER  # not the MAC-derived default
    stored = json.load(open(os.path.join(world.plugin_dir, "data", "plex_client.json")))
    assert stored["identifier"] == identifier
    versions = {r.headers.get("X-Plex-Version") for r in world.plex.requests}
    from worker.plex import plugin_version

    assert versions == {plugin_version()}


def test_two_processes_starting_at_once_agree_on_one_identifier(tmp_path):
    code = "import sys; from worker.plex import client_identifier; print(client_identifier(sys.argv[1]))"
    env = dict(os.environ, PYTHONPATH=ROOT)
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, env=env)
        for _ in range(4)
    ]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(ids) == 1 and len(ids.pop()) == 36


# --- Health Check tells the truth ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def failed_check(world, **settings):
    world.configure(**settings)
    run = world.run_task("Health Check")
    assert run.error, run.logs
    warnings = [m for level, m in run.logs if level == "w"]
    assert warnings and "PlexSync health check" in warnings[0]
    assert not [m for level, m in run.logs if level == "i" and "health check" in m]
    return run


def test_health_check_names_an_unknown_host(world):
    run = failed_check(world, plex_url="http://plex-host.invalid:32400")
    assert "plex-host.invalid cannot be found" in run.error and "'Plex URL'" in run.error


def test_health_check_names_a_refused_connection(world):
    run = failed_check(world, plex_url="http://127.0.0.1:%d" % free_port())
    assert "Plex is not running, or the port in 'Plex URL' is wrong" in run.error


def test_health_check_names_a_tls_failure(world):
    run = failed_check(world, plex_url=world.plex.url.replace("http://", "https://"))
    assert "'Skip TLS verification'" in run.error


def test_health_check_names_a_wrong_token(world):
    run = failed_check(world, plex_token="not-the-token")
    assert "Plex refused the token" in run.error and "'Plex token'" in run.error


def test_view_queue_status_does_not_say_all_is_well_when_plex_cannot_be_found(world):
    world.configure(plex_url="http://plex-host.invalid:32400")
    run = world.run_task("View Queue Status")
    assert run.error is None
    text = "\n".join(m for level, m in run.logs if level == "i")
    assert "nothing to do" not in text and "All good" not in text
    assert "Action: The host name plex-host.invalid cannot be found" in text


# --- succeeding the Community "Plex Sync" ----------------------------------------------------


def test_the_community_plex_sync_settings_are_taken_over_once_and_kept(plugin_dir):
    from emulators.world import PLEX_TOKEN, start_world

    world = start_world(plugin_dir, recovery_rates="")
    try:
        # What Stash still holds under the id PlexSync after the Community plugin was removed.
        world.stash.plugin_settings = {
            "plexHost": world.plex.url,
            "plexPort": "32400",
            "plexToken": PLEX_TOKEN,
            "skipUnorganized": True,
            "path_map": "/data/videos=/media/movies",
        }
        sid, rk = world.add_scene("taken-over.mp4", organized=True)  # skipUnorganized is taken over too
        first = world.run_task("Health Check")
        assert first.error is None, first.logs
        said = [m for level, m in first.logs if "Took over" in m]
        assert len(said) == 1 and "'Plex URL', 'Plex token'" in said[0] and PLEX_TOKEN not in said[0]
        stored = world.stash.plugin_settings
        assert stored["plex_url"] == world.plex.url and stored["plex_token"] == PLEX_TOKEN
        assert stored["only_organized"] is True
        assert stored["plexHost"] == world.plex.url and stored["plexToken"] == PLEX_TOKEN  # never deleted
        world.edit(sid, title="Synced with the old settings")
        wait_for(lambda: world.plex.item(rk)["title"] == "Synced with the old settings", 60, "the sync")
        again = world.run_task("View Queue Status")
        assert not [m for _level, m in again.logs if "Took over" in m]
    finally:
        world.stop()


# --- the floor tier --------------------------------------------------------------------------


def test_the_floor_tier_runs_on_the_lowest_allowed_versions():
    """`make test` runs this file again in .venv-floor (PLEXSYNC_FLOOR=1): prove it is the floors."""
    if os.environ.get("PLEXSYNC_FLOOR") != "1":
        import pytest

        pytest.skip("only in the floor tier of `make test`")
    from importlib import metadata

    from stashplugin.dependencies import REQUIREMENTS

    assert {dist: metadata.version(dist) for _m, dist, _f in REQUIREMENTS} == {
        dist: floor for _m, dist, floor in REQUIREMENTS
    }
