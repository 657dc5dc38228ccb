"""Sorting failures: what is retried, what is ambiguous, what stops."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests
from alpaca.common.exceptions import APIError

from core.broker.alpaca_http import FailureKind, classify, to_broker_error
from core.broker.base import AuthenticationError, TransientBrokerError

NOW = datetime(2018, 1, 10, 5, tzinfo=UTC)


def api_error(status: int, body: str, headers: dict[str, str] | None = None) -> APIError:
    response = requests.Response()
    response.status_code = status
    response._content = body.encode()
    response.headers.update(headers or {})
    return APIError(body, requests.HTTPError(response=response))  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (429, '{"code": 42910000, "message": "rate limit exceeded"}', FailureKind.TRANSIENT),
        (500, '{"code": 50010000, "message": "internal server error"}', FailureKind.AMBIGUOUS),
        (502, "<html><body>bad gateway</body></html>", FailureKind.AMBIGUOUS),
        (504, "", FailureKind.AMBIGUOUS),
        (401, '{"message": "unauthorized"}', FailureKind.AUTH),
        (403, '{"message": "forbidden"}', FailureKind.AUTH),
        (403, '{"code": 40310000, "message": "insufficient buying power"}', FailureKind.PERMANENT),
        (404, '{"code": 40410000, "message": "order not found"}', FailureKind.NOT_FOUND),
        (422, '{"code": 40010001, "message": "client_order_id must be unique"}', FailureKind.DUPLICATE),
        (422, '{"code": 42210000, "message": "requested asset is not fractionable"}', FailureKind.PERMANENT),
    ],
)
def test_api_errors(status: int, body: str, kind: FailureKind) -> None:
    failure = classify(api_error(status, body), NOW)

    assert failure is not None
    assert (failure.kind, failure.status) == (kind, status)


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectionError("connection reset by peer"),
        requests.exceptions.JSONDecodeError("Expecting value", '{"id": "', 7),
    ],
)
def test_network_failures_are_ambiguous(error: Exception) -> None:
    failure = classify(error, NOW)

    assert failure is not None
    assert failure.kind is FailureKind.AMBIGUOUS


def test_programming_errors_are_not_broker_failures() -> None:
    assert classify(KeyError("id"), NOW) is None
    assert classify(json.JSONDecodeError("x", "y", 0), NOW) is None


def test_html_bodies_do_not_break_message_extraction() -> None:
    failure = classify(api_error(502, "<html>\n<body>bad   gateway</body></html>"), NOW)

    assert failure is not None
    assert failure.message == "<html> <body>bad gateway</body></html>"


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "Wed, 10 Jan 2018 05:00:30 GMT"}, 30.0),
        ({"X-Ratelimit-Reset": str(int(NOW.timestamp()) + 12)}, 12.0),
        ({"X-Ratelimit-Reset": str(int(NOW.timestamp()) - 5)}, 0.0),
        ({}, None),
    ],
)
def test_advised_waits(headers: dict[str, str], wait: float | None) -> None:
    failure = classify(api_error(429, '{"message": "rate limit exceeded"}', headers), NOW)

    assert failure is not None
    assert failure.retry_after == wait


def test_our_errors_name_the_problem() -> None:
    auth = to_broker_error(classify(api_error(401, '{"message": "unauthorized"}'), NOW), "get_account")  # type: ignore[arg-type]
    transient = to_broker_error(classify(api_error(503, "<html/>"), NOW), "get_account")  # type: ignore[arg-type]

    assert isinstance(auth, AuthenticationError)
    assert "ALPACA_SECRET_KEY" in str(auth)
    assert isinstance(transient, TransientBrokerError)
    assert "HTTP 503" in str(transient)
