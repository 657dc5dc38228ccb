"""Tests for core/volume_cache.py: averages from real bars, batched refresh, --stale, and no defaults."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from structlog.testing import capture_logs

from core.broker.replay import ReplayMarketData
from core.clock import NyseCalendar, SimClock
from core.timeconv import NEW_YORK
from core.types import BarFrame
from core.volume_cache import VolumeCache, cache_target, refresh_volume_cache
from tests.fakes.damage import DAMAGE, assert_set_aside, damage, foreign_database

SYMBOLS = ("AAPL", "MSFT", "DHR", "O", "XOM", "JPM", "FTV")
NOW = datetime(2018, 2, 7, 21, 5, tzinfo=UTC)


@pytest.fixture
def market(small_history: BarFrame) -> ReplayMarketData:
    return ReplayMarketData(small_history, SimClock(NOW))


@pytest.fixture
def cache(tmp_path: Path) -> VolumeCache:
    return VolumeCache(tmp_path / "volume_cache.db")


def expected_averages(history: BarFrame, through: date) -> pd.DataFrame:
    days = pd.DatetimeIndex(history.timestamps).tz_localize("UTC").tz_convert(NEW_YORK).date
    close = pd.DataFrame(history.close, index=days, columns=history.symbols).loc[:through].tail(20)
    volume = pd.DataFrame(history.volume, index=days, columns=history.symbols).loc[:through].tail(20)
    return pd.DataFrame(
        {"avg_volume": volume.mean(), "avg_dollar_volume": (close * volume).mean(), "last_close": close.iloc[-1]}
    )


async def test_refresh_stores_20_session_averages_of_real_bars(
    cache: VolumeCache, market: ReplayMarketData, calendar: NyseCalendar, small_history: BarFrame
) -> None:
    through = date(2018, 2, 6)
    market = ReplayMarketData(small_history, SimClock(NOW), chunk_size=3)
    stats = await refresh_volume_cache(cache, market, calendar, SYMBOLS, through=through, now=NOW)
    assert stats.written == 7
    assert stats.api_calls == 3  # ceil(7 / 3) requests, never one per symbol
    cached = cache.lookup(SYMBOLS)
    expected = expected_averages(small_history, through).loc[list(SYMBOLS)]
    np.testing.assert_allclose(cached.avg_volume, expected["avg_volume"].to_numpy())
    np.testing.assert_allclose(cached.avg_dollar_volume, expected["avg_dollar_volume"].to_numpy())
    np.testing.assert_allclose(cached.last_close, expected["last_close"].to_numpy())
    assert (cached.as_of == np.datetime64("2018-02-06")).all()


async def test_symbol_without_a_complete_window_gets_no_entry(
    cache: VolumeCache, market: ReplayMarketData, calendar: NyseCalendar
) -> None:
    # FTV (Fortive) starts trading in July 2016: in June 2016 it has no bars, so no average, not a zero one.
    stats = await refresh_volume_cache(cache, market, calendar, SYMBOLS, through=date(2016, 6, 1), now=NOW)
    cached = cache.lookup(SYMBOLS)
    assert stats.incomplete == 1
    assert np.isnan(cached.avg_volume[SYMBOLS.index("FTV")])
    assert cached.found.tolist() == [s != "FTV" for s in SYMBOLS]


async def test_an_entry_that_can_no_longer_be_computed_is_removed(
    cache: VolumeCache, market: ReplayMarketData, calendar: NyseCalendar, small_history: BarFrame
) -> None:
    await refresh_volume_cache(cache, market, calendar, ["DHR"], through=date(2018, 2, 6), now=NOW)
    assert cache.lookup(["DHR"]).found[0]
    # DHR has real rows with an empty close in the bundled file; a window containing one is not a 20-day average.
    bad_row = int(np.flatnonzero(np.isnan(small_history.close[:, small_history.symbols.index("DHR")]))[-1])
    day = pd.Timestamp(small_history.timestamps[bad_row]).tz_localize("UTC").tz_convert(NEW_YORK).date()
    stats = await refresh_volume_cache(cache, market, calendar, ["DHR"], through=day, now=NOW)
    assert stats.incomplete == 1
    assert not cache.lookup(["DHR"]).found[0]


async def test_stale_only_refreshes_missing_and_old_entries(
    cache: VolumeCache, market: ReplayMarketData, calendar: NyseCalendar
) -> None:
    await refresh_volume_cache(cache, market, calendar, ["AAPL", "MSFT"], through=date(2018, 2, 5), now=NOW)
    await refresh_volume_cache(cache, market, calendar, ["AAPL"], through=date(2018, 2, 6), now=NOW)
    calls = market.api_calls
    stats = await refresh_volume_cache(
        cache, market, calendar, ["AAPL", "MSFT", "XOM"], through=date(2018, 2, 6), now=NOW, stale_only=True
    )
    assert (stats.requested, stats.skipped_fresh, stats.written) == (3, 1, 2)  # MSFT was old, XOM missing
    assert market.api_calls - calls == 1
    again = await refresh_volume_cache(
        cache, market, calendar, ["AAPL", "MSFT", "XOM"], through=date(2018, 2, 6), now=NOW, stale_only=True
    )
    assert (again.skipped_fresh, again.written, again.api_calls) == (3, 0, 0)


async def test_lookup_keeps_the_requested_order_and_classifies_entries(
    cache: VolumeCache, market: ReplayMarketData, calendar: NyseCalendar
) -> None:
    await refresh_volume_cache(cache, market, calendar, ["AAPL"], through=date(2018, 2, 5), now=NOW)
    await refresh_volume_cache(cache, market, calendar, ["MSFT"], through=date(2018, 2, 6), now=NOW)
    await refresh_volume_cache(cache, market, calendar, ["XOM"], through=date(2018, 2, 7), now=NOW)
    cached = cache.lookup(["XOM", "NOPE", "MSFT", "AAPL"])
    status = cached.classify(date(2018, 2, 6))
    assert status["ahead"].tolist() == [True, False, False, False]
    assert status["missing"].tolist() == [False, True, False, False]
    assert status["fresh"].tolist() == [False, False, True, False]
    assert status["stale"].tolist() == [False, False, False, True]
    summary = cache.summary(date(2018, 2, 6))
    assert (summary["entries"], summary["fresh"], summary["stale"], summary["ahead"]) == (3, 1, 1, 1)


def test_cache_target_is_the_session_before_the_scan(calendar: NyseCalendar) -> None:
    assert cache_target(calendar, date(2018, 2, 7)) == date(2018, 2, 6)
    assert cache_target(calendar, date(2018, 1, 16)) == date(2018, 1, 12)  # over a weekend and MLK day


async def test_cache_survives_reopening(tmp_path: Path, market: ReplayMarketData, calendar: NyseCalendar) -> None:
    with VolumeCache(tmp_path / "c.db") as first:
        await refresh_volume_cache(first, market, calendar, ["AAPL"], through=date(2018, 2, 6), now=NOW)
    with VolumeCache(tmp_path / "c.db") as second:
        assert second.lookup(["AAPL"]).found[0]


def _filled(path: Path, symbols: int = 2000) -> None:
    names = [f"S{i:04d}" for i in range(symbols)]
    ones = np.ones(symbols)
    with VolumeCache(path) as cache:
        cache.put(names, date(2018, 2, 6), ones, ones, ones, now=NOW)


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_cache_file_is_set_aside_and_the_cache_starts_empty(tmp_path: Path, how: str) -> None:
    path = tmp_path / "volume_cache.sim.db"
    _filled(path)
    content = damage(path, how)

    with capture_logs() as logs, VolumeCache(path) as cache:
        assert cache.summary()["entries"] == 0
        cache.put(["AAPL"], date(2018, 2, 6), np.ones(1), np.ones(1), np.ones(1), now=NOW)  # and it keeps working
        assert cache.lookup(["AAPL"]).found.tolist() == [True]

    assert_set_aside(path, content, logs, "volume_cache_corrupt")


def test_a_foreign_table_of_the_same_name_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "volume_cache.sim.db"
    content = foreign_database(path, "CREATE TABLE volume_averages (symbol TEXT, volume REAL)")
    with capture_logs() as logs, VolumeCache(path) as cache:
        assert cache.summary()["entries"] == 0
    assert_set_aside(path, content, logs, "volume_cache_corrupt")
