"""Reliability tests: print the torture summary table at the end of `make torture`."""

from __future__ import annotations

import pytest

from tests.conftest import TORTURE


@pytest.fixture
def no_retry_wait(monkeypatch):
    """For fuzz tests that run Process Queue in this process: each example is about what an odd
    answer does to the change, not about when it is retried, so the drain does not wait for a
    retry before it stops (worker/drain.RETRY_WAIT_SECONDS; its own tests are elsewhere).
    Waiting would cost each failing example 10 to 20 s."""
    import worker.drain

    monkeypatch.setattr(worker.drain, "RETRY_WAIT_SECONDS", 0.0)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """After a torture run, one table: trials, kills, jobs, lost = 0, corrupt = 0."""
    if not TORTURE:
        return
    from tests.reliability import torture_summary

    terminalreporter.section("PlexSync torture summary")
    for line in torture_summary.table().splitlines():
        terminalreporter.write_line(line)
