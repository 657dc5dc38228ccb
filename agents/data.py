"""DataAgent: the first stage. Fetches bars for every focus symbol (one batched call) and returns one frame per
iteration.

It publishes what it did (`BarsFetched`, and a `DataRejected` per bad bar) for the observers. It keeps a rolling
window (the strategy's lookback) so each iteration asks only for bars since the last one, and it is where bad market
data stops: a bar that fails the bar-sanity rules (`core/bar_sanity.py`: a missing, zero or negative price, missing
or negative volume, high below low, an open or close outside [low, high], a timestamp in the future) is blanked out
of the window with a logged, counted reason. It never becomes a signal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from core.bar_sanity import PASSED, REASONS, count_failures, frame_failures
from core.broker.base import MarketData
from core.bus import EventBus
from core.clock import Clock
from core.messages import BarsFetched, DataRejected
from core.timeconv import datetime64_to_datetime
from core.types import BarFrame, FloatArray

log = structlog.get_logger(__name__)

_FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True)
class Bars:
    """What one fetch returns: the window (read-only arrays), how many of its rows are new, how many new bars are
    valid (warm-up repeats excluded) and the bad ones by reason (as `BarsFetched` carries them)."""

    frame: BarFrame
    new_rows: int
    accepted: int
    rejected: Mapping[str, int]


class DataAgent:
    def __init__(
        self,
        bus: EventBus,
        market_data: MarketData,
        clock: Clock,
        *,
        symbols: Sequence[str],
        lookback: int,
        bar_interval: timedelta,
    ) -> None:
        self._bus = bus
        self._md = market_data
        self._clock = clock
        self.symbols = tuple(symbols)
        self._lookback = lookback
        self._bar_interval = bar_interval
        self._window = BarFrame.empty(self.symbols)
        self._rolling = RollingWindow(self.symbols, lookback)
        self._last_ts: np.datetime64 | None = None
        self._seen_until: np.datetime64 | None = None  # survives a symbol switch: warm-up rows are not new bars

    def set_symbols(self, symbols: tuple[str, ...]) -> None:
        """Watch other symbols from the next fetch on; the window is warmed up again from scratch."""
        self.symbols = tuple(symbols)
        self._window = BarFrame.empty(self.symbols)
        self._rolling = RollingWindow(self.symbols, self._lookback)
        self._last_ts = None

    def _initial_start(self, now: datetime) -> datetime:
        # Enough calendar time to cover `lookback` bars across weekends and holidays.
        return now - self._bar_interval * (self._lookback * 2 + 10)

    async def fetch(self, iteration: int) -> Bars:
        """The bars since the last fetch, bad ones blanked, appended to the window; publishes `BarsFetched`."""
        now = self._clock.now()
        if self._last_ts is None:
            start = self._initial_start(now)
        else:
            start = datetime64_to_datetime(self._last_ts) + timedelta(microseconds=1)
        new = await self._md.get_bars(self.symbols, start, now)
        new_rows = self._count_new(new)
        report_from = new.n_rows - new_rows
        new, rejected = self._reject_bad_bars(new, now, report_from=report_from)
        accepted = int((~np.isnan(new.close[report_from:])).sum())
        self._append(new)
        event = BarsFetched(
            ts_event=now,
            ts_init=self._clock.now(),
            iteration=iteration,
            frame=self._window,
            new_rows=new_rows,
            rejected=rejected,
        )
        self._bus.publish(event)
        return Bars(frame=event.frame, new_rows=new_rows, accepted=accepted, rejected=event.rejected)

    def _count_new(self, new: BarFrame) -> int:
        seen = self._seen_until
        if new.n_rows:
            self._seen_until = new.timestamps[-1] if seen is None else max(seen, new.timestamps[-1])
        return new.n_rows if seen is None else int((new.timestamps > seen).sum())

    def _reject_bad_bars(self, frame: BarFrame, now: datetime, *, report_from: int) -> tuple[BarFrame, dict[str, int]]:
        """Blank every bad bar; count, log and publish only those from row `report_from` on (not warm-up repeats)."""
        if frame.n_rows == 0:
            return frame, {}
        codes = frame_failures(frame, now)
        bad = codes != PASSED
        counts: dict[str, int] = {}
        if bad.any():
            reported = codes.copy()
            reported[:report_from] = PASSED
            counts = count_failures(reported)
            for reason in counts:  # one reason per bar (the first it fails), published reason by reason
                for row, col in zip(*np.nonzero(reported == REASONS.index(reason)), strict=True):
                    bar_ts = datetime64_to_datetime(frame.timestamps[row])
                    symbol = frame.symbols[col]
                    log.warning("bar_rejected", symbol=symbol, bar_ts=bar_ts.isoformat(), reason=reason)
                    self._bus.publish(
                        DataRejected(ts_event=now, ts_init=now, symbol=symbol, bar_ts=bar_ts, reason=reason)
                    )
            cleaned = {name: np.where(bad, np.nan, getattr(frame, name)) for name in _FIELDS}
            frame = BarFrame(symbols=frame.symbols, timestamps=frame.timestamps, **cleaned)
        return frame, counts

    def _append(self, new: BarFrame) -> None:
        if new.n_rows == 0:
            return
        self._window = self._rolling.append(new)
        self._last_ts = new.timestamps[-1]


class RollingWindow:
    """The last `lookback` rows of bars, appended in place without copying the window every iteration.

    Rows are written into a buffer with spare room; each frame handed out is a read-only view of rows that are never
    written again (new rows go below them, and when the buffer is full a *new* buffer is allocated), so a frame
    published earlier stays immutable.
    """

    def __init__(self, symbols: tuple[str, ...], lookback: int, spare: int = 256) -> None:
        self.symbols = symbols
        self.lookback = lookback
        self._capacity = lookback + spare
        self._end = 0
        self._ts, self._data = self._allocate()

    def _allocate(self) -> tuple[npt.NDArray[np.datetime64], dict[str, FloatArray]]:
        shape = (self._capacity, len(self.symbols))
        return np.empty(self._capacity, dtype="datetime64[ns]"), {name: np.full(shape, np.nan) for name in _FIELDS}

    def append(self, new: BarFrame) -> BarFrame:
        k = min(new.n_rows, self.lookback)
        rows = slice(new.n_rows - k, new.n_rows)
        if self._end + k > self._capacity:
            keep = min(self._end, self.lookback - k)
            ts, data = self._allocate()
            ts[:keep] = self._ts[self._end - keep : self._end]
            for name in _FIELDS:
                data[name][:keep] = self._data[name][self._end - keep : self._end]
            self._ts, self._data, self._end = ts, data, keep
        end = self._end + k
        self._ts[self._end : end] = new.timestamps[rows]
        for name in _FIELDS:
            self._data[name][self._end : end] = getattr(new, name)[rows]
        self._end = end
        return self.frame()

    def frame(self) -> BarFrame:
        start = max(0, self._end - self.lookback)
        return BarFrame(
            symbols=self.symbols,
            timestamps=_readonly(self._ts[start : self._end]),
            **{name: _readonly(self._data[name][start : self._end]) for name in _FIELDS},
        )


def _readonly(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    view = arr.view()
    view.setflags(write=False)
    return view
