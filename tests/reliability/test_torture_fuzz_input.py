"""Bad input of every kind: Stash's stdin, the hook context, settings values, damaged state files.

Whatever arrives, PlexSync answers Stash with one JSON document carrying at most a one-line error
(never a bare traceback), and the changes already queued are still there afterwards. Damaged
files are moved aside byte for byte, never silently overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stashplugin.hook import entity_event
from stashplugin.settings import SPEC, Settings, SettingsError
from sync.queue import FileQueue
from sync.store import quarantined_files
from tests.conftest import scaled
from tests.reliability import torture_summary
from tests.reliability.inprocess import answer_problems, load_entrypoint, run_main
from tools.package import install

pytestmark = [pytest.mark.torture, pytest.mark.usefixtures("no_retry_wait")]

FUZZ = settings(
    max_examples=scaled(60, 1500),
    deadline=None,
    derandomize=not os.environ.get("PLEXSYNC_TORTURE"),
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
SEEDED = ["1", "22", "333"]
TASK_MODES = (
    "process_queue",
    "status",
    "clear_queue",
    "clear_dlq",
    "purge_dlq",
    "clear_match_cache",
    "health_check",
    "outage_summary",
    "recover_outage_jobs",
)
HOOK_FIELDS = (
    "title",
    "details",
    "date",
    "studio_id",
    "tag_ids",
    "performer_ids",
    "play_count",
    "rating100",
    "o_counter",
    "cover_image",
    "urls",
    "organized",
    "id",
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _closed_port() -> int:
    """A local port nothing listens on: connections are refused at once, nothing leaves the machine."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bench:
    """An installed plugin with a few changes already queued, and its entry point loaded in-process."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="plexsync-fuzz-")
        self.plugin_dir = install(os.path.join(self.root, "PlexSync"))
        self.other_dir = os.path.join(self.root, "Other")
        os.makedirs(self.other_dir)
        self.data_dir = os.path.join(self.plugin_dir, "data")
        os.makedirs(self.data_dir)
        with open(os.path.join(self.data_dir, "settings_cache.json"), "w") as fh:
            json.dump({"pause_sync": True}, fh)  # hooks only queue: no drain request leaves the test
        queue = FileQueue(self.data_dir)
        for sid in SEEDED:
            queue.enqueue(sid, ["title"])
        self.port = _closed_port()
        self.entrypoint = load_entrypoint(self.plugin_dir)
        self.examples = 0

    def conn(self, plugin_dir=None, **extra) -> dict:
        conn = {
            "Scheme": "http",
            "Host": "127.0.0.1",
            "Port": self.port,
            "SessionCookie": None,
            "Dir": self.root,
            "PluginDir": plugin_dir or self.plugin_dir,
        }
        conn.update(extra)
        return conn

    def seeded_still_queued(self) -> bool:
        scenes = {j.scene_id for j in FileQueue(self.data_dir).jobs()}
        return set(SEEDED) <= scenes

    def invoke(self, stdin) -> list:
        self.examples += 1
        rc, out, err = run_main(self.entrypoint, stdin)
        problems = answer_problems(rc, out, err)
        if not self.seeded_still_queued():
            problems.append("changes queued before this input are gone")
        return problems


@pytest.fixture(scope="module")
def bench():
    b = Bench()
    yield b
    shutil.rmtree(b.root, ignore_errors=True)


def _record(name: str, examples: int, problems: list, jobs: int = len(SEEDED)) -> None:
    torture_summary.record("fuzz: " + name, trials=examples, jobs=jobs, lost=len(problems))


# -- stdin ---------------------------------------------------------------------------------
def _payloads(bench):
    def contained(value):
        # Any object may stand in for server_connection, but whatever it says, files stay in the
        # test's folders and connections go to the closed local port.
        if isinstance(value, dict):
            return dict(value, Host="127.0.0.1", Port=bench.port, PluginDir=bench.plugin_dir)
        return value

    conns = st.sampled_from(
        [
            bench.conn(),
            bench.conn(bench.other_dir),
            bench.conn(PluginDir=None),
            bench.conn(SessionCookie={"Name": "session", "Value": "abc"}),
        ]
    ) | json_values.map(contained)
    args = (
        st.fixed_dictionaries(
            {},
            optional={
                "mode": st.sampled_from(TASK_MODES) | json_values,
                "hookContext": json_values,
                "days": json_values,
            },
        )
        | json_values
    )
    documents = st.fixed_dictionaries({"server_connection": conns, "args": args}) | json_values
    return st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200),
        documents.map(json.dumps),
        documents.map(lambda d: json.dumps(d)[: len(json.dumps(d)) // 2]),  # cut short
    )


def test_any_stdin_gets_one_json_answer_and_keeps_the_queue(bench):
    problems = []

    @FUZZ
    @given(data=st.data())
    def check(data):
        stdin = data.draw(_payloads(bench))
        found = bench.invoke(stdin)
        problems.extend("%s <- %r" % (p, stdin[:200]) for p in found)
        assert not found, found

    try:
        check()
    finally:
        _record("stdin", bench.examples, problems)


# -- hookContext -----------------------------------------------------------------------------
ids = (
    st.integers(-5, 10**12)
    | st.text(max_size=12)
    | st.floats()
    | st.booleans()
    | st.none()
    | st.lists(st.integers(), max_size=2)
)
hook_types = (
    st.sampled_from(["Scene.Update.Post", "Scene.Create.Post", "Scene.Destroy.Post", "Gallery.Update.Post"])
    | st.text(max_size=20)
    | json_values
)
inputs = (
    st.none()
    | st.dictionaries(st.sampled_from(HOOK_FIELDS) | st.text(max_size=8), json_values, max_size=6)
    | json_values
)
field_lists = (
    st.none() | st.lists(st.sampled_from(HOOK_FIELDS) | st.text(max_size=10), max_size=6) | json_values
)
contexts = st.fixed_dictionaries(
    {}, optional={"id": ids, "type": hook_types, "input": inputs, "inputFields": field_lists}
)


def test_any_hook_context_is_queued_ignored_or_refused_in_one_line(bench):
    problems = []
    before = bench.examples

    @FUZZ
    @given(context=contexts, other_plugin_dir=st.booleans())
    def check(context, other_plugin_dir):
        conn = bench.conn(bench.other_dir if other_plugin_dir else None)
        stdin = json.dumps({"server_connection": conn, "args": {"hookContext": context}})
        rc, out, err = run_main(bench.entrypoint, stdin)
        bench.examples += 1
        found = answer_problems(rc, out, err)
        if not bench.seeded_still_queued():
            found.append("changes queued before this input are gone")
        if not found and json.loads(out)["output"] == "queued":
            data_dir = os.path.join(conn["PluginDir"], "data")
            scene = (
                str(context["id"]).strip()
                if not isinstance(context["id"], float)
                else str(int(context["id"]))
            )
            entity = entity_event(context.get("type"))  # "tag 17 changed" is queued as "tag:17"
            key = "%s:%s" % (entity[0], scene) if entity else scene
            if key not in {j.scene_id for j in FileQueue(data_dir).jobs()}:
                found.append("answered queued but %r is not in the queue" % key)
        problems.extend("%s <- %r" % (p, context) for p in found)
        assert not found, found

    try:
        check()
    finally:
        _record("hookContext", bench.examples - before, problems)


def test_garbage_stdin_from_a_real_process_gets_one_line_error(plugin_dir):
    """The same promise from a real `python3 plexsync.py`, for a few kinds of garbage."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    bad_id = {"server_connection": {"PluginDir": plugin_dir}, "args": {"hookContext": {"id": [1]}}}
    for stdin in (
        b"",
        b"\xff\xfe\x00garbage",
        b"[1, 2",
        b'{"server_connection": 5}',
        b"null",
        json.dumps(bad_id).encode(),
    ):
        done = subprocess.run(
            [sys.executable, os.path.join(plugin_dir, "plexsync.py")],
            input=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            timeout=60,
        )
        problems = answer_problems(done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8"))
        assert not problems and done.returncode != 0, (stdin, problems, done.stdout, done.stderr)


# -- settings --------------------------------------------------------------------------------
KIND = {"bool": bool, "int": int, "float": float, "str": str}
setting_values = st.dictionaries(
    st.sampled_from(sorted(SPEC)), json_values | st.text(max_size=30), max_size=len(SPEC)
)


def test_any_settings_values_are_accepted_or_named_in_one_sentence():
    problems, examples = [], [0]

    @FUZZ
    @given(raw=setting_values | json_values, strict=st.booleans(), need_plex=st.booleans())
    def check(raw, strict, need_plex):
        examples[0] += 1
        try:
            values = Settings.from_raw(raw, strict=strict, need_plex=need_plex)
        except SettingsError as exc:
            message = str(exc)
            if not message.startswith("Setting '") or "\n" in message:
                problems.append("unclear settings error %r for %r" % (message, raw))
            return
        except Exception as exc:  # noqa: BLE001 - this is what the test is looking for
            problems.append("%s: %s for %r" % (type(exc).__name__, exc, raw))
            raise
        for name, (kind, _default, _display, _description) in SPEC.items():
            value = getattr(values, name)
            if type(value) is not KIND[kind] and not (kind == "float" and type(value) is int):
                problems.append("%s came out as %r for %r" % (name, value, raw))

    try:
        check()
    finally:
        _record("settings values", examples[0], problems, jobs=0)
    assert not problems, problems[:5]


def test_plex_url_with_unbalanced_brackets_is_named_in_one_sentence():
    for url in ("[", "http://[::1", "http://[zz]:32400"):
        with pytest.raises(SettingsError, match="Plex URL"):
            Settings.from_raw({"plex_url": url, "plex_token": "t"}, strict=True, need_plex=True)


# -- damaged files -----------------------------------------------------------------------------
RECORD_KEYS = (
    "id",
    "scene",
    "scene_id",
    "ids",
    "t",
    "at",
    "until",
    "next",
    "fields",
    "state",
    "attempts",
    "absorb",
    "cls",
    "msg",
    "owner",
    "src",
    "lease_until",
    "next_attempt_at",
)
# Damage that keeps JSON syntax: a record with a real operation but values of any type.
damaged_records = st.fixed_dictionaries(
    {"op": st.sampled_from(("enq", "lease", "ack", "nack", "dead", "requeue", "drop", "job", "header"))},
    optional={key: json_values for key in RECORD_KEYS},
)
garbage_lines = st.lists(
    st.binary(max_size=80)
    | json_values.map(lambda v: json.dumps(v).encode("utf-8"))
    | damaged_records.map(lambda r: json.dumps(r).encode("utf-8")),
    min_size=1,
    max_size=4,
)


def test_garbage_in_the_queue_journal_keeps_every_readable_change():
    problems, examples = [], [0]

    @FUZZ
    @given(lines=garbage_lines, at=st.integers(0, 6), torn_tail=st.binary(min_size=1, max_size=60))
    def check(lines, at, torn_tail):
        examples[0] += 1
        directory = tempfile.mkdtemp(prefix="plexsync-fuzz-queue-")
        try:
            queue = FileQueue(directory)
            for sid in ("1", "2", "3", "4", "5"):
                queue.enqueue(sid, ["title"])
            path = os.path.join(directory, "queue.jsonl")
            with open(path, "rb") as fh:
                records = fh.read().split(b"\n")[:-1]
            garbage = [line.replace(b"\n", b" ") for line in lines]
            at = min(at, len(records))
            damaged = (
                b"\n".join(records[:at] + garbage + records[at:]) + b"\n" + torn_tail.replace(b"\n", b" ")
            )
            with open(path, "wb") as fh:
                fh.write(damaged)
            reported = []
            first = FileQueue(directory, on_corrupt=reported.append)
            scenes = {j.scene_id for j in first.jobs()}
            found = []
            if not {"1", "2", "3", "4", "5"} <= scenes:
                found.append("jobs lost: %s" % sorted({"1", "2", "3", "4", "5"} - scenes))
            moved = quarantined_files(directory)
            if reported:
                if len(moved) != 1:
                    found.append("damage reported but %d files moved aside" % len(moved))
                else:
                    with open(os.path.join(directory, moved[0]), "rb") as fh:
                        if fh.read() != damaged:
                            found.append("the file moved aside is not the damaged journal byte for byte")
                if "\n" in str(reported[0]) or "queue.jsonl" not in str(reported[0]):
                    found.append("unclear damage report: %s" % reported[0])
            for job in first.lease(10, 60.0):  # the damaged queue still works, step by step
                first.nack(job, "plex_timeout", "fuzz", retry_at=0)
            first.summary()
            FileQueue(directory).enqueue("6", ["title"])
            again = {j.scene_id for j in FileQueue(directory, on_corrupt=reported.append).jobs()}
            if again != scenes | {"6"}:
                found.append("a second reader disagrees: %s vs %s" % (sorted(again), sorted(scenes | {"6"})))
            problems.extend("%s <- %r" % (p, garbage) for p in found)
            assert not found, found
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    try:
        check()
    finally:
        _record("queue.jsonl garbage", examples[0], problems, jobs=5)


STATE_FILES = (
    "circuit_breaker.json",
    "stats.json",
    "sync_state.json",
    "match_cache.json",
    "health.json",
    "outages.json",
    "drain_request.json",
    "settings_cache.json",
    "plex_index.json",
    "reconcile.json",
    "sync_state.jsonl",
    "match_cache.jsonl",
    "plex_index.jsonl",
    "poster_memo.jsonl",
    "handover.json",
    "filtered.json",
    "watcher.json",
    "plex_client.json",
    "earlier_data_folders.json",
)
file_garbage = (
    st.binary(max_size=120)
    | json_values.map(lambda v: json.dumps(v).encode("utf-8"))
    | st.binary(min_size=1, max_size=40).map(lambda b: b'{"state": "open", "x": ' + b)
)


def _read_everything(plugin_dir: str, data_dir: str) -> None:
    """Everything a hook, a status report and a drain read from the data folder."""
    import plexsync
    from stashplugin.settings import read_hook_cache
    from stashplugin.task import TaskContext, adopt_earlier_queues
    from sync.drain_marker import DrainMarker
    from sync.sync_state import SyncState
    from worker.breaker import CircuitBreaker, FileBreakerStorage
    from worker.errors import SyncFailure
    from worker.filtered import FilteredScenes
    from worker.handover import take_record
    from worker.health import HealthResult, ProbeRecord
    from worker.matcher import MatchCache
    from worker.outages import OutageHistory
    from worker.paths import PathMapper
    from worker.plex import client_identifier
    from worker.plex_index import PlexIndex
    from worker.plex_writer import PosterMemo
    from worker.stats import SyncStats
    from worker.status import collect_status
    from worker.watcher import watcher_status

    settings = read_hook_cache(plugin_dir)
    plexsync.drain_wanted(data_dir, True, time.time(), check_queue=True)
    DrainMarker(data_dir).is_fresh()
    ctx = TaskContext({"PluginDir": plugin_dir}, {}, settings)
    collect_status(ctx)
    breaker = CircuitBreaker(FileBreakerStorage(data_dir))
    breaker.record_failure(SyncFailure("plex_unreachable", "refused"))
    SyncStats(data_dir).record_run({"synced": 1, "ended_at": time.time()})
    state = SyncState(data_dir)
    state.record("1", "h", None, time.time())
    state.flush()
    cache = MatchCache(data_dir, signature=["fuzz"])
    cache.get("1")
    cache.put("1", {"rating_key": 1})
    cache.flush()
    index = PlexIndex(data_dir)
    index.full_rebuild_needed()
    index.lookup("/media/a.mp4", PathMapper([]))
    index.forget(1)
    index.flush()
    history = OutageHistory(data_dir)
    history.start("fuzz", time.time())
    history.end(time.time(), jobs_affected=1)
    ProbeRecord(data_dir).record(HealthResult(True, True, None, 1.0, "", ""), time.time())
    memo = PosterMemo(data_dir, batched=True)
    memo.get("1")
    memo.set("1", {"poster": "h"})
    memo.flush()
    take_record(data_dir, time.time())
    filtered = FilteredScenes(data_dir)
    filtered.counts()
    filtered.note("2", "organized only")
    filtered.flush()
    watcher_status(data_dir)
    client_identifier(data_dir)
    adopt_earlier_queues(ctx)


def test_garbage_in_any_state_file_is_moved_aside_and_nothing_breaks():
    problems, examples = [], [0]

    @FUZZ
    @given(name=st.sampled_from(STATE_FILES), garbage=file_garbage)
    def check(name, garbage):
        examples[0] += 1
        root = tempfile.mkdtemp(prefix="plexsync-fuzz-state-")
        plugin_dir, data_dir = root, os.path.join(root, "data")
        os.makedirs(data_dir)
        found = []
        try:
            FileQueue(data_dir).enqueue("7", ["title"])
            with open(os.path.join(data_dir, name), "wb") as fh:
                fh.write(garbage)
            try:
                _read_everything(plugin_dir, data_dir)
            except Exception as exc:  # noqa: BLE001 - this is what the test is looking for
                found.append("%s: %s" % (type(exc).__name__, exc))
            if "7" not in {j.scene_id for j in FileQueue(data_dir).jobs()}:
                found.append("the queued change is gone")
            for moved in quarantined_files(data_dir):
                with open(os.path.join(data_dir, moved), "rb") as fh:
                    if fh.read() != garbage:
                        found.append("%s is not the damaged file byte for byte" % moved)
            problems.extend("%s: %s <- %r" % (name, p, garbage[:80]) for p in found)
            assert not found, found
        finally:
            shutil.rmtree(root, ignore_errors=True)

    try:
        check()
    finally:
        _record("state file garbage", examples[0], problems, jobs=1)
