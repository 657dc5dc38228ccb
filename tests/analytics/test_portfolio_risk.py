"""Portfolio volatility and the diversification ratio against the same numbers worked out by hand (plain Python: sums,
no numpy) on real bundled closes: AAPL, MSFT and XOM over the 60 sessions to 2016-06-30; and the undefined cases."""

from __future__ import annotations

import itertools
import math
from datetime import date

import numpy as np
import pytest

from analytics.model import LOOKBACK_SESSIONS, MIN_RETURNS
from analytics.portfolio_risk import portfolio_risk, portfolio_risk_at
from core.types import BarFrame

AS_OF = date(2016, 6, 30)
HELD = ("AAPL", "MSFT", "XOM")
VALUES = {"AAPL": 20_000.0, "MSFT": 15_000.0, "XOM": 10_000.0}
EQUITY = 100_000.0


def _closes_by_hand(bars: BarFrame) -> dict[str, list[float]]:
    """The 61 closes up to AS_OF of each held symbol, read row by row."""
    last = max(i for i, t in enumerate(bars.timestamps.astype("datetime64[D]").tolist()) if t <= AS_OF)
    rows = range(last - LOOKBACK_SESSIONS, last + 1)
    return {s: [float(bars.close[i, bars.symbols.index(s)]) for i in rows] for s in HELD}


def _by_hand(closes: dict[str, list[float]]) -> tuple[float, float]:
    returns = {s: [b / a - 1 for a, b in itertools.pairwise(c)] for s, c in closes.items()}
    n = len(returns["AAPL"])
    mean = {s: sum(r) / n for s, r in returns.items()}

    def cov(a: str, b: str) -> float:
        return sum((x - mean[a]) * (y - mean[b]) for x, y in zip(returns[a], returns[b], strict=True)) / (n - 1) * 252

    w = {s: VALUES[s] / EQUITY for s in HELD}
    variance = sum(w[a] * w[b] * cov(a, b) for a in HELD for b in HELD)
    sigma_p = math.sqrt(variance)
    weighted = sum(w[s] * math.sqrt(cov(s, s)) for s in HELD)
    return sigma_p * 100, weighted / sigma_p


def test_volatility_and_diversification_ratio_match_a_hand_computation(small_history: BarFrame) -> None:
    expected_vol, expected_ratio = _by_hand(_closes_by_hand(small_history))
    risk = portfolio_risk_at(VALUES, EQUITY, small_history, AS_OF)
    assert risk.note is None
    assert risk.returns_used == LOOKBACK_SESSIONS
    assert risk.volatility_pct == pytest.approx(expected_vol, rel=1e-12)
    assert risk.diversification_ratio == pytest.approx(expected_ratio, rel=1e-12)
    assert risk.diversification_ratio is not None
    assert risk.diversification_ratio > 1  # three imperfectly correlated stocks diversify
    assert 0 < expected_vol < 30  # 45% invested in three large caps: a plausible figure, not a made-up one


def test_one_position_has_a_ratio_of_one_and_its_own_volatility_scaled_by_its_weight(small_history: BarFrame) -> None:
    closes = _closes_by_hand(small_history)["AAPL"]
    returns = [b / a - 1 for a, b in itertools.pairwise(closes)]
    mean = sum(returns) / len(returns)
    own = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1) * 252)
    risk = portfolio_risk_at({"AAPL": 50_000.0}, EQUITY, small_history, AS_OF)
    assert risk.volatility_pct == pytest.approx(own * 0.5 * 100, rel=1e-12)
    assert risk.diversification_ratio == pytest.approx(1.0, rel=1e-12)


def test_a_symbol_short_of_history_makes_the_figures_undefined_and_is_named(small_history: BarFrame) -> None:
    # FTV is listed in July 2016: on its 10th session there are too few common returns.
    listed = next(
        d for d, c in zip(small_history.timestamps.astype("datetime64[D]").tolist(),
                          small_history.close[:, small_history.symbols.index("FTV")].tolist(), strict=True)
        if np.isfinite(c)
    )  # fmt: skip
    days = small_history.timestamps.astype("datetime64[D]").tolist()
    as_of = days[days.index(listed) + 10]
    risk = portfolio_risk_at({"AAPL": 10_000.0, "FTV": 10_000.0}, EQUITY, small_history, as_of)
    assert risk.volatility_pct is None
    assert risk.diversification_ratio is None
    assert risk.note is not None
    assert "FTV" in risk.note
    assert "AAPL" not in risk.note.split("history:")[1]
    assert risk.returns_used < MIN_RETURNS


def test_no_positions_and_unknown_symbols_are_undefined_with_a_reason(small_history: BarFrame) -> None:
    assert portfolio_risk_at({}, EQUITY, small_history, AS_OF).note == "no positions"
    unknown = portfolio_risk_at({"ZZZZ": 1_000.0}, EQUITY, small_history, AS_OF)
    assert unknown.volatility_pct is None
    assert unknown.note == "no daily closes for ZZZZ"
    flat = portfolio_risk(np.array([0.5]), np.full((30, 1), 10.0), ("FLAT",))
    assert flat.volatility_pct == 0.0
    assert flat.diversification_ratio is None
