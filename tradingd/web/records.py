"""The API's response and request bodies: frozen, typed records (pydantic models, so the OpenAPI page at `/docs`
describes every field). Money is a string (exact `Decimal`, as `tradingd orders --json` gives it); statistics are
floats; a value that is not known is `null`, never a made-up number."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---- smart selection (the shape, field for field) ----------------------------------------------------------


class ScoreRow(Record):
    symbol: str
    score: float | None
    trend: float | None = Field(description="percentile (0-100) of the scan's momentum among the latest candidates")
    volatility: float | None = Field(description="percentile (0-100) of the 20-day realised volatility")
    volume: float | None = Field(description="percentile (0-100) of the relative volume (RVOL)")
    liquidity: float | None = Field(description="percentile (0-100) of the 20-day average dollar volume")
    win_probability: float | None = Field(description="the ML predictor's, when one is trained; else null")
    expected_return: float | None = Field(description="the ML predictor's, when one is trained; else null")


class PerformerRow(Record):
    symbol: str
    wins: int
    losses: int
    win_rate: float | None = Field(description="percent of round trips won")
    profit_factor: float | None
    pnl: float = Field(description="realised P&L of its round trips, dollars (what the ranking is by)")


class RiskMetrics(Record):
    daily_loss_pct: float | None = Field(description="today's loss from the previous session's last equity, percent")
    max_daily_loss_pct: float
    current_drawdown: float | None = Field(description="percent below the drawdown breaker's peak")
    max_drawdown_pct: float
    at_risk: bool = Field(description="the state is not active, or a breaker is within 80% of its limit")


class SmartSelection(Record):
    top_scores: list[ScoreRow]
    top_performers: list[PerformerRow]
    risk_metrics: RiskMetrics


# ---- state ----------------------------------------------------------------------------------------------------------


class TradingStateReasonRow(Record):
    code: str
    detail: str


class TradingStateView(Record):
    state: str
    reasons: list[TradingStateReasonRow]


class TierExposure(Record):
    tier: str
    exposure: str = Field(description="market value of the tier's positions, dollars")
    allocation: str = Field(description="what the tier may hold, dollars (share of equity)")
    pct_of_allocation: float | None


class Status(Record):
    mode: str
    db: str
    live_feed: bool = Field(description="whether /api/stream carries the daemon's events (false: `tradingd serve`)")
    trading_state: TradingStateView
    session: date | None
    equity: str | None
    peak_equity: str | None
    positions: int
    open_orders: int
    fills: int
    orders_by_status: dict[str, int]
    breakers: dict[str, str | None] = Field(description="breaker name -> the session or value it tripped at, or null")
    exposure: list[TierExposure]
    limits: dict[str, float | int]
    portfolio: PortfolioRiskBody = Field(
        description="the held positions' annualised volatility and diversification ratio, as `tradingd status`"
    )


class PortfolioRiskBody(Record):
    volatility_pct: float | None = Field(description="annualised, percent of equity; null when undefined (note)")
    diversification_ratio: float | None = Field(description="sum of w_i sigma_i over sigma_p; null when undefined")
    positions: int
    returns_used: int
    lookback_sessions: int
    as_of: date | None
    note: str | None


class PositionRow(Record):
    symbol: str
    tier: str | None
    qty: str
    avg_entry_price: str
    market_price: str
    market_value: str
    unrealized_pl: str
    unrealized_pl_pct: float | None


class OrderRow(Record):
    client_order_id: str
    broker_order_id: str | None
    symbol: str
    side: str
    qty: str | None
    notional: str | None
    filled_qty: str
    filled_avg_price: str | None
    status: str
    submitted_at: str | None
    updated_at: str | None
    reason: str | None
    order_type: str
    time_in_force: str
    stop_price: str | None
    trail_percent: str | None
    strategy: str
    tier: str | None


class FillRow(Record):
    ts: str
    symbol: str
    side: str
    qty: str
    price: str
    client_order_id: str
    execution_id: str


class EquityPoint(Record):
    session: date
    equity: float
    benchmark: float | None = Field(description="the report's benchmark, scaled to the start equity; null if none")


class EquityCurve(Record):
    points: list[EquityPoint]
    benchmark: str | None = Field(description="what the benchmark is (the report's), or null when there is none")


class CandidateRow(Record):
    symbol: str
    rank: int | None
    score: float
    zscore: float
    rvol: float
    price: float
    momentum: float | None
    volatility: float | None
    dollar_volume: float | None
    reason: str
    win_probability: float | None


class Candidates(Record):
    as_of: date | None
    generated_at: str | None
    file: str
    candidates: list[CandidateRow]
    note: str | None = Field(description="why there are none, when there are none")


class Connectivity(Record):
    connected: bool | None
    reason: str
    last_error: str | None = None


class Health(Record):
    status: Literal["ok", "degraded", "unknown"]
    mode: str
    source: Literal["daemon", "journal"] = Field(description="live from the daemon, or the state DB's journal (serve)")
    last_iteration: int | None
    last_iteration_at: str | None
    broker: Connectivity
    stream: Connectivity


class RecentWarning(Record):
    ts: str
    kind: str
    detail: str


class ActionResult(Record):
    message: str
    trading_state: TradingStateView


class HaltRequest(Record):
    reason: str = Field(min_length=1, max_length=200, description="why trading is halted (journaled and logged)")
    reduce_only: bool = Field(default=False, description="block entries only; exits and stops go on")


class ErrorBody(Record):
    detail: Any
