"""Plex or Stash answering garbage: clear one-line errors, and no queued change is lost.

A garbage proxy stands between PlexSync and an emulator and answers one kind of request with
whatever hypothesis makes up (broken HTTP, truncated bodies, XML that is not Plex's, JSON that is
not GraphQL), passing everything else through. The health probe, the Plex connection, the hook's
drain request and whole Process Queue / View Queue Status runs (the installed entry point, run
in-process for speed) must all end in a clear answer with the change still queued.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from emulators.world import PLEX_TOKEN, start_world
from sync.queue import FileQueue
from tests.conftest import scaled
from tests.reliability import torture_summary
from tests.reliability.garbage_server import GarbageProxy, http_answer
from tests.reliability.inprocess import answer_problems, load_entrypoint, run_main

pytestmark = [pytest.mark.torture, pytest.mark.usefixtures("no_retry_wait")]

FAST = settings(
    max_examples=scaled(40, 600),
    deadline=None,
    derandomize=not os.environ.get("PLEXSYNC_TORTURE"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SLOW = settings(FAST, max_examples=scaled(15, 250))

xml_bits = st.sampled_from(
    [
        b"<MediaContainer",
        b" size=\"1\"",
        b" version=\"1.2.3\"",
        b">",
        b"</MediaContainer>",
        b"<Video ratingKey=\"1\" key=\"/library/metadata/1\" type=\"movie\" title=\"x\"",
        b"<Directory key=\"1\" type=\"movie\" title=\"Movies\"",
        b"/>",
        b"<Media><Part file=\"/a\"",
        b"&",
        b"\x00",
        b"\xff",
        b"<!DOCTYPE x [<!ENTITY a \"b\">]>",
        b"<?xml version=\"1.0\"?>",
    ]
)
xml_bodies = st.lists(xml_bits, max_size=12).map(b"".join) | st.binary(max_size=200)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
graphql_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={"data": json_values, "errors": json_values}),
    st.fixed_dictionaries(
        {
            "data": st.fixed_dictionaries(
                {},
                optional={
                    "configuration": json_values | st.fixed_dictionaries({"plugins": json_values}),
                    "findScenes": json_values | st.fixed_dictionaries({"scenes": json_values}),
                    "runPluginTask": json_values,
                },
            )
        }
    ),
).map(lambda v: json.dumps(v).encode("utf-8")) | st.binary(max_size=100)
statuses = st.sampled_from([200, 200, 200, 400, 401, 404, 500, 502, 503, 301]) | st.integers(100, 599)


def answers(bodies, content_type: str):
    """Raw answers: well-framed HTTP with odd bodies, wrong lengths, or no HTTP at all."""
    framed = st.builds(
        http_answer, statuses, bodies, st.just(content_type), st.none() | st.just(-1) | st.integers(0, 400)
    )
    return framed | st.binary(max_size=120)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tools.package import install

    plugin_dir = install(str(tmp_path_factory.mktemp("fuzz-servers") / "PlexSync"))
    w = start_world(plugin_dir, recovery_rates="", connect_timeout=1, read_timeout=3, max_retries=100)
    plex_proxy = GarbageProxy(("127.0.0.1", w.plex.port)).start()
    stash_proxy = GarbageProxy(("127.0.0.1", w.stash.port)).start()
    w.configure(plex_url=plex_proxy.url)
    w.plex_proxy, w.stash_proxy = plex_proxy, stash_proxy
    w.entrypoint = load_entrypoint(plugin_dir)
    w.data_dir = os.path.join(plugin_dir, "data")
    os.makedirs(w.data_dir, exist_ok=True)
    w.scene_id, _ = w.add_scene("fuzz.mp4", title="Fuzz")
    yield w
    plex_proxy.stop()
    stash_proxy.stop()
    w.stop()


def _fresh_state(world) -> None:
    """Each example starts afresh: Plex trusted (no open breaker, no probe schedule), and the
    scene's change due now (not waiting for the backoff a previous example gave it)."""
    for name in ("circuit_breaker.json", "health.json", "drain_request.json", "queue.jsonl"):
        try:
            os.remove(os.path.join(world.data_dir, name))
        except FileNotFoundError:
            pass


def _run_task(world, mode: str, via_stash_proxy: bool = False) -> list:
    conn = world.stash.server_connection()
    if via_stash_proxy:
        conn["Port"] = world.stash_proxy.port
    rc, out, err = run_main(world.entrypoint, json.dumps({"server_connection": conn, "args": {"mode": mode}}))
    problems = answer_problems(rc, out, err)
    if PLEX_TOKEN in out or PLEX_TOKEN in err:
        problems.append("the Plex token was written out")
    return problems


def _still_queued(world) -> bool:
    return world.scene_id in {j.scene_id for j in FileQueue(world.data_dir).jobs()}


def test_health_probe_turns_any_plex_answer_into_a_clear_result(world):
    from worker.health import probe

    problems, examples = [], [0]

    @FAST
    @given(
        answer=answers(xml_bodies, "text/xml"), path=st.sampled_from(["/identity", "/library/sections", ""])
    )
    def check(answer, path):
        examples[0] += 1
        world.plex_proxy.answer = answer
        world.plex_proxy.victim = lambda m, p, b: p.startswith(path)
        result = probe(world.plex_proxy.url, PLEX_TOKEN, 1.0, 3.0)
        text = result.describe()
        found = []
        if "\n" in text or PLEX_TOKEN in text or (not result.healthy and not result.error_class):
            found.append("unclear probe result %r" % (text,))
        problems.extend("%s <- %r" % (p, answer[:120]) for p in found)
        assert not found, found

    try:
        check()
    finally:
        torture_summary.record("fuzz: Plex answers to the probe", trials=examples[0], lost=len(problems))


