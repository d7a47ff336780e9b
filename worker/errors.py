"""What went wrong, in classes the queue, the breaker and the user all understand.

`classify(exc)` turns any exception raised while syncing one scene into a `SyncFailure` with an
error class (stored with the job, counted in the status report), whether it is transient (retry
with backoff) or permanent (dead-letter), whether it says Plex is down (counts toward the circuit
breaker and outage history), and one sentence for the user.
"""

from __future__ import annotations

# The error classes. Each failed job keeps its class in the queue file, the status report counts
# them and 'Also recover' names them, so the strings are part of the data folder's format.
PLEX_UNREACHABLE = "plex_unreachable"
PLEX_TIMEOUT = "plex_timeout"
PLEX_UNAVAILABLE = "plex_unavailable"
PLEX_STARTING = "plex_starting"
PLEX_UNAUTHORIZED = "plex_unauthorized"
PLEX_REJECTED = "plex_rejected"
NOT_IN_PLEX = "not_in_plex"
AMBIGUOUS_MATCH = "ambiguous_match"
NO_FILE = "no_file"
STASH_UNREACHABLE = "stash_unreachable"
INVALID_DATA = "invalid_data"
INVALID_SETTINGS = "invalid_settings"
INTERNAL = "internal"

# What a drain does with a failed job besides retrying it (transient) or dead-lettering it
# (permanent, or out of attempts); `worker.failures.decide` reads it from the table below.
RETRY = "retry"  # nothing more
STOP = "stop"  # give the job back and stop the drain: Plex refused the token
SETTINGS = "settings"  # give the job back and stop: a setting does not fit this Plex server
NOT_FOUND = "not_found"  # ask Plex to scan a new file; skip it when 'Skip scenes not in Plex' is on
TRACE = "trace"  # also log the traceback at debug level

# error class -> (transient, outage (Plex is down), what a drain does, what the user should do)
ERROR_CLASSES = {
    PLEX_UNREACHABLE: (
        True,
        True,
        RETRY,
        "Plex did not accept the connection; check that Plex is running and 'Plex URL' is right.",
    ),
    PLEX_TIMEOUT: (
        True,
        True,
        RETRY,
        "Plex did not answer in time; it may be busy, or raise 'Read timeout'.",
    ),
    PLEX_UNAVAILABLE: (True, True, RETRY, "Plex answered with a server error; it is probably restarting."),
    PLEX_STARTING: (True, True, RETRY, "Plex is still starting (its library is not ready yet)."),
    PLEX_UNAUTHORIZED: (
        False,
        False,
        STOP,
        "Plex refused the token; set a valid 'Plex token' and run Process Queue.",
    ),
    PLEX_REJECTED: (False, False, RETRY, "Plex rejected the edit; the values are logged at debug level."),
    NOT_IN_PLEX: (
        True,
        False,
        NOT_FOUND,
        "The file is not in Plex yet; it is retried until Plex has scanned it.",
    ),
    AMBIGUOUS_MATCH: (
        False,
        False,
        RETRY,
        "Several Plex items could be this file; fix 'Path mapping' or turn off 'Strict matching'.",
    ),
    NO_FILE: (False, False, RETRY, "The scene has no file in Stash, so there is nothing to match in Plex."),
    STASH_UNREACHABLE: (True, False, RETRY, "Stash did not answer; the change is retried."),
    INVALID_DATA: (False, False, RETRY, "The scene's data could not be converted for Plex."),
    INVALID_SETTINGS: (
        False,
        False,
        SETTINGS,
        "A setting does not fit this Plex server; fix it and run Process Queue.",
    ),
    INTERNAL: (True, False, TRACE, "An unexpected error; turn on 'Debug logging' and report the log."),
}

# How a failed name lookup reads on Linux, macOS and Windows, through urllib3 1.26 and 2.x.
HOST_NOT_FOUND_SIGNS = (
    "name or service",
    "resolve",
    "name resolution",
    "nodename nor servname",
    "getaddrinfo",
    "no address associated",
)

OUTAGE_CLASSES = frozenset(k for k, v in ERROR_CLASSES.items() if v[1])
DEFAULT_RECOVERABLE = frozenset((PLEX_UNREACHABLE, PLEX_TIMEOUT))


