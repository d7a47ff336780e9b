"""A Stash server emulator: GraphQL over HTTP on Stash's real schema, plus the
plugin machinery (hooks run synchronously inside the mutation, tasks in a
one-at-a-time job queue) driven by ``emulators.plugin_runner``.

Usage::

    from emulators.stash import StashEmulator
    with StashEmulator(plugin_dir=".") as stash:       # start() / stop()
        sid = stash.add_scene("/data/a.mp4", title="A")
        conn = stash.server_connection()               # what Stash gives a plugin

See ``StashEmulator`` for the Python API and ``data.py`` for the data semantics.

How it maps to real Stash
-------------------------
* Every request is parsed and validated against the schema from the
  stash-graphql-client wheel; parse/validation errors answer HTTP 422 with
  ``extensions.code`` GRAPHQL_PARSE_FAILED / GRAPHQL_VALIDATION_FAILED (as gqlgen).
* Auth: the ``session`` cookie of ``server_connection()`` (or of a plugin
  process), or ``ApiKey`` header / ``apikey`` query parameter when ``api_key``
  is set.  Anything else gets 401.
* Post hooks: after the data change, one process per hook per object, in order,
  before the mutation answers.  hookContext = {id, type, input, inputFields}
  where ``input`` carries every field of the mutation's input type (null when
  not sent) and ``inputFields`` the keys actually sent; ``scenesUpdate`` passes
  the whole list as every scene's input (with that scene's inputFields) and
  ``bulkSceneUpdate`` the whole BulkSceneUpdateInput.  Scan-created scenes
  (``create_scene_via_scan``) and ``sceneCreate`` fire Scene.Create.Post with
  ``input: null`` and no ``inputFields``, as Stash's scene service does.
* A hook process gets its own session cookie that remembers (plugin, hook type);
  mutations sent with it do not re-trigger that plugin's hooks of that type
  (Stash's "visited plugin hooks").  Tasks inherit the requester's visited set.
* runPluginTask queues a job; one job runs at a time (a "Scanning..." job set
  with ``set_running_scan(True)`` occupies the queue like a real scan); stopJob
  SIGKILLs the plugin process.
* Fields the emulator does not model resolve to a valid default: null when
  nullable, otherwise [] / 0 / "" / false / {} / the first enum value.
  Mutations it does not implement answer a GraphQL error saying so.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from graphql import (
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
    OperationDefinitionNode,
    execute,
    parse,
    validate,
)

from ..plugin_runner import PluginConfigError, PluginRun, PluginRunner
from .data import ZERO_TIME, StashData, StashError, format_time, make_jpeg, scene_paths
from .schema import load_schema

STASH_VERSION = {"version": "v0.29.0", "hash": "0e1a2b3c4", "build_time": "2025-06-01 00:00:00"}


def default_args(operation: Optional[Dict[str, Any]]) -> Dict[str, str]:
    """An operation's `defaultArgs` as Stash passes them: strings. Stash reads them into a Go
    `map[string]string` (pkg/plugin/config.go OperationConfig.DefaultArgs, applied by
    pkg/plugin/args.go applyDefaultArgs), so `sleep: 0.6` arrives as "0.6" and `on: true` as "true"."""
    out = {}
    for key, value in ((operation or {}).get("defaultArgs") or {}).items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        out[str(key)] = "" if value is None else str(value)
    return out


JOB_STATUS = {
    "queued": "READY",
    "running": "RUNNING",
    "stopping": "STOPPING",
    "finished": "FINISHED",
    "failed": "FAILED",
    "cancelled": "CANCELLED",
}


# =========================================================================== records
class RequestRecord:
    """One HTTP request to /graphql."""

    def __init__(self, query: str, variables: Dict[str, Any], operation_name: Optional[str]) -> None:
        self.query = query or ""
        self.variables = variables or {}
        self.operation_name = operation_name
        self.operation: str = operation_name or ""
        self.fields: List[str] = []
        self.time = time.time()
        self.seconds = 0.0
        self.ok = False
        self.status = 0
        self.errors: List[Dict[str, Any]] = []
        self.blocked_seconds = 0.0  # time spent in post hooks during this request
        self.authenticated = False
        # who sent it: "session" (server_connection's cookie), "apikey", "hook", "task",
        # "operation" (runPluginOperation), or "" when unauthenticated
        self.client = ""

    def __repr__(self) -> str:  # pragma: no cover
        return "RequestRecord(%s, status=%s, ok=%s)" % (self.operation, self.status, self.ok)


class HookRun:
    """One hook process run for one object."""

    def __init__(
        self, scene_id: str, hook_type: str, hook_name: str, input: Any, input_fields: List[str]
    ) -> None:
        self.scene_id = scene_id
        self.hook_type = hook_type
        self.hook_name = hook_name
        self.input = input
        self.input_fields = input_fields
        self.args: Dict[str, Any] = {}
        self.started = time.time()
        self.blocked_seconds = 0.0
        self.returncode: Optional[int] = None
        self.output: Any = None
        self.error: Optional[str] = None
        self.logs: List[Tuple[str, str]] = []
        self.progress: List[float] = []
        self.run: Optional[PluginRun] = None
        self.done = False

    def __repr__(self) -> str:  # pragma: no cover
        return "HookRun(scene=%s, %s, rc=%s, blocked=%.3fs, error=%r)" % (
            self.scene_id,
            self.hook_type,
            self.returncode,
            self.blocked_seconds,
            self.error,
        )


class TaskRun:
    """One job in the emulated job queue (a plugin task, or the fake scan)."""

    def __init__(
        self,
        job_id: int,
        task_name: Optional[str],
        args: Dict[str, Any],
        description: str,
        kind: str = "task",
        visited: FrozenSet[Tuple[str, str]] = frozenset(),
    ) -> None:
        self.job_id = job_id
        self.id = str(job_id)
        self.kind = kind
        self.task_name = task_name
        self.args = args
        self.description = description
        self.status = "queued"
        self.logs: List[Tuple[str, str]] = []
        self.progress: List[float] = []
        self.output: Any = None
        self.error: Optional[str] = None
        self.returncode: Optional[int] = None
        self.added = time.time()
        self.started: Optional[float] = None
        self.ended: Optional[float] = None
        self.run: Optional[PluginRun] = None
        self.visited = visited
        self._handle: Any = None
        self._cancel = False
        self._scan_done = threading.Event()

    def __repr__(self) -> str:  # pragma: no cover
        return "TaskRun(%s #%s, %s, error=%r)" % (
            self.task_name or self.kind,
            self.id,
            self.status,
            self.error,
        )


class ImageRequest:
    def __init__(self, path: str, status: int) -> None:
        self.path = path
        self.status = status
        self.time = time.time()


class _Context:
    def __init__(
        self, emulator: "StashEmulator", visited: FrozenSet[Tuple[str, str]], record: RequestRecord
    ) -> None:
        self.emulator = emulator
        self.visited = visited
        self.record = record


# =========================================================================== defaults
def default_value(t: Any) -> Any:
    """A valid value for a field the emulator does not model."""
    if not isinstance(t, GraphQLNonNull):
        return None
    inner = t.of_type
    if isinstance(inner, GraphQLList):
        return []
    if isinstance(inner, GraphQLEnumType):
        return next(iter(inner.values))
    if isinstance(inner, GraphQLScalarType):
        return {
            "String": "",
            "Int": 0,
            "Float": 0.0,
            "Boolean": False,
            "ID": "0",
            "Time": ZERO_TIME,
            "Timestamp": ZERO_TIME,
            "Int64": 0,
            "Map": {},
            "BoolMap": {},
            "PluginConfigMap": {},
            "Any": None,
        }.get(inner.name, "")
    if isinstance(inner, GraphQLObjectType):
        return {"__typename": inner.name}
    if isinstance(inner, (GraphQLInterfaceType, GraphQLUnionType)):
        return {"__typename": None}  # resolved by _type_resolver to the first possible type
    return None


def full_input(t: Any, value: Any) -> Any:
    """The Go-marshalled form of a GraphQL input value: every field of an input
    object is present (null when not sent), in schema order."""
    if isinstance(t, GraphQLNonNull):
        t = t.of_type
    if value is None:
        return None
    if isinstance(t, GraphQLList):
        return [full_input(t.of_type, v) for v in value]
    if isinstance(t, GraphQLInputObjectType):
        return {name: full_input(field.type, value.get(name)) for name, field in t.fields.items()}
    return value


def _first_cookie(header: str, name: str) -> Optional[str]:
    """The value of the first cookie called `name` in a Cookie header (Go's Request.Cookie)."""
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None


# =========================================================================== HTTP
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: Tuple[str, int], handler: Any, emulator: "StashEmulator") -> None:
        self.emulator = emulator
        self.connections: set = set()
        self.conn_lock = threading.Lock()
        super().__init__(addr, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, TimeoutError)):
            return  # a client went away: not worth a traceback
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # Real Stash (Go net/http) and real Plex set TCP_NODELAY; without it the body of an answer
    # waits ~40 ms for the client's delayed ACK and every test and benchmark measures that stall.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    server_version = "StashEmulator/1"
    timeout = 60

    def setup(self) -> None:
        super().setup()
        with self.server.conn_lock:  # type: ignore[attr-defined]
            self.server.connections.add(self.connection)  # type: ignore[attr-defined]

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.conn_lock:  # type: ignore[attr-defined]
                self.server.connections.discard(self.connection)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence
        pass

    def _send(
        self, status: int, body: bytes, content_type: str, extra: Optional[Dict[str, str]] = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        renewed = getattr(self, "renewed_session", None)
        if renewed:
            self.send_header("Set-Cookie", renewed)
            self.renewed_session = None
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def do_POST(self) -> None:  # noqa: N802
        emu: StashEmulator = self.server.emulator  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        body = self._body()
        if parts.path.rstrip("/") != "/graphql":
            self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
            return
        try:
            payload = json.loads(body.decode("utf-8") or "{}")
            if not isinstance(payload, dict):
                raise ValueError("body is not a JSON object")
        except ValueError as exc:
            self._send(
                400,
                json.dumps(
                    {"errors": [{"message": "json body could not be decoded: %s" % exc}], "data": None}
                ).encode(),
                "application/json",
            )
            return
        status, out = emu._handle_graphql(self, payload, parse_qs(parts.query))
        self._send(status, out, "application/json" if status != 401 else "text/plain; charset=utf-8")

    def do_GET(self) -> None:  # noqa: N802
        emu: StashEmulator = self.server.emulator  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        qs = parse_qs(parts.query)
        if parts.path.rstrip("/") == "/graphql":
            payload: Dict[str, Any] = {"query": (qs.get("query") or [""])[0]}
            if qs.get("variables"):
                try:
                    payload["variables"] = json.loads(qs["variables"][0])
                except ValueError:
                    self._send(
                        400,
                        b'{"errors":[{"message":"variables could not be decoded"}],"data":null}',
                        "application/json",
                    )
                    return
            if qs.get("operationName"):
                payload["operationName"] = qs["operationName"][0]
            status, out = emu._handle_graphql(self, payload, qs)
            self._send(status, out, "application/json" if status != 401 else "text/plain; charset=utf-8")
            return
        if parts.path in ("", "/"):
            self._send(200, b"Stash emulator\n", "text/plain; charset=utf-8")
            return
        status, body, ctype = emu._handle_image(self, parts.path, qs)
        self._send(status, body, ctype)

    do_HEAD = do_GET


# =========================================================================== emulator
class StashEmulator:
    """Stash on 127.0.0.1 for tests and the demo.

    Parameters: ``plugin_dir`` (folder holding the plugin's .yml; plugin id = its
    stem), ``api_key`` (enables the ApiKey header, reported by
    ``configuration.general.apiKey``), ``port`` (0 = any free port), ``python``
    (replaces python/python3 in the manifest's exec), ``plugin_env`` (extra
    environment for plugin processes; None values remove a variable),
    ``hook_timeout`` (seconds a hook may block a save before it is killed and
    reported; Stash itself has none).
    """

    def __init__(
        self,
        plugin_dir: Any = None,
        api_key: Optional[str] = None,
        port: int = 0,
        python: str = sys.executable,
        plugin_env: Optional[Dict[str, Optional[str]]] = None,
        hook_timeout: float = 120.0,
        plugin_id: Optional[str] = None,
        session_age: float = 3600.0,
    ) -> None:
        self.schema = load_schema()
        # The session cookie a plugin process gets stops working after Stash's max session age
        # (pkg/session/session.go NewStore: sessionStore.MaxAge(GetMaxSessionAge()), default 1 h
        # in internal/manager/config/config.go; securecookie refuses an older timestamp). Real
        # Stash re-issues the cookie with a fresh time by Set-Cookie on each request it
        # authenticates with one (pkg/session/session.go GetSessionUserID: session.Save); the
        # emulator does too for plugin cookies and, like Go's Request.Cookie, reads the *first*
        # `session` cookie of a request. The browser session of `server_connection()` never expires.
        self.session_age = session_age
        self._token_born: Dict[str, float] = {}
        self.api_key = api_key
        self.port = port
        self.host = "127.0.0.1"
        self.connection_host = "127.0.0.1"  # "Host" given to plugins (real Stash often says 0.0.0.0)
        self.hook_timeout = hook_timeout
        self.data = StashData()
        self.config_dir = tempfile.mkdtemp(prefix="stash-emulator-")
        self.plugin_dir = os.path.abspath(str(plugin_dir)) if plugin_dir is not None else None
        self.runner: Optional[PluginRunner] = None
        if self.plugin_dir is not None:
            self.runner = PluginRunner(
                self.plugin_dir, python=python, env=plugin_env, plugin_id=plugin_id, cwd=self.config_dir
            )
        self.plugin_id: Optional[str] = self.runner.plugin_id if self.runner else None
        self.plugins_enabled = True
        self.version = STASH_VERSION[
            "version"
        ]  # what `version { version }` answers; set to test an older Stash
        self.log: List[Tuple[str, str]] = []  # what Stash itself logs about plugins (level, message)
        self._plugin_config: Dict[str, Dict[str, Any]] = {}
        self._tokens: Dict[str, FrozenSet[Tuple[str, str]]] = {}
        self._token_client: Dict[str, str] = {}
        self._session_token = self._new_token(frozenset(), "session")
        self.requests: List[RequestRecord] = []
        self.hook_runs: List[HookRun] = []
        self.hook_skips: List[Tuple[str, str]] = []
        self.task_runs: List[TaskRun] = []
        self.image_requests: List[ImageRequest] = []
        self._doc_cache: "OrderedDict[str, Tuple[Any, List[GraphQLError]]]" = OrderedDict()
        self._doc_lock = threading.Lock()
        self._jobs: Dict[int, TaskRun] = {}
        self._queue: List[TaskRun] = []
        self._current: Optional[TaskRun] = None
        self._cond = threading.Condition()
        self._next_job = 1
        self._stopping = False
        self._server: Optional[_Server] = None
        self._threads: List[threading.Thread] = []
        self._root = object()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "StashEmulator":
        if self._server is not None:
            return self
        self._stopping = False
        self._server = _Server((self.host, self.port), _Handler, self)
        self.port = self._server.server_address[1]
        t = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="stash-emulator-http",
            daemon=True,
        )
        t.start()
        w = threading.Thread(target=self._worker, name="stash-emulator-jobs", daemon=True)
        w.start()
        self._threads = [t, w]
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            for job in self._queue:
                job.status = "cancelled"
                job.ended = time.time()
            self._queue = []
            current = self._current
            if current is not None:
                current._cancel = True
                current._scan_done.set()
                if current._handle is not None:
                    current._handle.kill()
            self._cond.notify_all()
        server = self._server
        if server is not None:
            server.shutdown()
            with server.conn_lock:
                conns = list(server.connections)
            for conn in conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            server.server_close()
            self._server = None
        for t in self._threads:
            t.join(10)
        self._threads = []
        shutil.rmtree(self.config_dir, ignore_errors=True)

    def __enter__(self) -> "StashEmulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return "http://%s:%d" % (self.host, self.port)

    @property
    def graphql_url(self) -> str:
        return self.url + "/graphql"

    # ------------------------------------------------------------------ sessions
    def _new_token(self, visited: FrozenSet[Tuple[str, str]], client: str = "session") -> str:
        token = secrets.token_urlsafe(24)
        self._tokens[token] = frozenset(visited)
        self._token_client[token] = client
        self._token_born[token] = time.time()
        return token

    def _token_expired(self, token: str) -> bool:
        if self.session_age is None or self._token_client.get(token) == "session":
            return False
        return time.time() - self._token_born.get(token, 0.0) >= self.session_age

    @property
    def session_token(self) -> str:
        return self._session_token

    def server_connection(self, token: Optional[str] = None) -> Dict[str, Any]:
        """The ``server_connection`` Stash puts in a plugin's stdin."""
        return {
            "Scheme": "http",
            "Host": self.connection_host,
            "Port": self.port,
            "SessionCookie": {
                "Name": "session",
                "Value": token or self._session_token,
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
            },
            "Dir": self.config_dir,
            "PluginDir": self.plugin_dir,
        }

    def _authenticate(
        self,
        handler: BaseHTTPRequestHandler,
        qs: Dict[str, List[str]],
        record: Optional[RequestRecord] = None,
    ) -> Optional[FrozenSet[Tuple[str, str]]]:
        raw = handler.headers.get("Cookie")
        if raw:
            value = _first_cookie(raw, "session")
            if value is not None and value in self._tokens and not self._token_expired(value):
                client = self._token_client.get(value, "session")
                if record is not None:
                    record.client = client
                if client != "session":
                    renewed = self._new_token(self._tokens[value], client)
                    handler.renewed_session = "session=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax" % (
                        renewed,
                        int(self.session_age or 0),
                    )
                return self._tokens[value]
        if self.api_key:
            key = handler.headers.get("ApiKey") or (qs.get("apikey") or [""])[0]
            if key and secrets.compare_digest(key, self.api_key):
                if record is not None:
                    record.client = "apikey"
                return frozenset()
        return None

    def reload_plugins(self) -> None:
        """Re-read the plugin manifest (Stash's "Reload Plugins")."""
        if self.runner is not None:
            old = self.runner
            self.runner = PluginRunner(
                old.plugin_dir, python=old.python, env=old.env, plugin_id=old.plugin_id, cwd=old.cwd
            )

    # ------------------------------------------------------------------ plugin settings
    @property
    def plugin_settings(self) -> Dict[str, Any]:
        """Live dict: what ``configuration { plugins }`` returns for this plugin."""
        if self.plugin_id is None:
            raise RuntimeError("no plugin loaded (plugin_dir=None)")
        return self._plugin_config.setdefault(self.plugin_id, {})

    @plugin_settings.setter
    def plugin_settings(self, value: Dict[str, Any]) -> None:
        settings = self.plugin_settings
        settings.clear()
        settings.update(value)

    # ------------------------------------------------------------------ data helpers
    def add_studio(self, name: str, parent: Any = None) -> str:
        return str(self.data.add_studio(name, parent=parent))

    def add_performer(self, name: str, **fields: Any) -> str:
        return str(self.data.add_performer(name, **fields))

    def add_tag(self, name: str, **fields: Any) -> str:
        return str(self.data.add_tag(name, **fields))

    def add_group(self, name: str, **fields: Any) -> str:
        return str(self.data.add_group(name, **fields))

    def add_scene(
        self,
        path: Optional[str],
        size: int = 1000,
        title: Optional[str] = None,
        details: Optional[str] = None,
        date: Optional[str] = None,
        code: Optional[str] = None,
        director: Optional[str] = None,
        urls: Iterable[str] = (),
        studio: Any = None,
        performers: Iterable[Any] = (),
        tags: Iterable[Any] = (),
        organized: bool = False,
        duration: float = 60.0,
        **extra: Any,
    ) -> str:
        """Add a scene (no hooks).  ``extra``: rating100, o_counter, stash_ids, groups
        (names/ids or (name, scene_index)), created_at, updated_at (epoch, datetime or
        RFC3339), custom_fields, play_count, extra_paths, and file fields width,
        height, video_codec, audio_codec, format, frame_rate, bit_rate, oshash, md5."""
        return str(
            self.data.add_scene(
                path,
                size=size,
                title=title,
                details=details,
                date=date,
                code=code,
                director=director,
                urls=urls,
                studio=studio,
                performers=performers,
                tags=tags,
                organized=organized,
                duration=duration,
                **extra,
            )
        )

    def seed_scenes(self, n: int, path_prefix: str = "/data/videos", **kwargs: Any) -> List[str]:
        """Add ``n`` scenes quickly (see StashData.seed_scenes for options)."""
        return [str(i) for i in self.data.seed_scenes(n, path_prefix=path_prefix, **kwargs)]

    def update_scene(self, scene_id: Any, **fields: Any) -> None:
        """Change a scene directly, bump updated_at, run NO hooks."""
        self.data.update_scene_direct(scene_id, **fields)

    def delete_scene(self, scene_id: Any) -> None:
        self.data.delete_scene(scene_id)

    def set_cover(self, scene_id: Any, touch: bool = True) -> int:
        """Change the scene's cover (different screenshot bytes); bumps updated_at unless touch=False."""
        return self.data.set_cover(scene_id, touch=touch)

    def scene(self, scene_id: Any) -> Optional[Dict[str, Any]]:
        """The scene as a plain dict with Stash's field names, or None."""
        return self.data.scene_plain(scene_id, self.url)

    def scene_ids(self) -> List[str]:
        return [str(i) for i in sorted(self.data.scenes)]

    def create_scene_via_scan(self, path: str, **kwargs: Any) -> str:
        """What a library scan does for a new file: a bare scene (no title or
        metadata unless given) and a Scene.Create.Post hook whose hookContext is
        ``{"id": <id>, "type": "Scene.Create.Post", "input": null}`` - Stash's
        scanner passes no input and no inputFields.  Runs the hook synchronously."""
        sid = self.data.add_scene(path, **kwargs)
        record = RequestRecord("", {}, "scan")
        self._execute_post_hooks(_Context(self, frozenset(), record), sid, "Scene.Create.Post", None, None)
        return str(sid)

    # ------------------------------------------------------------------ records
    def count(self, pattern: Optional[str] = None) -> int:
        """Number of GraphQL requests (whose query contains ``pattern``)."""
        reqs = list(self.requests)
        if pattern is None:
            return len(reqs)
        return sum(1 for r in reqs if pattern in r.query)

    def clear_records(self) -> None:
        self.requests.clear()
        self.hook_runs.clear()
        self.hook_skips.clear()
        self.image_requests.clear()
        with self._cond:
            self.task_runs[:] = [t for t in self.task_runs if t.status in ("queued", "running", "stopping")]

    # ------------------------------------------------------------------ jobs
    def run_task(self, task_name: str, args: Optional[Dict[str, Any]] = None) -> str:
        """What the UI's task button does (runPluginTask): queue, return the job id."""
        return self._queue_task(task_name, dict(args or {}), None, frozenset())

    def task_run(self, job_id: Any) -> Optional[TaskRun]:
        return self._jobs.get(int(job_id))

    def set_running_scan(self, running: bool = True) -> None:
        """Put a "Scanning..." job in the queue (it holds the queue like a real scan)
        or finish it."""
        with self._cond:
            if running:
                if any(j.kind == "scan" and j.status in ("queued", "running") for j in self._jobs.values()):
                    return
                job = TaskRun(self._alloc_job_id(), None, {}, "Scanning...", kind="scan")
                self._jobs[job.job_id] = job
                self._queue.append(job)
            else:
                for job in list(self._jobs.values()):
                    if job.kind == "scan" and job.status in ("queued", "running"):
                        job._scan_done.set()
                        if job in self._queue:
                            self._queue.remove(job)
                            job.status = "finished"
                            job.ended = time.time()
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 30) -> bool:
        """Wait until the job queue is empty and nothing runs."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and self._current is None, timeout)

    def stop_job(self, job_id: Any) -> bool:
        with self._cond:
            job = self._jobs.get(int(job_id))
            if job is None or job.status not in ("queued", "running"):
                return False
            job._cancel = True
            if job in self._queue:
                self._queue.remove(job)
                job.status = "cancelled"
                job.ended = time.time()
                self._cond.notify_all()
                return True
            job.status = "stopping"
            job._scan_done.set()
            handle = job._handle
        if handle is not None:
            handle.kill()
        return True

    def _alloc_job_id(self) -> int:
        n = self._next_job
        self._next_job += 1
        return n

    def _queue_task(
        self,
        task_name: Optional[str],
        args: Dict[str, Any],
        description: Optional[str],
        visited: FrozenSet[Tuple[str, str]],
    ) -> str:
        runner = self._require_runner()
        merged: Dict[str, Any] = dict(args)
        if task_name is not None:
            op = runner.task_config(task_name)
            for key, value in default_args(op).items():
                merged.setdefault(key, value)
        # As internal/manager/task_plugin.go RunPluginTask names the job it adds to the JobManager
        # (pkg/job: one job runs at a time, the others wait as READY): the description, else the
        # task's name, after "Running plugin task: ". PlexSync looks for exactly this in jobQueue.
        desc = "Running plugin task: %s" % (description or task_name or runner.name)
        with self._cond:
            if self._stopping:
                raise StashError("the Stash emulator is stopping")
            job = TaskRun(self._alloc_job_id(), task_name, merged, desc, visited=visited)
            self._jobs[job.job_id] = job
            self.task_runs.append(job)
            self._queue.append(job)
            self._cond.notify_all()
        return job.id

    def _require_runner(self) -> PluginRunner:
        if self.runner is None:
            raise StashError("no plugin loaded in the Stash emulator")
        return self.runner

    def _worker(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._queue:
                    self._cond.wait()
                if self._stopping:
                    return
                job = self._queue.pop(0)
                job.status = "running"
                job.started = time.time()
                self._current = job
            try:
                if job.kind == "scan":
                    job._scan_done.wait()
                    job.status = "cancelled" if job._cancel else "finished"
                else:
                    self._execute_task(job)
            except Exception as exc:  # a broken plugin must not kill the queue
                job.error = "%s: %s" % (type(exc).__name__, exc)
                job.status = "failed"
            finally:
                with self._cond:
                    job.ended = time.time()
                    self._current = None
                    self._cond.notify_all()

    def _execute_task(self, job: TaskRun) -> None:
        runner = self._require_runner()
        op = runner.task_config(job.task_name) if job.task_name is not None else None
        # Made as the job starts, not when it was queued, as in Stash: RunPluginTask's job function
        # (internal/manager/task_plugin.go) calls PluginCache.CreateTask, whose makeServerConnection
        # (pkg/plugin/plugins.go) mints the cookie (pkg/session MakePluginCookie).
        token = self._new_token(job.visited, "task")
        with self._cond:
            if job._cancel:
                job.status = "cancelled"
                return
            job._handle = runner.start(
                job.args,
                self.server_connection(token),
                operation=op,
                on_log=lambda lvl, msg: job.logs.append((lvl, msg)),
                on_progress=job.progress.append,
                cwd=self.config_dir,
            )
        run = job._handle.wait(None)
        job.run = run
        job.returncode = run.returncode
        job.output = run.output
        job.error = run.error
        # Stash (internal/manager/task_plugin.go, RunPluginTask) only logs a plugin's error
        # ("Plugin returned error: ...") and the job function returns nil: the job is FINISHED.
        if run.error is not None:
            self.log.append(("e", "Plugin returned error: %s" % run.error))
        if job._cancel or run.killed:
            job.status = "cancelled"
        else:
            job.status = "finished"

    def _job_view(self, job: TaskRun) -> Dict[str, Any]:
        return {
            "id": job.id,
            "status": JOB_STATUS[job.status],
            "subTasks": [],
            "description": job.description,
            "progress": job.progress[-1] if job.progress else None,
            "startTime": format_time(job.started),
            "endTime": format_time(job.ended),
            "addTime": format_time(job.added),
            "error": job.error if job.status == "failed" else None,
        }

    # ------------------------------------------------------------------ hooks
    def _execute_post_hooks(
        self,
        ctx: _Context,
        object_id: int,
        hook_type: str,
        hook_input: Any,
        input_fields: Optional[List[str]],
    ) -> None:
        runner = self.runner
        if runner is None or not self.plugins_enabled:
            return
        hooks = runner.hook_configs(hook_type)
        if not hooks:
            return
        key = (runner.plugin_id, hook_type)
        if key in ctx.visited:
            self.hook_skips.append((str(object_id), hook_type))
            return
        for hook in hooks:
            token = self._new_token(ctx.visited | {key}, "hook")
            hook_context: Dict[str, Any] = {"id": int(object_id), "type": hook_type, "input": hook_input}
            if input_fields:
                hook_context["inputFields"] = list(input_fields)
            args: Dict[str, Any] = default_args(hook)
            args["hookContext"] = hook_context
            rec = HookRun(str(object_id), hook_type, hook["name"], hook_input, list(input_fields or []))
            rec.args = args
            self.hook_runs.append(rec)
            try:
                run = runner.run(
                    args,
                    self.server_connection(token),
                    timeout=self.hook_timeout,
                    operation=hook,
                    cwd=self.config_dir,
                )
            except (OSError, PluginConfigError) as exc:
                # Stash logs "error executing post hooks" and the save still succeeds
                rec.error = "error running plugin: %s" % exc
                rec.done = True
                return
            rec.run = run
            rec.blocked_seconds = run.wall_seconds
            rec.returncode = run.returncode
            rec.output = run.output
            rec.error = run.error
            rec.logs = list(run.logs)
            rec.progress = list(run.progress)
            rec.done = True
            ctx.record.blocked_seconds += run.wall_seconds

    # ------------------------------------------------------------------ GraphQL plumbing
    def _document(self, query: str) -> Tuple[Any, List[GraphQLError]]:
        with self._doc_lock:
            hit = self._doc_cache.get(query)
            if hit is not None:
                self._doc_cache.move_to_end(query)
                return hit
        try:
            doc = parse(query)
        except GraphQLError as exc:
            exc.extensions = {"code": "GRAPHQL_PARSE_FAILED"}
            result: Tuple[Any, List[GraphQLError]] = (None, [exc])
        else:
            errors = validate(self.schema, doc)
            for err in errors:
                err.extensions = {"code": "GRAPHQL_VALIDATION_FAILED"}
            result = (doc if not errors else None, list(errors))
        with self._doc_lock:
            self._doc_cache[query] = result
            if len(self._doc_cache) > 512:
                self._doc_cache.popitem(last=False)
        return result

    @staticmethod
    def _root_fields(doc: Any, operation_name: Optional[str]) -> List[str]:
        for definition in doc.definitions:
            if isinstance(definition, OperationDefinitionNode):
                if operation_name and (definition.name is None or definition.name.value != operation_name):
                    continue
                return [
                    sel.name.value
                    for sel in definition.selection_set.selections
                    if hasattr(sel, "name") and sel.name is not None and sel.__class__.__name__ == "FieldNode"
                ]
        return []

    def _handle_graphql(
        self, handler: BaseHTTPRequestHandler, payload: Dict[str, Any], qs: Dict[str, List[str]]
    ) -> Tuple[int, bytes]:
        t0 = time.monotonic()
        query = payload.get("query") or ""
        variables = payload.get("variables") or {}
        op_name = payload.get("operationName") or None
        rec = RequestRecord(query, variables if isinstance(variables, dict) else {}, op_name)
        self.requests.append(rec)
        try:
            visited = self._authenticate(handler, qs, rec)
            if visited is None:
                rec.status = 401
                rec.errors = [{"message": "unauthorized"}]
                return 401, b"unauthorized\n"
            rec.authenticated = True
            if not query:
                rec.status = 422
                rec.errors = [
                    {"message": "no operation provided", "extensions": {"code": "GRAPHQL_PARSE_FAILED"}}
                ]
                return 422, json.dumps({"errors": rec.errors, "data": None}).encode()
            doc, errors = self._document(query)
            if doc is None:
                rec.status = 422
                rec.errors = [e.formatted for e in errors]
                try:
                    parsed = parse(query)
                    rec.fields = self._root_fields(parsed, op_name)
                except GraphQLError:
                    pass
                rec.operation = op_name or (rec.fields[0] if rec.fields else "")
                return 422, json.dumps({"errors": rec.errors, "data": None}).encode()
            rec.fields = self._root_fields(doc, op_name)
            rec.operation = op_name or (rec.fields[0] if rec.fields else "")
            if not isinstance(variables, dict):
                rec.status = 422
                rec.errors = [{"message": "variables must be an object"}]
                return 422, json.dumps({"errors": rec.errors, "data": None}).encode()
            ctx = _Context(self, visited, rec)
            result = execute(
                self.schema,
                doc,
                root_value=self._root,
                context_value=ctx,
                variable_values=variables,
                operation_name=op_name,
                field_resolver=self._resolve,
                type_resolver=self._type_resolver,
            )
            body: Dict[str, Any] = {}
            status = 200
            if result.errors:
                rec.errors = [e.formatted for e in result.errors]
                body["errors"] = rec.errors
                if result.data is None and all(not e.path for e in result.errors):
                    status = 422  # variable coercion failed: gqlgen rejects the request
            body["data"] = result.data
            rec.status = status
            rec.ok = status == 200 and not result.errors
            return status, json.dumps(body, default=str).encode("utf-8")
        finally:
            rec.seconds = time.monotonic() - t0

    def _type_resolver(self, value: Any, info: Any, abstract_type: Any) -> Optional[str]:
        if isinstance(value, dict) and value.get("__typename"):
            return value["__typename"]
        possible = info.schema.get_possible_types(abstract_type)
        return possible[0].name if possible else None

    def _resolve(self, source: Any, info: Any, **args: Any) -> Any:
        if source is self._root:
            parent = info.parent_type.name
            handler = getattr(self, ("_q_" if parent == "Query" else "_m_") + info.field_name, None)
            if handler is not None:
                try:
                    return handler(info, **args)
                except (StashError, PluginConfigError) as exc:
                    raise GraphQLError(str(exc))
            if parent == "Mutation":
                raise GraphQLError("%s is not implemented by the Stash emulator" % info.field_name)
            return default_value(info.return_type)
        if isinstance(source, dict):
            try:
                value = source[info.field_name]
            except KeyError:
                return default_value(info.return_type)
            if callable(value):
                return value(info, **args)
            return value
        return default_value(info.return_type)

    # ------------------------------------------------------------------ views
    def _scene_view(self, rec: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        if rec is None:
            return None
        data = self.data
        base = self.url

        def groups(kind: str) -> List[Dict[str, Any]]:
            key = "group" if kind == "Group" else "movie"
            return [
                {key: self._group_view(g, kind), "scene_index": idx}
                for g, idx in rec["groups"]
                if g in data.groups
            ]

        return {
            "__typename": "Scene",
            "id": str(rec["id"]),
            "title": rec["title"],
            "code": rec["code"],
            "details": rec["details"],
            "director": rec["director"],
            "url": rec["urls"][0] if rec["urls"] else None,
            "urls": list(rec["urls"]),
            "date": rec["date"],
            "rating100": rec["rating100"],
            "organized": rec["organized"],
            "o_counter": rec["o_counter"],
            "interactive": False,
            "captions": [],
            "created_at": format_time(rec["created_at"]),
            "updated_at": format_time(rec["updated_at"]),
            "resume_time": rec.get("resume_time"),
            "play_duration": rec.get("play_duration"),
            "play_count": rec.get("play_count"),
            "play_history": [],
            "o_history": [],
            "files": lambda info, **a: [self._file_view(f, rec) for f in rec["files"]],
            "paths": lambda info, **a: scene_paths(base, rec),
            "scene_markers": [],
            "galleries": [],
            "studio": lambda info, **a: self._studio_view(rec["studio_id"]),
            "groups": lambda info, **a: groups("Group"),
            "movies": lambda info, **a: groups("Movie"),
            "tags": lambda info, **a: [self._tag_view(t) for t in rec["tag_ids"] if t in data.tags],
            "performers": lambda info, **a: [
                self._performer_view(p) for p in rec["performer_ids"] if p in data.performers
            ],
            "stash_ids": lambda info, **a: self._stash_ids(rec["stash_ids"], rec["updated_at"]),
            "custom_fields": dict(rec["custom_fields"]),
            "sceneStreams": lambda info, **a: [
                {
                    "url": "%s/scene/%d/stream" % (base, rec["id"]),
                    "mime_type": "video/mp4",
                    "label": "Direct stream",
                }
            ],
        }

    @staticmethod
    def _stash_ids(items: List[Dict[str, Any]], ts: int) -> List[Dict[str, Any]]:
        return [
            {
                "endpoint": s.get("endpoint", ""),
                "stash_id": s.get("stash_id", ""),
                "updated_at": s.get("updated_at") or format_time(ts),
            }
            for s in items
        ]

    def _file_view(self, f: Dict[str, Any], rec: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        def fingerprint(info: Any, type: str) -> Optional[str]:  # noqa: A002
            return {"oshash": f.get("oshash"), "md5": f.get("md5")}.get(type)

        fps = [{"type": "oshash", "value": f["oshash"]}] + (
            [{"type": "md5", "value": f["md5"]}] if f.get("md5") else []
        )
        return {
            "__typename": "VideoFile",
            "id": str(f["id"]),
            "path": f["path"],
            "basename": f["basename"],
            "parent_folder_id": str(f["folder_id"]),
            "zip_file_id": None,
            "parent_folder": lambda info, **a: self._folder_view(f["folder_path"]),
            "zip_file": None,
            "mod_time": format_time(f["mod_time"]),
            "size": f["size"],
            "fingerprint": fingerprint,
            "fingerprints": fps,
            "format": f["format"],
            "width": f["width"],
            "height": f["height"],
            "duration": f["duration"],
            "video_codec": f["video_codec"],
            "audio_codec": f["audio_codec"],
            "frame_rate": f["frame_rate"],
            "bit_rate": f["bit_rate"],
            "scenes": lambda info, **a: [self._scene_view(rec)] if rec is not None else [],
            "created_at": format_time(f["created_at"]),
            "updated_at": format_time(f["updated_at"]),
        }

    def _folder_view(self, path: str) -> Dict[str, Any]:
        folder = self.data.folders.get(path) or {
            "id": 0,
            "path": path,
            "created_at": 0,
            "updated_at": 0,
            "mod_time": 0,
        }
        base = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        return {
            "__typename": "Folder",
            "id": str(folder["id"]),
            "path": path,
            "basename": base,
            "parent_folder_id": None,
            "zip_file_id": None,
            "parent_folder": None,
            "parent_folders": [],
            "zip_file": None,
            "sub_folders": [],
            "mod_time": format_time(folder["mod_time"]),
            "created_at": format_time(folder["created_at"]),
            "updated_at": format_time(folder["updated_at"]),
        }

    def _count_scenes(self, key: str, oid: int) -> int:
        return sum(1 for s in list(self.data.scenes.values()) if oid in s[key])

    def _studio_view(self, sid: Optional[int]) -> Optional[Dict[str, Any]]:
        s = self.data.studios.get(sid) if sid is not None else None
        if s is None:
            return None
        return {
            "__typename": "Studio",
            "id": str(s["id"]),
            "name": s["name"],
            "url": s["urls"][0] if s["urls"] else None,
            "urls": list(s["urls"]),
            "parent_studio": lambda info, **a: self._studio_view(s.get("parent_id")),
            "child_studios": lambda info, **a: [
                self._studio_view(c["id"])
                for c in list(self.data.studios.values())
                if c.get("parent_id") == s["id"]
            ],
            "aliases": list(s["aliases"]),
            "details": s.get("details"),
            "image_path": "%s/studio/%d/image?t=%d" % (self.url, s["id"], s["updated_at"]),
            "scene_count": lambda info, depth=None: sum(
                1 for r in list(self.data.scenes.values()) if r["studio_id"] == s["id"]
            ),
            "created_at": format_time(s["created_at"]),
            "updated_at": format_time(s["updated_at"]),
        }

    def _performer_view(self, pid: Optional[int]) -> Optional[Dict[str, Any]]:
        p = self.data.performers.get(pid) if pid is not None else None
        if p is None:
            return None
        return {
            "__typename": "Performer",
            "id": str(p["id"]),
            "name": p["name"],
            "disambiguation": p.get("disambiguation"),
            "gender": p.get("gender"),
            "url": p["urls"][0] if p["urls"] else None,
            "urls": list(p["urls"]),
            "alias_list": list(p["aliases"]),
            "image_path": "%s/performer/%d/image?t=%d" % (self.url, p["id"], p["updated_at"]),
            "scene_count": lambda info, **a: self._count_scenes("performer_ids", p["id"]),
            "created_at": format_time(p["created_at"]),
            "updated_at": format_time(p["updated_at"]),
        }

    def _tag_view(self, tid: Optional[int]) -> Optional[Dict[str, Any]]:
        t = self.data.tags.get(tid) if tid is not None else None
        if t is None:
            return None
        return {
            "__typename": "Tag",
            "id": str(t["id"]),
            "name": t["name"],
            "description": t.get("description"),
            "aliases": list(t["aliases"]),
            "image_path": "%s/tag/%d/image?t=%d" % (self.url, t["id"], t["updated_at"]),
            "scene_count": lambda info, **a: self._count_scenes("tag_ids", t["id"]),
            "created_at": format_time(t["created_at"]),
            "updated_at": format_time(t["updated_at"]),
        }

    def _group_view(self, gid: Optional[int], typename: str = "Group") -> Optional[Dict[str, Any]]:
        g = self.data.groups.get(gid) if gid is not None else None
        if g is None:
            return None
        return {
            "__typename": typename,
            "id": str(g["id"]),
            "name": g["name"],
            "urls": list(g["urls"]),
            "front_image_path": "%s/group/%d/frontimage?t=%d" % (self.url, g["id"], g["updated_at"]),
            "scene_count": lambda info, **a: sum(
                1 for r in list(self.data.scenes.values()) if any(x == g["id"] for x, _ in r["groups"])
            ),
            "created_at": format_time(g["created_at"]),
            "updated_at": format_time(g["updated_at"]),
        }

    def _plugin_view(self) -> Dict[str, Any]:
        runner = self._require_runner()
        manifest = runner.manifest
        view: Dict[str, Any] = {}
        plugin = lambda info, **a: view  # noqa: E731
        view.update(
            {
                "__typename": "Plugin",
                "id": runner.plugin_id,
                "name": runner.name,
                "description": manifest.get("description"),
                "url": manifest.get("url"),
                "version": str(manifest["version"]) if manifest.get("version") is not None else None,
                "enabled": self.plugins_enabled,
                "tasks": [
                    {"name": op["name"], "description": op.get("description"), "plugin": plugin}
                    for op in runner._operations("tasks")
                ],
                "hooks": [
                    {
                        "name": op["name"],
                        "description": op.get("description"),
                        "hooks": list(op.get("triggeredBy") or []),
                        "plugin": plugin,
                    }
                    for op in runner._operations("hooks")
                ],
                "settings": [
                    {
                        "name": name,
                        "display_name": (cfg or {}).get("displayName"),
                        "description": (cfg or {}).get("description"),
                        "type": str((cfg or {}).get("type") or "STRING").upper(),
                    }
                    for name, cfg in runner.settings.items()
                ],
                "requires": [],
                "paths": {"javascript": [], "css": []},
            }
        )
        return view

    def _page(self, items: List[Any], ff: Optional[Dict[str, Any]]) -> List[Any]:
        ff = ff or {}
        per_page = ff.get("per_page")
        per_page = 25 if per_page is None else per_page
        if per_page < 0:
            return items
        page = max(1, ff.get("page") or 1)
        return items[(page - 1) * per_page : page * per_page]

    def _find_named(
        self,
        kind: str,
        ff: Optional[Dict[str, Any]],
        obj_filter: Optional[Dict[str, Any]],
        ids: Optional[List[Any]],
    ) -> Tuple[int, List[Dict[str, Any]]]:
        table = {
            "studio": self.data.studios,
            "performer": self.data.performers,
            "tag": self.data.tags,
            "group": self.data.groups,
        }[kind]
        items = list(table.values())
        if ids is not None:
            wanted = {int(i) for i in ids}
            items = [i for i in items if i["id"] in wanted]
        q = (ff or {}).get("q")
        if q:
            items = [
                i
                for i in items
                if q.lower() in i["name"].lower()
                or any(q.lower() in a.lower() for a in i.get("aliases") or [])
            ]
        for key, crit in (obj_filter or {}).items():
            if crit is None:
                continue
            if key != "name":
                raise StashError("%s_filter.%s is not implemented by the Stash emulator" % (kind, key))
            from .data import string_predicate

            pred = string_predicate(crit)
            items = [i for i in items if pred(i["name"])]
        sort = (ff or {}).get("sort") or "name"
        items.sort(
            key=lambda i: (i["name"].lower(), i["id"]) if sort == "name" else (i.get(sort) or 0, i["id"]),
            reverse=((ff or {}).get("direction") == "DESC"),
        )
        return len(items), self._page(items, ff)

    # ------------------------------------------------------------------ Query
    def _q_version(self, info: Any) -> Dict[str, Any]:
        return dict(STASH_VERSION, version=self.version)

    def _q_systemStatus(self, info: Any) -> Dict[str, Any]:  # noqa: N802
        os_name = {"win32": "windows", "darwin": "darwin"}.get(sys.platform, "linux")
        return {
            "databaseSchema": 72,
            "databasePath": os.path.join(self.config_dir, "stash-go.sqlite"),
            "configPath": os.path.join(self.config_dir, "config.yml"),
            "appSchema": 72,
            "status": "OK",
            "os": os_name,
            "workingDir": self.config_dir,
            "homeDir": os.path.expanduser("~"),
            "ffmpegPath": None,
            "ffprobePath": None,
        }

    def _q_configuration(self, info: Any) -> Dict[str, Any]:
        def plugins(info: Any, include: Optional[List[str]] = None) -> Dict[str, Any]:
            return {
                pid: dict(cfg)
                for pid, cfg in self._plugin_config.items()
                if include is None or pid in include
            }

        plugins_path = (
            os.path.dirname(self.plugin_dir) if self.plugin_dir else os.path.join(self.config_dir, "plugins")
        )
        return {
            "general": {
                "apiKey": self.api_key or "",
                "stashes": [{"path": "/data", "excludeVideo": False, "excludeImage": False}],
                "databasePath": os.path.join(self.config_dir, "stash-go.sqlite"),
                "configFilePath": os.path.join(self.config_dir, "config.yml"),
                "generatedPath": os.path.join(self.config_dir, "generated"),
                "metadataPath": os.path.join(self.config_dir, "metadata"),
                "cachePath": os.path.join(self.config_dir, "cache"),
                "blobsPath": os.path.join(self.config_dir, "blobs"),
                "scrapersPath": os.path.join(self.config_dir, "scrapers"),
                "pluginsPath": plugins_path,
                "parallelTasks": 1,
                "previewSegments": 12,
                "previewSegmentDuration": 0.75,
                "previewExcludeStart": "0",
                "previewExcludeEnd": "0",
                "logFile": "",
                "logOut": True,
                "logLevel": "Info",
                "logAccess": False,
                "createGalleriesFromFolders": False,
                "maxSessionAge": int(self.session_age) if self.session_age is not None else 3600,
            },
            "interface": {},
            "dlna": {},
            "scraping": {},
            "defaults": {},
            "ui": {},
            "plugins": plugins,
        }

    def _q_findScene(self, info: Any, id: Any = None, checksum: Optional[str] = None) -> Any:  # noqa: A002,N802
        if id is not None:
            try:
                return self._scene_view(self.data.scenes.get(int(id)))
            except ValueError:
                raise StashError("strconv.Atoi: parsing %r: invalid syntax" % id)
        if checksum:
            for rec in list(self.data.scenes.values()):
                if any(checksum in (f.get("md5"), f.get("oshash")) for f in rec["files"]):
                    return self._scene_view(rec)
        return None

    def _q_findSceneByHash(self, info: Any, input: Dict[str, Any]) -> Any:  # noqa: A002,N802
        want = {v for v in (input.get("checksum"), input.get("oshash")) if v}
        for rec in list(self.data.scenes.values()):
            if any(f.get("md5") in want or f.get("oshash") in want for f in rec["files"]):
                return self._scene_view(rec)
        return None

    def _scenes_result(
        self, count: int, recs: List[Dict[str, Any]], duration: float, size: float
    ) -> Dict[str, Any]:
        return {
            "count": count,
            "duration": duration,
            "filesize": size,
            "scenes": lambda info, **a: [self._scene_view(r) for r in recs],
        }

    def _q_findScenes(
        self,
        info: Any,
        scene_filter: Optional[Dict[str, Any]] = None,  # noqa: N802
        scene_ids: Optional[List[int]] = None,
        ids: Optional[List[Any]] = None,
        filter: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:  # noqa: A002
        wanted = ids if ids is not None else scene_ids
        return self._scenes_result(*self.data.find_scenes(filter, scene_filter, wanted))

    def _q_findScenesByPathRegex(self, info: Any, filter: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:  # noqa
        return self._scenes_result(*self.data.find_scenes(filter, None, None, path_regex=True))

    def _q_findFile(self, info: Any, id: Any = None, path: Optional[str] = None) -> Any:  # noqa: A002,N802
        f = None
        if id is not None:
            f = self.data.files.get(int(id)) if str(id).isdigit() else None
        elif path is not None:
            f = next((x for x in list(self.data.files.values()) if x["path"] == path), None)
        if f is None:
            raise StashError("file not found")
        owner = next(
            (r for r in list(self.data.scenes.values()) if any(x["id"] == f["id"] for x in r["files"])), None
        )
        return self._file_view(f, owner)

    def _q_allScenes(self, info: Any) -> List[Any]:  # noqa: N802
        return [self._scene_view(r) for r in sorted(list(self.data.scenes.values()), key=lambda r: r["id"])]

    def _q_sceneStreams(self, info: Any, id: Any = None) -> List[Any]:  # noqa: A002,N802
        if id is None or int(id) not in self.data.scenes:
            return []
        return [
            {"url": "%s/scene/%s/stream" % (self.url, id), "mime_type": "video/mp4", "label": "Direct stream"}
        ]

    def _by_id(self, view: Callable[[Optional[int]], Any], id: Any) -> Any:  # noqa: A002
        try:
            return view(int(id))
        except (TypeError, ValueError):
            raise StashError("strconv.Atoi: parsing %r: invalid syntax" % (id,))

    def _q_findStudio(self, info: Any, id: Any) -> Any:  # noqa: A002,N802
        return self._by_id(self._studio_view, id)

    def _q_findPerformer(self, info: Any, id: Any) -> Any:  # noqa: A002,N802
        return self._by_id(self._performer_view, id)

    def _q_findTag(self, info: Any, id: Any) -> Any:  # noqa: A002,N802
        return self._by_id(self._tag_view, id)

    def _q_findGroup(self, info: Any, id: Any) -> Any:  # noqa: A002,N802
        return self._by_id(self._group_view, id)

    def _q_findMovie(self, info: Any, id: Any) -> Any:  # noqa: A002,N802
        return self._by_id(lambda g: self._group_view(g, "Movie"), id)

    def _q_findStudios(
        self, info: Any, studio_filter: Any = None, filter: Any = None, ids: Any = None
    ) -> Any:  # noqa
        count, items = self._find_named("studio", filter, studio_filter, ids)
        return {"count": count, "studios": [self._studio_view(i["id"]) for i in items]}

    def _q_findPerformers(
        self,
        info: Any,
        performer_filter: Any = None,
        filter: Any = None,  # noqa
        performer_ids: Any = None,
        ids: Any = None,
    ) -> Any:
        count, items = self._find_named(
            "performer", filter, performer_filter, ids if ids is not None else performer_ids
        )
        return {"count": count, "performers": [self._performer_view(i["id"]) for i in items]}

    def _q_findTags(self, info: Any, tag_filter: Any = None, filter: Any = None, ids: Any = None) -> Any:  # noqa
        count, items = self._find_named("tag", filter, tag_filter, ids)
        return {"count": count, "tags": [self._tag_view(i["id"]) for i in items]}

    def _q_findGroups(self, info: Any, group_filter: Any = None, filter: Any = None, ids: Any = None) -> Any:  # noqa
        count, items = self._find_named("group", filter, group_filter, ids)
        return {"count": count, "groups": [self._group_view(i["id"]) for i in items]}

    def _q_allStudios(self, info: Any) -> List[Any]:  # noqa: N802
        return [self._studio_view(i) for i in sorted(self.data.studios)]

    def _q_allPerformers(self, info: Any) -> List[Any]:  # noqa: N802
        return [self._performer_view(i) for i in sorted(self.data.performers)]

    def _q_allTags(self, info: Any) -> List[Any]:  # noqa: N802
        return [self._tag_view(i) for i in sorted(self.data.tags)]

    def _q_allMovies(self, info: Any) -> List[Any]:  # noqa: N802
        return [self._group_view(i, "Movie") for i in sorted(self.data.groups)]

    def _q_stats(self, info: Any) -> Dict[str, Any]:
        scenes = list(self.data.scenes.values())
        return {
            "scene_count": len(scenes),
            "scenes_size": float(sum(f["size"] for s in scenes for f in s["files"][:1])),
            "scenes_duration": float(sum(f["duration"] for s in scenes for f in s["files"][:1])),
            "performer_count": len(self.data.performers),
            "studio_count": len(self.data.studios),
            "group_count": len(self.data.groups),
            "movie_count": len(self.data.groups),
            "tag_count": len(self.data.tags),
        }

    def _q_jobQueue(self, info: Any) -> List[Dict[str, Any]]:  # noqa: N802
        with self._cond:
            jobs = [j for j in self._jobs.values() if j.status in ("queued", "running", "stopping")]
        jobs.sort(key=lambda j: (j.status == "queued", j.job_id))
        return [self._job_view(j) for j in jobs]

    def _q_findJob(self, info: Any, input: Dict[str, Any]) -> Optional[Dict[str, Any]]:  # noqa: A002,N802
        try:
            job = self._jobs.get(int(input["id"]))
        except (TypeError, ValueError):
            return None
        return self._job_view(job) if job is not None else None

    def _q_plugins(self, info: Any) -> List[Dict[str, Any]]:
        return [self._plugin_view()] if self.runner is not None else []

    def _q_pluginTasks(self, info: Any) -> List[Dict[str, Any]]:  # noqa: N802
        return list(self._plugin_view()["tasks"]) if self.runner is not None and self.plugins_enabled else []

    def _q_logs(self, info: Any) -> List[Any]:
        return []

    # ------------------------------------------------------------------ Mutation
    def _input_type(self, info: Any, arg: str = "input") -> Any:
        return info.parent_type.fields[info.field_name].args[arg].type

    def _m_sceneUpdate(self, info: Any, input: Dict[str, Any]) -> Any:  # noqa: A002,N802
        rec = self.data.apply_scene_update(input["id"], input)
        self._execute_post_hooks(
            info.context,
            rec["id"],
            "Scene.Update.Post",
            full_input(self._input_type(info), input),
            list(input.keys()),
        )
        return self._scene_view(self.data.scenes.get(rec["id"]))

    def _m_scenesUpdate(self, info: Any, input: List[Dict[str, Any]]) -> Any:  # noqa: A002,N802
        item_type = self._input_type(info).of_type.of_type
        with self.data.lock:
            for item in input:
                self.data.get_scene(item["id"])
            recs = [self.data.apply_scene_update(item["id"], item) for item in input]
        # Real Stash passes the *whole list* as every scene's hookContext.input, with that scene's own
        # inputFields (internal/api/resolver_mutation_scene.go, ScenesUpdate: ExecutePostHooks(ctx,
        # scene.ID, hook.SceneUpdatePost, input, translator.getFields()) with `input` the slice).
        whole = [full_input(item_type, item) for item in input]
        for item, rec in zip(input, recs):
            self._execute_post_hooks(info.context, rec["id"], "Scene.Update.Post", whole, list(item.keys()))
        return [self._scene_view(self.data.scenes.get(r["id"])) for r in recs]

    def _m_bulkSceneUpdate(self, info: Any, input: Dict[str, Any]) -> Any:  # noqa: A002,N802
        ids = [int(i) for i in (input.get("ids") or [])]
        with self.data.lock:
            for sid in ids:
                self.data.get_scene(sid)
            recs = [self.data.apply_bulk_update(sid, input) for sid in ids]
        hook_input = full_input(self._input_type(info), input)
        fields = list(input.keys())
        for rec in recs:
            self._execute_post_hooks(info.context, rec["id"], "Scene.Update.Post", hook_input, fields)
        return [self._scene_view(self.data.scenes.get(r["id"])) for r in recs]

    def _m_sceneCreate(self, info: Any, input: Dict[str, Any]) -> Any:  # noqa: A002,N802
        rec = self.data.create_scene_from_input(input)
        self._execute_post_hooks(info.context, rec["id"], "Scene.Create.Post", None, None)
        return self._scene_view(rec)

    def _destroy_hook_input(self, base: Dict[str, Any], rec: Dict[str, Any]) -> Dict[str, Any]:
        out = dict(base)
        f = rec["files"][0] if rec["files"] else {}
        out.update(
            {"checksum": f.get("md5") or "", "oshash": f.get("oshash") or "", "path": f.get("path") or ""}
        )
        return out

    def _m_sceneDestroy(self, info: Any, input: Dict[str, Any]) -> bool:  # noqa: A002,N802
        rec = self.data.delete_scene(input["id"])
        hook_input = self._destroy_hook_input(full_input(self._input_type(info), input), rec)
        self._execute_post_hooks(info.context, rec["id"], "Scene.Destroy.Post", hook_input, None)
        return True

    def _m_scenesDestroy(self, info: Any, input: Dict[str, Any]) -> bool:  # noqa: A002,N802
        with self.data.lock:
            for sid in input["ids"]:
                self.data.get_scene(sid)
            recs = [self.data.delete_scene(sid) for sid in input["ids"]]
        base = full_input(self._input_type(info), input)
        for rec in recs:
            self._execute_post_hooks(
                info.context, rec["id"], "Scene.Destroy.Post", self._destroy_hook_input(base, rec), None
            )
        return True

    def _m_sceneGenerateScreenshot(self, info: Any, id: Any, at: Optional[float] = None) -> str:  # noqa: A002,N802
        self.data.set_cover(id)
        return "queued"

    def _m_studioCreate(self, info: Any, input: Dict[str, Any]) -> Any:  # noqa: A002,N802
        parent = self.data.id_ref("studio", input["parent_id"]) if input.get("parent_id") else None
        sid = self.data.add_studio(input["name"], parent=parent)
        s = self.data.studios[sid]
        s["urls"] = list(input.get("urls") or ([input["url"]] if input.get("url") else []))
        s["aliases"] = list(input.get("aliases") or [])
        s["details"] = input.get("details")
        return self._studio_view(sid)

    def _m_performerCreate(self, info: Any, input: Dict[str, Any]) -> Any:  # noqa: A002,N802
        pid = self.data.add_performer(
            input["name"], disambiguation=input.get("disambiguation"), gender=input.get("gender")
        )
        p = self.data.performers[pid]
        p["urls"] = list(input.get("urls") or [])
        p["aliases"] = list(input.get("alias_list") or [])
        return self._performer_view(pid)

    def _m_tagCreate(self, info: Any, input: Dict[str, Any]) -> Any:  # noqa: A002,N802
        tid = self.data.add_tag(input["name"], description=input.get("description"))
        self.data.tags[tid]["aliases"] = list(input.get("aliases") or [])
        return self._tag_view(tid)

    def _m_groupCreate(self, info: Any, input: Dict[str, Any]) -> Any:  # noqa: A002,N802
        gid = self.data.add_group(input["name"])
        self.data.groups[gid]["urls"] = list(input.get("urls") or [])
        return self._group_view(gid)

    # Renames, deletions and merges fire only the entity's own hook, never a scene hook, with the
    # hookContext of internal/api/resolver_mutation_{tag,performer,studio,group}.go: Update passes
    # the input and its fields; Destroy the input and no fields; the bulk destroys (tagsDestroy ...)
    # the whole list of ids for each id; TagsMerge the input with the destination's id. Group hooks
    # also fire the deprecated Movie hook of the same kind. PerformerMerge fires no hook.
    def _entity_hooks(
        self, ctx: Any, oid: Any, kind: str, event: str, hook_input: Any, fields: Optional[List[str]]
    ) -> None:
        name = {"tag": "Tag", "performer": "Performer", "studio": "Studio", "group": "Group"}[kind]
        self._execute_post_hooks(ctx, int(oid), "%s.%s.Post" % (name, event), hook_input, fields)
        if kind == "group":
            self._execute_post_hooks(ctx, int(oid), "Movie.%s.Post" % event, hook_input, fields)

    def _entity_update(self, info: Any, kind: str, input: Dict[str, Any]) -> int:  # noqa: A002
        oid = self.data.id_ref(kind, input["id"])
        if input.get("name") is not None:
            self.data.rename(kind, oid, input["name"])
        if kind == "studio" and "parent_id" in input:
            self.data.studios[oid]["parent_id"] = (
                self.data.id_ref("studio", input["parent_id"]) if input["parent_id"] else None
            )
        self._entity_hooks(
            info.context, oid, kind, "Update", full_input(self._input_type(info), input), list(input.keys())
        )
        return oid

    def _entity_destroy(self, info: Any, kind: str, input: Dict[str, Any]) -> bool:  # noqa: A002
        oid = self.data.id_ref(kind, input["id"])
        self.data.destroy(kind, oid)
        self._entity_hooks(
            info.context, oid, kind, "Destroy", full_input(self._input_type(info), input), None
        )
        return True

    def _entities_destroy(self, info: Any, kind: str, ids: List[Any]) -> bool:
        oids = [self.data.id_ref(kind, i) for i in ids]
        for oid in oids:
            self.data.destroy(kind, oid)
        for oid in oids:
            self._entity_hooks(info.context, oid, kind, "Destroy", list(ids), None)
        return True

    def _m_tagUpdate(self, info: Any, input: Dict[str, Any]) -> Any:  # noqa: A002,N802
        return self._tag_view(self._entity_update(info, "tag", input))

    def _m_performerUpdate(self, info: Any, input: Dict[str, Any]) -> Any:  # noqa: A002,N802
        return self._performer_view(self._entity_update(info, "performer", input))

    def _m_studioUpdate(self, info: Any, input: Dict[str, Any]) -> Any:  # noqa: A002,N802
        return self._studio_view(self._entity_update(info, "studio", input))

    def _m_groupUpdate(self, info: Any, input: Dict[str, Any]) -> Any:  # noqa: A002,N802
        return self._group_view(self._entity_update(info, "group", input))

    def _m_tagDestroy(self, info: Any, input: Dict[str, Any]) -> bool:  # noqa: A002,N802
        return self._entity_destroy(info, "tag", input)

    def _m_performerDestroy(self, info: Any, input: Dict[str, Any]) -> bool:  # noqa: A002,N802
        return self._entity_destroy(info, "performer", input)

    def _m_studioDestroy(self, info: Any, input: Dict[str, Any]) -> bool:  # noqa: A002,N802
        return self._entity_destroy(info, "studio", input)

    def _m_groupDestroy(self, info: Any, input: Dict[str, Any]) -> bool:  # noqa: A002,N802
        return self._entity_destroy(info, "group", input)

    def _m_tagsDestroy(self, info: Any, ids: List[Any]) -> bool:  # noqa: N802
        return self._entities_destroy(info, "tag", ids)

    def _m_performersDestroy(self, info: Any, ids: List[Any]) -> bool:  # noqa: N802
        return self._entities_destroy(info, "performer", ids)

    def _m_studiosDestroy(self, info: Any, ids: List[Any]) -> bool:  # noqa: N802
        return self._entities_destroy(info, "studio", ids)

    def _m_tagsMerge(self, info: Any, input: Dict[str, Any]) -> Any:  # noqa: A002,N802
        dest = self.data.id_ref("tag", input["destination"])
        self.data.merge("tag", input.get("source") or [], dest)
        self._execute_post_hooks(
            info.context, dest, "Tag.Merge.Post", full_input(self._input_type(info), input), None
        )
        return self._tag_view(dest)

    def _m_performerMerge(self, info: Any, input: Dict[str, Any]) -> Any:  # noqa: A002,N802
        dest = self.data.id_ref("performer", input["destination"])
        self.data.merge("performer", input.get("source") or [], dest)
        return self._performer_view(dest)

    def _m_configurePlugin(self, info: Any, plugin_id: str, input: Dict[str, Any]) -> Dict[str, Any]:  # noqa
        settings = self._plugin_config.setdefault(plugin_id, {})
        settings.clear()
        settings.update(input)
        return dict(settings)

    @staticmethod
    def _plugin_value(v: Optional[Dict[str, Any]]) -> Any:
        if v is None:
            return None
        if v.get("str") is not None:
            return v["str"]
        if v.get("i") is not None:
            return v["i"]
        if v.get("b") is not None:
            return v["b"]
        if v.get("f") is not None:
            return v["f"]
        if v.get("o") is not None:
            return {a["key"]: StashEmulator._plugin_value(a.get("value")) for a in v["o"]}
        if v.get("a") is not None:
            return [StashEmulator._plugin_value(x) for x in v["a"]]
        return None

    def _check_plugin(self, plugin_id: str) -> PluginRunner:
        runner = self._require_runner()
        if plugin_id != runner.plugin_id:
            raise StashError("no plugin with ID %s" % plugin_id)
        if not self.plugins_enabled:
            raise StashError("plugin %s is disabled" % plugin_id)
        return runner

    def _m_runPluginTask(
        self,
        info: Any,
        plugin_id: str,
        task_name: Optional[str] = None,  # noqa: N802
        description: Optional[str] = None,
        args: Optional[List[Dict[str, Any]]] = None,
        args_map: Optional[Dict[str, Any]] = None,
    ) -> str:
        self._check_plugin(plugin_id)
        if args_map is not None:
            merged = dict(args_map)
        else:
            merged = {a["key"]: self._plugin_value(a.get("value")) for a in (args or [])}
        return self._queue_task(task_name, merged, description, info.context.visited)

    def _m_runPluginOperation(self, info: Any, plugin_id: str, args: Optional[Dict[str, Any]] = None) -> Any:  # noqa
        runner = self._check_plugin(plugin_id)
        token = self._new_token(info.context.visited, "operation")
        run = runner.run(
            dict(args or {}), self.server_connection(token), timeout=self.hook_timeout, cwd=self.config_dir
        )
        if run.error is not None:
            raise StashError(run.error)
        return run.output

    def _m_stopJob(self, info: Any, job_id: Any) -> bool:  # noqa: N802
        try:
            return self.stop_job(int(job_id))
        except ValueError:
            return False

    def _m_stopAllJobs(self, info: Any) -> bool:  # noqa: N802
        for job in list(self._jobs.values()):
            if job.status in ("queued", "running"):
                self.stop_job(job.job_id)
        return True

    def _m_reloadPlugins(self, info: Any) -> bool:  # noqa: N802
        self.reload_plugins()
        return True

    def _m_setPluginsEnabled(self, info: Any, enabledMap: Dict[str, bool]) -> bool:  # noqa: N802,N803
        if self.plugin_id is not None and self.plugin_id in enabledMap:
            self.plugins_enabled = bool(enabledMap[self.plugin_id])
        return True

    # ------------------------------------------------------------------ images
    _IMAGE_RE = re.compile(
        r"^/(scene|studio|performer|tag|group)/(\d+)/(screenshot|image|frontimage|backimage)$"
    )

    def _handle_image(
        self, handler: BaseHTTPRequestHandler, path: str, qs: Dict[str, List[str]]
    ) -> Tuple[int, bytes, str]:
        m = self._IMAGE_RE.match(path)
        if m is None:
            self.image_requests.append(ImageRequest(path, 404))
            return 404, b"404 page not found\n", "text/plain; charset=utf-8"
        if self._authenticate(handler, qs) is None:
            self.image_requests.append(ImageRequest(path, 401))
            return 401, b"unauthorized\n", "text/plain; charset=utf-8"
        kind, oid = m.group(1), int(m.group(2))
        if kind == "scene":
            rec = self.data.scenes.get(oid)
            comment = "stash-emulator scene=%d cover=%d" % (oid, rec["cover_version"]) if rec else None
        else:
            table = {
                "studio": self.data.studios,
                "performer": self.data.performers,
                "tag": self.data.tags,
                "group": self.data.groups,
            }[kind]
            obj = table.get(oid)
            comment = (
                "stash-emulator %s=%d image=%d %s" % (kind, oid, obj["image_version"], m.group(3))
                if obj
                else None
            )
        if comment is None:
            self.image_requests.append(ImageRequest(path, 404))
            return 404, b"404 page not found\n", "text/plain; charset=utf-8"
        self.image_requests.append(ImageRequest(path, 200))
        return 200, make_jpeg(comment), "image/jpeg"


__all__ = ["StashEmulator", "RequestRecord", "HookRun", "TaskRun", "default_value", "full_input"]
