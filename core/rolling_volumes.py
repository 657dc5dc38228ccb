"""The sim replay's volume cache in memory: a rolling window of the last 21 sessions' close and volume per symbol.

A replay scans every session, and the averages of session D's scan end at D-1 (`core/volume_cache.py`). Downloading
20 sessions again for every symbol each session and reading them back through SQLite cost more than the rest of the
iteration; here the window advances by the one new session (one batched `get_bars`, which in sim never shows a bar
after the clock), and the numbers come from `window_averages`, the same function the SQLite refresh uses, over the
same rows in the same order, so the floats are identical. The daemon persists them in one batched write
(`VolumeCache.replace_all`) so the replay's cache file still shows what the scan used.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np

from core.broker.base import MarketData
from core.clock import NyseCalendar
from core.daily_window import fetch_daily_window, last_sessions
from core.volume_cache import WINDOW_SESSIONS, CachedVolumes, WindowAverages, window_averages


class RollingVolumes:
    """The window for one list of symbols; `advance(through)` moves it, `lookup` reads it (a `VolumeLookup`)."""

    def __init__(self) -> None:
        self._symbols: tuple[str, ...] = ()
        self._position: dict[str, int] = {}
        self._through: date | None = None
        self._close = np.empty((WINDOW_SESSIONS, 0))
        self._volume = np.empty((WINDOW_SESSIONS, 0))
        self._averages: WindowAverages | None = None
        self._aligned: tuple[tuple[str, ...], np.ndarray] | None = None  # last lookup's symbols and gather index

    @property
    def through(self) -> date | None:
        return self._through

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    @property
    def averages(self) -> WindowAverages | None:
        return self._averages

    async def advance(
        self, market_data: MarketData, calendar: NyseCalendar, symbols: Sequence[str], through: date
    ) -> int:
        """Make the window end at session `through` for `symbols`; returns how many sessions were fetched.

        The next session after the current end is one row; anything else (first call, other symbols, a gap, going
        back) rebuilds the whole window from 21 sessions.
        """
        wanted = tuple(symbols)
        if wanted == self._symbols and through == self._through:
            return 0
        if wanted == self._symbols and self._through is not None and calendar.next_session(self._through) == through:
            frame = await fetch_daily_window(market_data, calendar, wanted, [through])
            # Shift in place, oldest row out: the rows stay oldest-first, so the means add in the same order.
            self._close[:-1] = self._close[1:]
            self._volume[:-1] = self._volume[1:]
            self._close[-1] = frame.close[0]
            self._volume[-1] = frame.volume[0]
            fetched = 1
        else:
            frame = await fetch_daily_window(
                market_data, calendar, wanted, last_sessions(calendar, through, WINDOW_SESSIONS)
            )
            self._close = np.array(frame.close, dtype=np.float64, order="C")
            self._volume = np.array(frame.volume, dtype=np.float64, order="C")
            if wanted != self._symbols:
                self._symbols = wanted
                self._position = {symbol: i for i, symbol in enumerate(wanted)}
                self._aligned = None
            fetched = WINDOW_SESSIONS
        self._through = through
        self._averages = window_averages(self._close, self._volume)
        return fetched

    def lookup(self, symbols: Sequence[str]) -> CachedVolumes:
        """Entries for `symbols` in their order (NaN/NaT for a symbol outside the window or without a complete one)."""
        wanted = tuple(symbols)
        n = len(wanted)
        averages = self._averages
        if averages is None or self._through is None or not self._symbols:
            nan = np.full(n, np.nan)
            return CachedVolumes(wanted, np.full(n, np.datetime64("NaT"), dtype="datetime64[D]"), nan, nan, nan, nan)
        if self._aligned is None or self._aligned[0] != wanted:
            # The same universe every session: the gather index is built once.
            self._aligned = (wanted, np.array([self._position.get(s, -1) for s in wanted], dtype=np.intp))
        index = self._aligned[1]
        known = index >= 0
        take = np.where(known, index, 0)
        found = known & averages.complete[take]

        def gather(values: np.ndarray) -> np.ndarray:
            return np.where(found, values[take], np.nan)

        as_of = np.where(found, np.datetime64(self._through, "D"), np.datetime64("NaT", "D"))
        return CachedVolumes(
            symbols=wanted,
            as_of=as_of.astype("datetime64[D]"),
            avg_volume=gather(averages.avg_volume),
            avg_dollar_volume=gather(averages.avg_dollar_volume),
            last_close=gather(averages.last_close),
            volatility=gather(averages.volatility),
        )
