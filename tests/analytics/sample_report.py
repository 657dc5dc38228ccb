"""A hand-built `Report` of realistic shape, for the presentation's tests and `bench_report` until the analytics
builder produces real ones: sessions, an equity curve, an equal-weight benchmark from the same closes, round trips
with every exit reason, two or more tiers, exposure by tier and the most-traded symbols' price marks.

The figures are deterministic (no random state) and plausible, not computed by the statistics code: the presentation
only shows what a `Report` holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from analytics.model import (
    BenchmarkSummary,
    ExitReason,
    GroupStats,
    PriceMarks,
    Report,
    ReportSeries,
    ReturnStats,
    RoundTrip,
    SymbolStats,
    TradeStats,
)
from core.types import Tier

START_EQUITY = Decimal(100_000)
MARKET_OPEN_UTC = time(14, 30)  # the fill bar's open, as the sim reports fill times
REASONS = (ExitReason.SIGNAL, ExitReason.SIGNAL, ExitReason.STOP_LOSS, ExitReason.SIGNAL, ExitReason.BREAKER)


def synthetic_closes(symbols: Sequence[str], sessions: int) -> dict[str, npt.NDArray[np.float64]]:
    """Smooth, different price paths (a trend plus two waves per symbol): deterministic, never negative."""
    t = np.arange(sessions, dtype=np.float64)
    closes = {}
    for i, symbol in enumerate(symbols):
        drift = 0.0004 * (i - 1)
        closes[symbol] = (50.0 + 20 * i) * np.exp(
            drift * t + 0.05 * np.sin(t / (7 + i)) + 0.02 * np.sin(t / (2.3 + 0.4 * i))
        )
    return closes


def business_days(first: date, count: int) -> list[date]:
    days = np.busday_offset(np.datetime64(first, "D"), np.arange(count), roll="forward")
    return [d.item() for d in days]


def _group(pnls: list[Decimal]) -> GroupStats:
    wins = sum(1 for p in pnls if p > 0)
    losses = sum(1 for p in pnls if p <= 0)
    profit = sum((p for p in pnls if p > 0), Decimal(0))
    loss = -sum((p for p in pnls if p < 0), Decimal(0))
    return GroupStats(
        trades=len(pnls),
        wins=wins,
        losses=losses,
        win_rate_pct=100 * wins / len(pnls) if pnls else None,
        profit_factor=float(profit / loss) if loss else None,
        pnl=sum(pnls, Decimal(0)),
    )


def build_sample_report(
    sessions: Sequence[date],
    closes: Mapping[str, npt.NDArray[np.float64]],
    *,
    trades: int,
    tiers: Mapping[str, Tier],
    hold_sessions: int = 4,
    top: int = 5,
) -> Report:
    """A report over `sessions` trading `closes`' symbols round-robin, `trades` round trips of `hold_sessions`."""
    symbols = list(closes)
    n = len(sessions)
    stride = max(1, (n - hold_sessions - 1) * len(symbols) // max(trades, 1))
    ledger: list[RoundTrip] = []
    for k in range(trades):
        symbol = symbols[k % len(symbols)]
        entry_i = (k // len(symbols) * stride + k) % (n - hold_sessions - 1)
        exit_i = entry_i + hold_sessions - (k % 3)
        entry_price = Decimal(str(round(float(closes[symbol][entry_i]), 2)))
        exit_price = Decimal(str(round(float(closes[symbol][exit_i]), 2)))
        qty = Decimal(10 + 5 * (k % 4))
        pnl = (exit_price - entry_price) * qty
        entry_time = datetime.combine(sessions[entry_i], MARKET_OPEN_UTC, tzinfo=UTC)
        exit_time = datetime.combine(sessions[exit_i], MARKET_OPEN_UTC, tzinfo=UTC)
        ledger.append(
            RoundTrip(
                symbol=symbol,
                tier=tiers.get(symbol),
                entry_time=entry_time,
                exit_time=exit_time,
                qty=qty,
                entry_price=entry_price,
                exit_price=exit_price,
                pnl=pnl,
                pnl_pct=float((exit_price / entry_price - 1) * 100),
                days_held=(exit_time - entry_time) / timedelta(days=1),
                exit_reason=REASONS[k % len(REASONS)],
                entry_order_id=f"sim-{k:05d}-buy",
                exit_order_id=f"sim-{k:05d}-sell",
            )
        )
    ledger.sort(key=lambda trip: trip.exit_time)

    # Equity: the start equity times a slow drift and the closes' mean move, damped (a strategy half invested).
    matrix = np.vstack([closes[s] / closes[s][0] for s in symbols])
    market = matrix.mean(axis=0)
    equity = float(START_EQUITY) * (1 + 0.5 * (market - 1)) * (1 + 0.0001 * np.arange(n))
    benchmark = float(START_EQUITY) * market
    benchmark_values: list[float | None] = [None, *benchmark[1:].tolist()]  # joins one session late, like a listing
    phase = np.arange(n, dtype=np.float64)
    tier_names = sorted({t.value for t in tiers.values()})
    exposure = {
        name: tuple((20 + 10 * np.sin(phase / (9 + 3 * j)) + 5 * j).clip(0).tolist())
        for j, name in enumerate(tier_names)
    }

    by_symbol_pnls: dict[str, list[Decimal]] = {s: [] for s in symbols}
    by_tier_pnls: dict[str, list[Decimal]] = {name: [] for name in tier_names}
    for trip in ledger:
        by_symbol_pnls[trip.symbol].append(trip.pnl)
        if trip.tier is not None:
            by_tier_pnls[trip.tier.value].append(trip.pnl)
    counts = Counter(trip.symbol for trip in ledger)
    ranked = [symbol for symbol, _ in counts.most_common()]
    pnls = [trip.pnl for trip in ledger]
    overall = _group(pnls)
    wins = [float(p) for p in pnls if p > 0]
    losses = [float(p) for p in pnls if p <= 0]

    marks = tuple(
        PriceMarks(
            symbol=symbol,
            sessions=tuple(sessions),
            closes=tuple(closes[symbol].tolist()),
            entries=tuple((t.entry_time, float(t.entry_price)) for t in ledger if t.symbol == symbol),
            exits=tuple((t.exit_time, float(t.exit_price)) for t in ledger if t.symbol == symbol),
        )
        for symbol in ranked[:top]
    )
    final = Decimal(str(round(float(equity[-1]), 2)))
    total = float((final / START_EQUITY - 1) * 100)
    bench_total = float((benchmark[-1] / benchmark[1] - 1) * 100)
    return Report(
        mode="sim",
        start=sessions[0],
        end=sessions[-1],
        start_equity=START_EQUITY,
        final_equity=final,
        returns=ReturnStats(
            total_return_pct=total,
            cagr_pct=total * 252 / n if n < 252 else total / (n / 252),
            volatility_pct=9.81,
            sharpe=0.87,
            sortino=1.21,
            calmar=None,  # an undefined ratio: shown as n/a, never infinity
            max_drawdown_pct=4.32,
            max_drawdown_days=17,
            best_day_pct=1.9,
            worst_day_pct=-2.4,
            exposure_time_pct=93.5,
            exposure_avg_pct=48.2,
            turnover=6.4,
        ),
        trades=TradeStats(
            trades=len(ledger),
            wins=overall.wins,
            losses=overall.losses,
            win_rate_pct=overall.win_rate_pct,
            profit_factor=overall.profit_factor,
            expectancy=float(sum(pnls, Decimal(0))) / len(pnls) if pnls else None,
            avg_win=sum(wins) / len(wins) if wins else None,
            avg_loss=sum(losses) / len(losses) if losses else None,
            avg_win_pct=1.8,
            avg_loss_pct=-1.3,
            avg_hold_days=sum(t.days_held for t in ledger) / len(ledger) if ledger else None,
            longest_losing_streak=3,
        ),
        benchmark=BenchmarkSummary(
            name=f"equal-weight buy-and-hold of {len(symbols)} symbols",
            note="Bundled data: survivorship-biased (today's constituents) and no ETFs.",
            total_return_pct=bench_total,
            cagr_pct=bench_total / 2,
            max_drawdown_pct=8.75,
            sharpe=1.02,
        ),
        alpha=-1.5,
        beta=0.48,
        excess_return_pct=total - bench_total,
        by_symbol=tuple(SymbolStats(symbol=s, tier=tiers.get(s), stats=_group(by_symbol_pnls[s])) for s in ranked),
        by_tier={name: _group(values) for name, values in by_tier_pnls.items()},
        ledger=tuple(ledger),
        series=ReportSeries(
            sessions=tuple(sessions),
            equity=tuple(equity.tolist()),
            benchmark_equity=tuple(benchmark_values),
            exposure_by_tier_pct=exposure,
        ),
        top_symbols=marks,
        notes=("1 open position (XOM) is left out of the ledger: its P&L is unrealised.",),
    )


def small_report(sessions: int = 60) -> Report:
    """~60 sessions, a few round trips in 2 tiers, a benchmark, exposure, 2 symbols' price marks."""
    symbols = ("AAPL", "MSFT", "XOM")
    tiers = {"AAPL": Tier.TIER1, "MSFT": Tier.TIER1, "XOM": Tier.TIER2}
    return build_sample_report(
        business_days(date(2017, 1, 3), sessions),
        synthetic_closes(symbols, sessions),
        trades=8,
        tiers=tiers,
        top=2,
    )
