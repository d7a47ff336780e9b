"""Stash emulator: a GraphQL server on Stash's real schema with Stash's plugin
machinery (synchronous post hooks, a one-at-a-time task queue).

    from emulators.stash import StashEmulator
"""

from .data import StashData, StashError, make_jpeg
from .schema import SchemaWheelMissing, load_schema
from .server import HookRun, RequestRecord, StashEmulator, TaskRun

__all__ = [
    "StashEmulator",
    "StashData",
    "StashError",
    "HookRun",
    "RequestRecord",
    "TaskRun",
    "load_schema",
    "SchemaWheelMissing",
    "make_jpeg",
]
