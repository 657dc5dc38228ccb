"""What was invested each session: the positions rebuilt from the fills, valued at the session's close, by tier.

Quantities are the running sum of the fills up to each session's end (a fill on a session counts in that session's
end-of-day position; fills before the first session make the positions held at its start). A position's tier is its
latest buy's. The close is the bars' (sim: the bundled bars; paper/live: the market-data port's), carried forward over
a missing bar; a symbol with no close yet is valued at its last fill price.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from core.bars import last_valid_row
from core.timeconv import datetime_to_ns, ny_dates
from core.types import BarFrame, Fill, FloatArray, OrderSide, Tier

_NO_TIER = "none"


@dataclass(frozen=True, slots=True)
class Exposure:
    invested_pct: FloatArray  # per session, positions' value / equity, percent
    by_tier_pct: Mapping[str, FloatArray]  # tier name -> per session, percent
    held_value: FloatArray  # per session, dollars
    last_values: Mapping[str, float]  # symbol -> the value held at the last session's close, dollars (held only)


def session_index(sessions: Sequence[date], fills: Sequence[Fill]) -> np.ndarray:
    """Each fill's session: the first session on or after its New York date (-1: after the last session)."""
    days = np.array(sessions, dtype="datetime64[D]")
    stamps = np.array([datetime_to_ns(f.ts) for f in fills], dtype=np.int64)
    fill_days = ny_dates(stamps).astype("datetime64[D]")
    index = np.searchsorted(days, fill_days, side="left")
    return np.where(index < len(sessions), index, -1)


def exposure(
    sessions: Sequence[date],
    equity: FloatArray,
    fills: Sequence[Fill],
    fill_tiers: Sequence[Tier | None],
    bars: BarFrame,
) -> Exposure:
    """`equity`: end-of-day equity per session; `fill_tiers`: each fill's order's tier."""
    symbols = sorted({f.symbol for f in fills})
    column = {s: i for i, s in enumerate(symbols)}
    shape = (len(sessions), len(symbols))
    if not fills or not sessions:
        zeros = np.zeros(len(sessions))
        return Exposure(invested_pct=zeros, by_tier_pct={}, held_value=zeros, last_values={})
    rows = session_index(sessions, fills)
    cols = np.array([column[f.symbol] for f in fills], dtype=np.int64)
    signed = np.array([float(f.qty) if f.side is OrderSide.BUY else -float(f.qty) for f in fills])
    prices = np.array([float(f.price) for f in fills])
    kept = rows >= 0
    rows, cols, signed, prices = rows[kept], cols[kept], signed[kept], prices[kept]
    tiers_kept = [t for t, k in zip(fill_tiers, kept.tolist(), strict=True) if k]

    deltas = np.zeros(shape)
    np.add.at(deltas, (rows, cols), signed)
    held = np.cumsum(deltas, axis=0)
    held[np.abs(held) < 1e-9] = 0.0  # Decimal quantities summed as floats: a closed position is exactly flat

    marks = _closes(sessions, symbols, bars)
    fill_marks = np.full(shape, np.nan)
    fill_marks[rows, cols] = prices  # the last fill of a session wins (fills are in time order)
    fallback = np.take_along_axis(fill_marks, np.maximum(last_valid_row(fill_marks), 0), axis=0)
    marks = np.where(np.isfinite(marks), marks, fallback)
    values = np.where(held != 0, held * np.nan_to_num(marks), 0.0)

    # The tier of each position: its latest buy's, carried forward.
    is_buy = signed > 0
    # Named by the buys only: an exit's order (a protective stop, a flatten) carries no tier of its own.
    buy_tiers = [_NO_TIER if t is None else t.value for t, buy in zip(tiers_kept, is_buy.tolist(), strict=True) if buy]
    names = sorted(set(buy_tiers))
    codes = np.full(shape, np.nan)
    codes[rows[is_buy], cols[is_buy]] = np.array([names.index(t) for t in buy_tiers], dtype=np.float64)
    carried = np.take_along_axis(codes, np.maximum(last_valid_row(codes), 0), axis=0)

    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(equity > 0, 100.0 / equity, 0.0)
    held_value = values.sum(axis=1)
    by_tier = {name: (np.where(carried == i, values, 0.0).sum(axis=1) * scale) for i, name in enumerate(names)}
    last_values = {symbol: value for symbol, value in zip(symbols, values[-1].tolist(), strict=True) if value != 0}
    return Exposure(
        invested_pct=held_value * scale, by_tier_pct=by_tier, held_value=held_value, last_values=last_values
    )


def _closes(sessions: Sequence[date], symbols: Sequence[str], bars: BarFrame) -> FloatArray:
    """(sessions, symbols) closes carried forward to each session; NaN where the bars have none yet."""
    out = np.full((len(sessions), len(symbols)), np.nan)
    present = {s: i for i, s in enumerate(bars.symbols)}
    wanted = [(j, present[s]) for j, s in enumerate(symbols) if s in present]
    if not wanted or bars.n_rows == 0:
        return out
    days = ny_dates(bars.timestamps_ns).astype("datetime64[D]")
    session_rows = np.searchsorted(days, np.array(sessions, dtype="datetime64[D]"), side="right") - 1
    targets, sources = (np.array(x, dtype=np.int64) for x in zip(*wanted, strict=True))
    closes = bars.close[:, sources]
    carried = np.take_along_axis(closes, np.maximum(last_valid_row(closes), 0), axis=0)
    picked = np.where(session_rows[:, None] >= 0, carried[np.maximum(session_rows, 0)], np.nan)
    out[:, targets] = picked
    return out
