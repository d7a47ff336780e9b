"""Is Plex there, and is it ready? A two-request health probe and its schedule.

`probe` asks `GET /identity` (cheap; answers as soon as Plex listens) and then, unless
`deep=False`, `GET /library/sections`: a Plex whose port is open but whose database is still
loading answers the first and refuses the second with 503, and is not healthy yet.

`ProbeRecord` keeps the last probe's result in `health.json` (View Queue Status and Health Check
show it). When Plex is probed is decided by the circuit breaker alone (worker/breaker.py); the
drain's half-open probe, the watcher's probes and the Health Check task record their results here.
"""

from __future__ import annotations

import os
import time
import warnings
import xml.etree.ElementTree as ET
from typing import NamedTuple, Optional
from urllib.parse import urlsplit

import requests

from stashplugin import log
from sync.store import JsonFile
from worker.errors import (
    INTERNAL,
    OUTAGE_CLASSES,
    PLEX_STARTING,
    PLEX_TIMEOUT,
    PLEX_UNAUTHORIZED,
    PLEX_UNAVAILABLE,
    SyncFailure,
    classify,
)
from worker.plex import identity_headers

FILE_NAME = "health.json"


class HealthResult(NamedTuple):
    """What one probe found. `error_class` is "" when healthy; `detail` never holds the token."""

    reachable: bool
    healthy: bool
    version: Optional[str]
    latency_ms: Optional[float]
    error_class: str
    detail: str

    @property
    def outage(self) -> bool:
        """Does this result say Plex is down (as opposed to healthy, or up but refusing the token)?"""
        return self.error_class in OUTAGE_CLASSES

    def failure(self) -> Optional[SyncFailure]:
        """The result as a SyncFailure for the breaker, or None when healthy."""
        return None if self.healthy else SyncFailure(self.error_class or INTERNAL, self.detail)

    def describe(self) -> str:
        """One line for the Health Check task."""
        if self.healthy:
            version = " %s" % self.version if self.version else ""
            return "Plex%s is reachable and its library answers (%d ms)" % (
                version,
                round(self.latency_ms or 0),
            )
        failure = self.failure()
        return "Plex is %s: %s" % ("reachable but not ready" if self.reachable else "not reachable", failure)

    def advice(self, plex_url: str = "") -> str:
        """The likely cause in the user's words and what to do, one sentence ("" when healthy)."""
        if self.healthy:
            return ""
        return likely_cause(self.error_class, self.detail, plex_url)

    def to_dict(self) -> dict:
        return self._asdict()

    @classmethod
    def from_dict(cls, data: dict) -> "HealthResult":
        return cls(
            bool(data.get("reachable")),
            bool(data.get("healthy")),
            data.get("version"),
            data.get("latency_ms"),
            data.get("error_class") or "",
            data.get("detail") or "",
        )


def _host_of(plex_url: str) -> str:
    try:
        return (
            urlsplit(plex_url if "://" in (plex_url or "") else "http://%s" % plex_url).hostname or plex_url
        )
    except ValueError:
        return plex_url


def likely_cause(error_class: str, detail: str, plex_url: str = "") -> str:
    """What a failed probe most likely means, in the user's words, with what to do."""
    shown, detail = detail or "", (detail or "").lower()
    where = plex_url or "the address in 'Plex URL'"
    if error_class == PLEX_UNAUTHORIZED:
        return (
            "Plex refused the token: set a valid 'Plex token' in PlexSync's settings (Plex Web: any item > "
            "Get Info > View XML shows it in the address)."
        )
    if "host name not found" in detail:
        return (
            "The host name %s cannot be found: check the address in 'Plex URL' (from Docker, use the "
            "host's LAN address)." % _host_of(plex_url)
            if plex_url
            else "The host name in 'Plex URL' cannot be found: check the address in 'Plex URL'."
        )
    if "refused" in detail:
        return (
            "Nothing answers at %s: Plex is not running, or the port in 'Plex URL' is wrong (Plex listens "
            "on 32400)." % where
        )
    if "tls" in detail:
        return (
            "The https connection to %s failed its certificate check (a self-signed certificate): switch on "
            "'Skip TLS verification', or use http:// in 'Plex URL'." % where
        )
    if error_class == PLEX_STARTING:
        return "Plex is still starting (its library is loading): run Health Check again in a minute."
    if error_class == PLEX_TIMEOUT or "timeout" in detail:
        return (
            "Plex did not answer at %s in time: check 'Plex URL' and that Plex is reachable from Stash "
            "(from Docker, not localhost)." % where
        )
    return (
        "Plex at %s does not work normally (%s): check that it runs and that 'Plex URL' is its address."
        % (where, shown or error_class)
    )


def _scrub(text: str, token: str) -> str:
    text = str(text or "")
    if token:
        text = text.replace(token, "***")
    return log.redact(text)


