"""Ask Stash to run the plugin's own "Process Queue" task, from the hook, cheaply.

The preferred drain is a normal Stash job (progress bar, log lines, Cancel), queued with the
GraphQL mutation `runPluginTask`. The hook sends it as one HTTP/1.1 request over a plain socket:
`http.client` and `requests` cost several times a bare Python start to import, and the hook
runs once per saved scene. If Stash cannot be asked, a detached background drain is started
instead; it must not inherit the hook's stdout/stderr, because Stash reads those until EOF and
the save would wait for the whole drain.
"""

from __future__ import annotations

import json
import os
import sys

from stashplugin.connection import cookie_header, stash_address, tls_context
from stashplugin.log import redact
from stashplugin.settings import PLUGIN_ID

PROCESS_QUEUE_TASK = "Process Queue"
UNREACHABLE = "Stash could not be reached"
_MUTATION = "mutation PlexSyncDrain($p: ID!, $t: String!) { runPluginTask(plugin_id: $p, task_name: $t) }"
_JOB_QUEUE = "query PlexSyncJobs { jobQueue { id status description } }"
# How Stash names a plugin task's job: internal/manager/task_plugin.go (RunPluginTask) adds it as
# "Running plugin task: <task name>" (the description argument, which PlexSync never sends,
# would replace the name). A job still READY has not started: it will see every queued change.
WAITING_DRAIN_JOB = "Running plugin task: %s" % PROCESS_QUEUE_TASK


def _http_post(server_connection: dict, path: str, body: bytes, timeout: float) -> tuple:
    """POST `body` to Stash; returns (status, response body). Raises OSError on network errors."""
    import socket

    address = stash_address(server_connection)
    headers = [
        "POST %s HTTP/1.1" % path,
        "Host: %s" % address.netloc,
        "Content-Type: application/json",
        "Accept: application/json",
        "Content-Length: %d" % len(body),
        "Connection: close",
    ]
    cookie = cookie_header(server_connection)
    if cookie:
        headers.append("Cookie: %s" % cookie)
    request = ("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + body
    sock = socket.create_connection((address.host, address.port), timeout=timeout)
    try:
        if address.scheme == "https":
            sock = tls_context().wrap_socket(sock, server_hostname=address.host)
        sock.sendall(request)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    finally:
        sock.close()
    raw = b"".join(chunks)
    head, _, payload = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0
    if b"transfer-encoding: chunked" in head.lower():
        payload = _dechunk(payload)
    return status, payload


def _dechunk(data: bytes) -> bytes:
    out, pos = [], 0
    while pos < len(data):
        end = data.find(b"\r\n", pos)
        if end < 0:
            break
        size = int(data[pos:end].split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out.append(data[end + 2 : end + 2 + size])
        pos = end + 2 + size + 2
    return b"".join(out)


def ask_stash_to_drain(server_connection: dict, timeout: float = 3.0) -> str:
    """Queue the "Process Queue" task in Stash. Returns "" on success, else why it failed."""
    body = json.dumps({"query": _MUTATION, "variables": {"p": PLUGIN_ID, "t": PROCESS_QUEUE_TASK}}).encode(
        "utf-8"
    )
    try:
        status, payload = _http_post(server_connection, "/graphql", body, timeout)
    except (OSError, ValueError) as exc:
        return "%s (%s)" % (UNREACHABLE, type(exc).__name__)
    if status != 200:
        return "Stash answered HTTP %d" % status
    try:
        answer = json.loads(payload.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return "Stash's answer was not JSON"
    return _refusal(answer)


def drain_waiting_in_stash(server_connection: dict, timeout: float = 3.0) -> bool:
    """Is a "Process Queue" job waiting in Stash's job queue (one small GraphQL query)?

    Asked only when an earlier request went stale: Stash runs one job at a time, and during a
    scan or an Identify our request waits behind it for longer than any marker stays fresh.
    False when Stash cannot tell us (a new request is then the safe choice).
    """
    body = json.dumps({"query": _JOB_QUEUE}).encode("utf-8")
    try:
        status, payload = _http_post(server_connection, "/graphql", body, timeout)
        answer = json.loads(payload.decode("utf-8")) if status == 200 else None
    except (OSError, ValueError):
        return False
    data = answer.get("data") if isinstance(answer, dict) else None
    jobs = data.get("jobQueue") if isinstance(data, dict) else None
    return any(
        isinstance(job, dict) and job.get("status") == "READY" and job.get("description") == WAITING_DRAIN_JOB
        for job in jobs or ()
    )


def _refusal(answer) -> str:
    """ "" when `answer` is a GraphQL result carrying a job id, else why the task was refused."""
    if not isinstance(answer, dict):
        return "Stash refused the task (an answer that is not a GraphQL result)"
    errors = answer.get("errors")
    data = answer.get("data")
    job = data.get("runPluginTask") if isinstance(data, dict) else None
    if not errors and job not in (None, "", False):
        return ""
    message = "no job id"
    if isinstance(errors, list) and errors:
        first = errors[0]
        message = first.get("message") if isinstance(first, dict) else first
    elif errors:
        message = errors
    text = redact(" ".join(str(message).split()))[:200] or "no reason given"
    return "Stash refused the task (%s)" % text


def spawn_detached(argv: list, cwd: str, stdin_bytes: bytes) -> str:
    """Start `argv` detached from this process and from Stash, `stdin_bytes` on its stdin.

    It inherits none of our pipes (Stash reads a hook's stdout and stderr until EOF, so an
    inherited pipe would hold the save) and is never waited for. Returns "" on success, else
    the system's reason.
    """
    import subprocess

    kwargs = {
        "stdin": subprocess.PIPE,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
        "close_fds": True,
        "cwd": cwd,
    }
    if os.name == "nt":  # pragma: no cover - Windows only
        kwargs["creationflags"] = (
            getattr(subprocess, "DETACHED_PROCESS", 0x8)
            | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200)
            | getattr(subprocess, "CREATE_NO_WINDOW", 0x8000000)
        )
    else:
        kwargs["start_new_session"] = True
    try:
        proc = subprocess.Popen(argv, **kwargs)
        proc.stdin.write(stdin_bytes)
        proc.stdin.close()
    except OSError as exc:
        return str(exc)
    proc.returncode = 0  # never waited for: it outlives this process (no ResourceWarning at exit)
    return ""


def start_background_drain(server_connection: dict, plugin_dir: str) -> str:
    """Start a detached drain process; returns "" on success, else why it failed."""
    payload = json.dumps(
        {"server_connection": server_connection, "args": {"mode": "process_queue", "background": True}}
    ).encode("utf-8")
    problem = spawn_detached([sys.executable, os.path.join(plugin_dir, "plexsync.py")], plugin_dir, payload)
    return "could not start a background drain (%s)" % problem if problem else ""


def request_drain(server_connection: dict, plugin_dir: str) -> tuple:
    """Make sure a drain will run: Stash task first, detached process second.

    Returns (how, problem): how is "task", "background" or "" (nothing worked).
    """
    problem = ask_stash_to_drain(server_connection)
    if not problem:
        return "task", ""
    if problem.startswith(UNREACHABLE):
        # A background drain needs Stash too (settings, scenes): starting one would only fail.
        return "", problem
    fallback = start_background_drain(server_connection, plugin_dir)
    if not fallback:
        return "background", problem
    return "", problem + "; " + fallback
