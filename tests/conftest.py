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


@pytest.fixture
def plugin_dir(tmp_path):
    """The plugin installed into a fresh folder, as Stash unpacks it (data goes to <dir>/data)."""
    from tests.package import install

    return install(str(tmp_path / "plugins" / "PlexSync"))


@pytest.fixture
def runner(plugin_dir):
    from tests.emulators.plugin_runner import PluginRunner

    # No PYTHONPATH: the installed copy must run on its own files, as in Stash.
    return PluginRunner(plugin_dir, python=sys.executable, env={"PYTHONPATH": None})
