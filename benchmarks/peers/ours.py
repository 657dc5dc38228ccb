"""tradingd under the peer rules: the replay path `bench_replay` measures (sim broker, every agent, the store), set
to the bench rules through settings only.

What the settings change from the defaults, and why: `STOP_MODE=close` (the scanner's close-based 5% stop, sold at
the next open, instead of resting stops at the broker), one pool of money (`ENABLE_TIERED_ALLOCATION=false`) with
`MAX_POSITION_PCT=0.02` (each entry 2% of equity), `MAX_OPEN_POSITIONS` = the number of symbols, both breakers at
100% (never trip), `SIM_SLIPPAGE_BPS=0`. What stays ours and has no counterpart in the per-symbol peers: one $100k
account shared by all symbols, so an entry the cash no longer covers is denied (`insufficient_buying_power`,
counted in `notes`), and fractional shares (notional orders in cents).
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

from benchmarks.bench_replay import timed_replay
from benchmarks.peers.rules import CASH, ENTRY_FRACTION, ENTRY_Z, EXIT_Z, STOP_LOSS, WINDOW, EngineRun, pair_fills
from config.settings import Settings
from core.logging import configure_logging
from core.timeconv import NEW_YORK
from core.types import OrderSide
from tradingd.app import build_sim


def bench_settings(data_dir: Path, symbols: tuple[str, ...]) -> Settings:
    return Settings(
        data_dir=data_dir,
        use_scanner=False,
        symbols=symbols,
        log_level="ERROR",
        strategy_name="zscore_mean_reversion",
        zscore_window=WINDOW,
        zscore_entry=ENTRY_Z,
        zscore_exit=EXIT_Z,
        stop_mode="close",
        stop_loss_pct=Decimal(str(STOP_LOSS)),
        enable_tiered_allocation=False,
        max_position_pct=Decimal(str(ENTRY_FRACTION)),
        max_open_positions=max(len(symbols), 1),
        max_daily_loss_pct=Decimal(1),
        max_drawdown_pct=Decimal(1),
        sim_initial_cash=Decimal(str(CASH)),
        sim_slippage_bps=Decimal(0),
    )


def run_ours(symbols: tuple[str, ...]) -> EngineRun:
    """One replay of `symbols` over the whole bundled file; seconds = the orchestrator's run (loading excluded)."""
    configure_logging("json", "ERROR")
    with tempfile.TemporaryDirectory() as tmp:
        app = build_sim(bench_settings(Path(tmp), symbols))
        try:
            seconds = timed_replay(app)
            stats = app.orchestrator.stats
            by_symbol: dict[str, list[tuple[date, bool]]] = defaultdict(list)
            for fill in sorted(app.store.fills(), key=lambda f: f.ts):
                by_symbol[fill.symbol].append((fill.ts.astimezone(NEW_YORK).date(), fill.side is OrderSide.BUY))
            notes: dict[str, object] = {
                "signals": stats.signals,
                "denied": dict(stats.denied),
                "rejected": dict(stats.rejected),
                "orders_rejected": dict(stats.orders_rejected),
                "orders_canceled": dict(stats.orders_canceled),
            }
            return EngineRun(
                engine="tradingd",
                symbols=len(app.symbols),
                bars=stats.bars,
                seconds=seconds,
                trades={symbol: pair_fills(fills) for symbol, fills in by_symbol.items()},
                notes=notes,
            )
        finally:
            app.close()
