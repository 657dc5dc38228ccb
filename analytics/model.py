"""The report's values: frozen records, and the one JSON shape they are published in (`report_json`).

Conventions, stated once here and in the README and on the report: statistics from end-of-day equity (one value per
session), risk-free rate 0, 252 sessions a year, sample standard deviation (ddof=1); Sortino's downside deviation is
sqrt(mean(min(r, 0)^2)) annualised by sqrt(252); alpha annualised, in percent. Every `_pct` field is in percent
(12.37, not 0.1237). A ratio that is undefined (no losing day, no trade, no variance) is `None` (JSON `null`), never
infinity or a made-up value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from core.exit_reasons import ExitReason
from core.types import Tier

__all__ = ["ExitReason"]  # re-exported: the report's records name it; it lives in core (the orders store it)

CONVENTIONS = (
    "Statistics from end-of-day equity; risk-free rate 0; 252 sessions a year; sample standard deviation (ddof=1); "
    "Sortino downside deviation sqrt(mean(min(r, 0)^2)) annualised by sqrt(252); alpha annualised, in percent; "
    "percentages in percent; an undefined ratio is null."
)


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """One (entry order, exit order) pair matched FIFO: quantities and prices are the matched fills' (qty-weighted),
    the entry time the first matched entry fill's, the exit time the last matched exit fill's (real times: in sim the
    open of the fill bar)."""

    symbol: str
    tier: Tier | None
    entry_time: datetime
    exit_time: datetime
    qty: Decimal
    entry_price: Decimal
    exit_price: Decimal
    pnl: Decimal  # dollars, (exit - entry) x qty
    pnl_pct: float  # percent of the entry cost
    days_held: float  # calendar days, exit_time - entry_time
    exit_reason: ExitReason
    entry_order_id: str
    exit_order_id: str


@dataclass(frozen=True, slots=True)
class ReturnStats:
    total_return_pct: float | None
    cagr_pct: float | None
    volatility_pct: float | None  # annualised
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown_pct: float | None  # positive: 7.5 is a 7.5% fall from the peak
    max_drawdown_days: int | None  # sessions from the peak to the recovery (or to the end, if never recovered)
    best_day_pct: float | None
    worst_day_pct: float | None
    exposure_time_pct: float | None  # sessions with any position / all sessions
    exposure_avg_pct: float | None  # mean of (positions' market value / equity) over the sessions
    turnover: float | None  # traded notional (buys + sells) / mean equity, per year


@dataclass(frozen=True, slots=True)
class TradeStats:
    trades: int
    wins: int
    losses: int
    win_rate_pct: float | None
    profit_factor: float | None  # gross profit / gross loss
    expectancy: float | None  # mean P&L per trade, dollars
    avg_win: float | None  # dollars
    avg_loss: float | None  # dollars (negative)
    avg_win_pct: float | None
    avg_loss_pct: float | None
    avg_hold_days: float | None
    longest_losing_streak: int


@dataclass(frozen=True, slots=True)
class GroupStats:
    """Round-trip statistics of one symbol or one tier."""

    trades: int
    wins: int
    losses: int
    win_rate_pct: float | None
    profit_factor: float | None
    pnl: Decimal


@dataclass(frozen=True, slots=True)
class SymbolStats:
    symbol: str
    tier: Tier | None  # the tier of its latest entry
    stats: GroupStats


@dataclass(frozen=True, slots=True)
class BenchmarkSummary:
    name: str  # e.g. "equal-weight buy-and-hold of 505 symbols" or "SPY"
    note: str  # what the reader must know (survivorship bias, no ETFs; or why SPY was not available)
    total_return_pct: float | None
    cagr_pct: float | None
    max_drawdown_pct: float | None
    sharpe: float | None


@dataclass(frozen=True, slots=True)
class PriceMarks:
    """A traded symbol's daily closes with its round trips' entries and exits (the report's per-symbol charts)."""

    symbol: str
    sessions: tuple[date, ...]
    closes: tuple[float, ...]
    entries: tuple[tuple[datetime, float], ...]
    exits: tuple[tuple[datetime, float], ...]


@dataclass(frozen=True, slots=True)
class ReportSeries:
    """One value per session, aligned on `sessions`."""

    sessions: tuple[date, ...]
    equity: tuple[float, ...]
    benchmark_equity: tuple[float | None, ...]  # scaled to the run's start equity; None before it starts
    exposure_by_tier_pct: Mapping[str, tuple[float, ...]]  # tier name -> positions' value / equity, percent


@dataclass(frozen=True, slots=True)
class Report:
    mode: str
    start: date
    end: date
    start_equity: Decimal
    final_equity: Decimal
    returns: ReturnStats
    trades: TradeStats
    benchmark: BenchmarkSummary | None
    alpha: float | None  # annualised, percent
    beta: float | None
    excess_return_pct: float | None  # total return minus the benchmark's, percentage points
    by_symbol: tuple[SymbolStats, ...]  # most trades first
    by_tier: Mapping[str, GroupStats]
    ledger: tuple[RoundTrip, ...]  # by exit time
    series: ReportSeries
    top_symbols: tuple[PriceMarks, ...] = ()  # the 5 most-traded symbols
    conventions: str = CONVENTIONS
    notes: tuple[str, ...] = field(default=())  # e.g. open positions left out of the ledger
    portfolio: PortfolioRisk | None = None  # the risk of the positions held at the period's last close


# The portfolio risk of the positions held (`analytics/portfolio_risk.py` computes it; the definitions are there).
LOOKBACK_SESSIONS = 60  # about three months of daily returns: recent enough to describe today's risk
MIN_RETURNS = 20  # fewer common returns than this and a covariance of several symbols means little
SESSIONS_PER_YEAR = 252


@dataclass(frozen=True, slots=True)
class PortfolioRisk:
    volatility_pct: float | None  # annualised, percent of equity; None: undefined (see note)
    diversification_ratio: float | None  # Σ wᵢσᵢ / σₚ, ≥ 1; None: undefined (see note)
    positions: int  # held symbols weighed
    returns_used: int  # sessions of returns in the covariance
    as_of: date | None  # the last session of the lookback
    note: str | None  # why a figure is undefined, or None

    def as_json(self) -> dict[str, object]:
        return {
            "volatility_pct": self.volatility_pct,
            "diversification_ratio": self.diversification_ratio,
            "positions": self.positions,
            "returns_used": self.returns_used,
            "lookback_sessions": LOOKBACK_SESSIONS,
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "note": self.note,
        }


def _money(value: Decimal) -> float:
    return float(round(value, 2))


def _group_json(stats: GroupStats) -> dict[str, Any]:
    return {
        "trades": stats.trades,
        "wins": stats.wins,
        "losses": stats.losses,
        "win_rate_pct": stats.win_rate_pct,
        "profit_factor": stats.profit_factor,
        "pnl": _money(stats.pnl),
    }


def report_json(report: Report) -> dict[str, Any]:
    """The `report --json` object (also `replay --json`'s `"report"`); every key is documented in the README."""
    r, t = report.returns, report.trades
    benchmark = report.benchmark
    return {
        "mode": report.mode,
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "start_equity": _money(report.start_equity),
        "final_equity": _money(report.final_equity),
        "total_return_pct": r.total_return_pct,
        "cagr_pct": r.cagr_pct,
        "volatility_pct": r.volatility_pct,
        "sharpe": r.sharpe,
        "sortino": r.sortino,
        "calmar": r.calmar,
        "max_drawdown_pct": r.max_drawdown_pct,
        "max_drawdown_days": r.max_drawdown_days,
        "best_day_pct": r.best_day_pct,
        "worst_day_pct": r.worst_day_pct,
        "exposure_pct": r.exposure_time_pct,
        "exposure_avg_pct": r.exposure_avg_pct,
        "turnover": r.turnover,
        "trades": t.trades,
        "win_rate_pct": t.win_rate_pct,
        "profit_factor": t.profit_factor,
        "expectancy": t.expectancy,
        "avg_win": t.avg_win,
        "avg_loss": t.avg_loss,
        "avg_hold_days": t.avg_hold_days,
        "longest_losing_streak": t.longest_losing_streak,
        "benchmark": None
        if benchmark is None
        else {
            "name": benchmark.name,
            "note": benchmark.note,
            "total_return_pct": benchmark.total_return_pct,
            "cagr_pct": benchmark.cagr_pct,
            "max_drawdown_pct": benchmark.max_drawdown_pct,
            "sharpe": benchmark.sharpe,
        },
        "alpha": report.alpha,
        "beta": report.beta,
        "excess_return_pct": report.excess_return_pct,
        "by_symbol": [
            {"symbol": s.symbol, "tier": None if s.tier is None else s.tier.value, **_group_json(s.stats)}
            for s in report.by_symbol
        ],
        "by_tier": {tier: _group_json(stats) for tier, stats in report.by_tier.items()},
        "portfolio": None if report.portfolio is None else report.portfolio.as_json(),
        "conventions": report.conventions,
        "notes": list(report.notes),
    }
