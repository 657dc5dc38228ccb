"""Smart selection's numbers: percentiles over the candidates, null for what is not known, the at-risk rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal

import pytest

from agents.win_probability import Prediction
from core.store.equity import EquityMark
from tradingd.web.selection import candidate_predictions, percentiles, risk_metrics, top_scores


def test_percentiles_are_ranks_and_keep_unknowns() -> None:
    assert percentiles([3.0, 1.0, None, 2.0]) == [83.3, 16.7, None, 50.0]
    assert percentiles([5.0]) == [50.0]
    assert percentiles([1.0, 1.0]) == [50.0, 50.0]
    assert percentiles([None, None]) == [None, None]


def test_top_scores_best_first_and_no_made_up_probability() -> None:
    candidates = [{"symbol": f"S{i}", "score": float(i), "rvol": 1.0 + i, "momentum": float(-i)} for i in range(25)]
    rows = top_scores(candidates, {})
    assert len(rows) == 20
    assert [r.symbol for r in rows[:2]] == ["S24", "S23"]
    assert rows[0].volume == 98.0
    assert rows[0].trend == 2.0
    assert rows[0].volatility is None  # no such field in the file
    assert rows[0].win_probability is None

    class NeverAsked:
        def predict_as_of(self, symbols: Sequence[str], as_of: date) -> Mapping[str, Prediction]:
            raise AssertionError("a file without a date is never asked about")

    assert candidate_predictions(candidates, None, NeverAsked()) == {}
    assert candidate_predictions(candidates, date(2015, 1, 2), None) == {}
    with_model = top_scores(candidates, {"S24": Prediction(0.55, -0.002, 0.8)})
    assert (with_model[0].win_probability, with_model[0].expected_return) == (0.55, -0.002)
    assert with_model[1].win_probability is None


def _mark(day: int, start: str, last: str, peak: str) -> EquityMark:
    return EquityMark(date(2015, 1, day), Decimal(start), Decimal(last), Decimal(peak))


@pytest.mark.parametrize(
    ("last", "state", "at_risk"),
    [("99.0", "active", False), ("98.3", "active", True), ("99.0", "reducing", True)],
)
def test_risk_metrics_in_percent(last: str, state: str, at_risk: bool) -> None:
    mark = _mark(5, "100", last, "100")
    metrics = risk_metrics(
        mark, Decimal(100), None, max_daily_loss=Decimal("0.02"), max_drawdown=Decimal("0.10"), state=state
    )
    assert metrics.daily_loss_pct == pytest.approx(100 - float(last))
    assert metrics.current_drawdown == pytest.approx(100 - float(last))
    assert metrics.max_daily_loss_pct == 2.0
    assert metrics.at_risk is at_risk


def test_risk_metrics_without_marks_are_null() -> None:
    metrics = risk_metrics(
        None, None, None, max_daily_loss=Decimal("0.02"), max_drawdown=Decimal("0.1"), state="active"
    )
    assert metrics.daily_loss_pct is None
    assert metrics.current_drawdown is None
    assert metrics.at_risk is False
