from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from core.bars import load_daily_bars
from core.broker.base import MarketData
from core.broker.replay import ReplayMarketData
from core.timeconv import ns_to_datetime
from core.types import BarFrame
from tests.fakes.clock import FakeClock

BARS = Path(__file__).resolve().parents[3] / "data" / "sp500_daily_2013_2018.csv.xz"
FAR_PAST = datetime(2000, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def full() -> BarFrame:
    return load_daily_bars(BARS)


def bar_time(history: BarFrame, row: int) -> datetime:
    return ns_to_datetime(int(history.timestamps_ns[row]))


def test_implements_the_market_data_port(full: BarFrame) -> None:
    assert isinstance(ReplayMarketData(full, FakeClock(bar_time(full, 0))), MarketData)


async def test_window_is_start_inclusive_end_exclusive_in_requested_order(full: BarFrame) -> None:
    replay = ReplayMarketData(full, FakeClock(bar_time(full, 100)))
    frame = await replay.get_bars(["MSFT", "AAPL"], bar_time(full, 10), bar_time(full, 15))
    assert frame.symbols == ("MSFT", "AAPL")
    assert frame.n_rows == 5
    assert (frame.timestamps == full.timestamps[10:15]).all()
    msft, aapl = full.symbols.index("MSFT"), full.symbols.index("AAPL")
    np.testing.assert_array_equal(frame.close[:, 0], full.close[10:15, msft])
    np.testing.assert_array_equal(frame.open[:, 1], full.open[10:15, aapl])
    np.testing.assert_array_equal(frame.volume[:, 1], full.volume[10:15, aapl])


async def test_unknown_symbol_is_an_all_nan_column(full: BarFrame) -> None:
    replay = ReplayMarketData(full, FakeClock(bar_time(full, 100)))
    frame = await replay.get_bars(["AAPL", "NOPE"], bar_time(full, 0), bar_time(full, 5))
    assert frame.symbols == ("AAPL", "NOPE")
    assert np.isnan(frame.close[:, 1]).all()
    assert np.isnan(frame.open[:, 1]).all()
    assert not np.isnan(frame.close[:, 0]).any()


async def test_never_returns_a_bar_after_now(full: BarFrame) -> None:
    clock = FakeClock(bar_time(full, 200) + timedelta(hours=16))
    replay = ReplayMarketData(full, clock)
    frame = await replay.get_bars(full.symbols, FAR_PAST, FAR_FUTURE)
    assert frame.n_rows == 201  # bars 0..200: bar 200 is complete at its 16:00 close
    clock.set(bar_time(full, 201) - timedelta(microseconds=1))
    frame = await replay.get_bars(["AAPL"], FAR_PAST, FAR_FUTURE)
    assert frame.n_rows == 201
    assert int(frame.timestamps.view(np.int64)[-1]) <= int(full.timestamps_ns[200])
    clock.set(datetime(2001, 1, 1, tzinfo=UTC))
    assert (await replay.get_bars(["AAPL"], FAR_PAST, FAR_FUTURE)).n_rows == 0


async def test_one_call_counts_once_whatever_the_number_of_symbols(full: BarFrame) -> None:
    replay = ReplayMarketData(full, FakeClock(bar_time(full, 50)))
    await replay.get_bars(full.symbols, FAR_PAST, FAR_FUTURE)
    await replay.get_bars(["AAPL"], FAR_PAST, FAR_FUTURE)
    await replay.get_snapshots(full.symbols)
    assert replay.api_calls == 3


async def test_a_read_is_counted_and_reported_as_the_live_adapter_would_request_it(full: BarFrame) -> None:
    # One slice whatever the number of symbols, counted per DATA_CHUNK_SIZE symbols like Alpaca's requests, so a
    # sim scan reports the API calls paper would make and its download progress.
    replay = ReplayMarketData(full, FakeClock(bar_time(full, 50)), chunk_size=200)
    seen: list[tuple[int, int]] = []
    frame = await replay.get_bars(full.symbols, FAR_PAST, FAR_FUTURE, on_progress=lambda *p: seen.append(p))
    assert replay.api_calls == 3
    assert seen == [(200, 505), (400, 505), (505, 505)]
    assert np.shares_memory(frame.close, full.close)
    await replay.get_snapshots(full.symbols[:201])
    assert replay.api_calls == 5
    await replay.get_snapshots([])
    assert replay.api_calls == 5


async def test_arrays_are_read_only_and_full_universe_is_not_copied(full: BarFrame) -> None:
    replay = ReplayMarketData(full, FakeClock(bar_time(full, 50)))
    same_order = await replay.get_bars(full.symbols, bar_time(full, 40), FAR_FUTURE)
    assert np.shares_memory(same_order.close, full.close)
    subset = await replay.get_bars(["XOM", "AAPL", "NOPE"], bar_time(full, 40), FAR_FUTURE)
    for frame in (same_order, subset):
        for array in (frame.open, frame.high, frame.low, frame.close, frame.volume, frame.timestamps):
            assert not array.flags.writeable


async def test_snapshot_is_latest_close_at_or_before_now(full: BarFrame) -> None:
    # DHR's 2015-07-17 row has no open but a real close: the snapshot uses the close, so it is still there.
    dhr = full.symbols.index("DHR")
    row = int(np.flatnonzero(np.isnan(full.open[:, dhr]) & ~np.isnan(full.close[:, dhr]))[0])
    replay = ReplayMarketData(full, FakeClock(bar_time(full, row) + timedelta(hours=16)))
    snapshots = await replay.get_snapshots(["DHR", "NOPE"])
    assert set(snapshots) == {"DHR"}
    snap = snapshots["DHR"]
    assert snap.price == full.close[row, dhr]
    assert snap.prev_close == full.close[row - 1, dhr]
    assert snap.volume == full.volume[row, dhr]
    assert snap.ts == bar_time(full, row)


async def test_snapshot_skips_symbols_not_listed_yet(full: BarFrame) -> None:
    ftv = full.symbols.index("FTV")
    first = int(np.flatnonzero(~np.isnan(full.close[:, ftv]))[0])
    replay = ReplayMarketData(full, FakeClock(bar_time(full, first - 1)))
    assert "FTV" not in await replay.get_snapshots(["FTV", "AAPL"])
    assert await ReplayMarketData(full, FakeClock(FAR_PAST)).get_snapshots(["AAPL"]) == {}


async def test_one_row_at_a_time_serves_every_requested_symbol_in_request_order(full: BarFrame) -> None:
    """The daemon's per-iteration call: one row of 505 symbols (its cost is measured by `make bench`, bench_micro)."""
    clock = FakeClock(bar_time(full, 0))
    replay = ReplayMarketData(full, clock)
    subset = tuple(reversed(full.symbols))  # not the history's order: exercises fancy indexing
    for row in range(5):
        now = bar_time(full, row)
        clock.set(now)
        frame = await replay.get_bars(subset, now, FAR_FUTURE)
        assert frame.symbols == subset
        assert frame.close.shape == (1, 505)
        np.testing.assert_array_equal(frame.close[0], full.close[row, ::-1])
