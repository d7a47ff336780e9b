"""Integration fixtures: a Plex emulator over real HTTP that accepts the tests' one Plex token
(`PLEX_TOKEN`, tests/world.py), and a library shared by a Stash and a Plex emulator
(tests/integration/library.py)."""

from __future__ import annotations

import pytest

from tests.emulators.plex import PlexEmulator
from tests.emulators.stash import StashEmulator
from tests.integration.library import Library
from tests.world import PLEX_TOKEN


@pytest.fixture
def plex():
    emulator = PlexEmulator(token=PLEX_TOKEN, quiet=True).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def lib(tmp_path):
    plex = PlexEmulator(token=PLEX_TOKEN, quiet=True).start()
    stash = StashEmulator().start()
    yield Library(stash, plex, str(tmp_path / "data"))
    stash.stop()
    plex.stop()
