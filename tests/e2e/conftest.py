"""End-to-end fixtures: the `world` of emulators/world.py for each test."""

from __future__ import annotations

import pytest

from emulators.world import start_world


@pytest.fixture
def world(plugin_dir):
    w = start_world(plugin_dir, recovery_rates="")
    yield w
    w.stop()
