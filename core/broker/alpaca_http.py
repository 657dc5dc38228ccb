"""HTTP plumbing shared by the Alpaca adapters: timeouts, rate limiting, failure sorting and our one retry policy.

alpaca-py never passes a timeout, retries 429/504 blindly (POST /v2/orders included) with a blocking sleep, and
reports network failures as raw `requests` exceptions. `install_transport` switches the SDK's retry off and wraps
its session so every request has a timeout, waits for the rate limiter and is counted. `classify` sorts any
failure into transient / ambiguous / permanent / auth, and `Retrier` retries only what is worth retrying,
honouring Retry-After and X-Ratelimit-Reset, with jitter and a bounded total wait.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import json
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests
import structlog
from alpaca.common.exceptions import APIError
from alpaca.common.rest import RESTClient
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from core.broker.base import AuthenticationError, BrokerError, TransientBrokerError
from core.broker.rate_limit import RateLimiter
from core.clock import Clock
from core.redact import redact

log = structlog.get_logger(__name__)

T = TypeVar("T")
AsyncSleep = Callable[[float], Awaitable[None]]

AUTH_HINT = (
    "check ALPACA_API_KEY and ALPACA_SECRET_KEY, and that paper keys go with TRADING_MODE=paper "
    "and live keys with TRADING_MODE=live"
)


class CallCounter:
    """Requests that reached the wire (each page and each retry counts one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0

    def increment(self) -> None:
        with self._lock:
            self.calls += 1


def install_transport(client: RESTClient, *, timeout: float, limiter: RateLimiter, counter: CallCounter) -> None:
    """Make `client` ours: no SDK retry, a timeout on every request, the rate limiter, a call counter."""
    client._retry = 0  # our Retrier is the only retry policy; the SDK's would resubmit orders blindly
    with_timeout = functools.partial(client._session.request, timeout=timeout)

    def request(method: str, url: str, **kwargs: Any) -> requests.Response:
        limiter.acquire()
        counter.increment()
        return with_timeout(method, url, **kwargs)

    client._session.request = request  # type: ignore[method-assign,assignment]


# ---------------------------------------------------------------------------------------------------------------------
# Sorting failures
# ---------------------------------------------------------------------------------------------------------------------


class FailureKind(enum.Enum):
    TRANSIENT = "transient"  # refused before any work was done (429): retry after the advised wait
    AMBIGUOUS = "ambiguous"  # may or may not have been processed (timeout, reset, 5xx, garbled body)
    AUTH = "auth"  # bad keys: stop
    NOT_FOUND = "not_found"
    DUPLICATE = "duplicate"  # 422 "client_order_id must be unique": the first attempt landed
    PERMANENT = "permanent"  # 400/403/422...: the broker said no


@dataclass(frozen=True, slots=True)
class Failure:
    kind: FailureKind
    status: int | None
    message: str
    retry_after: float | None = None

    def __post_init__(self) -> None:
        # Every broker error text is built from this message: a server or HTTP library quoting the keys is masked
        # at the source, before it becomes a BrokerError, an OrderRejected reason or a log line.
        object.__setattr__(self, "message", redact(self.message))

    @property
    def retryable(self) -> bool:
        return self.kind in (FailureKind.TRANSIENT, FailureKind.AMBIGUOUS)

    def describe(self) -> str:
        status = f"HTTP {self.status}" if self.status is not None else "network"
        return f"{status}: {self.message}" if self.message else status


_AMBIGUOUS_NETWORK = (
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    requests.exceptions.JSONDecodeError,
)


def classify(error: BaseException, now: datetime) -> Failure | None:
    """What kind of failure `error` is; None when it is not a failure of the conversation with Alpaca (a bug)."""
    if isinstance(error, APIError):
        return _classify_api_error(error, now)
    if isinstance(error, _AMBIGUOUS_NETWORK):
        return Failure(FailureKind.AMBIGUOUS, None, f"{type(error).__name__}: {error}"[:300])
    if isinstance(error, requests.exceptions.RequestException):
        return Failure(FailureKind.PERMANENT, None, f"{type(error).__name__}: {error}"[:300])
    return None


def _classify_api_error(error: APIError, now: datetime) -> Failure:
    status = error.status_code
    message = broker_message(error)
    if status == 429:
        return Failure(FailureKind.TRANSIENT, status, message, _advised_wait(error, now))
    if status is None or status >= 500:
        return Failure(FailureKind.AMBIGUOUS, status, message, _advised_wait(error, now))
    if status == 401 or (status == 403 and message.lower() in ("forbidden", "unauthorized")):
        return Failure(FailureKind.AUTH, status, message)
    if status == 404:
        return Failure(FailureKind.NOT_FOUND, status, message)
    if status == 422 and "client_order_id must be unique" in message.lower():
        return Failure(FailureKind.DUPLICATE, status, message)
    return Failure(FailureKind.PERMANENT, status, message)


def broker_message(error: APIError) -> str:
    """The broker's own words. `APIError.message` re-parses the body and raises on HTML, so parse it once here."""
    text = str(error)
    try:
        body = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:200]
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return text[:200]


