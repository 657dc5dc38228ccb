"""Fixtures for the Alpaca adapter tests: the fake server on loopback, clocks and sleeps that never wait."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from core.broker.alpaca import AlpacaBroker
from core.broker.alpaca_data import AlpacaMarketData
from core.broker.alpaca_http import RetryPolicy
from core.broker.alpaca_options import AlpacaConnection, AlpacaDataOptions
from core.broker.bar_cache import BarCache
from core.broker.rate_limit import RateLimiter
from tests.fakes.alpaca_server import FakeAlpacaServer
from tests.fakes.alpaca_tape import MarketTape, largest_symbols, load_tape
from tests.fakes.clock import ServerClock

SYMBOLS_29 = tuple(largest_symbols(29))
# The fake serves the complete 2018-01-09 bar: it is midnight ET at the start of 2018-01-10.
START_DAY = date(2018, 1, 10)


class FakeTime:
    """Monotonic time that only moves when something sleeps on it (rate limiter tests and fixtures)."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


class RecordingSleep:
    """The retry policy's async sleep: records how long it was asked to wait, waits for nothing."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture(scope="session")
def tape() -> MarketTape:
    return load_tape(SYMBOLS_29)


@pytest.fixture
def fake_alpaca(tape: MarketTape) -> Iterator[FakeAlpacaServer]:
    server = FakeAlpacaServer(tape, now=tape.session_start(START_DAY))
    with server:
        yield server


@pytest.fixture
def clock(fake_alpaca: FakeAlpacaServer) -> ServerClock:
    return ServerClock(fake_alpaca)


@pytest.fixture
def retry_sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def connection(fake_alpaca: FakeAlpacaServer) -> AlpacaConnection:
    """The fake's paper account (tests vary it with `dataclasses.replace`)."""
    return AlpacaConnection(
        api_key=SecretStr(fake_alpaca.key),
        secret_key=SecretStr(fake_alpaca.secret),
        paper=True,
        trading_url=fake_alpaca.url,
        data_url=fake_alpaca.url,
        http_timeout_seconds=10.0,  # never reached by a healthy request, however loaded the machine
        trading_rate_limit_per_min=200,
        data_rate_limit_per_min=200,
    )


@pytest.fixture
def data_options(tmp_path: Path) -> AlpacaDataOptions:
    return AlpacaDataOptions(timeframe="1Day", feed="iex", chunk_size=500, bar_cache_path=tmp_path / "bars.sqlite")


def fast_limiter(per_minute: int = 200) -> RateLimiter:
    fake = FakeTime()
    return RateLimiter(per_minute, monotonic=fake.monotonic, sleep=fake.sleep)


@pytest.fixture
def make_market_data(
    connection: AlpacaConnection, data_options: AlpacaDataOptions, clock: ServerClock, retry_sleep: RecordingSleep
) -> Iterator[Callable[..., AlpacaMarketData]]:
    made: list[AlpacaMarketData] = []

    def make(
        options: AlpacaDataOptions | None = None, *, cache: BarCache | None = None, **kwargs: Any
    ) -> AlpacaMarketData:
        data = AlpacaMarketData(
            connection,
            options or data_options,
            clock,
            cache=cache if cache is not None else BarCache(None),
            limiter=fast_limiter(),
            sleep=retry_sleep,
            **kwargs,
        )
        made.append(data)
        return data

    yield make
    for data in made:
        data.close()


@pytest.fixture
async def make_broker(
    connection: AlpacaConnection, clock: ServerClock, retry_sleep: RecordingSleep
) -> AsyncIterator[Callable[..., AlpacaBroker]]:
    made: list[AlpacaBroker] = []

    def make(account: AlpacaConnection | None = None, **kwargs: Any) -> AlpacaBroker:
        kwargs.setdefault("limiter", fast_limiter())
        kwargs.setdefault("retry", RetryPolicy())
        kwargs.setdefault("sleep", retry_sleep)
        broker = AlpacaBroker(account or connection, clock, **kwargs)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.stop_stream()
