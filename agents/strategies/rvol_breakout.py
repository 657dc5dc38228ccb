"""RVOL breakout (`STRATEGY_NAME=rvol_breakout`): a channel breakout confirmed by unusual volume.

Built from the scanner's own factors (the N-day range and relative volume), and of the opposite kind to the z-score
strategy: it buys strength, not weakness.

- entry: the close is above the highest high of the previous `high_days` (20) bars (today's bar excluded) and today's
  volume is at least `min_rvol` (1.5) × the mean volume of the previous `volume_days` (20) bars;
- exit (a held symbol): the close is below the lowest low of the previous `low_days` (10) bars.

A missing bar anywhere in a window leaves that symbol without a signal (NaN propagates; nothing is filled in).
The entry score is the tighter of the two margins in percent, min(close / high − 1, RVOL / min_rvol − 1) × 100:
at least 0 exactly where it enters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.strategies.base import BoolArray, Holdings, Signals, param
from core.types import BarFrame, FloatArray


@dataclass(frozen=True, slots=True)
class BreakoutParams:
    high_days: int = param(20, "enter on a close above the highest high of this many previous bars",
                           setting="BREAKOUT_HIGH_DAYS")  # fmt: skip
    min_rvol: float = param(1.5, "entry also needs today's volume at this multiple of its average or more",
                            setting="BREAKOUT_MIN_RVOL")  # fmt: skip
    volume_days: int = param(20, "previous bars in the average volume", setting="BREAKOUT_VOLUME_DAYS")
    low_days: int = param(10, "exit on a close below the lowest low of this many previous bars",
                          setting="BREAKOUT_LOW_DAYS")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Channel:
    """The latest bar against its previous bars, per column; NaN where a window has a missing bar."""

    close: FloatArray
    high: FloatArray  # highest high of the previous high_days bars
    low: FloatArray  # lowest low of the previous low_days bars
    rvol: FloatArray  # today's volume / mean volume of the previous volume_days bars


def channel(frame: BarFrame, params: BreakoutParams) -> Channel:
    previous = slice(None, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        high = frame.high[previous][-params.high_days :].max(axis=0)
        low = frame.low[previous][-params.low_days :].min(axis=0)
        average = frame.volume[previous][-params.volume_days :].mean(axis=0)
        rvol = np.where(average > 0, frame.volume[-1] / average, np.nan)
    return Channel(close=frame.close[-1], high=high, low=low, rvol=rvol)


class RvolBreakout:
    """Buy a close above its 20-day high on 1.5x volume; sell a close below its 10-day low."""

    Params = BreakoutParams
    order_tag = "rvol_bo"  # the name is 13 characters, one more than a client order id keeps

    def __init__(self, params: BreakoutParams) -> None:
        self.params = params

    @property
    def lookback(self) -> int:
        p = self.params
        return max(p.high_days, p.volume_days, p.low_days) + 1

    def _entries(self, ch: Channel) -> BoolArray:
        with np.errstate(invalid="ignore"):
            entries: BoolArray = (ch.close > ch.high) & (ch.rvol >= self.params.min_rvol)
        return entries

    def _score(self, ch: Channel, entries: BoolArray) -> FloatArray:
        with np.errstate(invalid="ignore", divide="ignore"):
            margin = np.minimum(ch.close / ch.high - 1.0, ch.rvol / self.params.min_rvol - 1.0) * 100.0
        # A close exactly at the high is a margin of 0 but no breakout: keep it below every entry.
        score: FloatArray = np.where(entries, margin, np.minimum(margin, np.nextafter(0.0, -1.0)))
        return score

    def signals(self, frame: BarFrame, holdings: Holdings) -> Signals:
        ch = channel(frame, self.params)
        breakout = self._entries(ch)
        entries = breakout & ~holdings.held
        with np.errstate(invalid="ignore"):
            exits = (ch.close < ch.low) & holdings.held
        p = self.params
        reasons = {
            int(col): f"close {ch.close[col]:.2f} > {p.high_days}-day high {ch.high[col]:.2f}, rvol {ch.rvol[col]:.2f}"
            for col in np.flatnonzero(entries)
        }
        reasons.update(
            {
                int(col): f"close {ch.close[col]:.2f} < {p.low_days}-day low {ch.low[col]:.2f}"
                for col in np.flatnonzero(exits)
            }
        )
        return Signals(entries=entries, exits=exits, score=self._score(ch, breakout), reasons=reasons)

    def entry_score(self, frame: BarFrame) -> FloatArray:
        if frame.n_rows < self.lookback:
            return np.full(frame.n_symbols, np.nan)
        ch = channel(frame, self.params)
        return self._score(ch, self._entries(ch))
