"""Stash's real GraphQL schema, read out of the stash-graphql-client wheel.

The wheel (``.cache/stash-schema/stash_graphql_client-<ver>-py3-none-any.whl``,
fetched by ``make schema``) ships upstream Stash's ``graphql/schema`` folder as
``stash_graphql_client/schema/**/*.graphql``.  The package itself wants
Python >= 3.12 and is never imported: the ``.graphql`` files are read straight
out of the zip, concatenated and built with graphql-core's ``build_schema``.

Set ``STASH_SCHEMA_WHEEL`` to use another wheel file.
"""

from __future__ import annotations

import os
import threading
import zipfile
from pathlib import Path
from typing import List, Optional

from graphql import GraphQLSchema, build_schema

WHEEL_VERSION = "0.12.12"
WHEEL_NAME = "stash_graphql_client-%s-py3-none-any.whl" % WHEEL_VERSION
SCHEMA_PREFIX = "stash_graphql_client/schema/"

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "stash-schema"

_lock = threading.Lock()
_schema: Optional[GraphQLSchema] = None
_sdl: Optional[str] = None


class SchemaWheelMissing(RuntimeError):
    """The wheel holding Stash's schema has not been downloaded."""


def wheel_path() -> Path:
    """The wheel to read: $STASH_SCHEMA_WHEEL, the pinned version, or any cached version."""
    env = os.environ.get("STASH_SCHEMA_WHEEL")
    if env:
        return Path(env)
    pinned = CACHE_DIR / WHEEL_NAME
    if pinned.is_file():
        return pinned
    others = sorted(CACHE_DIR.glob("stash_graphql_client-*-py3-none-any.whl"))
    return others[-1] if others else pinned


def schema_files(path: Optional[Path] = None) -> List[str]:
    path = path or wheel_path()
    with zipfile.ZipFile(str(path)) as zf:
        return sorted(n for n in zf.namelist() if n.startswith(SCHEMA_PREFIX) and n.endswith(".graphql"))


def load_sdl() -> str:
    """The concatenated schema text (cached)."""
    global _sdl
    with _lock:
        if _sdl is None:
            path = wheel_path()
            if not path.is_file():
                raise SchemaWheelMissing(
                    "Stash's GraphQL schema wheel is missing: %s. Run `make schema` (it downloads "
                    "stash-graphql-client==%s with pip download) or set STASH_SCHEMA_WHEEL."
                    % (path, WHEEL_VERSION)
                )
            with zipfile.ZipFile(str(path)) as zf:
                names = sorted(
                    n for n in zf.namelist() if n.startswith(SCHEMA_PREFIX) and n.endswith(".graphql")
                )
                if not names:
                    raise SchemaWheelMissing(
                        "%s holds no %s*.graphql files; run `make schema` again" % (path, SCHEMA_PREFIX)
                    )
                _sdl = "\n".join(zf.read(n).decode("utf-8") for n in names)
        return _sdl


def load_schema() -> GraphQLSchema:
    """Stash's schema as a graphql-core GraphQLSchema (built once, cached)."""
    global _schema
    sdl = load_sdl()
    with _lock:
        if _schema is None:
            _schema = build_schema(sdl)
        return _schema


__all__ = ["load_schema", "load_sdl", "wheel_path", "schema_files", "SchemaWheelMissing"]
