"""20-day z-score mean reversion (`STRATEGY_NAME=zscore_mean_reversion`, the default).

Enter long when the latest close sits `entry` (−2.0) standard deviations below the mean of the last `window` (20)
closes; exit when the z-score is back to `exit` (0). One numpy pass over a (window, symbols) array per frame.
Its entry score for the daily scan is `entry − z`: how far past its own entry threshold a symbol is, in standard
deviations (≥ 0 exactly where it enters).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.strategies.base import Holdings, Signals, param
from core.types import BarFrame, FloatArray


@dataclass(frozen=True, slots=True)
class ZScoreParams:
    window: int = param(20, "closes in the mean and standard deviation", setting="ZSCORE_WINDOW")
    entry: float = param(-2.0, "enter at or below this z-score", setting="ZSCORE_ENTRY")
    exit: float = param(0.0, "exit a held symbol at or above this z-score", setting="ZSCORE_EXIT")


def zscore(frame: BarFrame, window: int) -> FloatArray:
    """z = (close − mean) / std over the last `window` closes (sample std), for every column at once.

    NaN where the window is incomplete, a close in it is missing, or the closes do not move.
    """
    closes = frame.close[-window:]
    if closes.shape[0] < window:
        return np.full(closes.shape[1], np.nan)
    mean = closes.mean(axis=0)
    std = closes.std(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        z: FloatArray = np.where(std > 0, (closes[-1] - mean) / std, np.nan)
    return z


class ZScoreMeanReversion:
    """Buy a close 2 standard deviations below its 20-day mean; sell when it is back at the mean."""

    Params = ZScoreParams
    order_tag = "zscore_mr"  # the ids it wrote before strategies were selectable: its open orders keep theirs

    def __init__(self, params: ZScoreParams) -> None:
        self.params = params

    @property
    def lookback(self) -> int:
        return self.params.window

    def signals(self, frame: BarFrame, holdings: Holdings) -> Signals:
        z = zscore(frame, self.params.window)
        with np.errstate(invalid="ignore"):
            entries = (z <= self.params.entry) & ~holdings.held
            exits = (z >= self.params.exit) & holdings.held
        reasons = {int(col): f"zscore {z[col]:.2f} <= entry" for col in np.flatnonzero(entries)}
        reasons.update({int(col): f"zscore {z[col]:.2f} >= exit" for col in np.flatnonzero(exits)})
        return Signals(entries=entries, exits=exits, score=-z, reasons=reasons)

    def entry_score(self, frame: BarFrame) -> FloatArray:
        score: FloatArray = self.params.entry - zscore(frame, self.params.window)
        return score
