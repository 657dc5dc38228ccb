"""The model's outputs, its skops file and the refusals: another feature list, another strategy, foreign types."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from hypothesis import given
from hypothesis import strategies as st
from sklearn.preprocessing import FunctionTransformer

from core.errors import SetupError
from intelligence.dataset import FEATURE_NAMES, Dataset
from intelligence.labels import ExitRules
from intelligence.model import confidence
from intelligence.model_file import SavedModel, check_made_for, load, save
from intelligence.training import train
from tests.intelligence.conftest import SMALL_FOREST


@pytest.fixture(scope="module")
def saved(dataset: Dataset) -> SavedModel:
    return train(
        dataset,
        strategy="zscore_mean_reversion",
        strategy_params={"window": 20},
        rules=ExitRules(),
        holdout_sessions=252,
        params=SMALL_FOREST,
    )


def test_probabilities_are_in_0_1_and_expected_return_follows_them(saved: SavedModel, dataset: Dataset) -> None:
    p = saved.model.probability(dataset.features)
    assert ((p >= 0) & (p <= 1)).all()
    expected = saved.model.expected_return(p)
    assert saved.model.avg_loss <= 0 < saved.model.avg_win
    assert np.allclose(expected, p * saved.model.avg_win + (1 - p) * saved.model.avg_loss)
    assert saved.meta["train_end"] < saved.meta["holdout_start"]


def test_the_direct_forest_path_gives_scikit_learns_floats(saved: SavedModel, dataset: Dataset) -> None:
    x = dataset.features  # NaN included: the trees route missing values themselves
    assert np.isnan(x).any()
    assert np.array_equal(saved.model.probability(x), np.clip(saved.model.classifier.predict_proba(x)[:, 1], 0, 1))


@given(st.integers(0, 10**7), st.integers(1, 10**6))
def test_confidence_is_in_0_1_and_grows_with_the_samples(n: int, more: int) -> None:
    assert 0 <= confidence(n) < 1
    assert confidence(n + more) > confidence(n)


def test_a_saved_model_loads_with_its_features_and_predicts_the_same(
    saved: SavedModel, dataset: Dataset, tmp_path: Path
) -> None:
    path = tmp_path / "models" / "m.skops"
    save(path, saved)
    loaded = load(path, strategy="zscore_mean_reversion")
    assert loaded.feature_names == FEATURE_NAMES
    assert loaded.meta == saved.meta
    x = dataset.features[:50]
    assert np.array_equal(loaded.model.probability(x), saved.model.probability(x))


def test_a_model_of_another_feature_set_refuses_to_load(saved: SavedModel, tmp_path: Path) -> None:
    path = tmp_path / "old.skops"
    save(path, SavedModel(saved.model, (*FEATURE_NAMES[:-1], "sym_sharpe"), saved.meta))
    with pytest.raises(SetupError, match=r"^ML_MODEL_PATH: .*old.skops: the model's features differ from this "
                       r"version's \(missing \['sym_recent_win_ratio'\], extra \['sym_sharpe'\]\)"):  # fmt: skip
        load(path)


def test_a_model_of_another_strategy_refuses_to_load(saved: SavedModel, tmp_path: Path) -> None:
    path = tmp_path / "m.skops"
    save(path, saved)
    with pytest.raises(SetupError, match="trained on the signals of 'zscore_mean_reversion', STRATEGY_NAME selects"):
        load(path, strategy="rvol_breakout")


def test_a_model_labelled_with_other_parameters_or_exits_is_refused(saved: SavedModel, tmp_path: Path) -> None:
    path = tmp_path / "m.skops"
    save(path, saved)
    loaded = load(path, strategy="zscore_mean_reversion")
    rules = ExitRules().as_dict()
    check_made_for(loaded, strategy_params={"window": 20}, exit_rules=rules)  # as trained: accepted
    with pytest.raises(
        SetupError, match=r'^ML_MODEL_PATH: the model was trained with strategy parameters \{"window": 20\}'
    ):
        check_made_for(loaded, strategy_params={"window": 30}, exit_rules=rules)
    with pytest.raises(SetupError, match=r"trained with exit rules .* retrain with `tradingd ml train`"):
        check_made_for(loaded, strategy_params={"window": 20}, exit_rules={**rules, "stop_loss_pct": 0.08})


def test_a_file_asking_for_other_types_is_refused_before_loading(tmp_path: Path) -> None:
    path = tmp_path / "evil.skops"
    sio.dump({"format": 1, "classifier": FunctionTransformer(func=print)}, path)
    with pytest.raises(SetupError, match=r"refusing to load types outside the allowlist: builtins\.print"):
        load(path)


@pytest.mark.parametrize(("content", "message"), [(None, "no model file"), (b"not a zip", "not a model file")])
def test_a_missing_or_broken_file_is_one_line(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "m.skops"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SetupError, match=message) as raised:
        load(path)
    assert "\n" not in str(raised.value)
