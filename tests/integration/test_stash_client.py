"""The Stash client turns any odd answer into one StashError sentence (a small raw HTTP server)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stashplugin.stash import StashClient, StashError


@pytest.fixture
def odd_stash():
    answers = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, body = answers["next"]
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn = {
        "Scheme": "http",
        "Host": "127.0.0.1",
        "Port": server.server_address[1],
        "SessionCookie": {"Name": "session", "Value": "cookie-value-123"},
    }
    yield StashClient(conn), answers
    server.shutdown()


@pytest.mark.parametrize(
    "status, body, words",
    [
        (200, b"[1, 2]", "not a GraphQL result"),
        (200, b"not json", "not JSON"),
        (200, json.dumps({"errors": "boom"}).encode(), "boom"),
        (200, json.dumps({"errors": [{"message": "no such\nfield"}]}).encode(), "no such field"),
        (500, b"{}", "without data"),
        (401, b"{}", "refused the plugin's session"),
        (200, json.dumps({"data": {"findScenes": {"scenes": "x"}}}).encode(), "without a list of scenes"),
    ],
)
def test_odd_answers_become_one_clear_sentence(odd_stash, status, body, words):
    client, answers = odd_stash
    answers["next"] = (status, body)
    with pytest.raises(StashError) as err:
        client.find_scenes(["1"])
    assert words in str(err.value) and "\n" not in str(err.value)


def test_settings_of_odd_shape_read_as_none(odd_stash):
    client, answers = odd_stash
    answers["next"] = (200, json.dumps({"data": {"configuration": {"plugins": ["x"]}}}).encode())
    assert client.plugin_settings() == {}
