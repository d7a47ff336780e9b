"""Reliability tests: print the torture summary table at the end of `make torture`."""
from __future__ import annotations

from tests.conftest import TORTURE


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """After a torture run, one table: trials, kills, jobs, lost = 0, corrupt = 0."""
    if not TORTURE:
        return
    from tests.reliability import torture_summary

    terminalreporter.section("PlexSync torture summary")
    for line in torture_summary.table().splitlines():
        terminalreporter.write_line(line)
