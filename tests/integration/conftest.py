"""Integration fixtures: a Plex emulator over real HTTP that accepts the tests' one Plex token
(`PLEX_TOKEN`, emulators/world.py), and a library shared by a Stash and a Plex emulator
(tests/integration/library.py)."""

from __future__ import annotations

import pytest

from emulators.plex import PlexEmulator
from emulators.stash import StashEmulator
from emulators.world import PLEX_TOKEN
from tests.integration.library import Library


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
