"""Fixtures of the ML tests: the seven real symbols of `small_history`, their samples, a small forest."""

from __future__ import annotations

import pytest

from agents.strategies.zscore_mean_reversion import ZScoreMeanReversion, ZScoreParams
from core.types import BarFrame
from intelligence.dataset import Dataset, build_dataset
from intelligence.labels import ExitRules
from intelligence.model import ForestParams

# Few trees and small leaves: the tests check behaviour, not skill, and must stay fast.
SMALL_FOREST = ForestParams(n_estimators=15, min_samples_leaf=5)


@pytest.fixture(scope="session")
def dataset(small_history: BarFrame) -> Dataset:
    return build_dataset(small_history, ZScoreMeanReversion(ZScoreParams()), ExitRules())
