"""The training set: every entry signal of the strategy on the history, its point-in-time features and its label.

`FEATURE_NAMES` is the model's contract: a saved model records it, and one with another list refuses to load
(`intelligence/model_file.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

import numpy as np
import numpy.typing as npt

from agents.strategies.base import Strategy
from core.timeconv import ny_dates
from core.types import BarFrame, FloatArray
from intelligence.features import PRICE_FEATURES, price_features
from intelligence.labels import ExitRules, Samples, cleaned, simulate, strategy_marks
from intelligence.tracker_features import TRACKER_FEATURES, TrackRecord

FEATURE_NAMES: Final = PRICE_FEATURES + TRACKER_FEATURES


@dataclass(frozen=True, slots=True)
class Dataset:
    """Samples (one per labelled entry signal) with their features, over `frame` (the cleaned history)."""

    frame: BarFrame
    samples: Samples
    features: FloatArray  # (samples, FEATURE_NAMES)

    @property
    def labels(self) -> npt.NDArray[np.int64]:
        return self.samples.win

    def session(self, row: int) -> date:
        return session_date(self.frame, row)


def session_date(frame: BarFrame, row: int) -> date:
    """The New York date of a daily bar."""
    day: date = ny_dates(frame.timestamps[row : row + 1])[0].item()
    return day


def track_record(trips: Samples) -> TrackRecord:
    return TrackRecord(trips.col, trips.exit_row, trips.ret)


def sample_features(frame: BarFrame, samples: Samples, record: TrackRecord) -> FloatArray:
    """The features of `samples` on `frame`, the tracker part from `record` (the strategy's simulated trades)."""
    prices = price_features(frame, samples.row, samples.col)
    return np.concatenate([prices, record.at(samples.row, samples.col)], axis=1)


def build_dataset(history: BarFrame, strategy: Strategy, rules: ExitRules) -> Dataset:
    frame = cleaned(history)
    samples = simulate(frame, strategy_marks(strategy, frame), rules)
    return Dataset(frame=frame, samples=samples, features=sample_features(frame, samples, track_record(samples)))
