"""One Plex connection per process, configured once: timeouts, TLS, token, request counting."""
from __future__ import annotations

from stashplugin import log


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
    import requests
    from plexapi.server import PlexServer

    log.add_secret(settings.plex_token)
    session = requests.Session()
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
