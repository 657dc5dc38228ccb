"""`GET /api/smart-selection`: the latest candidates as 0-100 percentiles, the best performers, the risk metrics.

Every number comes from something the daemon recorded (the scan's candidates file, the fills, the equity marks, the
flags) or from a predictor that says it is trained; what is not known is `None` (JSON `null`), never a guess.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Final, Protocol, runtime_checkable

from agents.win_probability import Prediction
from analytics.build import store_ledger
from analytics.trades import PerformanceTracker
from core.store import StateStore
from core.store.equity import EquityMark
from tradingd.web.records import PerformerRow, RiskMetrics, ScoreRow

TOP_SCORES: Final = 20
TOP_PERFORMERS: Final = 10
AT_RISK_SHARE: Final = 0.8  # a breaker within 80% of its limit counts as at risk

# The scan's number behind each percentile (candidates.json keys; docs/ARCHITECTURE.md §File formats).
PERCENTILE_SOURCES: Final = {
    "trend": "momentum",
    "volatility": "volatility",
    "volume": "rvol",
    "liquidity": "dollar_volume",
}


@runtime_checkable
class CandidatePredictor(Protocol):
    """The ML predictor's face towards the dashboard (`intelligence/predictor.py::MLPredictor.predict_as_of`, issue
    16; not `agents/win_probability.py::WinPredictor`, the risk agent's per-signal question): per symbol, the
    prediction on the bar of session `as_of` (the candidates file's); a symbol it cannot judge is left out. No
    predictor (no trained model, `ML_ENABLED` off) gives `null` probabilities."""

    def predict_as_of(self, symbols: Sequence[str], as_of: date) -> Mapping[str, Prediction]: ...


def candidate_predictions(
    candidates: Sequence[Mapping[str, Any]], as_of: date | None, predictor: CandidatePredictor | None
) -> Mapping[str, Prediction]:
    """One batch for a candidates file: nothing without a predictor or a date."""
    if predictor is None or as_of is None or not candidates:
        return {}
    return predictor.predict_as_of([str(c["symbol"]) for c in candidates], as_of)


def percentiles(values: Sequence[float | None]) -> list[float | None]:
    """Each value's percentile rank (0-100) among the known values (scipy's `percentileofscore(kind="mean")`: the
    mean of the share strictly below and the share at or below); `None` stays `None`."""
    known = sorted(v for v in values if v is not None)
    n = len(known)
    result: list[float | None] = []
    for value in values:
        if value is None or n == 0:
            result.append(None)
            continue
        below = sum(1 for v in known if v < value)
        at_or_below = sum(1 for v in known if v <= value)
        result.append(round((below + at_or_below) / 2 / n * 100, 1))
    return result


def number_or_none(item: Mapping[str, Any], key: str) -> float | None:
    """A candidate's optional number: a finite int or float, else None (a file may lack it, or hold anything)."""
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def top_scores(candidates: Sequence[Mapping[str, Any]], predictions: Mapping[str, Prediction]) -> list[ScoreRow]:
    """The best `TOP_SCORES` candidates by score; the percentiles are taken over all of the file's candidates."""
    ranks = {
        name: percentiles([number_or_none(c, key) for c in candidates]) for name, key in PERCENTILE_SOURCES.items()
    }
    rows = []
    for i, item in enumerate(candidates):
        symbol = str(item["symbol"])
        prediction = predictions.get(symbol)
        rows.append(
            ScoreRow(
                symbol=symbol,
                score=number_or_none(item, "score"),
                trend=ranks["trend"][i],
                volatility=ranks["volatility"][i],
                volume=ranks["volume"][i],
                liquidity=ranks["liquidity"][i],
                win_probability=None if prediction is None else prediction.win_probability,
                expected_return=None if prediction is None else prediction.expected_return,
            )
        )
    rows.sort(key=lambda row: -math.inf if row.score is None else row.score, reverse=True)
    return rows[:TOP_SCORES]


def top_performers(store: StateStore) -> list[PerformerRow]:
    """The reports issue's `PerformanceTracker` over every round trip the fills make, as of now."""
    tracker = PerformanceTracker.from_trips(store_ledger(store).trips)
    return [
        PerformerRow(
            symbol=row.symbol,
            wins=row.stats.wins,
            losses=row.stats.losses,
            win_rate=None if row.stats.win_rate_pct is None else round(row.stats.win_rate_pct, 2),
            profit_factor=None
            if row.stats.profit_factor is None or not math.isfinite(row.stats.profit_factor)
            else round(row.stats.profit_factor, 3),
            pnl=float(round(row.stats.pnl, 2)),
        )
        for row in tracker.top(TOP_PERFORMERS)
    ]


def risk_metrics(
    last: EquityMark | None,
    reference: Decimal | None,
    drawdown_peak: Decimal | None,
    *,
    max_daily_loss: Decimal,
    max_drawdown: Decimal,
    state: str,
) -> RiskMetrics:
    """From the latest mark, the daily-loss breaker's reference (`agents/risk.py::daily_loss_reference`, the figure
    the breaker measures from) and the drawdown breaker's peak; the limits are fractions, the answers percent."""
    daily = drawdown = None
    if last is not None:
        if reference is not None and reference > 0:
            daily = float(round(max(Decimal(0), (reference - last.last_equity) / reference * 100), 4))
        peak = drawdown_peak if drawdown_peak is not None else last.peak_equity
        if peak > 0:
            drawdown = float(round(max(Decimal(0), (peak - last.last_equity) / peak * 100), 4))
    max_daily_pct = float(max_daily_loss * 100)
    max_drawdown_pct = float(max_drawdown * 100)
    near = (daily is not None and daily >= AT_RISK_SHARE * max_daily_pct) or (
        drawdown is not None and drawdown >= AT_RISK_SHARE * max_drawdown_pct
    )
    return RiskMetrics(
        daily_loss_pct=daily,
        max_daily_loss_pct=max_daily_pct,
        current_drawdown=drawdown,
        max_drawdown_pct=max_drawdown_pct,
        at_risk=state != "active" or near,
    )
