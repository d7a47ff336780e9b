"""Integration fixtures: a Plex emulator over real HTTP, with the calling test module's TOKEN."""
from __future__ import annotations

import pytest

from tests.emulators.plex import PlexEmulator


@pytest.fixture
def plex(request):
    emulator = PlexEmulator(token=request.module.TOKEN, quiet=True).start()
    yield emulator
    emulator.stop()
