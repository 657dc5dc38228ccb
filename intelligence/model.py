"""The win-probability model: a calibrated random forest over `FEATURE_NAMES`, and what it says about a signal.

- p: `CalibratedClassifierCV(RandomForestClassifier, ensemble=False)`: one forest on the whole training window, an
  isotonic calibration fitted on its predictions for 3 contiguous folds of that window (each fold's from a forest
  trained on the other two); the forest
  takes NaN features as they are (scikit-learn ≥ 1.4 routes missing values in its trees), nothing is imputed.
- expected return: p × (mean return of the training set's wins) + (1 − p) × (mean return of its losses and flats),
  as a fraction (0.01 = +1 %), after slippage.
- confidence: n / (n + 1000), n = training samples: 0 untrained, 0.5 at 1,000 samples, 0.9 at 9,000; in [0, 1),
  growing with n. It says how much data stands behind p, not how good p is (the evaluation says that).

Deterministic: fixed seeds, one thread per fit (`n_jobs=1`: the machine is shared, and results must not depend on it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import KFold

from core.types import FloatArray

CONFIDENCE_HALF_SAMPLES: Final = 1000
SEED: Final = 0


def confidence(n_samples: int) -> float:
    """n / (n + 1000): how much training data stands behind a probability, in [0, 1)."""
    n = max(n_samples, 0)
    return n / (n + CONFIDENCE_HALF_SAMPLES)


@dataclass(frozen=True, slots=True)
class ForestParams:
    n_estimators: int = 200
    min_samples_leaf: int = 25
    max_features: str = "sqrt"
    calibration_folds: int = 3

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "min_samples_leaf": self.min_samples_leaf,
            "max_features": self.max_features,
            "calibration_folds": self.calibration_folds,
        }


@dataclass(frozen=True, slots=True)
class WinModel:
    """A fitted model and the training set's facts the outputs need."""

    classifier: Any  # CalibratedClassifierCV
    n_train: int
    avg_win: float  # mean return of the winning training samples (fraction)
    avg_loss: float  # mean return of the others (≤ 0)
    base_rate: float
    params: ForestParams = field(default_factory=ForestParams)

    def probability(self, features: FloatArray) -> FloatArray:
        if features.shape[0] == 0:
            return np.empty(0)
        p = _calibrated_forest_p(self.classifier, features)
        if p is None:
            p = self.classifier.predict_proba(features)[:, 1]
        return np.clip(p, 0.0, 1.0)

    def expected_return(self, p: FloatArray) -> FloatArray:
        result: FloatArray = p * self.avg_win + (1.0 - p) * self.avg_loss
        return result

    @property
    def confidence(self) -> float:
        return confidence(self.n_train)


def _calibrated_forest_p(classifier: Any, features: FloatArray) -> FloatArray | None:
    """`classifier.predict_proba(features)[:, 1]` for the one shape `fit` makes (one forest, isotonic, two classes),
    without scikit-learn's per-tree call (its config context, warning filters and input checks cost ~0.3 ms a tree,
    60 ms a decision, against ~0.01 ms for the tree itself): the same sums in the same order, so the same floats
    (`tests/intelligence/test_model.py` holds them equal). Any other shape: None, and the caller asks scikit-learn."""
    calibrated = getattr(classifier, "calibrated_classifiers_", None)
    if calibrated is None or len(calibrated) != 1 or calibrated[0].method != "isotonic":
        return None
    forest = calibrated[0].estimator
    if not isinstance(forest, RandomForestClassifier) or forest.n_outputs_ != 1 or forest.n_classes_ != 2:
        return None
    x = np.ascontiguousarray(features, dtype=np.float32)  # the trees' own dtype (scikit-learn's DTYPE)
    total = np.zeros((x.shape[0], 2))
    for tree in forest.estimators_:
        total += tree.tree_.predict(x)[:, :2]
    total /= len(forest.estimators_)
    p: FloatArray = calibrated[0].calibrators[0].predict(total[:, 1])
    p[(p > 1.0) & (p <= 1.0 + 1e-5)] = 1.0
    return p


def _forest(params: ForestParams, seed: int) -> RandomForestClassifier:
    return RandomForestClassifier(
        n_estimators=params.n_estimators,
        min_samples_leaf=params.min_samples_leaf,
        max_features=params.max_features,
        random_state=seed,
        n_jobs=1,
    )


def fit(
    features: FloatArray,
    wins: npt.NDArray[np.int64],
    returns: FloatArray,
    params: ForestParams | None = None,
    *,
    seed: int = SEED,
) -> WinModel:
    """Fit on one training window. Both classes must be present (a window of only wins teaches nothing)."""
    params = params or ForestParams()
    if np.unique(wins).size < 2:
        raise ValueError(f"training needs wins and losses; got {wins.size} samples of one class")
    # ensemble=False: one forest fit on the whole window, calibrated on its out-of-fold predictions. A decision then
    # asks one forest, not one per calibration fold (three times the trees at every iteration with entries).
    classifier = CalibratedClassifierCV(
        _forest(params, seed), method="isotonic", cv=KFold(params.calibration_folds, shuffle=False), ensemble=False
    )
    classifier.fit(features, wins)
    won = wins == 1
    return WinModel(
        classifier=classifier,
        n_train=int(wins.size),
        avg_win=float(returns[won].mean()),
        avg_loss=float(returns[~won].mean()),
        base_rate=float(won.mean()),
        params=params,
    )
