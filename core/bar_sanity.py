"""Bar sanity: the one set of rules, and of reason codes, a bar must pass before anything is priced from it.

A bad bar is rejected with a counted reason, never repaired with a default. It counts under the first rule it breaks,
in the order of `REASONS`. Two places apply the rules, to different shapes of the same bars:

- the DataAgent, to every frame it fetches from any adapter (`frame_failures`): rejected bars are blanked out of the
  window and published as `DataRejected` (a sim replay counts them in `bad_bars`);
- the Alpaca market-data adapter, to each symbol's bars as they come off the wire (`series_failures`): rejected bars
  are dropped before the bar cache, so the cache never holds one (counted in the adapter's `rejected`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from core.timeconv import datetime_to_ns
from core.types import BarFrame

REASONS: Final = (
    "missing_price",  # an open, high, low or close is missing or not finite
    "missing_volume",  # the volume is missing or not finite
    "non_positive_price",
    "high_below_low",
    "ohlc_inconsistent",  # the open or the close lies outside [low, high] (beyond float noise)
    "negative_volume",
    "future_timestamp",  # the bar starts after now
    "out_of_order",  # a series' bar whose time is unreadable or not after the previous good bar's
)
PASSED: Final = -1
# Relative slack for open/close against [low, high]: prices parsed from decimal text (or adjusted by a vendor in float)
# can land a few ulps outside the range (~1e-16 relative). 1e-9 absorbs that noise while a real violation, at least a
# cent on any price below $10M, is still caught. The sim broker applies the same test to the open it fills at.
OHLC_REL_TOLERANCE: Final = 1e-9

# A bar time that could not be read: the smallest int64, so it is never after an earlier bar (out_of_order).
UNREADABLE_TIME: Final = np.iinfo(np.int64).min

Codes = npt.NDArray[np.int8]
_OUT_OF_ORDER: Final = REASONS.index("out_of_order")


def outside_range(
    price: npt.NDArray[np.float64], low: npt.NDArray[np.float64], high: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    """True where `price` lies outside [low, high] by more than float noise (NaN compares False: not flagged here)."""
    with np.errstate(invalid="ignore"):
        slack = OHLC_REL_TOLERANCE * np.abs(high)
        return np.asarray((price > high + slack) | (price < low - slack))


def frame_failures(frame: BarFrame, now: datetime) -> Codes:
    """(T, N) codes: per bar the index in `REASONS` of the first rule it breaks, or `PASSED`.

    A cell with no value at all is an absent bar (the symbol has no bar that day), not a bad one: it passes.
    """
    stamps = frame.timestamps_ns[:, None]
    return _first_failures(
        frame.open, frame.high, frame.low, frame.close, frame.volume, stamps, datetime_to_ns(now), absent_passes=True
    )


def series_failures(t: npt.NDArray[np.int64], values: npt.NDArray[np.float64], now_ns: int) -> Codes:
    """(n,) codes for one symbol's bars as received: `t` bar starts in epoch ns (`UNREADABLE_TIME` where a time could
    not be read), `values` (n, 5) open, high, low, close, volume (NaN where missing).

    Every received bar claims to be one, so a bar with no value is `missing_price`; and a bar must start after every
    earlier good bar (`out_of_order`).
    """
    o, h, low, c, v = (values[:, k] for k in range(5))
    codes = _first_failures(o, h, low, c, v, t, now_ns, absent_passes=False)
    candidates = np.flatnonzero(codes == PASSED)
    # Dropping a bar never lowers the running maximum of the good ones before it, so one pass decides every bar.
    stamps = t[candidates]
    running = np.maximum.accumulate(np.concatenate(([UNREADABLE_TIME], stamps)))[:-1]
    codes[candidates[stamps <= running]] = _OUT_OF_ORDER
    return codes


def count_failures(codes: Codes) -> dict[str, int]:
    """Failures by reason, in `REASONS` order (reasons nothing failed are left out)."""
    found = np.bincount(codes[codes != PASSED], minlength=len(REASONS))
    return {reason: int(n) for reason, n in zip(REASONS, found, strict=True) if n}


def _first_failures(
    o: npt.NDArray[np.float64],
    h: npt.NDArray[np.float64],
    low: npt.NDArray[np.float64],
    c: npt.NDArray[np.float64],
    v: npt.NDArray[np.float64],
    stamps: npt.NDArray[np.int64],
    now_ns: int,
    *,
    absent_passes: bool,
) -> Codes:
    codes = np.full(c.shape, PASSED, dtype=np.int8)

    def mark(reason: str, failed: npt.NDArray[np.bool_]) -> None:
        codes[(codes == PASSED) & failed] = REASONS.index(reason)

    with np.errstate(invalid="ignore"):
        mark("missing_price", ~(np.isfinite(o) & np.isfinite(h) & np.isfinite(low) & np.isfinite(c)))
        mark("missing_volume", ~np.isfinite(v))
        mark("non_positive_price", (o <= 0) | (h <= 0) | (low <= 0) | (c <= 0))
        mark("high_below_low", h < low)
        # An open of 1e6 under a high of 498 once filled a sell at 999,500: a fill price comes from the open.
        mark("ohlc_inconsistent", outside_range(o, low, h) | outside_range(c, low, h))
        mark("negative_volume", v < 0)
        mark("future_timestamp", np.broadcast_to(stamps > now_ns, c.shape))
    if absent_passes:
        absent = np.isnan(o) & np.isnan(h) & np.isnan(low) & np.isnan(c) & np.isnan(v)
        codes[absent] = PASSED
    return codes
