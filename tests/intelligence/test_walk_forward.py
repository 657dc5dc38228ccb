"""Walk-forward: folds never let a training label reach the test period; the evaluation is the issue's contract."""

from __future__ import annotations

import itertools

import numpy as np

from intelligence.dataset import Dataset
from intelligence.labels import embargo_sessions
from intelligence.walk_forward import calibration_table, evaluate, folds, metrics, training_index
from tests.intelligence.conftest import SMALL_FOREST

FOLD_KEYS = {
    "train_start", "train_end", "test_start", "test_end", "embargo_days", "n_train", "n_test", "base_rate", "auc",
    "brier", "log_loss",
}  # fmt: skip


def test_train_end_plus_embargo_is_before_test_start_on_the_real_data(dataset: Dataset) -> None:
    embargo = embargo_sessions(dataset.samples)
    plan = folds(dataset.frame.n_rows, embargo)
    assert len(plan) >= 5
    for fold in plan:
        assert fold.train_end + fold.embargo < fold.test_start
        train = training_index(dataset, fold.train_end)
        # No training label is known after train_end, so none overlaps the test period.
        assert (dataset.samples.exit_row[train] <= fold.train_end).all()
        assert (dataset.samples.exit_row[train] < fold.test_start - embargo).all()
    starts = [f.test_start for f in plan]
    assert all(a.test_stop <= b.test_start for a, b in itertools.pairwise(plan))  # test periods do not overlap
    assert starts == sorted(starts)


def test_evaluate_follows_the_json_contract_and_is_deterministic(dataset: Dataset) -> None:
    first = evaluate(dataset, SMALL_FOREST, min_train_sessions=756, test_sessions=252).as_json()
    again = evaluate(dataset, SMALL_FOREST, min_train_sessions=756, test_sessions=252).as_json()
    assert first == again
    assert first["folds"]
    assert all(fold.keys() >= FOLD_KEYS for fold in first["folds"])
    for fold in first["folds"]:
        assert fold["train_end"] < fold["test_start"] <= fold["test_end"]
        assert 0 <= fold["base_rate"] <= 1
        assert 0 <= fold["brier"] <= 1
    for name in ("overall", "control", "baseline"):
        assert {"base_rate", "auc", "brier", "log_loss"} <= first[name].keys()
    assert sum(row["n"] for row in first["calibration"]) == first["overall"]["n"]


def test_metrics_of_a_perfect_and_a_constant_predictor() -> None:
    wins = np.array([0, 1, 1, 0])
    perfect = metrics(wins, wins.astype(float))
    assert perfect["auc"] == 1.0
    assert perfect["brier"] == 0.0
    assert perfect["base_rate"] == 0.5
    assert metrics(np.array([1, 1]), np.array([0.7, 0.7]))["auc"] is None  # one class: undefined, not a number
    table = calibration_table(wins, np.array([0.05, 0.95, 1.0, 0.5]))
    assert [row["n"] for row in table] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 2]
