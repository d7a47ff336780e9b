"""Integration fixtures: a Plex emulator over real HTTP with the calling test module's TOKEN, and
a library shared by a Stash and a Plex emulator (tests/integration/library.py)."""

from __future__ import annotations

import pytest

from tests.emulators.plex import PlexEmulator
from tests.emulators.stash import StashEmulator
from tests.integration.library import TOKEN as LIBRARY_TOKEN
from tests.integration.library import Library


@pytest.fixture
def plex(request):
    emulator = PlexEmulator(token=request.module.TOKEN, quiet=True).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def lib(tmp_path):
    plex = PlexEmulator(token=LIBRARY_TOKEN, quiet=True).start()
    stash = StashEmulator().start()
    yield Library(stash, plex, str(tmp_path / "data"))
    stash.stop()
    plex.stop()