def _http_failure(status: int, body: bytes, where: str) -> SyncFailure:
    if status == 401:
        return SyncFailure(PLEX_UNAUTHORIZED, "HTTP 401 from %s" % where)
    text = body[:2000].decode("utf-8", "replace").lower()
    if status == 503 and (
        where.startswith("/library") or "loading" in text or "starting" in text or "maintenance" in text
    ):
        return SyncFailure(PLEX_STARTING, "HTTP 503 from %s" % where)
    if 300 <= status < 400:
        return SyncFailure(
            PLEX_UNAVAILABLE,
            "HTTP %d redirect from %s; set 'Plex URL' to the address it redirects to" % (status, where),
        )
    if status >= 500:
        return SyncFailure(PLEX_UNAVAILABLE, "HTTP %d from %s" % (status, where))
    return SyncFailure(
        PLEX_UNAVAILABLE, "HTTP %d from %s; is 'Plex URL' the address of Plex?" % (status, where)
    )


def _version(body: bytes) -> Optional[str]:
    """Plex's version from the /identity answer; raises ValueError when it is not Plex's XML."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise ValueError("not XML")
    if root.tag != "MediaContainer":
        raise ValueError("no MediaContainer")
    return root.get("version")


def probe(
    plex_url: str,
    token: str,
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
    verify_tls: bool = True,
    deep: bool = True,
    session=None,
) -> HealthResult:
    """Ask Plex whether it is up (`/identity`) and, with `deep`, whether its library answers.

    The token goes in the X-Plex-Token header, never in the URL, and redirects are not
    followed (they would carry the header to another host). Never raises for a network or HTTP
    problem: the answer is in the result's `error_class` and `detail`.
    """
    get = _plex_getter(session or requests, plex_url, token, (connect_timeout, read_timeout), verify_tls)
    started = time.monotonic()
    try:
        answer = get("/identity")
    except Exception as exc:  # requests raises many kinds; classify sorts them
        return _unhealthy(False, classify(exc), token)
    latency = round((time.monotonic() - started) * 1000.0, 1)
    version, failure = _identity(answer)
    if failure is None and deep:
        failure = _library_failure(get)
    if failure is not None:
        return _unhealthy(True, failure, token, version, latency)
    return HealthResult(True, True, version, latency, "", "")


def _plex_getter(http, plex_url: str, token: str, timeout: tuple, verify_tls: bool):
    """`get(path)`: one GET of Plex with the token in its header, no redirect followed."""
    base = (plex_url or "").rstrip("/")
    headers = {"X-Plex-Token": token or "", "Accept": "application/xml"}
    headers.update(identity_headers())

    def get(path):
        with warnings.catch_warnings():
            # A user who switched TLS verification off knows; urllib3's warning per request is noise.
            warnings.simplefilter("ignore")
            return http.get(
                base + path, headers=headers, timeout=timeout, verify=verify_tls, allow_redirects=False
            )

    return get


def _identity(answer) -> tuple:
    """(Plex's version, None) from a good `/identity` answer, else (None, the failure)."""
    if answer.status_code != 200:
        return None, _http_failure(answer.status_code, answer.content, "/identity")
    try:
        return _version(answer.content), None
    except ValueError as exc:
        return None, SyncFailure(
            PLEX_UNAVAILABLE, "the address answered, but not like Plex (%s); check 'Plex URL'" % exc
        )


def _library_failure(get) -> Optional[SyncFailure]:
    """Why `/library/sections` does not answer (a database still loading), or None when it does."""
    try:
        library = get("/library/sections")
    except Exception as exc:
        return classify(exc)
    if library.status_code != 200:
        return _http_failure(library.status_code, library.content, "/library/sections")
    return None


def _unhealthy(reachable: bool, failure: SyncFailure, token: str, version=None, latency=None) -> HealthResult:
    return HealthResult(
        reachable, False, version, latency, failure.error_class, _scrub(failure.detail, token)
    )


class ProbeRecord:
    """The last probe's result, in `<data_dir>/health.json`, for View Queue Status and Health Check.

    Only a record: when Plex is probed next is the circuit breaker's decision (worker/breaker.py,
    `next_probe_at`), the one probe schedule there is.
    """

    def __init__(self, data_dir: str):
        self.file = JsonFile(
            os.path.join(data_dir, FILE_NAME),
            default={},
            on_corrupt=lambda exc: log.warning("%s; health history starts afresh" % exc),
            on_error=lambda problem: log.warning(str(problem)),
        )

    def status(self) -> dict:
        """The stored record: last_probe_at, last_result, last_success_at, last_failure_at (missing
        keys: never happened)."""
        return self.file.read()

    def peek(self) -> dict:
        """The stored record read quietly (a damaged file is left to `status` to move aside)."""
        return self.file.peek()

    def last_result(self) -> Optional[HealthResult]:
        """The last probe's result, or None when Plex was never probed."""
        data = self.status().get("last_result")
        return HealthResult.from_dict(data) if isinstance(data, dict) else None

    def record(self, result: HealthResult, now: float) -> Optional[dict]:
        """Store a probe's result; None when the file could not be written (said in the log)."""

        def change(data):
            data.update(last_probe_at=now, last_result=result.to_dict())
            data["last_success_at" if result.healthy else "last_failure_at"] = now
            for stale in ("consecutive_failures", "next_probe_at"):  # the schedule an older version kept
                data.pop(stale, None)
            return data

        return self.file.update(change, timeout=1.0)
