"""Point in time: no feature of bar t may use a later bar; the decision's window gives the training's floats."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from agents.strategies.zscore_mean_reversion import ZScoreMeanReversion, ZScoreParams
from core.types import BarFrame
from intelligence.dataset import FEATURE_NAMES, Dataset, build_dataset
from intelligence.features import FEATURE_LOOKBACK, PRICE_FEATURES, price_features
from intelligence.labels import ExitRules


def _perturbed_after(frame: BarFrame, t: int, seed: int) -> BarFrame:
    """Every bar after row t changed (prices scaled by random factors, volumes too); rows up to t untouched."""
    rng = np.random.default_rng(seed)
    shape = (frame.n_rows - t - 1, frame.n_symbols)
    factor = rng.uniform(0.5, 1.5, shape)

    def change(values: np.ndarray, scale: float = 1.0) -> np.ndarray:
        out = values.copy()
        out[t + 1 :] = values[t + 1 :] * factor * scale
        return out

    return BarFrame(
        symbols=frame.symbols,
        timestamps=frame.timestamps,
        open=change(frame.open),
        high=change(frame.high),
        low=change(frame.low),
        close=change(frame.close),
        volume=change(frame.volume, rng.uniform(0.2, 5.0)),
    )


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


def test_no_price_feature_of_bar_t_changes_when_every_later_bar_does(small_history: BarFrame) -> None:
    cols = np.arange(small_history.n_symbols)
    for t in (30, 300, 700, small_history.n_rows - 2):
        rows = np.full(cols.size, t)
        before = price_features(small_history, rows, cols)
        after = price_features(_perturbed_after(small_history, t, seed=t), rows, cols)
        assert _same(before, after), t


def test_no_sample_feature_before_t_changes_when_every_later_bar_does(
    small_history: BarFrame, dataset: Dataset
) -> None:
    """The whole path (signals, simulated trades for the tracker statistics, price features) on perturbed bars."""
    t = 800
    changed = build_dataset(
        _perturbed_after(small_history, t, seed=1), ZScoreMeanReversion(ZScoreParams()), ExitRules()
    )

    def by_key(d: Dataset) -> dict[tuple[int, int], np.ndarray]:
        s = d.samples
        return {(int(r), int(c)): d.features[i] for i, (r, c) in enumerate(zip(s.row, s.col, strict=True)) if r < t}

    original, perturbed = by_key(dataset), by_key(changed)
    assert original.keys() == perturbed.keys()
    assert len(original) > 100
    assert all(_same(original[k], perturbed[k]) for k in original)


def test_a_decision_window_gives_the_training_features_exactly(small_history: BarFrame) -> None:
    """The risk agent's path: a window of FEATURE_LOOKBACK rows ending at the bar, its last row."""
    cols = np.arange(small_history.n_symbols)
    for t in (FEATURE_LOOKBACK - 1, 600, small_history.n_rows - 1):
        start = t + 1 - FEATURE_LOOKBACK
        window = BarFrame(
            symbols=small_history.symbols,
            timestamps=small_history.timestamps[start : t + 1],
            open=small_history.open[start : t + 1],
            high=small_history.high[start : t + 1],
            low=small_history.low[start : t + 1],
            close=small_history.close[start : t + 1],
            volume=small_history.volume[start : t + 1],
        )
        full = price_features(small_history, np.full(cols.size, t), cols)
        last = price_features(window, np.full(cols.size, FEATURE_LOOKBACK - 1), cols)
        assert _same(full, last)


def test_missing_history_is_nan_never_a_made_up_value(small_history: BarFrame) -> None:
    cols = np.arange(small_history.n_symbols)
    early = price_features(small_history, np.full(cols.size, 30), cols)
    year_high = PRICE_FEATURES.index("dist_52w_high")
    assert np.isnan(early[:, year_high]).all()  # 31 rows: no 252-session high yet
    ftv = small_history.column("FTV")  # listed in 2016: no bars before
    first = int(np.flatnonzero(np.isfinite(small_history.close[:, ftv]))[0])
    assert np.isnan(price_features(small_history, np.array([first + 5]), np.array([ftv]))[0, 0])  # no 20-day z-score


def test_features_are_one_row_per_pair_in_the_contract_order(dataset: Dataset) -> None:
    assert dataset.features.shape == (len(dataset.samples), len(FEATURE_NAMES))
    assert FEATURE_NAMES[: len(PRICE_FEATURES)] == PRICE_FEATURES


@given(st.lists(st.integers(0, 1257), min_size=1, max_size=30))
def test_features_of_a_pair_do_not_depend_on_the_other_pairs(small_history: BarFrame, rows: list[int]) -> None:
    cols = np.arange(len(rows)) % small_history.n_symbols
    together = price_features(small_history, np.array(rows), cols)
    alone = np.concatenate(
        [price_features(small_history, np.array([r]), np.array([c])) for r, c in zip(rows, cols, strict=False)]
    )
    assert _same(together, alone)
