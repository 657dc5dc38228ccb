"""`build_report`: the whole `Report` from the state store, the daily bars and a benchmark source.

The one entry point the presentation calls (`tradingd report`, `replay --report`, `make run`'s summary). It reads the
store once (equity marks, fills, the orders' tags), matches the ledger over every fill (so a position opened before
`from_date` is matched right), then keeps the sessions and the round trips that closed within [from_date, to_date].
Everything per session is numpy; per fill and per trip is one pass.

Inputs by mode (see `sim_report_inputs` and `live_report_inputs`): in sim the bundled bars (one `BarFrame`, which has
the universe) and an `EqualWeightBenchmark` of the symbols the run could trade; in paper/live the traded symbols'
bars from the market-data port and SPY (`load_spy_benchmark`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from analytics.benchmark import BenchmarkSource, EqualWeightBenchmark, load_spy_benchmark, summarize
from analytics.exposure import exposure
from analytics.ledger import Ledger, OrderTags, build_ledger
from analytics.model import PriceMarks, Report, ReportSeries, RoundTrip
from analytics.portfolio_risk import portfolio_risk_at
from analytics.returns import alpha_beta, daily_returns, return_stats
from analytics.trades import by_symbol, by_tier, trade_stats
from core.broker.base import MarketData
from core.store import StateStore
from core.timeconv import ny_date, ny_dates, ny_instant
from core.types import BarFrame

TOP_SYMBOLS = 5
SPY_CACHE_NAME = "benchmark_spy.json"  # beside the state DB: DATA_DIR/<mode>/


class ReportDataError(ValueError):
    """The store has nothing to report on in the period asked (no equity marks)."""


def order_tags(store: StateStore) -> dict[str, OrderTags]:
    """What the ledger needs of every stored order, by client order id."""
    return {order_id: OrderTags(*tagged) for order_id, tagged in store.order_tags().items()}


def store_ledger(store: StateStore) -> Ledger:
    """Every round trip the store's fills make (the dashboard's top performers, the ML's tracker)."""
    return build_ledger(store.fills(), order_tags(store))


def build_report(
    store: StateStore,
    *,
    mode: str,
    bars: BarFrame,
    benchmark: BenchmarkSource,
    from_date: date | None = None,
    to_date: date | None = None,
) -> Report:
    """The report of the sessions from `from_date` to `to_date` (inclusive; None: the store's first/last). `bars`:
    daily bars with at least the traded symbols (valuing positions, the price charts). Raises `ReportDataError` when
    the store has no equity mark in the period."""
    marks = store.equity_marks(from_date, to_date)
    if not marks:
        period = f"{from_date or 'the start'} to {to_date or 'the end'}"
        raise ReportDataError(f"no equity marks in the state store from {period}: nothing to report")
    sessions = tuple(m.session for m in marks)
    # The window's base: the equity at the close before its first session, when the store has one (a sim mark is
    # taken at the close, so the first session's own start-of-day equity would drop that session's return).
    before = store.equity_marks(None, sessions[0] - timedelta(days=1)) if from_date is not None else []
    start_equity = before[-1].last_equity if before else marks[0].start_equity
    final_equity = marks[-1].last_equity
    equity = np.array([float(start_equity), *(float(m.last_equity) for m in marks)])

    fills = store.fills()
    tags = order_tags(store)
    ledger = build_ledger(fills, tags)
    first, last = sessions[0], sessions[-1]
    trips = tuple(t for t in ledger.trips if first <= ny_date(t.exit_time) <= last)
    straddling = [t for t in trips if ny_date(t.entry_time) < first]

    fill_tiers = [tag.tier if (tag := tags.get(f.client_order_id)) is not None else None for f in fills]
    invested = exposure(sessions, equity[1:], fills, fill_tiers, bars)
    in_period = [f for f in fills if first <= ny_date(f.ts) <= last]
    traded = float(sum((f.qty * f.price for f in in_period), Decimal(0)))
    returns = return_stats(equity, invested_pct=invested.invested_pct, traded_notional=traded)

    notes: list[str] = []
    bench = benchmark.series(sessions, base=before[-1].session if before else None)
    alpha = beta = excess = None
    benchmark_equity: tuple[float | None, ...] = (None,) * len(sessions)
    summary = None
    if isinstance(bench, str):
        notes.append(f"No benchmark: {bench}.")
    else:
        summary = summarize(bench)
        growth = bench.growth
        benchmark_equity = tuple(None if not np.isfinite(g) else float(g) * float(start_equity) for g in growth)
        alpha, beta = alpha_beta(daily_returns(equity), daily_returns(np.concatenate(([1.0], growth))))
        if returns.total_return_pct is not None and summary.total_return_pct is not None:
            excess = returns.total_return_pct - summary.total_return_pct
    # Held at the period's end: lots never closed, and (for a period ending in the past) lots closed after it.
    still_open = [lot.symbol for lot in ledger.open_lots if ny_date(lot.entry_time) <= last]
    still_open += [t.symbol for t in ledger.trips if ny_date(t.entry_time) <= last < ny_date(t.exit_time)]
    if still_open:
        symbols = len(set(still_open))
        notes.append(f"{len(still_open)} open lot(s) in {symbols} symbol(s) are not in the ledger (no exit yet).")
    if straddling:
        pnl = sum((t.pnl for t in straddling), Decimal(0))
        notes.append(
            f"{len(straddling)} round trip(s) entered before {first} and closed in the period count whole "
            f"(P&L {pnl:+.2f}, part of it earned before the period)."
        )
    if ledger.unmatched_sell_qty > 0:
        notes.append(f"{ledger.unmatched_sell_qty} shares sold without a recorded buy are not in the ledger.")

    return Report(
        mode=mode,
        start=first,
        end=last,
        start_equity=start_equity,
        final_equity=final_equity,
        returns=returns,
        trades=trade_stats(trips),
        benchmark=summary,
        alpha=alpha,
        beta=beta,
        excess_return_pct=excess,
        by_symbol=by_symbol(trips),
        by_tier=by_tier(trips),
        ledger=trips,
        series=ReportSeries(
            sessions=sessions,
            equity=tuple(equity[1:].tolist()),
            benchmark_equity=benchmark_equity,
            exposure_by_tier_pct={tier: tuple(v.tolist()) for tier, v in invested.by_tier_pct.items()},
        ),
        top_symbols=price_marks(trips, sessions, bars),
        notes=tuple(notes),
        portfolio=portfolio_risk_at(invested.last_values, float(final_equity), bars, last),
    )


