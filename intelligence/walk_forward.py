"""Walk-forward evaluation: train on the past, test on the next period, never on a label the test could see.

Folds: the first test period starts after `min_train_sessions` (504: two years) and each lasts `test_sessions` (126:
six months), to the end of the data. A fold trains on the samples whose label was known (exit fill bar) at or before
`train_end` = test start − embargo − 1 session, where the embargo is the longest holding period of the samples capped
at 60 sessions; it tests on the signals whose bar is in the test period. So train end + embargo < test start, and no
training label overlaps the test period.

Every fold reports ROC AUC, Brier score, log loss and the base win rate of its test set, for the model, for a control
(the same model trained on shuffled labels: what chance looks like here) and for a baseline (the strategy's own
score, mapped to a probability by a logistic fit on the same training set). `overall` pools every fold's test
predictions; the calibration table (deciles of p) is the model's, pooled.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from core.timeconv import ny_dates
from core.types import FloatArray
from intelligence.dataset import Dataset, session_date
from intelligence.labels import embargo_sessions
from intelligence.model import ForestParams, WinModel, fit

IntArray = npt.NDArray[np.intp]
Labels = npt.NDArray[np.int64]

MIN_TRAIN_SESSIONS: Final = 504
TEST_SESSIONS: Final = 126
EMBARGO_CAP: Final = 60
CALIBRATION_BINS: Final = 10
_EPS: Final = 1e-15


@dataclass(frozen=True, slots=True)
class Fold:
    """Rows of the frame: training labels known at or before `train_end`; test signals in [test_start, test_stop)."""

    train_end: int
    test_start: int
    test_stop: int
    embargo: int


def folds(
    n_rows: int,
    embargo: int,
    *,
    min_train_sessions: int = MIN_TRAIN_SESSIONS,
    test_sessions: int = TEST_SESSIONS,
) -> list[Fold]:
    made = []
    for start in range(min_train_sessions, n_rows, test_sessions):
        train_end = start - embargo - 1
        if train_end < 0:
            continue
        made.append(Fold(train_end, start, min(start + test_sessions, n_rows), embargo))
    return made


def metrics(wins: Labels, p: FloatArray) -> dict[str, Any]:
    """ROC AUC (None with one class only), Brier score, log loss, base rate; None for all without samples."""
    if wins.size == 0:
        return {"n": 0, "base_rate": None, "auc": None, "brier": None, "log_loss": None}
    clipped = np.clip(p, _EPS, 1.0 - _EPS)
    both = np.unique(wins).size == 2
    return {
        "n": int(wins.size),
        "base_rate": float(wins.mean()),
        "auc": float(roc_auc_score(wins, p)) if both else None,
        "brier": float(brier_score_loss(wins, p)),
        "log_loss": float(log_loss(wins, clipped, labels=[0, 1])),
    }


def calibration_table(wins: Labels, p: FloatArray, bins: int = CALIBRATION_BINS) -> list[dict[str, Any]]:
    """Per decile of predicted p: how many, the mean p, the observed win rate (None when empty)."""
    index = np.minimum((p * bins).astype(np.intp), bins - 1)
    rows = []
    for b in range(bins):
        inside = index == b
        count = int(inside.sum())
        rows.append(
            {
                "bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}",
                "n": count,
                "mean_p": float(p[inside].mean()) if count else None,
                "observed": float(wins[inside].mean()) if count else None,
            }
        )
    return rows


def _baseline(train_score: FloatArray, train_wins: Labels, test_score: FloatArray) -> FloatArray:
    """The strategy's score as a probability: a one-feature logistic fit on the training set (no NaN: 0)."""
    fitted = LogisticRegression().fit(np.nan_to_num(train_score)[:, None], train_wins)
    p: FloatArray = fitted.predict_proba(np.nan_to_num(test_score)[:, None])[:, 1]
    return p


