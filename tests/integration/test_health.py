"""The health probe against the Plex emulator over real HTTP, and the record of its last result."""

from __future__ import annotations

import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from emulators.plex import PlexEmulator
from emulators.world import PLEX_TOKEN
from worker.breaker import CLOSED, CircuitBreaker, MemoryBreakerStorage
from worker.health import HealthResult, ProbeRecord, probe


@pytest.fixture
def plex():
    server = PlexEmulator(token=PLEX_TOKEN, quiet=True).start()
    try:
        yield server
    finally:
        server.set_fault(None)
        server.stop()


def ask(plex, token=PLEX_TOKEN, read_timeout=5.0, deep=True):
    return probe(plex.url, token, connect_timeout=3.0, read_timeout=read_timeout, deep=deep)


def assert_no_token(result):
    assert PLEX_TOKEN not in repr(result) and PLEX_TOKEN not in result.describe()


# -- probe over HTTP -----------------------------------------------------------------------


def test_healthy_plex_reports_its_version(plex):
    result = ask(plex)
    assert result.healthy and result.reachable
    assert result.version == plex.version
    assert result.error_class == "" and result.failure() is None
    assert result.latency_ms is not None and result.latency_ms >= 0
    assert plex.version in result.describe()


def test_probe_asks_identity_then_the_library_with_the_token_in_a_header(plex):
    plex.clear_log()
    ask(plex)
    paths = [r.path for r in plex.requests]
    assert paths == ["/identity", "/library/sections"]
    assert all("X-Plex-Token" not in r.query for r in plex.requests)


def test_light_probe_asks_identity_only(plex):
    plex.clear_log()
    assert ask(plex, deep=False).healthy
    assert [r.path for r in plex.requests] == ["/identity"]


def test_plex_down_is_unreachable(plex):
    plex.set_fault("down")
    result = ask(plex)
    assert not result.reachable and not result.healthy
    assert result.error_class == "plex_unreachable" and result.outage
    assert "connection refused" in result.detail
    assert_no_token(result)


def test_plex_loading_its_database_answers_but_is_not_healthy(plex):
    plex.set_fault("db_loading")
    result = ask(plex)
    assert result.reachable and not result.healthy
    assert result.error_class == "plex_starting" and result.outage
    assert result.version == plex.version
    assert "not ready" in result.describe()
    assert_no_token(result)


def test_plex_answering_503_is_not_healthy(plex):
    plex.set_fault("503")
    result = ask(plex)
    assert result.reachable and not result.healthy
    assert result.error_class == "plex_unavailable" and result.outage
    assert "503" in result.detail
    assert_no_token(result)


def test_plex_slower_than_the_read_timeout_is_a_timeout(plex):
    plex.set_fault("slow", delay=3.0)
    result = ask(plex, read_timeout=0.5)
    assert not result.healthy
    assert result.error_class == "plex_timeout" and result.outage
    assert_no_token(result)


def test_refused_token_is_not_an_outage_and_leaves_the_breaker_alone(plex):
    plex.set_fault("401")
    result = ask(plex)
    assert result.reachable and not result.healthy
    assert result.error_class == "plex_unauthorized" and not result.outage
    assert "token" in result.describe()
    breaker = CircuitBreaker(MemoryBreakerStorage(), threshold=1)
    breaker.record_failure(result.failure())
    assert breaker.state == CLOSED and breaker.failure_count == 0
    assert_no_token(result)


def test_wrong_token_says_unauthorized_without_echoing_it(plex):
    wrong = "wrong-token-0b9f2c"
    result = ask(plex, token=wrong)
    assert result.error_class == "plex_unauthorized"
    assert wrong not in repr(result) and wrong not in result.describe()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_nothing_listening_is_unreachable():
    result = probe("http://127.0.0.1:%d" % free_port(), PLEX_TOKEN, connect_timeout=2, read_timeout=2)
    assert result.error_class == "plex_unreachable" and not result.reachable


def test_a_web_server_that_is_not_plex_is_not_healthy():
    class NotPlex(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<html><body>router login</body></html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotPlex)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        result = probe(
            "http://127.0.0.1:%d" % server.server_address[1], PLEX_TOKEN, connect_timeout=2, read_timeout=2
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.reachable and not result.healthy
    assert "Plex URL" in result.detail


def test_token_never_reaches_health_json(plex, tmp_path):
    record = ProbeRecord(str(tmp_path))
    for fault in ("down", "503", "db_loading", "401", None):
        plex.set_fault(fault)
        record.record(ask(plex), now=1000)
    assert PLEX_TOKEN not in (tmp_path / "health.json").read_text()


def test_probe_results_are_recorded_for_the_health_check(plex, tmp_path):
    record = ProbeRecord(str(tmp_path))
    plex.set_fault("db_loading")
    record.record(ask(plex), now=1000)
    last = ProbeRecord(str(tmp_path)).last_result()
    assert isinstance(last, HealthResult)
    assert last.reachable and not last.healthy and last.error_class == "plex_starting"


# -- the record (no Plex needed); when to probe is the breaker's alone (tests/unit/test_breaker.py) --


def test_corrupt_health_file_starts_afresh_with_a_warning(tmp_path, capsys):
    (tmp_path / "health.json").write_text("\x00\x01garbage")
    record = ProbeRecord(str(tmp_path))
    assert record.last_result() is None
    assert "health.json" in capsys.readouterr().err
    assert any(n.startswith("health.json.corrupt-") for n in os.listdir(tmp_path))
