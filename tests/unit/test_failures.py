"""What a failed job means: one table of error classes, read by `classify` and `decide`."""

from __future__ import annotations

import pytest
import requests

from stashplugin.settings import Settings
from worker import errors
from worker.errors import ERROR_CLASSES, OUTAGE_CLASSES, SyncFailure, classify
from worker.failures import TOKEN_REFUSED, decide, token_refused

SETTINGS = Settings.from_raw({})
SKIPPING = Settings.from_raw({"skip_not_found": True})


def test_a_refused_token_stops_the_drain_and_keeps_every_job():
    action = decide(SyncFailure(errors.PLEX_UNAUTHORIZED), None, SETTINGS)
    assert action.stop is TOKEN_REFUSED and token_refused(SyncFailure(errors.PLEX_UNAUTHORIZED))
    assert not token_refused(SyncFailure(errors.PLEX_UNREACHABLE)) and not token_refused(None)


def test_a_setting_that_does_not_fit_plex_stops_the_drain_saying_what_to_fix():
    action = decide(SyncFailure(errors.INVALID_SETTINGS, "no library 'Films'"), None, SETTINGS)
    assert action.stop is not None and "no library 'Films'" in action.stop.error


def test_a_file_not_in_plex_asks_for_a_scan_and_is_retried_unless_skipping_is_on():
    retried = decide(SyncFailure(errors.NOT_IN_PLEX), None, SETTINGS)
    assert retried.scan and not retried.skip and not retried.permanent and not retried.stop
    skipped = decide(SyncFailure(errors.NOT_IN_PLEX), None, SKIPPING)
    assert skipped.skip and not skipped.outage


@pytest.mark.parametrize("error_class", sorted(OUTAGE_CLASSES))
def test_plex_being_down_is_counted_by_the_gate_and_retried(error_class):
    action = decide(SyncFailure(error_class), None, SETTINGS)
    assert action.outage and not action.permanent and action.stop is None


def test_an_ambiguous_match_is_dead_lettered_and_an_unexpected_error_traced():
    assert decide(SyncFailure(errors.AMBIGUOUS_MATCH), None, SETTINGS).permanent
    traced = decide(SyncFailure("no such class"), None, SETTINGS)
    assert traced.traceback and not traced.permanent


def test_every_error_class_has_one_row_with_advice_for_the_user():
    for name, (transient, outage, action, advice) in ERROR_CLASSES.items():
        assert getattr(errors, name.upper()) == name
        assert action in (errors.RETRY, errors.STOP, errors.SETTINGS, errors.NOT_FOUND, errors.TRACE)
        assert advice.endswith(".") and "\n" not in advice and (transient or not outage)


class _Answer(Exception):
    def __init__(self, text, status=None):
        super().__init__(text)
        self.response = type("Response", (), {"status_code": status})() if status else None


@pytest.mark.parametrize(
    "exc, error_class, detail",
    [
        (
            requests.exceptions.ConnectionError("[Errno 111] Connection refused"),
            "plex_unreachable",
            "connection refused",
        ),
        (
            requests.exceptions.ConnectionError("Name or service not known"),
            "plex_unreachable",
            "host name not found",
        ),
        (requests.exceptions.ConnectTimeout("x"), "plex_unreachable", "connect timeout"),
        (requests.exceptions.ReadTimeout("x"), "plex_timeout", "read timeout"),
        (TimeoutError(), "plex_timeout", "TimeoutError"),
        (ConnectionResetError(), "plex_unreachable", "ConnectionResetError"),
        (_Answer("(503) service_unavailable; Loading library"), "plex_starting", "HTTP 503"),
        (_Answer("busy", 502), "plex_unavailable", "HTTP 502"),
        (_Answer("gone", 404), "not_in_plex", "HTTP 404"),
        (_Answer("bad", 400), "plex_rejected", "HTTP 400"),
        (_Answer("who", 401), "plex_unauthorized", "HTTP 401"),
        (ValueError("bad date"), "invalid_data", "ValueError: bad date"),
        (RuntimeError("boom"), "internal", "RuntimeError: boom"),
    ],
)
def test_exceptions_are_classified_by_what_they_say_about_plex(exc, error_class, detail):
    failure = classify(exc)
    assert (failure.error_class, failure.detail) == (error_class, detail)
