"""AlpacaMarketData against the fake Alpaca server, through the real alpaca-py StockHistoricalDataClient."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from core.broker.alpaca_data import AlpacaMarketData
from core.broker.alpaca_options import AlpacaDataOptions
from core.broker.bar_cache import BarCache
from core.broker.base import MarketData
from core.timeconv import datetime_to_ns
from core.types import BarFrame
from tests.core.broker.conftest import SYMBOLS_29, RecordingSleep
from tests.fakes.alpaca_server import FakeAlpacaServer, Fault
from tests.fakes.alpaca_tape import DAY_NS, MarketTape

MakeData = Callable[..., AlpacaMarketData]
BARS = "/v2/stocks/bars"
YEAR_START = datetime(2017, 1, 1, tzinfo=UTC)


def expected_closes(tape: MarketTape, symbol: str, start: datetime, end: datetime) -> np.ndarray:
    bars = tape.bars[symbol]
    keep = (bars.t >= datetime_to_ns(start)) & (bars.t < datetime_to_ns(end)) & (bars.t + DAY_NS <= datetime_to_ns(end))
    return bars.close[keep]


def closes(frame: BarFrame, symbol: str) -> np.ndarray:
    column = frame.close[:, frame.column(symbol)]
    return column[~np.isnan(column)]


def next_session(server: FakeAlpacaServer) -> None:
    """Move the server to the next midnight ET after a trading day, when that day's bar is complete."""
    sessions = server.tape.session_t
    now = datetime_to_ns(server.now)
    following = sessions[sessions + DAY_NS > now]
    server.set_now(datetime.fromtimestamp(int(following[0] + DAY_NS) / 1e9, tz=UTC))


def test_implements_the_market_data_port(make_market_data: MakeData) -> None:
    assert isinstance(make_market_data(), MarketData)


async def test_pagination_merges_pages_in_requested_symbol_order(
    make_market_data: MakeData, fake_alpaca: FakeAlpacaServer
) -> None:
    fake_alpaca.max_page_size = 100
    data = make_market_data()
    symbols = ["XOM", "AAPL", "MSFT"]  # not alphabetical: the frame keeps the caller's order

    frame = await data.get_bars(symbols, YEAR_START, fake_alpaca.now)

    assert frame.symbols == tuple(symbols)
    n_bars = sum(len(expected_closes(fake_alpaca.tape, s, YEAR_START, fake_alpaca.now)) for s in symbols)
    assert data.last_fetch.api_calls == math.ceil(n_bars / 100) == fake_alpaca.count("GET", BARS)
    for symbol in symbols:
        np.testing.assert_array_equal(
            closes(frame, symbol), expected_closes(fake_alpaca.tape, symbol, YEAR_START, fake_alpaca.now)
        )
    assert frame.n_rows == len(expected_closes(fake_alpaca.tape, "AAPL", YEAR_START, fake_alpaca.now))
    assert frame.timestamps[-1] == np.datetime64(
        fake_alpaca.tape.session_start(fake_alpaca.now.date() - timedelta(days=1)).replace(tzinfo=None), "ns"
    )


async def test_request_shape_follows_settings(
    make_market_data: MakeData, data_options: AlpacaDataOptions, fake_alpaca: FakeAlpacaServer
) -> None:
    data = make_market_data(replace(data_options, feed="sip", chunk_size=10))
    await data.get_bars(SYMBOLS_29[:4], YEAR_START, fake_alpaca.now)  # four symbols cached already
    fake_alpaca.clear_requests()
    seen: list[tuple[int, int]] = []

    await data.get_bars(SYMBOLS_29, YEAR_START, fake_alpaca.now, on_progress=lambda *p: seen.append(p))

    # The adapter is the one place symbols are chunked: callers pass them all and hear of each request.
    requests = fake_alpaca.requests("GET", BARS)
    assert [len(r.query["symbols"].split(",")) for r in requests] == [10, 10, 5]
    assert seen == [(14, 29), (24, 29), (29, 29)]
    assert {(r.query["feed"], r.query["timeframe"], r.query["adjustment"]) for r in requests} == {
        ("sip", "1Day", "split")
    }


async def test_second_identical_fetch_is_served_from_the_cache(
    make_market_data: MakeData, fake_alpaca: FakeAlpacaServer
) -> None:
    data = make_market_data()
    first = await data.get_bars(SYMBOLS_29, YEAR_START, fake_alpaca.now)
    calls = data.api_calls

    second = await data.get_bars(SYMBOLS_29, YEAR_START, fake_alpaca.now)

    assert data.api_calls == calls
    assert (data.last_fetch.api_calls, data.last_fetch.cache_hits) == (0, 29)
    np.testing.assert_array_equal(first.close, second.close)
    np.testing.assert_array_equal(first.timestamps, second.timestamps)


