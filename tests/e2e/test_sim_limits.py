"""Risk limits exercised end to end in sim on real bars (Jun 2015 - Jun 2016: the Aug 2015 and Jan 2016 sell-offs).

A small whole-share account with tight limits: the summary must show denials by reason, breakers must trip, and
exits must still go through while a daily-loss or drawdown breaker blocks entries.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from config.settings import Settings
from core.messages import CircuitBreakerTripped, OrderApproved
from core.types import OrderSide
from tradingd.app import build_sim, run_app


def _run(tmp_path: Path, **limits: Any) -> tuple[Counter[str], list[CircuitBreakerTripped], list[OrderApproved]]:
    settings = Settings(
        data_dir=tmp_path,
        use_scanner=False,
        log_level="ERROR",
        sim_initial_cash=Decimal(5000),
        enable_fractional_shares=False,
        max_open_positions=6,
        # The exits these breakers must let through are the strategy's and the close-based stop-loss: with stops at
        # the broker (tests/e2e/test_sim_stops.py) those would often sell first.
        stop_mode="close",
        **limits,
    )
    app = build_sim(settings, start=date(2015, 6, 1), end=date(2016, 6, 30))
    trips: list[CircuitBreakerTripped] = []
    approved: list[OrderApproved] = []
    app.orchestrator.bus.subscribe(CircuitBreakerTripped, trips.append)
    app.orchestrator.bus.subscribe(OrderApproved, approved.append)
    asyncio.run(run_app(app))
    denied = Counter(app.orchestrator.stats.denied)
    app.close()
    return denied, trips, approved


def test_daily_loss_breaker_zero_shares_and_position_limit(tmp_path: Path) -> None:
    denied, trips, approved = _run(tmp_path, max_daily_loss_pct=Decimal("0.003"), max_drawdown_pct=Decimal("0.05"))
    assert denied["daily_loss_limit"] > 0
    assert denied["zero_shares"] > 0  # $5k account, $300 Tier-3 budget: AMZN, GOOGL, GOOG are out of reach
    assert denied["max_open_positions"] > 0
    tripped_sessions = {t.ts_event.date() for t in trips if t.breaker == "daily_loss_limit"}
    assert tripped_sessions
    for event in approved:
        assert event.order.qty is not None
        assert event.order.qty == event.order.qty.to_integral_value()
        if event.order.side is OrderSide.BUY:
            assert event.signal.bar_ts.date() not in tripped_sessions  # no entry on a tripped day
    assert any(e.order.side is OrderSide.SELL and e.signal.bar_ts.date() in tripped_sessions for e in approved), (
        "exits stay allowed while the daily-loss breaker is tripped"
    )


def test_drawdown_breaker_blocks_entries_until_resume(tmp_path: Path) -> None:
    denied, trips, approved = _run(tmp_path, max_daily_loss_pct=Decimal("0.003"), max_drawdown_pct=Decimal("0.025"))
    drawdown_trips = [t for t in trips if t.breaker == "max_drawdown"]
    assert len(drawdown_trips) == 1  # announced once, not every iteration
    tripped_at = drawdown_trips[0].ts_event
    assert denied["max_drawdown"] > 0
    after = [e for e in approved if e.ts_event >= tripped_at]
    assert all(e.order.side is OrderSide.SELL for e in after)  # no resume in this run: entries never come back
    assert after, "held positions are still exited after the trip"
