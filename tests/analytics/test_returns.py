"""Every return statistic against the same number worked out by hand (plain Python, written out below) on a short real
series: 30 sessions of AAPL's bundled closes used as an equity curve, plus a series made up to hit the edge cases."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest

from analytics.returns import alpha_beta, daily_returns, max_drawdown_days, return_stats
from core.bars import load_daily_bars
from tests.conftest import DATA_FILE

A = 252  # sessions a year


@pytest.fixture(scope="module")
def closes() -> list[float]:
    """AAPL and MSFT closes over 31 sessions from 2015-07-15: AAPL fell ~13% then partly recovered in that window."""
    bars = load_daily_bars(DATA_FILE, ["AAPL", "MSFT"], date(2015, 7, 15), date(2015, 8, 26))
    assert bars.n_rows == 31
    return [float(c) for c in bars.close[:, 0]]


@pytest.fixture(scope="module")
def msft() -> list[float]:
    bars = load_daily_bars(DATA_FILE, ["AAPL", "MSFT"], date(2015, 7, 15), date(2015, 8, 26))
    return [float(c) for c in bars.close[:, 1]]


def _returns(values: list[float]) -> list[float]:
    return [values[i] / values[i - 1] - 1 for i in range(1, len(values))]


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _sample_std(xs: list[float]) -> float:
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def test_each_statistic_equals_the_hand_computed_value(closes: list[float]) -> None:
    equity = [c * 1000 for c in closes]  # the first close is the start equity, then 30 sessions
    r = _returns(equity)
    n = len(r)
    assert n == 30

    total = equity[-1] / equity[0] - 1
    cagr = (equity[-1] / equity[0]) ** (A / n) - 1
    vol = _sample_std(r) * math.sqrt(A)
    sharpe = _mean(r) / _sample_std(r) * math.sqrt(A)
    downside = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / n) * math.sqrt(A)
    sortino = _mean(r) * A / downside
    peak, deepest = equity[0], 0.0
    for value in equity:
        peak = max(peak, value)
        deepest = max(deepest, 1 - value / peak)
    calmar = cagr / deepest

    stats = return_stats(np.array(equity), invested_pct=np.array([0.0] * 10 + [50.0] * 20), traded_notional=3e6)

    assert stats.total_return_pct == pytest.approx(total * 100, rel=1e-12)
    assert stats.cagr_pct == pytest.approx(cagr * 100, rel=1e-9)
    assert stats.volatility_pct == pytest.approx(vol * 100, rel=1e-9)
    assert stats.sharpe == pytest.approx(sharpe, rel=1e-9)
    assert stats.sortino == pytest.approx(sortino, rel=1e-9)
    assert stats.max_drawdown_pct == pytest.approx(deepest * 100, rel=1e-9)
    assert stats.calmar == pytest.approx(calmar, rel=1e-9)
    assert stats.best_day_pct == pytest.approx(max(r) * 100, rel=1e-12)
    assert stats.worst_day_pct == pytest.approx(min(r) * 100, rel=1e-12)
    assert stats.exposure_time_pct == pytest.approx(20 / 30 * 100)
    assert stats.exposure_avg_pct == pytest.approx(20 * 50 / 30)
    # Turnover: traded dollars / mean end-of-day equity, per year of 252 sessions.
    assert stats.turnover == pytest.approx(3e6 / _mean(equity[1:]) / (n / A), rel=1e-12)


def test_drawdown_duration_counts_sessions_from_the_peak_to_the_recovery_or_the_end(closes: list[float]) -> None:
    # By hand: the peak before the deepest fall, then the first value back at or above it (or the last index).
    peak_index = max(range(len(closes)), key=lambda i: (closes[i] if i <= closes.index(min(closes)) else -1, -i))
    recovery = next((i for i in range(peak_index + 1, len(closes)) if closes[i] >= closes[peak_index]), None)
    expected = (len(closes) - 1 if recovery is None else recovery) - peak_index
    assert max_drawdown_days(np.array(closes)) == expected
    assert max_drawdown_days(np.array([100.0, 90.0, 95.0, 100.0, 101.0])) == 3  # peak at 0, back at 100 on index 3
    assert max_drawdown_days(np.array([100.0, 90.0, 95.0])) == 2  # never recovered: to the end
    assert max_drawdown_days(np.array([100.0, 101.0, 102.0])) is None  # no drawdown


def test_alpha_and_beta_against_a_benchmark_by_hand(closes: list[float], msft: list[float]) -> None:
    ours, theirs = _returns(closes), _returns(msft)
    mo, mt = _mean(ours), _mean(theirs)
    beta = sum((o - mo) * (t - mt) for o, t in zip(ours, theirs, strict=True)) / sum((t - mt) ** 2 for t in theirs)
    alpha_daily = _mean([o - beta * t for o, t in zip(ours, theirs, strict=True)])
    alpha_annual_pct = ((1 + alpha_daily) ** A - 1) * 100

    alpha, b = alpha_beta(daily_returns(np.array(closes)), daily_returns(np.array(msft)))

    assert b == pytest.approx(beta, rel=1e-9)
    assert alpha == pytest.approx(alpha_annual_pct, rel=1e-9)


def test_undefined_ratios_are_none_never_infinite() -> None:
    rising = return_stats(np.array([100.0, 101.0, 102.0, 104.0]))
    assert rising.sortino is None  # no losing day: the downside deviation is 0
    assert rising.calmar is None  # no drawdown
    assert rising.max_drawdown_days is None
    assert rising.sharpe is not None
    assert math.isfinite(rising.sharpe)

    flat = return_stats(np.array([100.0, 100.0, 100.0]))
    assert flat.sharpe is None
    assert flat.sortino is None
    assert flat.calmar is None
    assert flat.volatility_pct == 0.0  # no variance is a defined volatility; only the ratios over it are undefined
    assert flat.total_return_pct == 0.0

    one = return_stats(np.array([100.0]))
    assert one.total_return_pct is None
    assert one.sharpe is None
    assert one.turnover is None
    assert one.exposure_time_pct is None

    assert alpha_beta(np.array([0.01, 0.02]), np.array([0.0, 0.0])) == (None, None)  # a flat benchmark
