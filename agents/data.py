"""DataAgent: the first stage. Fetches bars for every focus symbol in batches and returns one frame per iteration.

It publishes what it did (`BarsFetched`, and a `DataRejected` per bad bar) for the observers. It keeps a rolling
window (the strategy's lookback) so each iteration asks only for bars since the last one, and it is where bad market
data stops: a bar with a missing, zero or negative price, high below low, an open or close outside [low, high],
negative volume or a timestamp in the future is blanked out of the window with a logged, counted reason. It never
becomes a signal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from core.broker.bar_sanity import outside_range
from core.broker.base import MarketData
from core.bus import EventBus
from core.clock import Clock
from core.messages import BarsFetched, DataRejected
from core.types import BarFrame, FloatArray

log = structlog.get_logger(__name__)

_FIELDS = ("open", "high", "low", "close", "volume")


def _chunks(symbols: Sequence[str], size: int) -> list[tuple[str, ...]]:
    return [tuple(symbols[i : i + size]) for i in range(0, len(symbols), size)]


def _to_datetime(ts: np.datetime64) -> datetime:
    return datetime.fromtimestamp(int(ts.astype("datetime64[us]").astype(np.int64)) / 1e6, tz=UTC)


def sanity_mask(frame: BarFrame, now: datetime) -> dict[str, npt.NDArray[np.bool_]]:
    """Boolean (T, N) masks of bars to reject, by reason. A bar with no data at all is not 'bad', just absent."""
    prices = np.stack([frame.open, frame.high, frame.low, frame.close])
    with np.errstate(invalid="ignore"):
        absent = np.isnan(prices).all(axis=0) & np.isnan(frame.volume)
        # An infinite price is as unusable as a missing one: no real bar carries it.
        missing = (np.isnan(prices) | np.isinf(prices)).any(axis=0) & ~absent
        non_positive: npt.NDArray[np.bool_] = np.asarray((prices <= 0).any(axis=0))
        high_below_low = frame.high < frame.low
        ohlc_inconsistent = outside_range(frame.open, frame.low, frame.high) | outside_range(
            frame.close, frame.low, frame.high
        )
        negative_volume = frame.volume < 0
    future = (frame.timestamps > np.datetime64(now.replace(tzinfo=None), "ns"))[:, None] & ~absent
    return {
        "missing_price": missing,
        "non_positive_price": non_positive,
        "high_below_low": high_below_low & ~non_positive,
        # An open of 1e6 under a high of 498 once filled a sell at 999,500: the fill price comes from the open.
        # Counted under high_below_low when that also holds (as the Alpaca path does: first reason wins).
        "ohlc_inconsistent": ohlc_inconsistent & ~non_positive & ~high_below_low,
        "negative_volume": negative_volume,
        "future_timestamp": future,
    }


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
        chunk_size: int,
    ) -> None:
        self._bus = bus
        self._md = market_data
        self._clock = clock
        self.symbols = tuple(symbols)
        self._lookback = lookback
        self._bar_interval = bar_interval
        self._chunk_size = chunk_size
        self._chunks = _chunks(self.symbols, chunk_size)
        self._window = BarFrame.empty(self.symbols)
        self._rolling = RollingWindow(self.symbols, lookback)
        self._last_ts: np.datetime64 | None = None
        self._seen_until: np.datetime64 | None = None  # survives a symbol switch: warm-up rows are not new bars

    def set_symbols(self, symbols: tuple[str, ...]) -> None:
        """Watch other symbols from the next fetch on; the window is warmed up again from scratch."""
        self.symbols = tuple(symbols)
        self._chunks = _chunks(self.symbols, self._chunk_size)
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
            start = _to_datetime(self._last_ts) + timedelta(microseconds=1)
        frames = [await self._md.get_bars(chunk, start, now) for chunk in self._chunks]
        new = frames[0] if len(frames) == 1 else _merge_columns(frames, self.symbols)
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
        masks = sanity_mask(frame, now)
        bad = np.zeros(frame.close.shape, dtype=bool)
        counts: dict[str, int] = {}
        for reason, reason_mask in masks.items():
            mask = reason_mask & ~bad  # one reason per bar: the first that applies
            bad |= mask
            mask[:report_from] = False
            n = int(mask.sum())
            if n:
                counts[reason] = n
                for row, col in zip(*np.nonzero(mask), strict=True):
                    bar_ts = _to_datetime(frame.timestamps[row])
                    symbol = frame.symbols[col]
                    log.warning("bar_rejected", symbol=symbol, bar_ts=bar_ts.isoformat(), reason=reason)
                    self._bus.publish(
                        DataRejected(ts_event=now, ts_init=now, symbol=symbol, bar_ts=bar_ts, reason=reason)
                    )
        if bad.any():
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


def _merge_columns(frames: Sequence[BarFrame], symbols: tuple[str, ...]) -> BarFrame:
    """Chunks may disagree on timestamps (a symbol without a bar): align them on the union."""
    timestamps = np.unique(np.concatenate([f.timestamps for f in frames]))
    out = {name: np.full((len(timestamps), len(symbols)), np.nan) for name in _FIELDS}
    col = 0
    for f in frames:
        rows = np.searchsorted(timestamps, f.timestamps)
        for name in _FIELDS:
            out[name][rows, col : col + f.n_symbols] = getattr(f, name)
        col += f.n_symbols
    return BarFrame(symbols=symbols, timestamps=timestamps, **out)
