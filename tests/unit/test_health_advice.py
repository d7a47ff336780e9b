"""What Health Check tells a user whose Plex cannot be used: the likely cause, in their words."""

from __future__ import annotations

import pytest

from worker.health import likely_cause

URL = "http://plex.lan:32400"


@pytest.mark.parametrize(
    "error_class, detail, expected",
    [
        (
            "plex_unreachable",
            "host name not found",
            "The host name plex.lan cannot be found: check the address in 'Plex URL'",
        ),
        ("plex_unreachable", "connection refused", "Plex is not running, or the port in 'Plex URL' is wrong"),
        (
            "plex_unreachable",
            "TLS error; set 'Skip TLS verification' for a self-signed certificate",
            "switch on 'Skip TLS verification'",
        ),
        (
            "plex_unauthorized",
            "HTTP 401 from /library/sections",
            "Plex refused the token: set a valid 'Plex token'",
        ),
        ("plex_starting", "HTTP 503 from /library/sections", "Plex is still starting"),
        ("plex_timeout", "read timeout", "did not answer at http://plex.lan:32400 in time"),
        (
            "plex_unavailable",
            "HTTP 404 from /identity; is 'Plex URL' the address of Plex?",
            "HTTP 404 from /identity",
        ),
    ],
)
def test_each_failure_names_its_likely_cause(error_class, detail, expected):
    advice = likely_cause(error_class, detail, URL)
    assert expected in advice
    assert advice.endswith(".") and "\n" not in advice
