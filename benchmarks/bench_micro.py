"""Per-call costs that once were asserted in tests and now are only measured: tests never depend on the machine.

- loading the whole bundled data file (505 symbols x 1,259 sessions)
- one row of 505 symbols from the sim replay market data (the daemon's per-iteration bar fetch in sim)
- one iteration's store transaction (3 orders, 3 fills, an equity mark, 10 journal rows)
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.bars import load_daily_bars
from core.broker.replay import ReplayMarketData
from core.messages import IterationCompleted, IterationStats, Message, OrderFilled
from core.store import StateStore
from core.timeconv import ns_to_datetime
from core.types import BarFrame, BrokerOrder, Fill, OrderSide, OrderStatus
from tests.fakes.clock import FakeClock

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "sp500_daily_2013_2018.csv.xz"
T0 = datetime(2016, 1, 4, 21, tzinfo=UTC)
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def _load(repeats: int) -> tuple[BarFrame, float]:
    timings = []
    history = None
    for _ in range(repeats):
        t = time.perf_counter()
        history = load_daily_bars(DATA_FILE)
        timings.append(time.perf_counter() - t)
    assert history is not None
    return history, statistics.median(timings)


def _replay_row_us(history: BarFrame, calls: int = 1000) -> float:
    first = ns_to_datetime(int(history.timestamps_ns[0]))
    clock = FakeClock(first)
    replay = ReplayMarketData(history, clock)
    subset = tuple(reversed(history.symbols))  # not the history's order: exercises fancy indexing

    async def go() -> list[float]:
        timings = []
        for row in range(calls):
            now = ns_to_datetime(int(history.timestamps_ns[row]))
            clock.set(now)
            t = time.perf_counter()
            await replay.get_bars(subset, now, FAR_FUTURE)
            timings.append(time.perf_counter() - t)
        return timings

    return statistics.median(asyncio.run(go())) * 1e6


def _store_iteration_us(iterations: int = 200) -> float:
    timings = []
    with tempfile.TemporaryDirectory() as tmp, StateStore(Path(tmp) / "state.db") as store:
        for n in range(iterations):
            ts = T0 + timedelta(days=n)
            fills = [
                Fill(f"x-{n}-{k}", f"o-{n}-{k}", "AAPL", OrderSide.BUY, Decimal("8.851540744"), Decimal("159.54"), ts)
                for k in range(3)
            ]
            orders = [
                BrokerOrder(f"o-{n}-{k}", f"b-{n}-{k}", "AAPL", OrderSide.BUY, OrderStatus.NEW, None, Decimal(1500))
                for k in range(3)
            ]
            events: list[Message] = [OrderFilled(ts_event=ts, ts_init=ts, fill=f) for f in fills] * 3
            stats = IterationStats(
                session=ts.date(),
                bars=505,
                rejected_bars=0,
                orders=3,
                fills=3,
                equity=Decimal("100000.00"),
                positions=3,
            )
            events.append(IterationCompleted(ts_event=ts, ts_init=ts, iteration=n, stats=stats))
            t = time.perf_counter()
            with store.transaction():
                for order in orders:
                    store.upsert_order(order, strategy="zscore", tier="TIER3")
                store.record_fills(fills)
                store.mark_equity(ts.date(), Decimal("100000.00") + n)
                store.journal(events)
            timings.append(time.perf_counter() - t)
    return statistics.median(timings) * 1e6


def run() -> dict[str, Any]:
    history, load_s = _load(repeats=3)
    return {
        "data_load_median_s": round(load_s, 3),
        "replay_row_505_symbols_median_us": round(_replay_row_us(history), 1),
        "store_iteration_transaction_median_us": round(_store_iteration_us(), 1),
        "target": "replay row < 100 us; store iteration < 1 ms",
    }
