"""Self-tests of the Stash emulator over real HTTP, driven by the real stashapi."""

import json
import time
from pathlib import Path

import pytest
import requests
from stashapi.stashapp import StashInterface

from emulators.echo_plugin import echo_plugin_dir
from emulators.stash import StashEmulator, load_schema
from emulators.stash import schema as schema_mod

ECHO_DIR = echo_plugin_dir()
ECHO_SLEEP = 0.4


@pytest.fixture
def stash(tmp_path):
    emu = StashEmulator(
        plugin_dir=ECHO_DIR,
        api_key="secret-key",
        plugin_env={"ECHO_RECORD_FILE": str(tmp_path / "echo.jsonl"), "ECHO_SLEEP": str(ECHO_SLEEP)},
    )
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


def echo_records(tmp_path):
    path = tmp_path / "echo.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def gql(stash, query, variables=None, cookie=True, headers=None):
    cookies = {"session": stash.session_token} if cookie else None
    return requests.post(
        stash.graphql_url,
        json={"query": query, "variables": variables or {}},
        cookies=cookies,
        headers=headers or {},
        timeout=60,
    )


def wait_for(pred, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_server_connection_shape(stash):
    conn = stash.server_connection()
    assert list(conn) == ["Scheme", "Host", "Port", "SessionCookie", "Dir", "PluginDir"]
    assert conn["Port"] == stash.port and conn["Host"] == "127.0.0.1" and conn["PluginDir"] == str(ECHO_DIR)
    assert conn["SessionCookie"] == {
        "Name": "session",
        "Value": stash.session_token,
        "Path": "",
        "Domain": "",
        "Expires": "0001-01-01T00:00:00Z",
        "RawExpires": "",
        "MaxAge": 0,
        "Secure": False,
        "HttpOnly": False,
        "SameSite": 0,
        "Raw": "",
        "Unparsed": None,
    }
    assert Path(conn["Dir"]).is_dir()


def test_stashinterface_constructs_and_finds_full_scene(stash):
    sid = stash.add_scene(
        "/data/videos/A Scene.mp4",
        size=12345,
        title="A Scene",
        details="Line 1\nLine 2",
        date="2021-03-04",
        code="AB-1",
        director="Dir",
        urls=["https://x.test/1"],
        studio="Studio X",
        performers=["Ann", "Bea"],
        tags=["Tag1"],
        organized=True,
        duration=90.5,
        rating100=80,
    )
    s = StashInterface(stash.server_connection())
    assert [r.operation for r in stash.requests] == ["version", "configuration", "__schema"]
    scene = s.find_scene(sid)
    assert scene["id"] == sid and scene["title"] == "A Scene" and scene["details"] == "Line 1\nLine 2"
    assert scene["files"][0]["path"] == "/data/videos/A Scene.mp4"
    assert scene["files"][0]["basename"] == "A Scene.mp4" and scene["files"][0]["size"] == 12345
    assert scene["files"][0]["duration"] == 90.5
    assert scene["date"] == "2021-03-04" and scene["code"] == "AB-1" and scene["rating100"] == 80
    assert scene["organized"] is True and scene["urls"] == ["https://x.test/1"]
    assert scene["studio"] == {"id": stash.scene(sid)["studio"]["id"]}  # stashapi's fragment: studio { id }
    assert len(scene["performers"]) == 2 and scene["tags"][0]["name"] == "Tag1"
    assert scene["paths"]["screenshot"].startswith("%s/scene/%s/screenshot?t=" % (stash.url, sid))
    assert scene["created_at"].endswith("Z") and scene["scene_markers"] == [] and scene["custom_fields"] == {}
    full = s.find_scene(
        sid,
        fragment="id title studio { name parent_studio { id } } performers { name } "
        "tags { name } groups { group { name } scene_index } stash_ids { stash_id }",
    )
    assert full["studio"] == {"name": "Studio X", "parent_studio": None}
    assert [p["name"] for p in full["performers"]] == ["Ann", "Bea"]
    assert s.find_scene(999999) is None


def test_title_details_are_strings_not_null(stash):
    sid = stash.add_scene("/data/bare.mp4")
    scene = StashInterface(stash.server_connection()).find_scene(
        sid, fragment="title details code director date"
    )
    assert scene == {"title": "", "details": "", "code": "", "director": "", "date": None}


def test_get_configuration_and_big_fragments_resolve(stash):
    s = StashInterface(stash.server_connection())
    config = s.get_configuration()
    assert config["general"]["apiKey"] == "secret-key"
    assert isinstance(config["general"]["stashes"], list) and config["plugins"] == {}
    stash.seed_scenes(3)
    assert len(s.find_scenes()) == 3  # stashapi's default ...Scene fragment, per_page -1
    assert s.job_queue() == []


def test_find_scenes_with_filters(stash):
    stash.add_scene("/data/one/a.mp4", title="Alpha", studio="S1", tags=["x"])
    b = stash.add_scene("/data/two/b.mp4", title="Beta", studio="S2", tags=["x", "y"])
    stash.add_scene("/data/two/c.MP4", title="Gamma", organized=True)
    s = StashInterface(stash.server_connection())
    got = s.find_scenes({"path": {"value": "/data/two", "modifier": "INCLUDES"}}, fragment="id title")
    assert sorted(x["title"] for x in got) == ["Beta", "Gamma"]
    got = s.find_scenes({"path": {"value": r"\.mp4$", "modifier": "MATCHES_REGEX"}}, fragment="id")
    assert len(got) == 2  # regex is case-sensitive
    got = s.find_scenes({"path": {"value": "/DATA/ONE/A.MP4", "modifier": "EQUALS"}}, fragment="id")
    assert len(got) == 1  # LIKE is case-insensitive
    ytag = stash.scene(b)["tags"][1]["id"]
    got = s.find_scenes({"tags": {"value": [ytag], "modifier": "INCLUDES"}}, fragment="id")
    assert [x["id"] for x in got] == [b]
    got = s.find_scenes({"organized": True}, fragment="title")
    assert got == [{"title": "Gamma"}]
    count, page = s.find_scenes(
        {}, {"per_page": 2, "page": 1, "sort": "title", "direction": "DESC"}, fragment="title", get_count=True
    )
    assert count == 3 and [x["title"] for x in page] == ["Gamma", "Beta"]
    regex = gql(stash, 'query { findScenesByPathRegex(filter: {q: "two/b"}) { count scenes { id } } }').json()
    assert regex["data"]["findScenesByPathRegex"] == {"count": 1, "scenes": [{"id": b}]}


def test_per_page_all_and_updated_at_filter(stash):
    old = time.time() - 3600
    ids = [
        stash.add_scene("/data/s%02d.mp4" % i, title="S%d" % i, created_at=old, updated_at=old)
        for i in range(30)
    ]
    stash.update_scene(ids[3], title="changed")  # behind the plugin's back: no hook
    stash.update_scene(ids[7], tags=["new"])
    assert stash.hook_runs == []
    s = StashInterface(stash.server_connection())
    assert len(s.find_scenes(fragment="id")) == 30  # per_page -1
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    count, recent = s.find_scenes(
        {"updated_at": {"value": since, "modifier": "GREATER_THAN"}},
        {"per_page": -1, "sort": "updated_at", "direction": "ASC"},
        fragment="id updated_at",
        get_count=True,
    )
    assert count == 2 and sorted(x["id"] for x in recent) == sorted([ids[3], ids[7]])
    older = s.find_scenes({"updated_at": {"value": since, "modifier": "LESS_THAN"}}, fragment="id")
    assert len(older) == 28
    rel = s.find_scenes({"updated_at": {"value": "<1h", "modifier": "GREATER_THAN"}}, fragment="id")
    assert len(rel) >= 2
    page = gql(
        stash,
        "query($f: FindFilterType) { findScenes(filter: $f) { count scenes { id } } }",
        {"f": {"per_page": 25}},
    ).json()["data"]["findScenes"]
    assert page["count"] == 30 and len(page["scenes"]) == 25


def test_wrong_field_is_a_validation_error(stash):
    r = gql(stash, "query { findScene(id: 1) { id titel } }")
    assert r.status_code == 422
    err = r.json()["errors"][0]
    assert "Cannot query field" in err["message"] and "titel" in err["message"]
    assert err["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    r = gql(stash, "query { findScene(id: 1) { id ")
    assert r.status_code == 422 and r.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    s = StashInterface(stash.server_connection())
    with pytest.raises(Exception, match="422"):
        s.call_GQL("query { findScenes { count nope } }")
    assert stash.requests[-1].ok is False and stash.requests[-1].status == 422


def test_unauthenticated_requests_get_401(stash):
    q = "query { version { version } }"
    assert gql(stash, q, cookie=False).status_code == 401
    r = requests.post(stash.graphql_url, json={"query": q}, cookies={"session": "forged"}, timeout=30)
    assert r.status_code == 401
    assert gql(stash, q, cookie=False, headers={"ApiKey": "wrong"}).status_code == 401
    ok = gql(stash, q, cookie=False, headers={"ApiKey": "secret-key"})
    assert ok.status_code == 200 and ok.json()["data"]["version"]["version"].startswith("v")
    get = requests.get(
        stash.graphql_url, params={"query": q}, cookies={"session": stash.session_token}, timeout=30
    )
    assert get.status_code == 200
    assert [r.status for r in stash.requests] == [401, 401, 401, 200, 200]
    no_key = StashEmulator().start()
    try:
        assert (
            requests.post(
                no_key.graphql_url, json={"query": q}, headers={"ApiKey": ""}, timeout=30
            ).status_code
            == 401
        )
    finally:
        no_key.stop()


def test_scene_update_runs_hook_with_stash_input_and_blocks(stash, tmp_path):
    sid = stash.add_scene("/data/h.mp4", title="Old", studio="Keep", tags=["keep"])
    s = StashInterface(stash.server_connection())
    t0 = time.monotonic()
    s.update_scene({"id": sid, "title": "  New title  ", "details": None})
    elapsed = time.monotonic() - t0
    assert len(stash.hook_runs) == 1
    run = stash.hook_runs[0]
    assert run.done and run.returncode == 0 and run.output == "hooked" and run.error is None
    assert run.hook_type == "Scene.Update.Post" and run.scene_id == sid
    fields = list(load_schema().type_map["SceneUpdateInput"].fields)
    assert list(run.input) == fields  # every input field, in schema order
    assert run.input["id"] == sid and run.input["title"] == "  New title  " and run.input["details"] is None
    assert all(run.input[k] is None for k in fields if k not in ("id", "title"))
    assert sorted(run.input_fields) == ["details", "id", "title"]  # null but sent
    # the save was blocked for the whole hook (behaviour, not a benchmark)
    assert run.blocked_seconds >= ECHO_SLEEP and elapsed >= ECHO_SLEEP
    assert stash.requests[-1].operation == "sceneUpdate" and stash.requests[-1].blocked_seconds >= ECHO_SLEEP
    (rec,) = echo_records(tmp_path)
    stdin = rec["stdin"]
    assert stdin["args"]["mode"] == "hook"
    ctx = stdin["args"]["hookContext"]
    assert ctx["id"] == int(sid) and ctx["type"] == "Scene.Update.Post"
    assert ctx["input"] == run.input and sorted(ctx["inputFields"]) == ["details", "id", "title"]
    assert stdin["server_connection"]["PluginDir"] == str(ECHO_DIR)
    assert stdin["server_connection"]["SessionCookie"]["Value"] != stash.session_token  # a plugin cookie
    scene = stash.scene(sid)
    assert scene["title"] == "New title" and scene["details"] == "" and scene["studio"]["name"] == "Keep"
    assert [t["name"] for t in scene["tags"]] == ["keep"]


def test_nested_input_objects_are_complete(stash):
    sid = stash.add_scene("/data/n.mp4")
    gid = stash.add_group("G")
    r = gql(
        stash,
        "mutation($i: SceneUpdateInput!) { sceneUpdate(input: $i) { id groups { group { name } scene_index } } }",
        {"i": {"id": sid, "groups": [{"group_id": gid}]}},
    )
    assert r.json()["data"]["sceneUpdate"]["groups"] == [{"group": {"name": "G"}, "scene_index": None}]
    assert stash.hook_runs[0].input["groups"] == [{"group_id": gid, "scene_index": None}]


def test_bulk_update_runs_one_hook_per_scene(stash):
    ids = stash.seed_scenes(3, metadata=False)
    tag = stash.add_tag("bulk")
    s = StashInterface(stash.server_connection())
    s.update_scenes({"ids": ids, "tag_ids": {"ids": [tag], "mode": "ADD"}, "organized": True})
    assert [h.scene_id for h in stash.hook_runs] == ids
    for h in stash.hook_runs:
        assert list(h.input) == list(load_schema().type_map["BulkSceneUpdateInput"].fields)
        assert h.input["ids"] == ids and h.input["tag_ids"] == {"ids": [tag], "mode": "ADD"}
        assert h.input["title"] is None and sorted(h.input_fields) == ["ids", "organized", "tag_ids"]
    assert all(
        stash.scene(i)["tags"] == [{"id": tag, "name": "bulk"}] and stash.scene(i)["organized"] for i in ids
    )
    assert len(stash.hook_runs) == 3 and stash.requests[-1].blocked_seconds >= 3 * ECHO_SLEEP


def test_hook_cookie_does_not_retrigger_its_own_hooks(stash):
    sid = stash.add_scene("/data/r.mp4")
    # a mutation sent with a hook process's cookie (visited: Echo/Scene.Update.Post)
    token = stash._new_token(frozenset({("Echo", "Scene.Update.Post")}))
    r = requests.post(
        stash.graphql_url,
        cookies={"session": token},
        timeout=30,
        json={"query": 'mutation { sceneUpdate(input: {id: "%s", title: "t"}) { id } }' % sid},
    )
    assert r.status_code == 200 and stash.hook_runs == [] and stash.hook_skips == [(sid, "Scene.Update.Post")]
    assert stash.scene(sid)["title"] == "t"


def test_create_scene_via_scan_fires_create_hook_without_input(stash, tmp_path):
    sid = stash.create_scene_via_scan("/data/new/file.mp4")
    (run,) = stash.hook_runs
    assert run.hook_type == "Scene.Create.Post" and run.input is None and run.input_fields == []
    ctx = echo_records(tmp_path)[0]["stdin"]["args"]["hookContext"]
    assert ctx == {"id": int(sid), "type": "Scene.Create.Post", "input": None}
    assert stash.scene(sid)["title"] == "" and stash.scene(sid)["files"][0]["path"] == "/data/new/file.mp4"


def test_run_plugin_task_once_with_logs_and_progress(stash):
    s = StashInterface(stash.server_connection())
    job_id = s.run_plugin_task("Echo", "Echo Task", {"extra": "x", "n": 2})
    assert stash.wait_idle(30)
    (task,) = stash.task_runs
    assert task.id == job_id and task.task_name == "Echo Task" and task.status == "finished"
    assert task.args == {"extra": "x", "n": 2, "mode": "echo"}
    assert task.output == {"args": {"extra": "x", "n": 2, "mode": "echo"}}
    assert task.logs == [(lvl, "echo echo level %s" % lvl) for lvl in "tdiwe"]
    assert task.progress == [0.0, 0.5, 1.0] and task.started <= task.ended
    job = s.find_job(job_id)
    assert job["status"] == "FINISHED" and job["progress"] == 1.0
    assert job["description"] == "Running plugin task: Echo Task"
    # args_map (Stash >= 0.25) and a defaultArgs override
    r = gql(
        stash,
        'mutation { runPluginTask(plugin_id: "Echo", task_name: "Echo Task", args_map: {mode: "fail"}) }',
    )
    # Stash only logs a plugin's error; the job itself is FINISHED (internal/manager/task_plugin.go).
    failed_job = r.json()["data"]["runPluginTask"]
    assert stash.wait_idle(30) and stash.task_run(failed_job).status == "finished"
    assert stash.task_runs[-1].error == "echo failed on purpose"
    assert ("e", "Plugin returned error: echo failed on purpose") in stash.log
    assert s.find_job(failed_job) is None or s.find_job(failed_job)["status"] == "FINISHED"
    bad = gql(stash, 'mutation { runPluginTask(plugin_id: "Echo", task_name: "Nope") }').json()
    assert "no task with name Nope" in bad["errors"][0]["message"]


def test_tasks_run_one_at_a_time(stash):
    first = stash.run_task("Slow Task")
    second = stash.run_task("Slow Task")
    assert wait_for(lambda: stash.task_run(first).status == "running")
    queue = gql(stash, "query { jobQueue { id status description } }").json()["data"]["jobQueue"]
    assert [(j["id"], j["status"]) for j in queue] == [(first, "RUNNING"), (second, "READY")]
    assert stash.wait_idle(30)
    a, b = stash.task_run(first), stash.task_run(second)
    assert a.status == b.status == "finished" and b.started >= a.ended
    assert a.args["sleep"] == "0.6"  # defaultArgs arrive as strings, as Stash's map[string]string


def test_stop_job_kills_the_task(stash):
    job = stash.run_task("Hang Task")
    assert wait_for(lambda: stash.task_run(job).run is None and stash.task_run(job)._handle is not None)
    r = gql(stash, 'mutation { stopJob(job_id: "%s") }' % job)
    assert r.json()["data"]["stopJob"] is True
    assert stash.wait_idle(30)
    task = stash.task_run(job)
    assert task.status == "cancelled" and task.run.killed and task.returncode == -9


def test_running_scan_holds_the_queue(stash):
    stash.set_running_scan(True)

    def job_queue():
        return gql(stash, "query { jobQueue { status description } }").json()["data"]["jobQueue"]

    # The job runner starts the scan a moment after it is queued (READY until then), as Stash's does.
    assert wait_for(lambda: job_queue() == [{"status": "RUNNING", "description": "Scanning..."}])
    job = stash.run_task("Echo Task")
    time.sleep(0.3)
    assert stash.task_run(job).status == "queued"
    assert stash.wait_idle(0.2) is False
    stash.set_running_scan(False)
    assert stash.wait_idle(30) and stash.task_run(job).status == "finished"


def test_configure_plugin_round_trip(stash):
    s = StashInterface(stash.server_connection())
    assert s.find_plugin_config("Echo") == {}
    s.configure_plugin("Echo", {"greeting": "hi", "enabled": True})
    assert stash.plugin_settings == {"greeting": "hi", "enabled": True}
    stash.plugin_settings["greeting"] = "changed in python"
    assert s.find_plugin_config("Echo") == {"greeting": "changed in python", "enabled": True}
    all_cfg = gql(stash, "query { configuration { plugins } }").json()["data"]["configuration"]["plugins"]
    assert all_cfg == {"Echo": {"greeting": "changed in python", "enabled": True}}
    plugins = gql(
        stash, "query { plugins { id name tasks { name } hooks { name hooks } settings { name type } } }"
    )
    (p,) = plugins.json()["data"]["plugins"]
    assert p["id"] == "Echo" and "Echo Task" in [t["name"] for t in p["tasks"]]
    assert p["hooks"][0]["hooks"] == ["Scene.Update.Post", "Scene.Create.Post", "Scene.Destroy.Post"]
    assert {"name": "enabled", "type": "BOOLEAN"} in p["settings"]


def test_screenshot_served_with_auth_only(stash):
    sid = stash.add_scene("/data/img.mp4")
    url = stash.scene(sid)["paths"]["screenshot"]
    r = requests.get(url, cookies={"session": stash.session_token}, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/jpeg"
    assert r.content[:2] == b"\xff\xd8" and r.content[-2:] == b"\xff\xd9"
    assert requests.get(url, timeout=30).status_code == 401
    assert requests.get(url, headers={"ApiKey": "secret-key"}, timeout=30).content == r.content
    stash.set_cover(sid)
    new_url = stash.scene(sid)["paths"]["screenshot"]
    again = requests.get(new_url, cookies={"session": stash.session_token}, timeout=30)
    assert again.status_code == 200 and again.content != r.content
    assert (
        requests.get(
            stash.url + "/scene/99999/screenshot", cookies={"session": stash.session_token}, timeout=30
        ).status_code
        == 404
    )


def test_unimplemented_mutation_says_so(stash):
    r = gql(stash, 'mutation { metadataScan(input: {paths: ["/x"]}) }').json()
    assert "not implemented by the Stash emulator" in r["errors"][0]["message"]


def test_schema_missing_names_make_schema(monkeypatch, tmp_path):
    monkeypatch.setenv("STASH_SCHEMA_WHEEL", str(tmp_path / "missing.whl"))
    monkeypatch.setattr(schema_mod, "_sdl", None)
    monkeypatch.setattr(schema_mod, "_schema", None)
    with pytest.raises(schema_mod.SchemaWheelMissing, match="make schema"):
        schema_mod.load_schema()


def test_seed_20000_and_page_1000(stash):
    ids = stash.seed_scenes(20000)
    assert len(ids) == 20000 and len(set(ids)) == 20000
    q = (
        "query($f: FindFilterType) { findScenes(filter: $f) { count scenes { id title updated_at "
        "files { path } studio { name } performers { name } tags { name } } } }"
    )
    first = gql(stash, q, {"f": {"page": 1, "per_page": 1000, "sort": "id"}}).json()["data"]["findScenes"]
    assert first["count"] == 20000 and len(first["scenes"]) == 1000
    assert first["scenes"][0]["id"] == ids[0] and first["scenes"][0]["files"][0]["path"].startswith(
        "/data/videos/"
    )
    last = gql(stash, q, {"f": {"page": 20, "per_page": 1000, "sort": "id"}}).json()["data"]["findScenes"]
    assert len(last["scenes"]) == 1000 and last["scenes"][-1]["id"] == ids[-1]
    beyond = gql(stash, q, {"f": {"page": 21, "per_page": 1000, "sort": "id"}}).json()["data"]["findScenes"]
    assert beyond["count"] == 20000 and beyond["scenes"] == []


def test_plugin_process_talks_back_with_its_cookie(stash):
    # a task whose process queues another task through GraphQL with the session cookie it was given
    query = 'mutation { runPluginTask(plugin_id: "Echo", task_name: "Echo Task", args_map: {note: "child"}) }'
    parent = stash.run_task("Echo Task", {"mode": "gql", "query": query})
    assert wait_for(lambda: len(stash.task_runs) == 2) and stash.wait_idle(30)
    first, child = stash.task_runs
    assert first.id == parent and first.status == "finished"
    assert first.output == {"data": {"runPluginTask": child.id}}
    assert child.status == "finished" and child.args == {"note": "child", "mode": "echo"}
    (req,) = [r for r in stash.requests if r.operation == "runPluginTask"]
    assert req.client == "task" and req.ok


def test_plugin_session_expires_after_the_session_age_and_is_renewed_by_set_cookie(stash):
    stash.session_age = 2.0  # seconds; the sleeps below leave 1.5 s of margin either way
    token = stash._new_token(frozenset(), "task")
    query = {"query": "{ configuration { general { maxSessionAge } } }"}
    r = requests.post(stash.graphql_url, cookies={"session": token}, json=query, timeout=30)
    assert r.status_code == 200 and r.json()["data"]["configuration"]["general"]["maxSessionAge"] == 2
    renewed = r.cookies.get("session")
    assert renewed and renewed != token
    time.sleep(0.5)
    # Go's Request.Cookie reads the first `session` cookie of the header
    both = requests.post(
        stash.graphql_url,
        headers={"Cookie": "session=%s; session=nonsense" % renewed},
        json=query,
        timeout=30,
    )
    assert both.status_code == 200
    time.sleep(1.6)
    assert (
        requests.post(stash.graphql_url, cookies={"session": token}, json=query, timeout=30).status_code
        == 401
    )
    assert (
        requests.post(
            stash.graphql_url, cookies={"session": stash.session_token}, json=query, timeout=30
        ).status_code
        == 200
    ), "the browser's own session does not expire"
