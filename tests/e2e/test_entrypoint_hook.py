"""plexsync.py run exactly as Stash runs a hook: stdin JSON, one JSON answer on stdout, logs on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from emulators.stash.data import SCENE_UPDATE_INPUT_FIELDS
from sync.queue import FileQueue


def hook_args(scene_id, sent: dict, hook_type="Scene.Update.Post"):
    full = {k: None for k in SCENE_UPDATE_INPUT_FIELDS}
    full.update(sent)
    full["id"] = str(scene_id)
    return {
        "hookContext": {"id": scene_id, "type": hook_type, "input": full, "inputFields": ["id"] + list(sent)}
    }


def conn(plugin_dir):
    return {
        "Scheme": "http",
        "Host": "127.0.0.1",
        "Port": 9,
        "SessionCookie": None,
        "Dir": plugin_dir,
        "PluginDir": plugin_dir,
    }


def queued(plugin_dir):
    path = os.path.join(plugin_dir, "data")
    return FileQueue(path).jobs() if os.path.exists(path) else []


def test_title_edit_is_queued_and_answered_with_one_json_document(runner, plugin_dir):
    run = runner.run(hook_args(42, {"title": "New title"}), conn(plugin_dir))
    assert run.returncode == 0 and run.parsed
    assert run.output == "queued" and run.error is None
    (job,) = queued(plugin_dir)
    assert job.scene_id == "42" and job.fields == ["title"]


def test_play_count_and_resume_time_edits_are_ignored(runner, plugin_dir):
    run = runner.run(hook_args(42, {"play_count": 3, "resume_time": 12.5}), conn(plugin_dir))
    assert run.returncode == 0 and run.output.startswith("ignored")
    assert queued(plugin_dir) == []


def test_a_field_switched_off_in_the_cached_settings_is_still_queued(runner, plugin_dir):
    # The cache is only as fresh as the last task; the user may have switched the field on since.
    # The drain decides with the settings it reads itself.
    os.makedirs(os.path.join(plugin_dir, "data"))
    with open(os.path.join(plugin_dir, "data", "settings_cache.json"), "w") as fh:
        json.dump({"sync_tags": False, "pause_sync": True}, fh)
    run = runner.run(hook_args(5, {"tag_ids": ["1"]}), conn(plugin_dir))
    assert run.output == "queued" and queued(plugin_dir)[0].fields == ["tag_ids"]


def test_repeated_edits_of_one_scene_leave_one_pending_job(runner, plugin_dir):
    for sent in ({"title": "a"}, {"details": "b"}, {"performer_ids": ["3"]}):
        assert runner.run(hook_args(9, sent), conn(plugin_dir)).output == "queued"
    (job,) = queued(plugin_dir)
    assert job.fields == ["details", "performer_ids", "title"]


def test_bare_scene_created_by_a_scan_is_kept_for_the_drain_to_decide(runner, plugin_dir):
    # Whether Plex is asked to scan it depends on a setting the hook cannot see fresh.
    run = runner.run(
        {"hookContext": {"id": 77, "type": "Scene.Create.Post", "input": None, "inputFields": None}},
        conn(plugin_dir),
    )
    assert run.returncode == 0 and run.output == "queued"
    assert [j.fields for j in queued(plugin_dir)] == [["file"]]


def test_scenes_update_list_input_takes_this_scenes_entry(runner, plugin_dir):
    """scenesUpdate (Scene Filename Parser): real Stash sends the whole list as every scene's input."""
    whole = [hook_args(sid, {"title": "t%d" % sid})["hookContext"]["input"] for sid in (11, 12, 13)]
    whole[1]["details"] = "only 12 had details"
    run = runner.run(
        {
            "hookContext": {
                "id": 12,
                "type": "Scene.Update.Post",
                "input": whole,
                "inputFields": ["id", "title", "details"],
            }
        },
        conn(plugin_dir),
    )
    assert run.returncode == 0 and run.output == "queued"
    (job,) = queued(plugin_dir)
    assert job.scene_id == "12" and job.fields == ["details", "title"]


def test_bulk_update_input_with_ids_is_queued(runner, plugin_dir):
    bulk = {"ids": ["4", "5"], "tag_ids": {"ids": ["1"], "mode": "ADD"}, "title": None}
    run = runner.run(
        {
            "hookContext": {
                "id": 5,
                "type": "Scene.Update.Post",
                "input": bulk,
                "inputFields": ["ids", "tag_ids"],
            }
        },
        conn(plugin_dir),
    )
    assert run.output == "queued" and queued(plugin_dir)[0].fields == ["tag_ids"]


