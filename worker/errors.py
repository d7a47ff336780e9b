"""What went wrong, in classes the queue, the breaker and the user all understand.

`classify(exc)` turns any exception raised while syncing one scene into a `SyncFailure` with an
error class (stored with the job, counted in the status report), whether it is transient (retry
with backoff) or permanent (dead-letter), whether it says Plex is down (counts toward the circuit
breaker and outage history), and one sentence for the user.
"""

from __future__ import annotations

# error class -> (transient, outage, what the user should do)
ERROR_CLASSES = {
    "plex_unreachable": (
        True,
        True,
        "Plex did not accept the connection; check that Plex is running and 'Plex URL' is right.",
    ),
    "plex_timeout": (True, True, "Plex did not answer in time; it may be busy, or raise 'Read timeout'."),
    "plex_unavailable": (True, True, "Plex answered with a server error; it is probably restarting."),
    "plex_starting": (True, True, "Plex is still starting (its library is not ready yet)."),
    "plex_unauthorized": (
        False,
        False,
        "Plex refused the token; set a valid 'Plex token' and run Process Queue.",
    ),
    "plex_rejected": (False, False, "Plex rejected the edit; the values are logged at debug level."),
    "not_in_plex": (True, False, "The file is not in Plex yet; it is retried until Plex has scanned it."),
    "ambiguous_match": (
        False,
        False,
        "Several Plex items could be this file; fix 'Path mapping' or turn off 'Strict matching'.",
    ),
    "no_file": (False, False, "The scene has no file in Stash, so there is nothing to match in Plex."),
    "stash_unreachable": (True, False, "Stash did not answer; the change is retried."),
    "invalid_data": (False, False, "The scene's data could not be converted for Plex."),
    "invalid_settings": (
        False,
        False,
        "A setting does not fit this Plex server; fix it and run Process Queue.",
    ),
    "internal": (True, False, "An unexpected error; turn on 'Debug logging' and report the log."),
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
DEFAULT_RECOVERABLE = frozenset(("plex_unreachable", "plex_timeout"))


class SyncFailure(Exception):
    """A classified failure of one sync attempt."""

    def __init__(self, error_class: str, detail: str = ""):
        transient, outage, advice = ERROR_CLASSES.get(error_class, ERROR_CLASSES["internal"])
        self.error_class = error_class if error_class in ERROR_CLASSES else "internal"
        self.transient = transient
        self.outage = outage
        self.advice = advice
        self.detail = detail
        super().__init__(("%s (%s)" % (advice, detail)) if detail else advice)


class NotInPlex(SyncFailure):
    def __init__(self, detail: str = ""):
        super().__init__("not_in_plex", detail)


class AmbiguousMatch(SyncFailure):
    def __init__(self, detail: str = ""):
        super().__init__("ambiguous_match", detail)


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
    name = type(exc).__name__
    try:
        import requests
    except ImportError:  # pragma: no cover - requests is a runtime dependency
        requests = None
    try:
        from plexapi import exceptions as plex_exc
    except ImportError:  # pragma: no cover
        plex_exc = None
    if plex_exc is not None and isinstance(exc, plex_exc.Unauthorized):
        return SyncFailure("plex_unauthorized", "HTTP 401")
    if requests is not None:
        if isinstance(exc, (requests.exceptions.ConnectTimeout,)):
            return SyncFailure("plex_unreachable", "connect timeout")
        if isinstance(exc, requests.exceptions.Timeout):
            return SyncFailure("plex_timeout", "read timeout")
        if isinstance(exc, requests.exceptions.SSLError):
            return SyncFailure(
                "plex_unreachable", "TLS error; set 'Skip TLS verification' for a self-signed certificate"
            )
        if isinstance(exc, requests.exceptions.ConnectionError):
            text = str(exc).lower()
            if "refused" in text:
                return SyncFailure("plex_unreachable", "connection refused")
            if "reset" in text or "aborted" in text:
                return SyncFailure("plex_unreachable", "connection reset")
            if any(sign in text for sign in HOST_NOT_FOUND_SIGNS):
                return SyncFailure("plex_unreachable", "host name not found")
            return SyncFailure("plex_unreachable", "connection failed")
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return SyncFailure("plex_unreachable" if not isinstance(exc, TimeoutError) else "plex_timeout", name)
    status = _status_of(exc)
    if status == 401:
        return SyncFailure("plex_unauthorized", "HTTP 401")
    if status == 503:
        return SyncFailure(
            "plex_starting" if "loading" in str(exc).lower() else "plex_unavailable", "HTTP 503"
        )
    if status is not None and status >= 500:
        return SyncFailure("plex_unavailable", "HTTP %d" % status)
    if status is not None and 400 <= status < 500:
        if status == 404:
            return SyncFailure("not_in_plex", "HTTP 404")
        return SyncFailure("plex_rejected", "HTTP %d" % status)
    if name == "ParseError" or "xml" in type(exc).__module__.lower():
        # A truncated or garbled answer: Plex (or a proxy in front of it) is in trouble.
        return SyncFailure("plex_unavailable", "Plex's answer could not be read")
    if plex_exc is not None and isinstance(exc, plex_exc.NotFound):
        return SyncFailure("not_in_plex", "not found")
    if isinstance(exc, (ValueError, TypeError, UnicodeError)):
        return SyncFailure("invalid_data", "%s: %s" % (name, _text(exc)))
    return SyncFailure("internal", "%s: %s" % (name, _text(exc)))


def _text(exc, limit: int = 200) -> str:
    """An exception's text for a message: secrets redacted first, then cut (cut first, half a
    token could escape redaction)."""
    from stashplugin.log import redact

    return redact(str(exc))[:limit]
