"""`ReplayMarketData`: the sim `MarketData` adapter, serving windows of a `BarFrame` as the clock advances.

It never shows the future: a bar is visible only once its timestamp is at or before `clock.now()`. Reads are numpy
slicing over precomputed arrays (no pandas, no per-symbol loop on the hot path) and return read-only arrays.

A read is one slice whatever the number of symbols, but it is counted (and its progress reported) as the Alpaca
adapter would make it: one request per `chunk_size` symbols, so a sim scan reports the API calls paper would make.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt

from core.bars import last_valid_row
from core.broker.base import Progress, Snapshot, SnapshotColumns
from core.clock import Clock
from core.timeconv import datetime_to_ns, ns_to_datetime
from core.types import BarFrame, FloatArray

_COLUMN_CACHE_SIZE = 8


def _read_only(array: FloatArray) -> FloatArray:
    array.setflags(write=False)
    return array


class ReplayMarketData:
    def __init__(self, history: BarFrame, clock: Clock, *, chunk_size: int | None = None) -> None:
        """`chunk_size`: symbols per request (`DATA_CHUNK_SIZE`); None counts every read as one request."""
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        self._history = history
        self._clock = clock
        self._chunk_size = chunk_size
        self._ts_ns = history.timestamps_ns
        self._column_of = {symbol: i for i, symbol in enumerate(history.symbols)}
        self._last_close_row = last_valid_row(history.close)
        self._api_calls = 0
        # One-entry cache: the pipeline asks for the same symbol tuple every iteration.
        self._cached_request: tuple[str, ...] | None = None
        self._cached_columns: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._cached_unknown: npt.NDArray[np.bool_] | None = None  # None when every requested symbol is known
        self._cached_is_identity = False
        self._column_cache: dict[tuple[str, ...], tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_] | None, bool]] = {}
        self._snapshot_request: tuple[tuple[str, ...], npt.NDArray[np.int64], npt.NDArray[np.bool_]] | None = None

    @property
    def api_calls(self) -> int:
        return self._api_calls

    @property
    def history(self) -> BarFrame:
        return self._history

    def visible_rows(self) -> int:
        """How many bars are at or before now (bar `visible_rows() - 1` is the latest one the pipeline may see)."""
        return int(np.searchsorted(self._ts_ns, datetime_to_ns(self._clock.now()), side="right"))

    async def get_bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, *, on_progress: Progress | None = None
    ) -> BarFrame:
        requested = symbols if isinstance(symbols, tuple) else tuple(symbols)
        self._count_requests(len(requested), on_progress)
        first = int(np.searchsorted(self._ts_ns, datetime_to_ns(start), side="left"))
        stop = min(int(np.searchsorted(self._ts_ns, datetime_to_ns(end), side="left")), self.visible_rows())
        stop = max(stop, first)
        columns, unknown, identity = self._columns_for(requested)
        history = self._history
        timestamps = history.timestamps[first:stop]
        if identity:
            # Same symbols in the same order as the history: row slices are views, nothing is copied.
            return BarFrame(
                symbols=requested,
                timestamps=timestamps,
                open=history.open[first:stop],
                high=history.high[first:stop],
                low=history.low[first:stop],
                close=history.close[first:stop],
                volume=history.volume[first:stop],
            )
        return BarFrame(
            symbols=requested,
            timestamps=timestamps,
            open=self._take(history.open, first, stop, columns, unknown),
            high=self._take(history.high, first, stop, columns, unknown),
            low=self._take(history.low, first, stop, columns, unknown),
            close=self._take(history.close, first, stop, columns, unknown),
            volume=self._take(history.volume, first, stop, columns, unknown),
        )

    async def get_snapshots(self, symbols: Sequence[str]) -> dict[str, Snapshot]:
        self._count_requests(len(symbols), None)
        visible = self.visible_rows()
        if visible == 0:
            return {}
        latest_rows = self._last_close_row[visible - 1]
        close = self._history.close
        snapshots: dict[str, Snapshot] = {}
        for symbol in symbols:
            column = self._column_of.get(symbol)
            if column is None:
                continue
            row = int(latest_rows[column])
            if row < 0:
                continue
            previous_row = int(self._last_close_row[row - 1, column]) if row > 0 else -1
            snapshots[symbol] = Snapshot(
                symbol=symbol,
                price=float(close[row, column]),
                prev_close=float(close[previous_row, column]) if previous_row >= 0 else float("nan"),
                volume=float(self._history.volume[row, column]),
                ts=ns_to_datetime(int(self._ts_ns[row])),
            )
        return snapshots

    async def get_snapshot_columns(self, symbols: Sequence[str]) -> SnapshotColumns:
        """`get_snapshots` as arrays: the same rows (latest visible close, the close before it), one gather."""
        requested = symbols if isinstance(symbols, tuple) else tuple(symbols)
        n = len(requested)
        self._count_requests(n, None)
        visible = self.visible_rows()
        if self._snapshot_request is None or self._snapshot_request[0] != requested:
            # Its own one-entry cache: the scan's pool must not evict the pipeline's every-iteration request.
            positions = np.array([self._column_of.get(symbol, -1) for symbol in requested], dtype=np.int64)
            self._snapshot_request = (requested, np.maximum(positions, 0), positions < 0)
        _, columns, unknown = self._snapshot_request
        if visible == 0 or self._history.n_symbols == 0:
            return SnapshotColumns(
                present=np.zeros(n, dtype=bool),
                price=np.full(n, np.nan),
                prev_close=np.full(n, np.nan),
                volume=np.full(n, np.nan),
                ts_ns=np.zeros(n, dtype=np.int64),
            )
        rows = self._last_close_row[visible - 1][columns].astype(np.int64)
        present = (rows >= 0) & ~unknown
        safe_rows = np.where(present, rows, 0)
        previous = np.where(
            present & (safe_rows > 0), self._last_close_row[np.maximum(safe_rows - 1, 0), columns], -1
        ).astype(np.int64)
        close, volume = self._history.close, self._history.volume
        return SnapshotColumns(
            present=present,
            price=np.where(present, close[safe_rows, columns], np.nan),
            prev_close=np.where(present & (previous >= 0), close[np.maximum(previous, 0), columns], np.nan),
            volume=np.where(present, volume[safe_rows, columns], np.nan),
            ts_ns=np.where(present, self._ts_ns[safe_rows], 0).astype(np.int64),
        )

    def _count_requests(self, n_symbols: int, on_progress: Progress | None) -> None:
        # Like the Alpaca adapter: no request for no symbol.
        chunk = self._chunk_size or max(n_symbols, 1)
        if on_progress is None:  # every iteration's read: arithmetic, no loop
            self._api_calls += -(-n_symbols // chunk)
            return
        for first in range(0, n_symbols, chunk):
            self._api_calls += 1
            on_progress(min(first + chunk, n_symbols), n_symbols)

    def _columns_for(
        self, requested: tuple[str, ...]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_] | None, bool]:
        if requested is self._cached_request:
            return self._cached_columns, self._cached_unknown, self._cached_is_identity
        # A few entries: the pipeline's every-iteration request must survive the daily scan's own requests.
        entry = self._column_cache.get(requested)
        if entry is None:
            # The scan asks for a new shortlist every session: one C-level pass over the names.
            n = len(requested)
            columns = np.fromiter(map(self._column_of.get, requested, itertools.repeat(-1, n)), np.int64, count=n)
            unknown = columns < 0
            entry = (
                np.where(unknown, 0, columns),
                unknown if unknown.any() else None,
                requested == self._history.symbols,
            )
            if len(self._column_cache) >= _COLUMN_CACHE_SIZE:
                self._column_cache.pop(next(iter(self._column_cache)))
            self._column_cache[requested] = entry
        self._cached_request = requested
        self._cached_columns, self._cached_unknown, self._cached_is_identity = entry
        return entry

    @staticmethod
    def _take(
        values: FloatArray,
        first: int,
        stop: int,
        columns: npt.NDArray[np.int64],
        unknown: npt.NDArray[np.bool_] | None,
    ) -> FloatArray:
        if values.shape[1] == 0:  # nothing to index into: every requested symbol is unknown
            return _read_only(np.full((stop - first, len(columns)), np.nan))
        window = np.take(values[first:stop], columns, axis=1)
        if unknown is not None:
            window[:, unknown] = np.nan
        return _read_only(window)
