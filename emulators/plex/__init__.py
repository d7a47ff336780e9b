"""Plex Media Server emulator for tests and `make demo`: real HTTP on 127.0.0.1, driven by plexapi.

from emulators.plex import PlexEmulator
plex = PlexEmulator(token="secret-token").start()
"""

from .model import EditError, Library, NotFoundError
from .server import FAULT_MODES, PlexEmulator, RequestRecord

__all__ = ['PlexEmulator', 'RequestRecord', 'Library', 'EditError', 'NotFoundError', 'FAULT_MODES']