def test_connecting_to_a_plex_answering_garbage_is_classified_in_one_line(world):
    from stashplugin.settings import Settings
    from worker.errors import ERROR_CLASSES, classify
    from worker.plex import connect

    settings_ = Settings.from_raw(
        {"plex_url": world.plex_proxy.url, "plex_token": PLEX_TOKEN, "connect_timeout": 1, "read_timeout": 3},
        need_plex=True,
    )
    problems, examples = [], [0]

    @FAST
    @given(answer=answers(xml_bodies, "text/xml"))
    def check(answer):
        examples[0] += 1
        world.plex_proxy.answer = answer
        world.plex_proxy.victim = lambda m, p, b: True
        try:
            connect(settings_)
            return
        except Exception as exc:  # noqa: BLE001 - every failure must classify cleanly
            failure = classify(exc)
        text = str(failure)
        found = []
        if failure.error_class not in ERROR_CLASSES or "\n" in text or PLEX_TOKEN in text or len(text) > 600:
            found.append("unclear failure %s: %r" % (failure.error_class, text))
        problems.extend("%s <- %r" % (p, answer[:120]) for p in found)
        assert not found, found

    try:
        check()
    finally:
        torture_summary.record("fuzz: Plex answers to connect", trials=examples[0], lost=len(problems))


def test_process_queue_against_a_plex_answering_garbage_keeps_the_change(world):
    problems, examples = [], [0]
    paths = ["/identity", "/library/sections", "/library/sections/", "/library/metadata/", "/"]

    @SLOW
    @given(
        answer=answers(xml_bodies, "text/xml"),
        path=st.sampled_from(paths),
        method=st.sampled_from(["GET", "PUT"]),
    )
    def check(answer, path, method):
        # A 2xx answer to the edit is Plex saying "done": a write lost behind such an answer cannot
        # be told from success without re-reading every item, which would double the requests.
        assume(not (method == "PUT" and answer.startswith(b"HTTP/1.1 2")))
        examples[0] += 1
        _fresh_state(world)
        for name in ("match_cache.jsonl", "plex_index.jsonl"):  # so the library listings are asked for again
            try:
                os.remove(os.path.join(world.data_dir, name))
            except FileNotFoundError:
                pass
        world.stash.update_scene(world.scene_id, title="Fuzz %d" % examples[0])
        FileQueue(world.data_dir).enqueue(world.scene_id, ["title"])
        world.plex_proxy.answer = answer
        world.plex_proxy.victim = lambda m, p, b: (
            m == method and (p == path if path == "/" else p.startswith(path))
        )
        found = _run_task(world, "process_queue")
        synced = (
            world.plex.item(world.plex.find_by_file("/media/movies/fuzz.mp4"))["title"]
            == "Fuzz %d" % examples[0]
        )
        if not synced and not _still_queued(world):
            found.append("the change was neither synced nor kept in the queue")
        problems.extend("%s <- %s %s %r" % (p, method, path, answer[:120]) for p in found)
        assert not found, found

    try:
        check()
    finally:
        world.plex_proxy.victim = lambda m, p, b: False
        torture_summary.record(
            "fuzz: Plex garbage during Process Queue", trials=examples[0], jobs=1, lost=len(problems)
        )


def test_odd_graphql_answers_end_in_one_line_errors_and_keep_the_queue(world):
    problems, examples = [], [0]
    operations = {"settings": b"PlexSyncSettings", "scenes": b"PlexSyncScenes"}

    @SLOW
    @given(
        answer=answers(graphql_bodies, "application/json"),
        operation=st.sampled_from(sorted(operations)),
        mode=st.sampled_from(["status", "process_queue", "recover_outage_jobs", "clear_dlq"]),
    )
    def check(answer, operation, mode):
        examples[0] += 1
        _fresh_state(world)
        FileQueue(world.data_dir).enqueue(world.scene_id, ["title"])
        world.plex_proxy.victim = lambda m, p, b: False
        world.stash_proxy.answer = answer
        word = operations[operation]
        world.stash_proxy.victim = lambda m, p, b: word in b
        found = _run_task(world, mode, via_stash_proxy=True)
        item = world.plex.item(world.plex.find_by_file("/media/movies/fuzz.mp4"))
        if not _still_queued(world) and item["title"] != world.stash.scene(world.scene_id)["title"]:
            found.append("the change was neither synced nor kept in the queue")
        problems.extend("%s <- %s/%s %r" % (p, operation, mode, answer[:120]) for p in found)
        assert not found, found

    try:
        check()
    finally:
        world.stash_proxy.victim = lambda m, p, b: False
        torture_summary.record("fuzz: odd GraphQL answers", trials=examples[0], jobs=1, lost=len(problems))


def test_hook_drain_request_turns_any_stash_answer_into_a_reason(world):
    from stashplugin.drain_request import ask_stash_to_drain

    conn = world.stash.server_connection()
    conn["Port"] = world.stash_proxy.port

    @FAST
    @given(answer=answers(graphql_bodies, "application/json"))
    @example(answer=http_answer(200, b'{"errors": {"": null}}', "application/json"))
    @example(answer=http_answer(200, b'{"errors": true}', "application/json"))
    @example(answer=http_answer(200, b"true", "application/json"))
    def check(answer):
        world.stash_proxy.answer = answer
        world.stash_proxy.victim = lambda m, p, b: b"runPluginTask" in b
        why = ask_stash_to_drain(conn, timeout=3.0)
        assert isinstance(why, str) and "\n" not in why, why

    try:
        check()
    finally:
        world.stash_proxy.victim = lambda m, p, b: False