def _advised_wait(error: APIError, now: datetime) -> float | None:
    response = error.response
    if response is None:
        return None
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            try:
                return max(0.0, (parsedate_to_datetime(retry_after) - now).total_seconds())
            except (TypeError, ValueError):
                pass  # unparseable: fall through to X-Ratelimit-Reset, then the policy's own backoff
    reset = response.headers.get("X-Ratelimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - now.timestamp())
        except ValueError:
            return None
    return None


def to_broker_error(failure: Failure, operation: str) -> BrokerError:
    if failure.kind is FailureKind.AUTH:
        return AuthenticationError(f"Alpaca rejected the API keys on {operation} ({failure.describe()}): {AUTH_HINT}")
    if failure.retryable:
        return TransientBrokerError(f"{operation} failed after retries ({failure.describe()})")
    return BrokerError(f"{operation} failed ({failure.describe()})")


# ---------------------------------------------------------------------------------------------------------------------
# Retrying
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    budget_s: float = 30.0  # the most one call may spend waiting between its attempts
    base_s: float = 0.5
    cap_s: float = 8.0


class Retrier:
    """Runs SDK calls in a worker thread and retries transient failures per the policy."""

    def __init__(
        self,
        policy: RetryPolicy,
        clock: Clock,
        *,
        sleep: AsyncSleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.retries = 0

    def classify(self, error: BaseException) -> Failure | None:
        return classify(error, self._clock.now())

    async def run(self, operation: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Await `attempt()` until it succeeds; on a final failure raise our error (or the bug as it is)."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(self._retryable),
            wait=self._wait,
            stop=self._stop,
            sleep=self._sleep,
            reraise=True,
            before_sleep=functools.partial(self._log_retry, operation),
        )
        try:
            async for attempt_state in retrying:
                with attempt_state:
                    return await attempt()
        except BrokerError:
            raise
        except Exception as error:
            failure = self.classify(error)
            if failure is None:
                raise
            raise to_broker_error(failure, operation) from error
        raise AssertionError("tenacity ended without a result")  # pragma: no cover - AsyncRetrying always decides

    async def call(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker thread (the SDK is synchronous), retried per the policy."""
        return await self.run(operation, lambda: asyncio.to_thread(fn, *args))

    def _retryable(self, error: BaseException) -> bool:
        failure = self.classify(error)
        return failure is not None and failure.retryable

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        failure = self.classify(error) if error is not None else None
        if failure is not None and failure.retry_after is not None:
            # Never earlier than the broker asked; a little jitter so restarted clients do not stampede.
            return failure.retry_after + self._rng.uniform(0.0, min(1.0, 0.1 * failure.retry_after + 0.05))
        ceiling = min(self.policy.cap_s, self.policy.base_s * 2.0 ** (state.attempt_number - 1))
        return ceiling / 2 + self._rng.uniform(0.0, ceiling / 2)

    def _stop(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self.policy.max_attempts:
            return True
        return state.idle_for + state.upcoming_sleep > self.policy.budget_s

    def _log_retry(self, operation: str, state: RetryCallState) -> None:
        self.retries += 1
        error = state.outcome.exception() if state.outcome is not None else None
        failure = self.classify(error) if error is not None else None
        log.warning(
            "broker_retry",
            operation=operation,
            attempt=state.attempt_number,
            wait_s=round(state.upcoming_sleep, 3),
            failure=failure.describe() if failure is not None else repr(error),
        )
