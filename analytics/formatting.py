"""How a report's values read as text, the same in the terminal tables and the HTML report.

An undefined value (`None`: a ratio with no losing day, no trade, no variance) reads `n/a`, never `inf` or `0`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from analytics.model import GroupStats, Report

NA = "n/a"


def pct(value: float | None, digits: int = 2, *, signed: bool = False) -> str:
    if value is None:
        return NA
    return f"{value:+.{digits}f}%" if signed else f"{value:.{digits}f}%"


def points(value: float | None, digits: int = 2) -> str:
    """A difference of two percentages: percentage points, not a percent of anything."""
    return NA if value is None else f"{value:+.{digits}f} pts"


def num(value: float | None, digits: int = 2) -> str:
    return NA if value is None else f"{value:,.{digits}f}"


def money(value: Decimal | float | None, *, signed: bool = False) -> str:
    if value is None:
        return NA
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def count(value: int | None) -> str:
    return NA if value is None else f"{value:,}"


def utc_minute(value: datetime) -> str:
    """A fill's time as `2017-01-03 14:30` (UTC): the ledger's times, to the minute the fill was stamped."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


# ---- the rows both presentations show ----------------------------------------------------------------------------


def headline_rows(report: Report) -> list[tuple[str, str, str]]:
    """(metric, strategy, benchmark): the return statistics beside the benchmark's (blank where it has none)."""
    r, b = report.returns, report.benchmark

    def bench(field: str, fmt: Callable[[float | None], str]) -> str:
        return "" if b is None else fmt(getattr(b, field))

    sessions = len(report.series.sessions)
    return [
        ("period", f"{report.start} to {report.end} ({sessions:,} sessions)", ""),
        ("equity", f"{money(report.start_equity)} → {money(report.final_equity)}", ""),
        ("total return", pct(r.total_return_pct, signed=True), bench("total_return_pct", _signed_pct)),
        ("CAGR", pct(r.cagr_pct, signed=True), bench("cagr_pct", _signed_pct)),
        ("excess return", points(report.excess_return_pct), ""),
        ("alpha (annualised)", pct(report.alpha, signed=True), ""),
        ("beta", num(report.beta), ""),
        ("volatility (annualised)", pct(r.volatility_pct), ""),
        ("Sharpe", num(r.sharpe), bench("sharpe", num)),
        ("Sortino", num(r.sortino), ""),
        ("Calmar", num(r.calmar), ""),
        ("max drawdown", pct(r.max_drawdown_pct), bench("max_drawdown_pct", pct)),
        ("max drawdown duration", f"{count(r.max_drawdown_days)} sessions", ""),
        ("best day", pct(r.best_day_pct, signed=True), ""),
        ("worst day", pct(r.worst_day_pct, signed=True), ""),
        ("exposure (time invested)", pct(r.exposure_time_pct), ""),
        ("exposure (average of equity)", pct(r.exposure_avg_pct), ""),
        ("turnover (per year)", num(r.turnover), ""),
        *portfolio_rows(report),
    ]


def portfolio_rows(report: Report) -> list[tuple[str, str, str]]:
    """The risk of the positions held at the last close (`analytics/portfolio_risk.py`); undefined says why."""
    risk = report.portfolio
    if risk is None:
        return []
    why = "" if risk.note is None else f" ({risk.note})"
    return [
        (
            "portfolio volatility (held at end)",
            pct(risk.volatility_pct) + (why if risk.volatility_pct is None else ""),
            "",
        ),
        (
            "diversification ratio (held at end)",
            num(risk.diversification_ratio) + (why if risk.diversification_ratio is None else ""),
            "",
        ),
    ]


def _signed_pct(value: float | None) -> str:
    return pct(value, signed=True)


def trade_rows(report: Report) -> list[tuple[str, str]]:
    t = report.trades
    return [
        ("round trips", count(t.trades)),
        ("wins / losses", f"{t.wins:,} / {t.losses:,}"),
        ("win rate", pct(t.win_rate_pct)),
        ("profit factor", num(t.profit_factor)),
        ("expectancy (per trade)", money(t.expectancy, signed=True) if t.expectancy is not None else NA),
        ("average win", f"{money(t.avg_win, signed=True)} ({pct(t.avg_win_pct, signed=True)})"),
        ("average loss", f"{money(t.avg_loss, signed=True)} ({pct(t.avg_loss_pct, signed=True)})"),
        ("average holding period", f"{num(t.avg_hold_days, 1)} days"),
        ("longest losing streak", f"{t.longest_losing_streak:,} trades"),
    ]


def group_cells(stats: GroupStats) -> list[str]:
    """One tier's or symbol's round-trip statistics as table cells (the terminal and the HTML show the same)."""
    return [
        f"{stats.trades:,}",
        f"{stats.wins:,}",
        f"{stats.losses:,}",
        pct(stats.win_rate_pct, 1),
        num(stats.profit_factor),
        money(stats.pnl, signed=True),
    ]
