"""Stash's server_connection is read one way (stashplugin/connection.py) by every client of Stash:
the hook's bare-socket drain request, the watcher's session renewal and the tasks' GraphQL client
all reach an IPv6 Stash and send its session cookie (a small raw HTTP server on ::1)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stashplugin.connection import stash_address
from stashplugin.drain_request import ask_stash_to_drain
from stashplugin.stash import StashClient
from worker.watcher import renew_session

COOKIE = {"Name": "session", "Value": "cookie-value-123"}


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


@pytest.fixture
def ipv6_stash():
    if not _ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback")
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            query = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))["query"]
            seen.append({"host": self.headers.get("Host"), "cookie": self.headers.get("Cookie")})
            data = {
                "runPluginTask": "42",
                "configuration": {"general": {"maxSessionAge": 3600}},
                "findScenes": {"count": 0, "scenes": []},
            }
            body = json.dumps({"data": data}).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if "PlexSyncKeepAlive" in query:
                self.send_header("Set-Cookie", "session=renewed-456; Path=/; HttpOnly")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = _IPv6Server(("::1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    conn = {"Scheme": "http", "Host": "::1", "Port": server.server_address[1], "SessionCookie": dict(COOKIE)}
    yield conn, seen
    server.shutdown()
    server.server_close()


def test_the_hook_reaches_an_ipv6_stash_with_its_cookie(ipv6_stash):
    conn, seen = ipv6_stash
    assert ask_stash_to_drain(conn) == ""
    assert seen == [{"host": "[::1]:%d" % conn["Port"], "cookie": "session=cookie-value-123"}]


def test_the_watcher_renews_its_session_with_an_ipv6_stash(ipv6_stash):
    conn, seen = ipv6_stash
    assert renew_session(conn) == 3600.0
    assert seen[0]["cookie"] == "session=cookie-value-123"
    assert conn["SessionCookie"]["Value"] == "renewed-456"  # the renewed cookie is adopted
    renew_session(conn)
    assert seen[1]["cookie"] == "session=renewed-456"


def test_a_task_queries_an_ipv6_stash_with_its_cookie(ipv6_stash):
    conn, seen = ipv6_stash
    client = StashClient(conn)
    assert client.url == "http://[::1]:%d" % conn["Port"]
    client.query("query { findScenes { count } }")
    assert seen[0]["cookie"] == "session=cookie-value-123"


@pytest.mark.parametrize(
    "host, bare, url",
    [
        ("0.0.0.0", "localhost", "http://localhost:9999"),  # Stash listening on every address
        ("::", "localhost", "http://localhost:9999"),
        ("", "localhost", "http://localhost:9999"),
        ("::1", "::1", "http://[::1]:9999"),
        ("[fe80::1]", "fe80::1", "http://[fe80::1]:9999"),
        ("192.168.1.5", "192.168.1.5", "http://192.168.1.5:9999"),
    ],
)
def test_every_client_reads_the_same_address(host, bare, url):
    address = stash_address({"Host": host, "Port": 9999})
    assert (address.host, address.url) == (bare, url)
