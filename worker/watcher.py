"""The watcher: one small detached process that brings syncing back when nobody is at the keyboard.

A plugin has no process of its own between Stash's calls. When a drain stops with work left
(Plex down, a retry due later) it starts the watcher (`start_watcher`) and exits. The watcher
sleeps until the next retry or probe time, asks Plex `/identity` (one cheap request), and as soon
as Plex answers asks Stash for a drain with the same `runPluginTask` request the hook makes. A
failed probe counts in the circuit breaker as a drain's would, so the breaker opens, the outage
is recorded, probes follow the breaker's pauses (up to 60 s), and the drain that finds Plex back
closes it and ramps up.
Then it exits: syncing itself stays a Stash job, with its progress bar, its log and Cancel. It
never sends Plex anything but that probe and never touches the queue.

The rules:
* At most one watcher: it holds `watcher.lock` while it lives (the OS releases it if the
  process dies). `start_watcher` starts none while that lock is held or while one it started a
  moment ago has not taken it yet (`watcher.json` says "starting"). Only a drain starts a
  watcher, never a hook: where Stash runs as PID 1 and does not reap orphans (Docker), an
  outage leaves one finished process behind at most, not one per save.
* It inherits nothing from Stash: stdout and stderr go to the null device, stdin is a pipe of
  the drain's own that carries the connection details (the Plex token and Stash's session cookie
  never touch a file or a command line) and is closed at once; a new session (POSIX) or a
  detached process group (Windows), so Stash's Cancel of the drain does not reach it.
* It exits when nothing is pending, after asking Stash once, after a day, on a 401 from Plex or
  Stash (a drain could not do better; the next edit or task asks again), and when Stash has not
  answered for an hour (gone for good). While Stash restarts it retries with backoff.
* Every minute (a third of Stash's session age if that is shorter) it sends Stash one small
  query with its cookie: Stash answers with the cookie renewed, which keeps the watcher's
  session alive through an outage longer than the session age, and shows Stash is still there.
* While a drain runs or has been requested (`drain_request.json` fresh) it only waits.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time

from stashplugin import log
from stashplugin.connection import adopt_renewed_cookie, cookie_header, stash_address, tls_context
from stashplugin.drain_request import (
    UNREACHABLE,
    ask_stash_to_drain,
    drain_waiting_in_stash,
    spawn_detached,
)
from sync.breaker_file import CLOSED, file_damaged, read_breaker_cheap
from sync.drain_marker import STALE, DrainMarker, drain_running
from sync.lock import FileLock
from sync.queue import FileQueue, queue_exists
from sync.store import atomic_write_bytes, read_json_quiet
from worker.attach import Attachment
from worker.breaker import MAX_PAUSE, CircuitBreaker, FileBreakerStorage, LogListener, OutageListener
from worker.errors import PLEX_UNAUTHORIZED
from worker.outages import OutageHistory

RECORD_NAME = "watcher.json"
LOCK_NAME = "watcher.lock"
MAX_LIFETIME = 24 * 3600.0  # a watcher outlives no day
STASH_GONE_AFTER = 3600.0  # Stash unreachable this long: it is gone for good
START_GRACE = 30.0  # a watcher just started has this long to take its lock
POLL_SECONDS = 2.0  # how often a sleeping watcher looks whether things changed
STASH_CHECK_SECONDS = 60.0  # how often a waiting watcher renews its Stash session (and sees Stash is there)
_RENEW = "query PlexSyncKeepAlive { configuration { general { maxSessionAge } } }"
PROBE_GAPS = (2.0, 4.0, 8.0, 15.0, 30.0)  # between probes while Plex stays down
STASH_GAPS = (5.0, 10.0, 20.0, 40.0, 60.0)  # between asks while Stash does not answer


def _record_path(data_dir: str) -> str:
    return os.path.join(data_dir, RECORD_NAME)


def _write_record(data_dir: str, **values) -> None:
    atomic_write_bytes(_record_path(data_dir), json.dumps(values).encode("utf-8"))


def _remove_record(data_dir: str) -> None:
    try:
        os.remove(_record_path(data_dir))
    except FileNotFoundError:
        pass


def watcher_status(data_dir: str, now: float | None = None) -> dict | None:
    """For View Queue Status: {"waiting": True, "until": <time>, "pid": n} while a watcher lives."""
    now = time.time() if now is None else now
    record = read_json_quiet(_record_path(data_dir))
    if not record:
        return None
    lock = FileLock(os.path.join(data_dir, LOCK_NAME))
    if lock.acquire(timeout=0):
        lock.release()
        started = record.get("state") == "starting" and 0 <= now - (record.get("at") or 0) < START_GRACE
        return {"waiting": True, "until": None, "pid": None} if started else None
    return {"waiting": True, "until": record.get("wake_at"), "pid": record.get("pid")}


# -- starting one (in the drain) ---------------------------------------------------------------
def start_watcher(server_connection: dict, plugin_dir: str, data_dir: str, settings, clock=time.time) -> str:
    """Start the watcher unless one lives or is starting; returns "started", "running" or why not."""
    lock = FileLock(os.path.join(data_dir, LOCK_NAME))
    if not lock.acquire(timeout=0):
        return "running"
    try:
        record = read_json_quiet(_record_path(data_dir))
        now = clock()
        if record.get("state") == "starting" and 0 <= now - (record.get("at") or 0) < START_GRACE:
            return "running"
        _write_record(data_dir, state="starting", at=now)
    finally:
        lock.release()
    payload = {
        "server_connection": server_connection,
        "args": {
            "watch": {
                "data_dir": data_dir,
                "plex_url": settings.plex_url,
                "plex_token": settings.plex_token,
                "verify_tls": not settings.skip_tls_verify,
                "connect_timeout": settings.connect_timeout,
                "read_timeout": min(settings.read_timeout, 30.0),
                "breaker_threshold": settings.breaker_threshold,
                "breaker_open_seconds": settings.breaker_open_seconds,
            }
        },
    }
    problem = _spawn_detached(
        [sys.executable, os.path.join(plugin_dir, "plexsync.py")],
        plugin_dir,
        json.dumps(payload).encode("utf-8"),
    )
    if problem:
        _remove_record(data_dir)
        return problem
    return "started"


def _spawn_detached(argv: list, cwd: str, stdin_bytes: bytes) -> str:
    """Start `argv` detached from this process and from Stash; "" on success, else why not."""
    problem = spawn_detached(argv, cwd, stdin_bytes)
    return "could not start the watcher (%s)" % problem if problem else ""


def continue_after_drain(ctx, report) -> None:
    """The drain is stopping: leave a watcher when work is left that no one else will start."""
    if report.error or ctx.settings.pause_sync:
        return  # a setting the user must fix, or sync paused: nothing could be sent anyway
    if report.handed_over:
        return  # a fresh drain was asked for and continues (worker/handover.py)
    summary = ctx.queue().summary()
    if summary.pending + summary.waiting == 0:
        return
    how = start_watcher(ctx.server_connection, ctx.plugin_dir, ctx.data_dir, ctx.settings)
    if how == "started":
        log.debug("Left a watcher to resume syncing when Plex or the next retry is due")
    elif how != "running":
        log.warning(
            "PlexSync %s; the %d waiting change(s) go out with the next edit or task."
            % (how, summary.pending + summary.waiting)
        )


# -- the watcher itself ----------------------------------------------------------------------------
def next_due(data_dir: str, now: float):
    """When a drain would next have work (a time, `now` if at once), or None when nothing is pending."""
    if not queue_exists(data_dir):
        return None
    summary = FileQueue(data_dir, clock=lambda: now).summary()
    if summary.pending + summary.inflight:
        due = now
    elif summary.waiting:
        due = summary.next_due_at or now
    else:
        return None
    breaker = read_breaker_cheap(data_dir, now)
    if breaker["state"] != CLOSED and breaker["next_probe_at"] is not None:
        due = max(due, breaker["next_probe_at"])  # a drain before the breaker's check would only stop
    return due


def _post_to_stash(server_connection: dict, query: dict, timeout: float) -> tuple:
    """POST one GraphQL document to Stash with the session cookie; (response, body)."""
    address = stash_address(server_connection)
    if address.scheme == "https":
        conn = http.client.HTTPSConnection(address.host, address.port, timeout=timeout, context=tls_context())
    else:
        conn = http.client.HTTPConnection(address.host, address.port, timeout=timeout)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if cookie_header(server_connection):
        headers["Cookie"] = cookie_header(server_connection)
    try:
        conn.request("POST", "/graphql", json.dumps(query).encode("utf-8"), headers)
        answer = conn.getresponse()
        return answer, answer.read()
    finally:
        conn.close()


def renew_session(server_connection: dict, timeout: float = 5.0):
    """One small request to Stash with the session cookie; returns Stash's session age in seconds
    (0 when it did not say), or None when Stash did not answer.

    Stash answers a request it authenticated with a cookie with the same cookie renewed
    (Set-Cookie, pkg/session/session.go GetSessionUserID), which is adopted here: the drain's
    cookie would otherwise expire after Stash's session age (1 h) while the watcher waits out
    a longer outage.
    """
    try:
        answer, body = _post_to_stash(server_connection, {"query": _RENEW}, timeout)
    except (OSError, ValueError, http.client.HTTPException):
        return None
    adopt_renewed_cookie(server_connection, answer.msg.get_all("Set-Cookie") or ())
    try:
        age = json.loads(body.decode("utf-8"))["data"]["configuration"]["general"]["maxSessionAge"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return 0.0
    return float(age) if isinstance(age, (int, float)) and not isinstance(age, bool) and age > 0 else 0.0


def _probe_plex(*args, **kwargs):
    """worker.health.probe, imported at the first probe: it loads requests, and the watcher is one
    small process that may wait a long time (or exit at once) before it probes."""
    from worker.health import probe

    return probe(*args, **kwargs)


def _drain_active(data_dir: str, clock=time.time) -> bool:
    return drain_running(data_dir) or DrainMarker(data_dir, clock=clock).is_fresh()


class Watcher:
    def __init__(
        self, server_connection: dict, config: dict, clock=time.time, sleep=time.sleep, probe=None, ask=None
    ):
        self.conn = server_connection
        self.data_dir = config["data_dir"]
        self.config = config
        self.clock = clock
        self.sleep = sleep
        self.probe = probe or _probe_plex
        self.ask = ask or ask_stash_to_drain
        self.lock = FileLock(os.path.join(self.data_dir, LOCK_NAME))
        self.probes = 0
        self._breaker = None
        self.renew = renew_session

    def run(self) -> str:
        """Wait, probe, ask for a drain; returns why it stopped."""
        if not self.lock.acquire(timeout=2.0):
            return "another watcher is waiting"
        try:
            return self._loop()
        finally:
            if self.lock.held:
                _remove_record(self.data_dir)
                self.lock.release()

    def _loop(self) -> str:
        self.started = self.clock()
        self._not_before = 0.0  # the next probe or ask, after a failed one
        self._probe_failures = self._stash_failures = 0
        self._stash_down_since = None
        self._renew_at = self.started  # at once: the drain's cookie may be well into its age already
        self._renew_every = STASH_CHECK_SECONDS
        self._written_wake = float("-inf")
        while True:
            now = self.clock()
            if now - self.started >= MAX_LIFETIME:
                return "a day has passed"
            if now >= self._renew_at:
                self._renew_session(now)
            if self._stash_down_since is not None and now - self._stash_down_since >= STASH_GONE_AFTER:
                return "Stash has not answered for an hour"
            wake = self._next_wake(now)
            if wake is None:
                return "nothing is waiting"
            if now < wake:
                self.sleep(min(wake - now, POLL_SECONDS))
                continue
            why = self._probe_and_ask(now)
            if why:
                return why

    def _renew_session(self, now: float) -> None:
        """Keep the session alive, and see that Stash is still there: while Plex stays down
        nothing else would, and a Stash gone for good must not keep a watcher."""
        age = self.renew(self.conn)
        if age is None:
            self._stash_down_since = self._stash_down_since or now
        else:
            self._stash_down_since = None
            self._renew_every = min(STASH_CHECK_SECONDS, age / 3.0) if age else STASH_CHECK_SECONDS
        self._renew_at = now + max(1.0, self._renew_every)

    def _next_wake(self, now: float):
        """When to probe next (None: nothing is waiting), noted in `watcher.json` for View Queue
        Status when it moved by a second or more (no write every poll)."""
        due = next_due(self.data_dir, now)
        if due is None:
            return None
        wake = max(due, self._not_before)
        if _drain_active(self.data_dir, self.clock):
            wake = now + POLL_SECONDS
        if abs(wake - self._written_wake) >= 1.0:
            _write_record(
                self.data_dir, state="waiting", pid=os.getpid(), started_at=self.started, wake_at=wake
            )
            self._written_wake = wake
        return wake

    def _probe_and_ask(self, now: float) -> str:
        """Probe Plex; when it answers, ask Stash for a drain. Why to stop, or "" to wait on."""
        breaker = self.breaker()
        if breaker is not None and not breaker.allow_request():
            return ""  # paused a little longer than it looked (another process probed meanwhile)
        result = self.probe(
            self.config.get("plex_url"),
            self.config.get("plex_token"),
            self.config.get("connect_timeout", 5.0),
            self.config.get("read_timeout", 30.0),
            self.config.get("verify_tls", True),
            deep=False,
        )
        self.probes += 1
        self._record_probe(result)
        if result.error_class == PLEX_UNAUTHORIZED:
            return "Plex refused the token"
        if not result.healthy:
            self._probe_failed(result, breaker)
            return ""
        self._probe_failures = 0
        return self._ask_for_drain(now)

    def _probe_failed(self, result, breaker) -> None:
        """Counted like a drain's failure: the breaker opens after its threshold (the outage is
        recorded, and the drain that finds Plex back ramps up), then paces the probes."""
        if breaker is not None:
            breaker.record_failure(result.failure())
        if breaker is None or breaker.state == CLOSED:
            self._not_before = self.clock() + PROBE_GAPS[min(self._probe_failures, len(PROBE_GAPS) - 1)]
            self._probe_failures += 1
        else:
            self._not_before = 0.0  # the breaker's pause says when to look next

    def _ask_for_drain(self, now: float) -> str:
        """Plex answers: ask Stash for a drain. Why to stop, or "" to wait on (busy, Stash away)."""
        problem = self._ask()
        if not problem:
            return "asked Stash for a drain"
        if problem == "busy":
            return ""
        if problem == "handed over":
            return "another watcher took over"
        if not problem.startswith(UNREACHABLE):
            return "Stash refused the drain request (%s)" % problem
        self._stash_down_since = self._stash_down_since or now
        self._not_before = self.clock() + STASH_GAPS[min(self._stash_failures, len(STASH_GAPS) - 1)]
        self._stash_failures += 1
        return ""

    def breaker(self):
        """The breaker as the drain sees it, re-read from its file before each use; None while its
        file is damaged (the next drain or task moves it aside and says so in Stash's log)."""
        if file_damaged(self.data_dir):
            return None
        if self._breaker is None:
            first = float(self.config.get("breaker_open_seconds") or 5.0)
            self._breaker = CircuitBreaker(
                FileBreakerStorage(self.data_dir),
                threshold=int(self.config.get("breaker_threshold") or 5),
                open_seconds=first,
                max_open_seconds=max(MAX_PAUSE, first),
                clock=self.clock,
                listeners=[LogListener(), OutageListener(OutageHistory(self.data_dir))],
            )
        else:
            self._breaker.refresh()
        return self._breaker

    def _record_probe(self, result) -> None:
        from worker.health import ProbeRecord  # see _probe_plex

        ProbeRecord(self.data_dir).record(result, self.clock())  # View Queue Status shows it

    def _ask(self) -> str:
        """Ask Stash for a drain as the hook does; "" when asked, "busy" when someone else is deciding."""
        marker = DrainMarker(self.data_dir, clock=self.clock)
        kind = marker.claim_request()
        if not kind:
            return "busy"
        if kind == STALE:
            if drain_waiting_in_stash(self.conn):
                return ""  # our earlier request waits in Stash's job queue behind a long job
        # Give up the watcher's place before the drain can start, so a drain that stops again at
        # once can leave a new watcher; this one exits unless the request fails.
        _remove_record(self.data_dir)
        self.lock.release()
        problem = self.ask(self.conn)
        if problem:
            marker.withdraw()
            if not self.lock.acquire(timeout=0):
                return "handed over"  # a new watcher took over meanwhile: this one is not needed
        return problem


def run_watcher(server_connection: dict, config: dict) -> str:
    """The watcher process's main (plexsync.py hands over here)."""
    data_dir = config.get("data_dir") or ""
    if not os.path.isdir(data_dir):
        return "no data folder"
    log.log_to_data_folder(data_dir)
    if config.get("plex_token"):
        log.add_secret(config["plex_token"])
    watcher = Watcher(server_connection, config)
    why = watcher.run()
    log.info("Watcher stopped: %s (%d probe(s) of Plex)" % (why, watcher.probes))
    return why


class WatcherStart(Attachment):
    """Work left and nobody at the keyboard: something must come back (the drain's last attachment)."""

    def after_drain(self, ctx, report) -> None:
        continue_after_drain(ctx, report)
