"""Tests for core/daily_window.py: batched fetch of the last sessions' bars, aligned by New York date."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from core.broker.replay import ReplayMarketData
from core.clock import NyseCalendar, SimClock
from core.daily_window import fetch_daily_window, last_sessions
from core.types import BarFrame


def test_last_sessions_skips_weekends_and_holidays(calendar: NyseCalendar) -> None:
    sessions = last_sessions(calendar, date(2018, 1, 17), 4)
    assert sessions == [date(2018, 1, 11), date(2018, 1, 12), date(2018, 1, 16), date(2018, 1, 17)]
    with pytest.raises(ValueError, match="not an NYSE trading day"):
        last_sessions(calendar, date(2018, 1, 15), 4)


async def test_window_matches_the_history_rows_in_one_batched_call(
    small_history: BarFrame, calendar: NyseCalendar
) -> None:
    market = ReplayMarketData(small_history, SimClock(datetime(2018, 2, 8, tzinfo=UTC)), chunk_size=2)
    symbols = ("XOM", "AAPL", "NOPE", "FTV")
    seen: list[tuple[int, int]] = []
    sessions = last_sessions(calendar, date(2018, 2, 7), 20)
    frame = await fetch_daily_window(market, calendar, symbols, sessions, on_progress=lambda *p: seen.append(p))
    assert market.api_calls == 2  # the adapter's requests of 2 symbols each
    assert seen == [(2, 4), (4, 4)]
    assert frame.symbols == symbols
    for i, symbol in enumerate(symbols):
        if symbol == "NOPE":
            assert np.isnan(frame.close[:, i]).all()
            continue
        column = small_history.symbols.index(symbol)
        np.testing.assert_array_equal(frame.close[:, i], small_history.close[-20:, column])
        np.testing.assert_array_equal(frame.volume[:, i], small_history.volume[-20:, column])
    np.testing.assert_array_equal(frame.timestamps, small_history.timestamps[-20:])


async def test_sessions_the_data_does_not_have_yet_stay_missing(
    small_history: BarFrame, calendar: NyseCalendar
) -> None:
    # The clock is at 2018-02-06 noon: the 2018-02-07 bar does not exist yet, so its row stays NaN.
    market = ReplayMarketData(small_history, SimClock(datetime(2018, 2, 6, 17, 0, tzinfo=UTC)))
    frame = await fetch_daily_window(market, calendar, ("AAPL",), last_sessions(calendar, date(2018, 2, 7), 3))
    assert np.isfinite(frame.close[:2, 0]).all()
    assert np.isnan(frame.close[2, 0])


async def test_a_one_bar_per_session_answer_is_the_window_owned_by_the_caller(
    small_history: BarFrame, calendar: NyseCalendar
) -> None:
    # Asking for the history's own symbols in its order: the replay answers with views of its history. The window
    # built from them holds the same numbers in arrays of its own (the history is never written through it).
    market = ReplayMarketData(small_history, SimClock(datetime(2018, 2, 8, tzinfo=UTC)))
    sessions = last_sessions(calendar, date(2018, 2, 7), 5)
    frame = await fetch_daily_window(market, calendar, small_history.symbols, sessions)
    for name in ("open", "high", "low", "close", "volume"):
        window = getattr(frame, name)
        np.testing.assert_array_equal(window, getattr(small_history, name)[-5:])
        assert window.dtype == np.float64
        assert window.flags.writeable
        assert window.flags.c_contiguous
        assert not np.shares_memory(window, getattr(small_history, name))