@pytest.mark.parametrize(
    "context",
    [
        {"input": [{"id": "99", "title": "another scene's entry"}], "inputFields": ["id", "title"]},
        {"input": "title=x", "inputFields": ["title"]},
        {"input": {"title": "x"}, "inputFields": "title"},
        {"input": 7},
    ],
)
def test_unreadable_hook_input_is_queued_as_a_full_sync(runner, plugin_dir, context):
    context = dict(context, id=3, type="Scene.Update.Post")
    run = runner.run({"hookContext": context}, conn(plugin_dir))
    assert run.returncode == 0 and run.output == "queued" and run.error is None
    (job,) = queued(plugin_dir)
    assert job.scene_id == "3" and job.fields == ["all"]


def test_scan_update_of_an_existing_scene_is_queued(runner, plugin_dir):
    """A scan that adds or changes a file of a scene fires Scene.Update.Post with input null."""
    run = runner.run({"hookContext": {"id": 8, "type": "Scene.Update.Post", "input": None}}, conn(plugin_dir))
    assert run.output == "queued" and queued(plugin_dir)[0].fields == ["all"]


def test_created_scene_with_metadata_is_queued(runner, plugin_dir):
    run = runner.run(
        hook_args(78, {"title": "Made by hand", "studio_id": "2"}, "Scene.Create.Post"), conn(plugin_dir)
    )
    assert run.output == "queued"
    assert queued(plugin_dir)[0].fields == ["studio_id", "title"]


@pytest.mark.parametrize(
    "stdin, expected",
    [
        (b"", "no input on stdin"),
        (b"   \n", "no input on stdin"),
        (b"{not json", "stdin is not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"args": {"mode": "status"}}', "no server_connection"),
        (b'{"server_connection": {}, "args": []}', "args must be a JSON object"),
        (b'{"server_connection": {}, "args": {}}', "neither hookContext"),
        (b'{"server_connection": {}, "args": {"mode": "explode"}}', "unknown task mode"),
        (b'{"server_connection": {}, "args": {"hookContext": {"type": "Scene.Update.Post"}}}', "no scene id"),
        (
            b'{"server_connection": {}, "args": {"hookContext": {"id": "abc", "type": "Scene.Update.Post"}}}',
            "must be a scene id",
        ),
        (
            b'{"server_connection": {}, "args": {"hookContext": {"id": true, "type": "Scene.Update.Post"}}}',
            "no scene id",
        ),
        (b'{"server_connection": {}, "args": {"hookContext": {"id": 3, "type": 5}}}', "must be a hook name"),
        (b'{"server_connection": {}, "args": {"hookContext": "x"}}', "must be an object"),
    ],
)
def test_bad_input_gives_one_clear_line_and_queues_nothing(plugin_dir, stdin, expected):
    proc = subprocess.run(
        [sys.executable, os.path.join(plugin_dir, "plexsync.py")],
        input=stdin,
        capture_output=True,
        cwd=plugin_dir,
        timeout=60,
    )
    assert proc.returncode != 0
    answer = json.loads(proc.stdout)
    assert expected in answer["error"]
    assert "Traceback" not in proc.stderr.decode()
    assert proc.stderr.decode().count("\n") == 1 and proc.stderr.startswith(b"\x01e\x02")
    assert not os.path.exists(os.path.join(plugin_dir, "data", "queue.jsonl"))


def test_hook_imports_no_network_or_plex_library(plugin_dir):
    code = (
        "import sys, io, runpy, json; sys.argv=['plexsync.py']; "
        "sys.stdin=io.StringIO(json.dumps(%r)); "
        "import plexsync; rc=plexsync.main(); "
        "bad=[m for m in ('plexapi','requests','stashapi','urllib3','http.client','ssl') if m in sys.modules]; "
        "sys.stderr.write('LOADED=' + ','.join(bad))"
    ) % ({"server_connection": conn(plugin_dir), "args": hook_args(1, {"title": "x"})},)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        cwd=plugin_dir,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.decode().rsplit("LOADED=", 1)[1] == ""


def test_unwritable_data_folder_gives_a_clear_error(runner, plugin_dir):
    if os.name == "nt" or os.geteuid() == 0:
        # root ignores permissions; use a data path that is a file instead
        open(os.path.join(plugin_dir, "data"), "w").close()
    else:
        os.makedirs(os.path.join(plugin_dir, "data"), mode=0o500)
    run = runner.run(hook_args(4, {"title": "x"}), conn(plugin_dir))
    assert run.returncode != 0
    assert "could not save the change of scene 4" in run.error and "Data folder" in run.error
