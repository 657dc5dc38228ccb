"""Point-in-time features of entry signals: what was known at the close of the signal's bar, nothing later.

One function, `price_features(frame, rows, cols)`, serves training (every entry signal of the bundled history) and
the decision (the risk agent's signals of one iteration, on a window ending at their bar): each feature of the pair
(row t, column n) is computed from the window of rows t − 251 … t of column n alone, gathered into one
(window, pairs) array, so the floats are the same whatever came before the window or after t. Missing stays missing:
a window with a missing value, or history shorter than the window, gives NaN (the model handles NaN; nothing is
filled in).

The formulas, reused where the scanner already has them (never re-derived):

- zscore            `agents/strategies/zscore_mean_reversion.py::zscore` over the last 20 closes
- rvol              `agents/scan_scoring.py::relative_volume`: the bar's volume / the 20 sessions before it
                    (`core/volume_cache.py::window_averages`, the scan's average volume)
- momentum          `agents/scan_scoring.py::momentum(change_pct(close, previous close), volume)`
- volatility        `window_averages(...).volatility`: sample std of the last 20 close-to-close returns
- dollar_volume_20d `window_averages(...).avg_dollar_volume`: mean close × volume over the last 20 sessions
- bb_width          Bollinger band width, (upper − lower) / middle = 4 × std20 / mean20 (sample std, as the z-score)
- rsi14             100 − 100 / (1 + mean gain / mean loss) over the last 14 close changes (simple means, so the
                    value depends on its window only; 100 with no loss, NaN with no change at all)
- ma_alignment      sign(MA10 − MA20) + sign(MA20 − MA50): +2 rising order, −2 falling order
- dist_52w_high     close / highest high of the last 252 sessions − 1 (≤ 0 when the data are consistent)

and the symbol's tracker statistics (`intelligence/tracker_features.py`).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from agents.scan_scoring import change_pct, momentum, relative_volume
from agents.strategies.zscore_mean_reversion import zscore
from core.types import BarFrame, FloatArray
from core.volume_cache import AVERAGE_SESSIONS, WINDOW_SESSIONS, window_averages

IntArray = npt.NDArray[np.intp]

PRICE_FEATURES: Final = (
    "zscore",
    "rvol",
    "momentum",
    "volatility",
    "bb_width",
    "rsi14",
    "ma_alignment",
    "dist_52w_high",
    "dollar_volume_20d",
)
ZSCORE_WINDOW: Final = 20
RSI_CHANGES: Final = 14
MA_WINDOWS: Final = (10, 20, 50)
HIGH_WINDOW: Final = 252  # sessions in a year of daily bars
# Rows of history a decision needs for every feature to be computable: the longest window.
FEATURE_LOOKBACK: Final = HIGH_WINDOW
# Pairs per gathered block: bounds the (window, pairs) arrays to ~40 MB whatever the number of signals.
_BLOCK_PAIRS: Final = 16_384


def _windows(values: FloatArray, rows: IntArray, cols: IntArray, length: int) -> FloatArray:
    """(length, pairs): the `length` values of column `cols[i]` ending at row `rows[i]`, oldest first; NaN before the
    first row (history too short)."""
    offsets = np.arange(-length + 1, 1)[:, None]
    index = rows[None, :] + offsets
    gathered = values[np.clip(index, 0, None), cols[None, :]]
    windows: FloatArray = np.where(index >= 0, gathered, np.nan)
    return windows


def _as_frame(close: FloatArray) -> BarFrame:
    # `zscore` reads only the closes: the pairs stand in for the frame's columns.
    empty = np.empty((0, 0))
    return BarFrame(
        symbols=(),
        timestamps=np.empty(0, dtype="datetime64[ns]"),
        open=empty,
        high=empty,
        low=empty,
        close=close,
        volume=empty,
    )


def _sign(values: FloatArray) -> FloatArray:
    return np.where(np.isnan(values), np.nan, np.sign(values))


def _block(frame: BarFrame, rows: IntArray, cols: IntArray) -> FloatArray:
    if rows.size == 1:
        # numpy sums a (window, 1) array along its one contiguous axis pairwise, and a (window, m > 1) one row by
        # row: the same pair would get other floats alone than in a batch. Two copies keep it on the row-by-row path.
        return _block(frame, np.repeat(rows, 2), np.repeat(cols, 2))[:1]
    close = _windows(frame.close, rows, cols, max(MA_WINDOWS))
    volume = _windows(frame.volume, rows, cols, WINDOW_SESSIONS + 1)
    high = _windows(frame.high, rows, cols, HIGH_WINDOW)
    last_close, last_volume = close[-1], volume[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        before = window_averages(close[-WINDOW_SESSIONS - 1 : -1], volume[:-1])  # the 20 sessions before the bar
        current = window_averages(close[-WINDOW_SESSIONS:], volume[1:])  # the 20 sessions ending at the bar
        z = zscore(_as_frame(close[-ZSCORE_WINDOW:]), ZSCORE_WINDOW)
        mean20 = close[-AVERAGE_SESSIONS:].mean(axis=0)
        std20 = close[-AVERAGE_SESSIONS:].std(axis=0, ddof=1)
        bb_width = np.where(mean20 > 0, 4.0 * std20 / mean20, np.nan)
        changes = np.diff(close[-RSI_CHANGES - 1 :], axis=0)
        gain = np.where(changes > 0, changes, 0.0).mean(axis=0)
        loss = np.where(changes < 0, -changes, 0.0).mean(axis=0)
        gain = np.where(np.isnan(changes).any(axis=0), np.nan, gain)
        rsi = np.where(loss > 0, 100.0 - 100.0 / (1.0 + gain / loss), np.where(gain > 0, 100.0, np.nan))
        ma10, ma20, ma50 = (close[-n:].mean(axis=0) for n in MA_WINDOWS)
        alignment = _sign(ma10 - ma20) + _sign(ma20 - ma50)
        year_high = high.max(axis=0)
        dist_high = np.where(year_high > 0, last_close / year_high - 1.0, np.nan)
        mom = momentum(change_pct(last_close, close[-2]), last_volume)
        rvol = relative_volume(last_volume, before.avg_volume)
    columns = (
        z,
        rvol,
        mom,
        current.volatility,
        bb_width,
        rsi,
        alignment,
        dist_high,
        current.avg_dollar_volume,
    )
    return np.stack(columns, axis=1)


def price_features(frame: BarFrame, rows: IntArray, cols: IntArray) -> FloatArray:
    """(pairs, len(PRICE_FEATURES)): the features of column `cols[i]` at the close of row `rows[i]`, each from that
    row and the rows before it only."""
    rows = np.asarray(rows, dtype=np.intp)
    cols = np.asarray(cols, dtype=np.intp)
    if rows.shape != cols.shape or rows.ndim != 1:
        raise ValueError(f"rows and cols must be 1-d of one length, got {rows.shape} and {cols.shape}")
    out = np.empty((rows.size, len(PRICE_FEATURES)))
    for start in range(0, rows.size, _BLOCK_PAIRS):
        part = slice(start, start + _BLOCK_PAIRS)
        out[part] = _block(frame, rows[part], cols[part])
    return out