async def test_steady_state_iteration_for_29_symbols_is_one_call(
    make_market_data: MakeData, fake_alpaca: FakeAlpacaServer
) -> None:
    data = make_market_data()
    await data.get_bars(SYMBOLS_29, YEAR_START, fake_alpaca.now)  # cold start: 2017-01-03 .. 2018-01-09

    next_session(fake_alpaca)  # the 2018-01-10 bar completes
    fake_alpaca.clear_requests()
    frame = await data.get_bars(SYMBOLS_29, YEAR_START, fake_alpaca.now)
    steady = data.last_fetch
    fake_alpaca.set_now(fake_alpaca.now + timedelta(hours=9))  # later that day nothing new can be complete
    again = await data.get_bars(SYMBOLS_29, YEAR_START, fake_alpaca.now)

    (request,) = fake_alpaca.requests("GET", BARS)
    assert (steady.api_calls, steady.symbols_fetched) == (1, 29)
    # From the last cached bar (which re-checks it for restatements) to the newest complete one.
    assert request.query["start"] == "2018-01-09T05:00:00+00:00"
    assert steady.bars_fetched == 2 * 29
    assert (data.last_fetch.api_calls, data.last_fetch.cache_hits) == (0, 29)
    assert again.n_rows == frame.n_rows
    for symbol in SYMBOLS_29:
        expected = expected_closes(fake_alpaca.tape, symbol, YEAR_START, fake_alpaca.now)
        np.testing.assert_array_equal(closes(frame, symbol), expected)


async def test_cache_survives_a_restart(
    make_market_data: MakeData, fake_alpaca: FakeAlpacaServer, tmp_path: Any
) -> None:
    first = make_market_data(cache=BarCache(tmp_path / "bars.sqlite"))
    frame = await first.get_bars(SYMBOLS_29[:5], YEAR_START, fake_alpaca.now)
    first.close()

    second = make_market_data(cache=BarCache(tmp_path / "bars.sqlite"))
    again = await second.get_bars(SYMBOLS_29[:5], YEAR_START, fake_alpaca.now)

    assert second.api_calls == 0
    np.testing.assert_array_equal(frame.close, again.close)


async def test_bars_failing_sanity_are_dropped_and_counted(
    make_market_data: MakeData, fake_alpaca: FakeAlpacaServer
) -> None:
    future = {"t": "2018-03-01T05:00:00Z", "o": 1.0, "h": 1.0, "l": 1.0, "c": 1.0, "v": 1.0, "n": 1, "vw": 1.0}

    def corrupt(bars: list[dict[str, Any]]) -> list[dict[str, Any]]:
        bars[-2] = {**bars[-2], "h": bars[-2]["l"] - 1}  # high below low
        bars[-3] = {**bars[-3], "o": 0.0}  # non-positive price
        bars[-4] = {**bars[-4], "v": -5.0}  # negative volume
        bars[-5] = {**bars[-5], "c": None}  # missing price
        return [*bars, dict(bars[-10]), future]  # a repeated old bar (out of order) and one from the future

    fake_alpaca.patch_bars("AAPL", corrupt)
    data = make_market_data()

    frame = await data.get_bars(["AAPL", "MSFT"], YEAR_START, fake_alpaca.now + timedelta(days=90))

    assert dict(data.rejected) == {
        "high_below_low": 1,
        "non_positive_price": 1,
        "negative_volume": 1,
        "missing_price": 1,
        "out_of_order": 1,
        "future_timestamp": 1,
    }
    aapl = frame.close[:, frame.column("AAPL")]
    assert np.isnan(aapl[-5:-1]).all()
    assert not np.isnan(aapl[-1])
    assert not np.isnan(frame.close[:, frame.column("MSFT")]).any()


async def test_restated_history_is_refetched(make_market_data: MakeData, fake_alpaca: FakeAlpacaServer) -> None:
    data = make_market_data()
    await data.get_bars(["AAPL", "MSFT"], YEAR_START, fake_alpaca.now)

    def split_two_for_one(bars: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**b, **{k: b[k] / 2 for k in ("o", "h", "l", "c")}} for b in bars]

    fake_alpaca.patch_bars("AAPL", split_two_for_one)
    next_session(fake_alpaca)
    frame = await data.get_bars(["AAPL", "MSFT"], YEAR_START, fake_alpaca.now)

    assert data.last_fetch.restated == 1
    assert data.last_fetch.api_calls == 2  # the incremental call, then AAPL's window afresh
    expected = expected_closes(fake_alpaca.tape, "AAPL", YEAR_START, fake_alpaca.now) / 2
    np.testing.assert_allclose(closes(frame, "AAPL"), expected)


async def test_transient_data_errors_are_retried(
    make_market_data: MakeData, fake_alpaca: FakeAlpacaServer, retry_sleep: RecordingSleep
) -> None:
    fake_alpaca.inject(Fault.rate_limited(retry_after=3), "GET", BARS)
    fake_alpaca.inject(Fault.reset(process=False), "GET", BARS)

    frame = await make_market_data().get_bars(["AAPL"], YEAR_START, fake_alpaca.now)

    assert frame.n_rows > 200
    assert len(retry_sleep.calls) == 2
    assert retry_sleep.calls[0] >= 3


async def test_snapshots_for_many_symbols_take_one_call(
    make_market_data: MakeData, fake_alpaca: FakeAlpacaServer
) -> None:
    data = make_market_data()

    snapshots = await data.get_snapshots([*SYMBOLS_29, "NOPE"])

    assert set(snapshots) == set(SYMBOLS_29)
    assert fake_alpaca.count("GET", "/v2/stocks/snapshots") == 1
    aapl = fake_alpaca.tape.bars["AAPL"]
    index = int(np.searchsorted(aapl.t + DAY_NS, datetime_to_ns(fake_alpaca.now), side="right")) - 1
    assert snapshots["AAPL"].price == pytest.approx(aapl.close[index])
    assert snapshots["AAPL"].prev_close == pytest.approx(aapl.close[index - 1])
    assert snapshots["AAPL"].ts <= fake_alpaca.now
