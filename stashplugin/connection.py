"""Where the Stash that started us listens, and its session cookie: Stash's `server_connection`.

Read here once for every way PlexSync talks to Stash: the hook's bare-socket request
(stashplugin/drain_request.py), the watcher's session renewal (worker/watcher.py) and the tasks'
GraphQL client (stashplugin/stash.py). Standard library only: the hook imports it.

Stash fills `Scheme`, `Host` and `Port` from its own listening address (docs: Plugins.md,
"Plugin input"). A wildcard host (`0.0.0.0`, `::`, empty) is not an address to connect to and
means this machine. An IPv6 host may come bare (`::1`) or bracketed (`[::1]`): `host` is always
bare (for sockets), `netloc` brackets it (for a URL and the Host header).
"""

from __future__ import annotations

WILDCARD_HOSTS = ("0.0.0.0", "::", "")
DEFAULT_PORT = 9999


class StashAddress:
    """scheme ("http" or "https"), host (bare: "localhost", "192.168.1.5", "::1") and port.
    A plain class: `typing` would cost the hook more than the rest of this module."""

    __slots__ = ("scheme", "host", "port")

    def __init__(self, scheme: str, host: str, port: int):
        self.scheme, self.host, self.port = scheme, host, port

    @property
    def netloc(self) -> str:
        """host:port, an IPv6 host in brackets (RFC 3986), as a URL and the Host header want it."""
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "%s:%d" % (host, self.port)

    @property
    def url(self) -> str:
        return "%s://%s" % (self.scheme, self.netloc)


def stash_address(server_connection: dict) -> StashAddress:
    """The address to reach Stash at; ValueError when `Port` is not a number."""
    scheme = str(server_connection.get("Scheme") or "http").lower()
    host = str(server_connection.get("Host") or "").strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host in WILDCARD_HOSTS:
        host = "localhost"
    return StashAddress(scheme, host, int(server_connection.get("Port") or DEFAULT_PORT))


def session_cookie(server_connection: dict):
    """(name, value) of the session cookie Stash passed, or None (Stash without a password)."""
    cookie = server_connection.get("SessionCookie")
    if isinstance(cookie, dict) and cookie.get("Name") and cookie.get("Value"):
        return str(cookie["Name"]), str(cookie["Value"])
    return None


def cookie_header(server_connection: dict) -> str:
    """The Cookie header's value for Stash ("" without a session cookie)."""
    cookie = session_cookie(server_connection)
    return "%s=%s" % cookie if cookie else ""


def adopt_renewed_cookie(server_connection: dict, set_cookie_headers) -> None:
    """Keep the value of our session cookie that Stash sent back renewed (`Set-Cookie` headers):
    Stash renews the cookie of every request it authenticates with it (pkg/session/session.go,
    GetSessionUserID)."""
    cookie = server_connection.get("SessionCookie")
    if not isinstance(cookie, dict):
        return
    for header in set_cookie_headers:
        name, _, rest = header.partition("=")
        if name.strip() == cookie.get("Name"):
            cookie["Value"] = rest.split(";", 1)[0].strip()


def tls_context():
    """TLS for our own Stash on this machine: its certificate is often self-signed, so unchecked."""
    import ssl  # only for an https Stash: the hook does not pay for it otherwise

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
