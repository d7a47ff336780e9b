"""One Plex connection per process, configured once: timeouts, TLS, token, identity, request counting.

**Identity.** Plex lists every client that uses a token as a device, keyed by the
`X-Plex-Client-Identifier` header. plexapi's default identifier is derived from the machine's MAC
address, so a recreated Docker container showed up as a new device with a "new device" notice
each time. PlexSync creates one identifier the first time it talks to Plex, keeps it in the data
folder (`plex_client.json`), and sends it with the product "PlexSync", its version and a device
name on every Plex request: plexapi's through `plexapi.BASE_HEADERS` (the dict every PlexServer
request copies, plexapi/server.py `PlexServer._headers`), the health probe's through
`identity_headers()`. The token never goes into that file.
"""

from __future__ import annotations

import os
import re
import uuid

from stashplugin import log
from sync.store import JsonFile

IDENTITY_FILE = "plex_client.json"
PRODUCT = "PlexSync"
DEVICE_NAME = "Stash"
_PLUGIN_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_state = {"data_dir": None, "headers": None}


def plugin_version(root: str = _PLUGIN_ROOT) -> str:
    """PlexSync's version, as its manifest (PlexSync.yml) states it."""
    try:
        with open(os.path.join(root, "PlexSync.yml"), encoding="utf-8") as fh:
            for line in fh:
                match = re.match(r"version:\s*[\"']?([^\"'\s#]+)", line)
                if match:
                    return match.group(1)
    except OSError:
        pass
    return "0"


def client_identifier(data_dir: str) -> str:
    """This installation's X-Plex-Client-Identifier: read from the data folder, created the first
    time (under the file's lock, so two processes starting at once agree on one)."""

    def create_once(data):
        if not isinstance(data.get("identifier"), str) or not data["identifier"]:
            data = {"identifier": str(uuid.uuid4()), "product": PRODUCT}
        return data

    store = JsonFile(
        os.path.join(data_dir, IDENTITY_FILE),
        on_corrupt=lambda exc: log.warning("%s; Plex will list PlexSync as a new device once" % exc),
    )
    current = store.read().get("identifier")
    if isinstance(current, str) and current:
        return current
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    return store.update(create_once)["identifier"]


def use_identity(data_dir: str) -> None:
    """Identify this process to Plex with the identifier kept in `data_dir` (made on first use)."""
    _state["data_dir"] = data_dir
    _state["headers"] = None


def identity_headers() -> dict:
    """The X-Plex-* identity headers for every request to Plex ({} until `use_identity`)."""
    if _state["headers"] is None:
        if not _state["data_dir"]:
            return {}
        _state["headers"] = {
            "X-Plex-Client-Identifier": client_identifier(_state["data_dir"]),
            "X-Plex-Product": PRODUCT,
            "X-Plex-Version": plugin_version(),
            "X-Plex-Device-Name": DEVICE_NAME,
        }
    return dict(_state["headers"])


def _apply_to_plexapi(headers: dict) -> None:
    """Put the identity where plexapi reads it: its module constants and, in place, the
    BASE_HEADERS dict that plexapi.server imported (rebinding it would not reach that copy)."""
    import plexapi  # plexapi only where Plex is talked to: every task imports this module (use_identity)

    names = {
        "X-Plex-Client-Identifier": "X_PLEX_IDENTIFIER",
        "X-Plex-Product": "X_PLEX_PRODUCT",
        "X-Plex-Version": "X_PLEX_VERSION",
        "X-Plex-Device-Name": "X_PLEX_DEVICE_NAME",
    }
    for header, value in headers.items():
        setattr(plexapi, names[header], value)
    plexapi.BASE_HEADERS.update(headers)


class RequestCounter:
    """Counts HTTP requests sent to Plex (for the drain summary and the benchmarks)."""

    def __init__(self):
        self.total = 0
        self.by_method = {}

    def __call__(self, response, *args, **kwargs):
        self.total += 1
        method = getattr(response.request, "method", "?")
        self.by_method[method] = self.by_method.get(method, 0) + 1
        return response


def connect(settings):
    """Connect to Plex with the user's settings; returns (PlexServer, RequestCounter).

    Raises the underlying exception (classified by worker.errors.classify) when Plex cannot be
    reached or refuses the token.
    """
    from plexapi.server import PlexServer

    from stashplugin.http_session import Session

    log.add_secret(settings.plex_token)
    headers = identity_headers()
    if headers:
        _apply_to_plexapi(headers)
    session = Session()  # a requests.Session that reads the proxy environment once
    session.verify = not settings.skip_tls_verify
    if settings.skip_tls_verify:
        try:
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        except Exception:  # pragma: no cover - cosmetic only
            pass
    counter = RequestCounter()
    session.hooks["response"].append(counter)
    # plexapi passes its timeout straight to requests, so a (connect, read) pair works.
    timeout = (float(settings.connect_timeout), float(settings.read_timeout))
    server = PlexServer(settings.plex_url, settings.plex_token, session=session, timeout=timeout)
    return server, counter
