"""Fetching the last few daily bars of many symbols, batched, aligned on a known list of sessions.

The scanner and the volume cache both need "the bars of these sessions for these symbols" as (sessions, symbols)
arrays. Bars are matched to sessions by their New York date, so a row is never shifted onto the wrong day whatever
instant an adapter stamps a daily bar with; a session a symbol has no bar for stays NaN.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from core.broker.base import MarketData, Progress
from core.clock import NyseCalendar
from core.timeconv import datetime_to_ns, ny_instant
from core.types import BarFrame

_FIELDS = ("open", "high", "low", "close", "volume")


@functools.lru_cache(maxsize=8192)
def _midnight_ns(day: date) -> int:
    # zoneinfo per date, cached: a replay asks for the same few hundred sessions over and over, and this replaced a
    # pandas tz conversion per call that cost more than the rest of the scan.
    return datetime_to_ns(ny_instant(day))


def ny_day_bounds(days: Sequence[date]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """For each date, the UTC epoch-ns interval [midnight, next midnight) New York: an instant is on that New York
    date exactly when it falls inside (DST days are 23 or 25 hours long, and the bounds say so)."""
    lo = np.fromiter((_midnight_ns(day) for day in days), dtype=np.int64, count=len(days))
    hi = np.fromiter((_midnight_ns(day + timedelta(days=1)) for day in days), dtype=np.int64, count=len(days))
    return lo, hi


def match_sessions(
    stamps_ns: npt.NDArray[np.int64], sessions: Sequence[date]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """(row, match): the index into the sorted `sessions` of each stamp's New York date, and whether it is one."""
    lo, hi = ny_day_bounds(sessions)
    rows = np.searchsorted(lo, stamps_ns, side="right") - 1
    safe = np.maximum(rows, 0)
    match = (rows >= 0) & (stamps_ns < hi[safe])
    return safe, match


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
    lo, _ = ny_day_bounds(sessions)
    stamps = lo.view("datetime64[ns]")
    shape = (len(sessions), len(symbols))
    start = calendar.daily_bar_ts(sessions[0])
    end = calendar.daily_bar_ts(sessions[-1] + timedelta(days=1))
    if not symbols:
        return BarFrame(symbols=(), timestamps=stamps, **{name: np.full(shape, np.nan) for name in _FIELDS})
    wanted = tuple(symbols)
    frame = await market_data.get_bars(wanted, start, end, on_progress=on_progress)
    if frame.n_rows:
        rows, match = match_sessions(np.asarray(frame.timestamps).view(np.int64), sessions)
        if frame.symbols == wanted and frame.n_rows == len(sessions) and _one_bar_per_session(rows, match):
            # The usual answer of a daily source (and always the replay's): one bar per session, in order. Its
            # arrays already are the window (copied: the caller owns what it gets, the replay's are its history).
            return BarFrame(
                symbols=wanted,
                timestamps=stamps,
                **{name: np.array(getattr(frame, name), dtype=np.float64) for name in _FIELDS},
            )
        arrays = {name: np.full(shape, np.nan) for name in _FIELDS}
        if frame.symbols == wanted:  # the columns asked for, in order (some sessions without a bar)
            for name in _FIELDS:
                arrays[name][rows[match]] = getattr(frame, name)[match]
            return BarFrame(symbols=wanted, timestamps=stamps, **arrays)
        # An adapter answers with the symbols it was asked for; anything else in the frame is ignored.
        position = {symbol: i for i, symbol in enumerate(symbols)}
        known = np.array([symbol in position for symbol in frame.symbols], dtype=bool)
        columns = np.array([position[symbol] for symbol in frame.symbols if symbol in position], dtype=np.intp)
        for name in _FIELDS:
            arrays[name][np.ix_(rows[match], columns)] = getattr(frame, name)[np.ix_(match, known)]
        return BarFrame(symbols=wanted, timestamps=stamps, **arrays)
    return BarFrame(symbols=wanted, timestamps=stamps, **{name: np.full(shape, np.nan) for name in _FIELDS})


def _one_bar_per_session(rows: npt.NDArray[np.intp], match: npt.NDArray[np.bool_]) -> bool:
    """Whether bar i is on session i for every i (the caller checked there are as many bars as sessions)."""
    return bool(match.all()) and bool((rows == np.arange(rows.size)).all())
