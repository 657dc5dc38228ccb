"""Tests for core/rolling_volumes.py: the replay's in-memory window gives the SQLite cache's numbers, bit for bit."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.broker.replay import ReplayMarketData
from core.clock import NyseCalendar, SimClock
from core.rolling_volumes import RollingVolumes
from core.timeconv import NEW_YORK
from core.types import BarFrame
from core.volume_cache import CachedVolumes, VolumeCache, cache_target, refresh_volume_cache

SYMBOLS = ("AAPL", "MSFT", "DHR", "O", "XOM", "JPM", "FTV")
NOW = datetime(2018, 2, 7, 21, 5, tzinfo=UTC)


def assert_same(a: CachedVolumes, b: CachedVolumes) -> None:
    assert a.symbols == b.symbols
    np.testing.assert_array_equal(a.as_of, b.as_of)
    for name in ("avg_volume", "avg_dollar_volume", "last_close", "volatility"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def sessions_between(calendar: NyseCalendar, first: date, last: date) -> list[date]:
    return calendar.sessions_in_range(first, last)


async def test_rolling_window_matches_the_sqlite_refresh_session_by_session(
    tmp_path: Path, small_history: BarFrame, calendar: NyseCalendar
) -> None:
    # July 2016: FTV starts trading (no entry, then an incomplete window, then a complete one); DHR and O carry real
    # empty rows in the bundled file. Each session the scan's clock stands at its scan time, as in a replay.
    sessions = sessions_between(calendar, date(2016, 6, 20), date(2016, 9, 1))
    clock = SimClock(calendar.scan_time(sessions[0]))
    market = ReplayMarketData(small_history, clock)
    cache = VolumeCache(tmp_path / "volume_cache.db")
    rolling = RollingVolumes()
    order = ("XOM", "FTV", "AAPL", "ZZZZ", "DHR")  # the lookup's order is the caller's, unknown symbols included
    for session in [*sessions[:30], *sessions[32:]]:  # a gap of two sessions: the window is rebuilt
        clock.set(calendar.scan_time(session))
        through = cache_target(calendar, session)
        await refresh_volume_cache(cache, market, calendar, SYMBOLS, through=through, now=NOW, stale_only=True)
        await rolling.advance(market, calendar, SYMBOLS, through)
        assert_same(rolling.lookup(order), cache.lookup(order))
    assert rolling.lookup(["FTV"]).found[0]


async def test_advancing_by_one_session_fetches_one_row_and_a_repeat_fetches_nothing(
    small_history: BarFrame, calendar: NyseCalendar
) -> None:
    market = ReplayMarketData(small_history, SimClock(NOW))
    rolling = RollingVolumes()
    assert await rolling.advance(market, calendar, SYMBOLS, date(2018, 2, 2)) == 21
    assert await rolling.advance(market, calendar, SYMBOLS, date(2018, 2, 5)) == 1
    assert await rolling.advance(market, calendar, SYMBOLS, date(2018, 2, 5)) == 0
    assert await rolling.advance(market, calendar, SYMBOLS[:3], date(2018, 2, 5)) == 21  # other symbols: rebuilt


async def test_the_window_never_sees_a_bar_after_the_clock(small_history: BarFrame, calendar: NyseCalendar) -> None:
    # At the scan time of 2018-02-06 the bar of 2018-02-07 does not exist yet: a window through it has no entry.
    market = ReplayMarketData(small_history, SimClock(calendar.scan_time(date(2018, 2, 6))))
    rolling = RollingVolumes()
    await rolling.advance(market, calendar, SYMBOLS, date(2018, 2, 7))
    assert not rolling.lookup(SYMBOLS).found.any()


async def test_volatility_is_the_sample_std_of_20_daily_returns_ending_at_as_of(
    small_history: BarFrame, calendar: NyseCalendar
) -> None:
    market = ReplayMarketData(small_history, SimClock(NOW))
    rolling = RollingVolumes()
    through = date(2018, 2, 6)
    await rolling.advance(market, calendar, SYMBOLS, through)
    days = pd.DatetimeIndex(small_history.timestamps).tz_localize("UTC").tz_convert(NEW_YORK).date
    close = pd.DataFrame(small_history.close, index=days, columns=small_history.symbols).loc[:through]
    expected = close["MSFT"].pct_change().tail(20).std(ddof=1)
    assert rolling.lookup(["MSFT"]).volatility[0] == pytest.approx(expected, rel=1e-12)


async def test_replace_all_persists_the_window_in_one_write(
    tmp_path: Path, small_history: BarFrame, calendar: NyseCalendar
) -> None:
    market = ReplayMarketData(small_history, SimClock(NOW))
    rolling = RollingVolumes()
    await rolling.advance(market, calendar, SYMBOLS, date(2016, 7, 6))  # FTV: no complete window yet
    assert rolling.averages is not None
    with VolumeCache(tmp_path / "volume_cache.db") as cache:
        cache.put(["GONE"], date(2016, 7, 1), np.ones(1), np.ones(1), np.ones(1), now=NOW)
        written = cache.replace_all(rolling.symbols, date(2016, 7, 6), rolling.averages, now=NOW)
        assert written == len(SYMBOLS) - 1
        assert_same(cache.lookup(SYMBOLS), rolling.lookup(SYMBOLS))
        assert not cache.lookup(["GONE"]).found[0]  # the file holds exactly the window


def test_a_cache_written_before_the_volatility_column_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "volume_cache.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE volume_averages (symbol TEXT PRIMARY KEY, as_of TEXT NOT NULL, sessions INTEGER NOT NULL, "
        "avg_volume REAL NOT NULL, avg_dollar_volume REAL NOT NULL, last_close REAL NOT NULL, updated_at TEXT NOT NULL)"
    )
    conn.execute("INSERT INTO volume_averages VALUES ('AAPL', '2018-02-06', 20, 1.0, 2.0, 3.0, 'x')")
    conn.commit()
    conn.close()
    with VolumeCache(path) as cache:
        cached = cache.lookup(["AAPL"])
        assert cached.found[0]  # kept, not set aside
        assert cached.last_close[0] == 3.0
        assert np.isnan(cached.volatility[0])  # unknown, never a default
