"""Tests for agents/scan_scoring.py: the scan's formulas, NaN discipline and the renormalised explosion score."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.scan_scoring import (
    EXPLOSION_CAP,
    EXPLOSION_WEIGHTS,
    change_pct,
    explosion_probability,
    first_failure,
    market_factors,
    momentum,
    optional_factors,
    oversold_score,
    percentile_rank,
    relative_volume,
    top_k,
)


def test_first_failure_counts_each_symbol_once_under_its_first_reason() -> None:
    a = np.array([True, True, False, False])
    b = np.array([True, False, True, False])
    passed, counts = first_failure(4, [("a", a), ("b", b)])
    assert passed.tolist() == [False, False, False, True]
    assert counts == {"a": 2, "b": 1}


def test_momentum_is_abs_change_times_two_plus_log_volume() -> None:
    # AAPL on 2018-02-07: close 159.54, previous 163.03, volume 51,608,580.
    change = change_pct(np.array([159.54]), np.array([163.03]))
    score = momentum(change, np.array([51_608_580.0]))
    expected = abs((159.54 / 163.03 - 1) * 100) * 2.0 + math.log(51_608_580.0)
    assert score[0] == pytest.approx(expected)


def test_momentum_without_volume_is_missing_not_zero() -> None:
    assert np.isnan(momentum(np.array([1.0]), np.array([0.0]))[0])


def test_top_k_returns_largest_first_ignoring_nan_and_keeps_index_order_on_ties() -> None:
    values = np.array([3.0, np.nan, 5.0, 3.0, 1.0])
    assert top_k(values, 3).tolist() == [2, 0, 3]
    assert top_k(values, 10).tolist() == [2, 0, 3, 4]
    assert top_k(np.array([np.nan]), 2).size == 0


def test_percentile_rank_is_share_at_or_below() -> None:
    population = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    assert percentile_rank(np.array([2.0, 4.0, np.nan]), population)[:2].tolist() == [0.5, 1.0]
    assert np.isnan(percentile_rank(np.array([np.nan]), population)[0])


def test_relative_volume_is_missing_without_a_positive_average() -> None:
    rvol = relative_volume(np.array([300.0, 300.0, 300.0]), np.array([100.0, 0.0, np.nan]))
    assert rvol[0] == 3.0
    assert np.isnan(rvol[1:]).all()


def test_oversold_score_bounds_and_missing_inputs() -> None:
    full = oversold_score(np.array([-4.0]), np.array([10.0]), np.array([1.0]))
    none = oversold_score(np.array([1.0]), np.array([1.0]), np.array([0.0]))
    assert full[0] == pytest.approx(100.0)
    assert none[0] == pytest.approx(0.0)
    assert np.isnan(oversold_score(np.array([np.nan]), np.array([2.0]), np.array([0.5]))[0])


def test_explosion_is_95_times_weighted_mean_of_available_factors() -> None:
    factors = market_factors(
        momentum_pct=np.array([0.9]), rvol=np.array([10.0]), change=np.array([-5.0]), price=np.array([50.0])
    )
    result = explosion_probability(factors)
    subscores = {"momentum": 0.9, "rvol": 1.0, "change_pct": 0.5, "price_level": 0.5}
    weights = {name: EXPLOSION_WEIGHTS[name] for name in subscores}
    expected = EXPLOSION_CAP * sum(weights[n] * subscores[n] for n in subscores) / sum(weights.values())
    assert result.probability[0] == pytest.approx(expected)
    assert result.factors_of(0) == ["momentum", "rvol", "change_pct", "price_level"]


def test_explosion_renormalises_per_symbol_when_a_source_has_data_for_some_symbols_only() -> None:
    base = market_factors(
        momentum_pct=np.array([0.5, 0.5]),
        rvol=np.array([2.0, 2.0]),
        change=np.array([3.0, 3.0]),
        price=np.array([20.0, 20.0]),
    )
    extra = optional_factors({"short_interest": np.array([0.30, np.nan])})
    with_extra = explosion_probability({**base, **extra})
    without = explosion_probability(base)
    # Symbol 1 has no short-interest data: left out and renormalised, so the same as if no source existed.
    assert with_extra.probability[1] == pytest.approx(without.probability[1])
    assert with_extra.factors_of(1) == ["momentum", "rvol", "change_pct", "price_level"]
    # Symbol 0 has 30 % short interest (sub-score 1), which lifts it above the market-only figure.
    assert with_extra.probability[0] > without.probability[0]
    assert "short_interest" in with_extra.factors_of(0)


def test_explosion_never_exceeds_95_and_is_missing_without_any_factor() -> None:
    ones = {name: np.array([1.0, np.nan]) for name in EXPLOSION_WEIGHTS}
    result = explosion_probability(ones)
    assert result.probability[0] == pytest.approx(95.0)
    assert np.isnan(result.probability[1])
    assert result.factors_of(1) == []


def test_unknown_factor_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        optional_factors({"sentiment": np.array([1.0])})
    with pytest.raises(ValueError, match="unknown"):
        explosion_probability({"sentiment": np.array([1.0])})