class SyncFailure(Exception):
    """A classified failure of one sync attempt."""

    def __init__(self, error_class: str, detail: str = ""):
        self.error_class = error_class if error_class in ERROR_CLASSES else INTERNAL
        self.transient, self.outage, self.action, self.advice = ERROR_CLASSES[self.error_class]
        self.detail = detail
        super().__init__(("%s (%s)" % (self.advice, detail)) if detail else self.advice)


class NotInPlex(SyncFailure):
    def __init__(self, detail: str = ""):
        super().__init__(NOT_IN_PLEX, detail)


class AmbiguousMatch(SyncFailure):
    def __init__(self, detail: str = ""):
        super().__init__(AMBIGUOUS_MATCH, detail)


def _status_of(exc):
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status is None:
        text = str(exc)
        # plexapi.BadRequest carries "(503) service_unavailable; ..." in its message.
        if text.startswith("(") and ")" in text[:6]:
            try:
                status = int(text[1 : text.index(")")])
            except ValueError:
                status = None
    return status


def classify(exc: BaseException) -> SyncFailure:
    """Map an exception from plexapi, requests or our own code to a SyncFailure."""
    if isinstance(exc, SyncFailure):
        return exc
    failure = _from_libraries(exc)
    if failure is not None:
        return failure
    name = type(exc).__name__
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return SyncFailure(PLEX_TIMEOUT if isinstance(exc, TimeoutError) else PLEX_UNREACHABLE, name)
    failure = _from_status(exc, _status_of(exc))
    if failure is not None:
        return failure
    if name == "ParseError" or "xml" in type(exc).__module__.lower():
        # A truncated or garbled answer: Plex (or a proxy in front of it) is in trouble.
        return SyncFailure(PLEX_UNAVAILABLE, "Plex's answer could not be read")
    plex_exc = _plexapi_exceptions()
    if plex_exc is not None and isinstance(exc, plex_exc.NotFound):
        return SyncFailure(NOT_IN_PLEX, "not found")
    if isinstance(exc, (ValueError, TypeError, UnicodeError)):
        return SyncFailure(INVALID_DATA, "%s: %s" % (name, _text(exc)))
    return SyncFailure(INTERNAL, "%s: %s" % (name, _text(exc)))


def _plexapi_exceptions():
    try:
        from plexapi import exceptions
    except ImportError:  # pragma: no cover - plexapi is a runtime dependency
        return None
    return exceptions


def _from_libraries(exc):
    """plexapi's Unauthorized and requests' connection errors, or None."""
    plex_exc = _plexapi_exceptions()
    if plex_exc is not None and isinstance(exc, plex_exc.Unauthorized):
        return SyncFailure(PLEX_UNAUTHORIZED, "HTTP 401")
    try:
        import requests
    except ImportError:  # pragma: no cover - requests is a runtime dependency
        return None
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return SyncFailure(PLEX_UNREACHABLE, "connect timeout")
    if isinstance(exc, requests.exceptions.Timeout):
        return SyncFailure(PLEX_TIMEOUT, "read timeout")
    if isinstance(exc, requests.exceptions.SSLError):
        return SyncFailure(
            PLEX_UNREACHABLE, "TLS error; set 'Skip TLS verification' for a self-signed certificate"
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        return SyncFailure(PLEX_UNREACHABLE, _connection_detail(str(exc).lower()))
    return None


def _connection_detail(text: str) -> str:
    if "refused" in text:
        return "connection refused"
    if "reset" in text or "aborted" in text:
        return "connection reset"
    if any(sign in text for sign in HOST_NOT_FOUND_SIGNS):
        return "host name not found"
    return "connection failed"


def _from_status(exc, status):
    """The failure an HTTP status says (401, 404, 4xx, 503, 5xx), or None."""
    if status == 401:
        return SyncFailure(PLEX_UNAUTHORIZED, "HTTP 401")
    if status == 503:
        return SyncFailure(PLEX_STARTING if "loading" in str(exc).lower() else PLEX_UNAVAILABLE, "HTTP 503")
    if status is not None and status >= 500:
        return SyncFailure(PLEX_UNAVAILABLE, "HTTP %d" % status)
    if status == 404:
        return SyncFailure(NOT_IN_PLEX, "HTTP 404")
    if status is not None and 400 <= status < 500:
        return SyncFailure(PLEX_REJECTED, "HTTP %d" % status)
    return None


def _text(exc, limit: int = 200) -> str:
    """An exception's text for a message: secrets redacted first, then cut (cut first, half a
    token could escape redaction)."""
    from stashplugin.log import redact

    return redact(str(exc))[:limit]
