"""Fetching the last few daily bars of many symbols, batched, aligned on a known list of sessions.

The scanner and the volume cache both need "the bars of these sessions for these symbols" as (sessions, symbols)
arrays. Bars are matched to sessions by their New York date, so a row is never shifted onto the wrong day whatever
instant an adapter stamps a daily bar with; a session a symbol has no bar for stays NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np

from core.broker.base import MarketData, Progress
from core.clock import NyseCalendar
from core.timeconv import ny_dates, ny_midnights
from core.types import BarFrame

_FIELDS = ("open", "high", "low", "close", "volume")


def last_sessions(calendar: NyseCalendar, through: date, count: int) -> list[date]:
    """The `count` sessions ending at `through` (inclusive), oldest first."""
    if not calendar.is_trading_day(through):
        raise ValueError(f"{through} is not an NYSE trading day")
    # Two calendar days per session is always enough (weekends and holidays never exceed that ratio over 10+ days).
    span = timedelta(days=2 * count + 10)
    sessions = calendar.sessions_in_range(through - span, through)
    if len(sessions) < count:
        raise ValueError(f"fewer than {count} sessions before {through} in the calendar")
    return sessions[-count:]


async def fetch_daily_window(
    market_data: MarketData,
    calendar: NyseCalendar,
    symbols: Sequence[str],
    sessions: Sequence[date],
    on_progress: Progress | None = None,
) -> BarFrame:
    """Daily bars of `sessions` for `symbols`, in one batched call (the adapter makes one request per chunk of
    symbols and tells `on_progress(symbols_done, symbols_total)` after each: a whole-market download takes a while)."""
    if not sessions:
        raise ValueError("fetch_daily_window needs at least one session")
    expected = np.array(sessions, dtype="datetime64[D]")
    stamps = ny_midnights(expected)
    shape = (len(sessions), len(symbols))
    arrays = {name: np.full(shape, np.nan) for name in _FIELDS}
    start = calendar.daily_bar_ts(sessions[0])
    end = calendar.daily_bar_ts(sessions[-1] + timedelta(days=1))
    if not symbols:
        return BarFrame(symbols=(), timestamps=stamps, **arrays)
    frame = await market_data.get_bars(tuple(symbols), start, end, on_progress=on_progress)
    if frame.n_rows:
        days = ny_dates(frame.timestamps)
        rows = np.minimum(np.searchsorted(expected, days), len(expected) - 1)
        match = expected[rows] == days
        # An adapter answers with the symbols it was asked for; anything else in the frame is ignored.
        position = {symbol: i for i, symbol in enumerate(symbols)}
        known = np.array([symbol in position for symbol in frame.symbols], dtype=bool)
        columns = np.array([position[symbol] for symbol in frame.symbols if symbol in position], dtype=np.intp)
        for name in _FIELDS:
            arrays[name][np.ix_(rows[match], columns)] = getattr(frame, name)[np.ix_(match, known)]
    return BarFrame(symbols=tuple(symbols), timestamps=stamps, **arrays)