@dataclass(frozen=True, slots=True)
class Evaluation:
    folds: list[dict[str, Any]]
    overall: dict[str, Any]
    control: dict[str, Any]
    baseline: dict[str, Any]
    calibration: list[dict[str, Any]]
    embargo: int
    n_samples: int

    def as_json(self) -> dict[str, Any]:
        return {
            "folds": self.folds,
            "overall": self.overall,
            "control": self.control,
            "baseline": self.baseline,
            "calibration": self.calibration,
            "embargo_days": self.embargo,
            "n_samples": self.n_samples,
        }


def training_index(dataset: Dataset, train_end: int) -> IntArray:
    index: IntArray = np.flatnonzero(dataset.samples.exit_row <= train_end)
    return index


def fit_window(dataset: Dataset, index: IntArray, params: ForestParams, *, seed: int = 0) -> WinModel:
    s = dataset.samples
    return fit(dataset.features[index], s.win[index], s.ret[index], params, seed=seed)


def evaluate(
    dataset: Dataset,
    params: ForestParams | None = None,
    *,
    min_train_sessions: int = MIN_TRAIN_SESSIONS,
    test_sessions: int = TEST_SESSIONS,
    on_fold: Callable[[int, int], None] | None = None,
) -> Evaluation:
    params = params or ForestParams()
    samples = dataset.samples
    embargo = embargo_sessions(samples, EMBARGO_CAP)
    plan = folds(dataset.frame.n_rows, embargo, min_train_sessions=min_train_sessions, test_sessions=test_sessions)
    wins = samples.win
    rng = np.random.default_rng(0)
    reports: list[dict[str, Any]] = []
    pooled: dict[str, list[FloatArray]] = {"model": [], "control": [], "baseline": []}
    pooled_wins: list[Labels] = []
    for number, fold in enumerate(plan, 1):
        train = training_index(dataset, fold.train_end)
        test = np.flatnonzero((samples.row >= fold.test_start) & (samples.row < fold.test_stop))
        if train.size == 0 or test.size == 0 or np.unique(wins[train]).size < 2:
            continue
        model = fit_window(dataset, train, params)
        p = model.probability(dataset.features[test])
        shuffled = rng.permutation(wins[train])
        control = fit(dataset.features[train], shuffled, samples.ret[train], params)
        p_control = control.probability(dataset.features[test])
        p_base = _baseline(samples.score[train], wins[train], samples.score[test])
        report = {
            "train_start": _iso(dataset, int(samples.row[train].min())),
            "train_end": _iso(dataset, fold.train_end),
            "test_start": _iso(dataset, fold.test_start),
            "test_end": _iso(dataset, fold.test_stop - 1),
            "embargo_days": embargo,
            "n_train": int(train.size),
            "n_test": int(test.size),
            **_plain(metrics(wins[test], p)),
            "control": _plain(metrics(wins[test], p_control)),
            "baseline": _plain(metrics(wins[test], p_base)),
        }
        reports.append(report)
        pooled["model"].append(p)
        pooled["control"].append(p_control)
        pooled["baseline"].append(p_base)
        pooled_wins.append(wins[test])
        if on_fold is not None:
            on_fold(number, len(plan))
    all_wins = np.concatenate(pooled_wins) if pooled_wins else np.empty(0, dtype=np.int64)

    def overall(name: str) -> dict[str, Any]:
        return _plain(metrics(all_wins, np.concatenate(pooled[name]) if pooled[name] else np.empty(0)))

    p_all = np.concatenate(pooled["model"]) if pooled["model"] else np.empty(0)
    return Evaluation(
        folds=reports,
        overall=overall("model"),
        control=overall("control"),
        baseline=overall("baseline"),
        calibration=calibration_table(all_wins, p_all),
        embargo=embargo,
        n_samples=len(samples),
    )


def _plain(m: dict[str, Any]) -> dict[str, Any]:
    """Metrics as plain JSON numbers: a non-finite float (never expected) becomes null, like an undefined one."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in m.items()}


def _iso(dataset: Dataset, row: int) -> str:
    return session_date(dataset.frame, row).isoformat()


def row_of(dataset: Dataset, day: date) -> int:
    """The first row on or after `day`."""
    days = ny_dates(dataset.frame.timestamps)
    return int(np.searchsorted(days, np.datetime64(day, "D")))
