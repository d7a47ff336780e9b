"""Shared fixtures: an installed copy of the plugin, and torture-run sizing."""
from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORTURE = os.environ.get("PLEXSYNC_TORTURE") == "1"


def scaled(bounded: int, torture: int) -> int:
    """How many trials a reliability test runs: bounded in `make test`, long in `make torture`."""
    return torture if TORTURE else bounded


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def python():
    return sys.executable
