"""Bars that fail sanity are dropped with a counted reason, never repaired with a default.

Input is one symbol's bars in Alpaca's wire shape (`{"t","o","h","l","c","v",...}`), output arrays of the bars
that pass. Each dropped bar is counted under the first reason it fails, in this order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

REASONS = (
    "missing_value",
    "non_positive_price",
    "high_below_low",
    "ohlc_inconsistent",
    "negative_volume",
    "future_timestamp",
    "out_of_order",
)
FIELDS = ("o", "h", "l", "c", "v")
NAT = np.iinfo(np.int64).min
# Relative slack for open/close against [low, high]: prices parsed from decimal text (or adjusted by a vendor in float)
# can land a few ulps outside the range (~1e-16 relative). 1e-9 absorbs that noise while a real violation, at least a
# cent on any price below $10M, is still caught. Shared by the sim path (agents/data.py, core/broker/sim.py).
OHLC_REL_TOLERANCE = 1e-9


def outside_range(
    price: npt.NDArray[np.float64], low: npt.NDArray[np.float64], high: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    """True where `price` lies outside [low, high] by more than float noise (NaN compares False: not flagged here)."""
    with np.errstate(invalid="ignore"):
        slack = OHLC_REL_TOLERANCE * np.abs(high)
        return np.asarray((price > high + slack) | (price < low - slack))


@dataclass(frozen=True, slots=True)
class CleanBars:
    t: npt.NDArray[np.int64]  # bar start, UTC ns, strictly increasing
    values: npt.NDArray[np.float64]  # shape (n, 5): open, high, low, close, volume

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @classmethod
    def empty(cls) -> CleanBars:
        return cls(np.empty(0, dtype=np.int64), np.empty((0, 5), dtype=np.float64))


def timestamps_ns(raw: Sequence[dict[str, Any]]) -> npt.NDArray[np.int64]:
    """Wire timestamps to UTC ns; unreadable ones become NAT (and fail as missing)."""
    stamps = [bar.get("t") for bar in raw]
    if all(isinstance(s, str) and s.endswith("Z") for s in stamps):
        try:
            return np.array([s[:-1] for s in stamps], dtype="datetime64[ns]").astype(np.int64)  # type: ignore[index]
        except ValueError:
            pass  # fall back to one at a time
    out = np.empty(len(stamps), dtype=np.int64)
    for index, stamp in enumerate(stamps):
        out[index] = _one_timestamp(stamp)
    return out


def _one_timestamp(stamp: Any) -> int:
    if not isinstance(stamp, str):
        return NAT
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return NAT
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(np.datetime64(moment.astimezone(UTC).replace(tzinfo=None), "ns").astype(np.int64))


def _values(raw: Sequence[dict[str, Any]]) -> npt.NDArray[np.float64]:
    rows = [[bar.get(name) for name in FIELDS] for bar in raw]
    try:
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(FIELDS))
    except (TypeError, ValueError):
        out = np.full((len(rows), len(FIELDS)), np.nan)
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                if isinstance(value, int | float) and not isinstance(value, bool):
                    out[i, j] = float(value)
        return out


def clean_bars(raw: Sequence[dict[str, Any]], now_ns: int, rejected: Counter[str]) -> CleanBars:
    if not raw:
        return CleanBars.empty()
    t = timestamps_ns(raw)
    values = _values(raw)
    o, h, low, c, v = (values[:, k] for k in range(len(FIELDS)))
    reason = np.full(len(raw), -1, dtype=np.int8)

    def mark(code: int, failed: npt.NDArray[np.bool_]) -> None:
        reason[(reason < 0) & failed] = code

    with np.errstate(invalid="ignore"):
        mark(0, np.isnan(values).any(axis=1) | (t == NAT))
        mark(1, (o <= 0) | (h <= 0) | (low <= 0) | (c <= 0))
        mark(2, h < low)
        # An open or close outside the bar's own range is a corrupt bar: a fill priced from it would be impossible.
        mark(3, outside_range(o, low, h) | outside_range(c, low, h))
        mark(4, v < 0)
        mark(5, t > now_ns)
    candidates = np.flatnonzero(reason < 0)
    # A bar must be later than every earlier good bar; dropping one never lowers that running maximum.
    stamps = t[candidates]
    running = np.maximum.accumulate(np.concatenate(([NAT], stamps)))[:-1]
    reason[candidates[stamps <= running]] = REASONS.index("out_of_order")
    for code in np.unique(reason[reason >= 0]):
        rejected[REASONS[int(code)]] += int(np.count_nonzero(reason == code))
    keep = reason < 0
    return CleanBars(t[keep], values[keep])