def price_marks(trips: Sequence[RoundTrip], sessions: Sequence[date], bars: BarFrame) -> tuple[PriceMarks, ...]:
    """The closes and the entries/exits of the `TOP_SYMBOLS` most-traded symbols (most trips, then symbol)."""
    counts = Counter(t.symbol for t in trips)
    chosen = sorted(counts, key=lambda s: (-counts[s], s))[:TOP_SYMBOLS]
    days = ny_dates(bars.timestamps_ns).astype("datetime64[D]")
    lo = int(np.searchsorted(days, np.datetime64(sessions[0], "D"), side="left"))
    hi = int(np.searchsorted(days, np.datetime64(sessions[-1], "D"), side="right"))
    bar_days = tuple(days[lo:hi].tolist())
    out = []
    for symbol in chosen:
        if symbol in bars.symbols:
            closes = bars.close[lo:hi, bars.symbols.index(symbol)]
            valid = np.isfinite(closes)
            symbol_days = tuple(d for d, ok in zip(bar_days, valid.tolist(), strict=True) if ok)
            symbol_closes = tuple(closes[valid].tolist())
        else:
            symbol_days, symbol_closes = (), ()
        mine = [t for t in trips if t.symbol == symbol]
        out.append(
            PriceMarks(
                symbol=symbol,
                sessions=symbol_days,
                closes=symbol_closes,
                entries=tuple((t.entry_time, float(t.entry_price)) for t in mine),
                exits=tuple((t.exit_time, float(t.exit_price)) for t in mine),
            )
        )
    return tuple(out)


def sim_report_inputs(history: BarFrame, universe: Sequence[str]) -> tuple[BarFrame, BenchmarkSource]:
    """Sim: the bundled bars, and the equal-weight buy-and-hold of `universe` (the symbols the run could trade:
    `SYMBOLS`, or with the scanner the whole scanned universe)."""
    return history, EqualWeightBenchmark(history, tuple(universe))


async def live_report_inputs(
    store: StateStore,
    market_data: MarketData,
    *,
    from_date: date | None = None,
    to_date: date | None = None,
) -> tuple[BarFrame, BenchmarkSource]:
    """Paper/live: the traded symbols' daily bars over the period from the market-data port, and SPY (cached beside
    the state DB, `DATA_DIR/<mode>/benchmark_spy.json`). Raises `ReportDataError` without equity marks; the port's
    `BrokerError` when the bars cannot be fetched (SPY's absence is no error: the report says why it has none)."""
    marks = store.equity_marks(from_date, to_date)
    if not marks:
        raise ReportDataError("no equity marks in the state store: nothing to report")
    first, last = marks[0].session, marks[-1].session
    symbols = sorted({f.symbol for f in store.fills()})
    start, end = ny_instant(first - timedelta(days=10)), ny_instant(last + timedelta(days=1))
    bars = await market_data.get_bars(symbols, start, end)
    benchmark = await load_spy_benchmark(market_data, store.path.parent / SPY_CACHE_NAME, first, last)
    return bars, benchmark
