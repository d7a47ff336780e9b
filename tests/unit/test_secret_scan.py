"""The suite-wide secret scan (tests/conftest.py) really finds a leaked token."""

from __future__ import annotations

import os

from tests.conftest import find_leaks, register_secret


class FakeRun:
    def __init__(self, stdout="", stderr=""):
        self.stdout, self.stderr, self.command = stdout, stderr, ["python", "plexsync.py"]


def test_scan_finds_a_token_in_a_log_line_and_in_a_data_file(tmp_path):
    register_secret("leaky-token-0123")
    assert find_leaks([FakeRun(stderr="\x01i\x02connecting with leaky-token-0123")], []) != []
    data = tmp_path / "plugins" / "PlexSync" / "data"
    data.mkdir(parents=True)
    (data / "stats.json").write_text('{"t": "leaky-token-0123"}')
    try:
        assert any(p.endswith("stats.json") for p in find_leaks([], [str(tmp_path)]))
    finally:
        os.remove(str(data / "stats.json"))  # planted on purpose: keep it out of the session-wide scan


def test_scan_is_quiet_when_nothing_leaked(tmp_path):
    register_secret("quiet-token-4567")
    data = tmp_path / "plugins" / "PlexSync" / "data"
    data.mkdir(parents=True)
    (data / "stats.json").write_text('{"t": "***"}')
    assert find_leaks([FakeRun(stderr="token ***")], [str(tmp_path)]) == []
