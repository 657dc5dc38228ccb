"""The symbol's own track record as a feature: `analytics/trades.py::PerformanceTracker` statistics of the strategy's
simulated trades of that symbol closed before the signal's bar, for every sample at once.

`PerformanceTracker.at(day)` keeps the trips whose exit is before `day`'s midnight New York; on daily rows that is
the trips whose exit row is before the signal's row. The tracker answers one symbol on one date by scanning its
trips; here the same statistics come from cumulative sums over the trips sorted by (symbol, exit row) (counts over
all symbols: exact in float; amounts restarting with each symbol), one `searchsorted` per sample, and
`tests/intelligence/test_tracker_features.py` holds them equal to the tracker's.
Undefined stays NaN (no trade yet; no loss for the profit factor), as the tracker's None.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from core.types import FloatArray

IntArray = npt.NDArray[np.intp]

TRACKER_FEATURES: Final = (
    "sym_trades",
    "sym_wins",
    "sym_losses",
    "sym_win_rate",
    "sym_profit_factor",
    "sym_avg_win_pct",
    "sym_avg_loss_pct",
    "sym_recent_win_ratio",
)
RECENT_TRADES: Final = 10  # the recent-wins ratio counts the symbol's last 10 closed trades


def _cumulative(values: FloatArray) -> FloatArray:
    return np.concatenate(([0.0], np.cumsum(values)))


def _running_by_column(values: FloatArray, cols: npt.NDArray[np.int64]) -> FloatArray:
    """Running sums that restart with each column, so a sum never carries the rounding of other symbols' trips (the
    features of bar t stay exactly the same whatever happens after t)."""
    running = np.empty(values.size)
    starts = np.flatnonzero(np.diff(cols, prepend=-1))
    for start, stop in zip(starts, [*starts[1:], values.size], strict=True):
        running[start:stop] = np.cumsum(values[start:stop])
    return running


class TrackRecord:
    """The strategy's simulated trips, sorted and summed once; `at(rows, cols)` answers any number of (bar, column)
    pairs with one `searchsorted` each (the risk agent asks every iteration, training once for every sample)."""

    def __init__(self, trip_cols: IntArray, trip_exit_rows: IntArray, trip_returns: FloatArray) -> None:
        order = np.lexsort((trip_exit_rows, trip_cols))
        self._cols = trip_cols[order].astype(np.int64)
        self._exits = trip_exit_rows[order].astype(np.int64)
        ret = trip_returns[order]
        wins, losses = ret > 0, ret < 0
        self._cum_win = _cumulative(wins.astype(np.float64))
        self._cum_loss = _cumulative(losses.astype(np.float64))
        self._profit = _running_by_column(np.where(wins, ret, 0.0), self._cols)
        self._loss = _running_by_column(np.where(losses, -ret, 0.0), self._cols)

    def _sum(self, running: FloatArray, first: IntArray, last: IntArray) -> FloatArray:
        if running.size == 0:
            return np.zeros(first.size)
        result: FloatArray = np.where(last > first, running[np.maximum(last - 1, 0)], 0.0)
        return result

    def at(self, rows: IntArray, cols: IntArray, *, recent: int = RECENT_TRADES) -> FloatArray:
        """(pairs, len(TRACKER_FEATURES)) for each (row, col): the statistics of the trips of column `col` whose exit
        row is before `row`. A trip's return is a fraction (0.02 = +2 %); the averages are in percent, as the
        tracker's."""
        span = int(max(self._exits.max(initial=0), np.max(rows, initial=0))) + 2
        keys = self._cols * span + self._exits
        col_keys = cols.astype(np.int64) * span
        first = np.searchsorted(keys, col_keys, side="left")
        last = np.searchsorted(keys, col_keys + rows.astype(np.int64), side="left")
        trades = (last - first).astype(np.float64)
        n_wins = self._cum_win[last] - self._cum_win[first]
        n_losses = self._cum_loss[last] - self._cum_loss[first]
        profit = self._sum(self._profit, first, last)
        loss = self._sum(self._loss, first, last)
        recent_first = np.maximum(first, last - recent)
        recent_n = (last - recent_first).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            columns = (
                trades,
                n_wins,
                n_losses,
                np.where(trades > 0, n_wins / trades * 100.0, np.nan),
                np.where(loss > 0, profit / loss, np.nan),
                np.where(n_wins > 0, profit / n_wins * 100.0, np.nan),
                np.where(n_losses > 0, -loss / n_losses * 100.0, np.nan),
                np.where(recent_n > 0, (self._cum_win[last] - self._cum_win[recent_first]) / recent_n, np.nan),
            )
        return np.stack(columns, axis=1)


def tracker_features(
    trip_cols: IntArray,
    trip_exit_rows: IntArray,
    trip_returns: FloatArray,
    rows: IntArray,
    cols: IntArray,
    *,
    recent: int = RECENT_TRADES,
) -> FloatArray:
    """`TrackRecord(trips).at(rows, cols)` in one call."""
    return TrackRecord(trip_cols, trip_exit_rows, trip_returns).at(rows, cols, recent=recent)
