"""Risk limits exercised end to end in sim on real bars (Jun 2015 - Jun 2016: the Aug 2015 and Jan 2016 sell-offs).

A small whole-share account with tight limits: the summary must show denials by reason, breakers must trip, and
exits must still go through while a daily-loss or drawdown breaker blocks entries; a breaker set to flatten sells
everything the daemon owns.
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
from core.store import StateStore
from core.types import OrderSide
from tests.state_db import journal_rows
from tradingd.app import build_sim, run_app


def _run(tmp_path: Path, **limits: Any) -> tuple[Counter[str], list[CircuitBreakerTripped], list[OrderApproved]]:
    settings = _settings(tmp_path, **limits)
    app = build_sim(settings, start=date(2015, 6, 1), end=date(2016, 6, 30))
    trips: list[CircuitBreakerTripped] = []
    approved: list[OrderApproved] = []
    app.orchestrator.bus.subscribe(CircuitBreakerTripped, trips.append)
    app.orchestrator.bus.subscribe(OrderApproved, approved.append)
    asyncio.run(run_app(app))
    denied = Counter(app.orchestrator.stats.denied)
    app.close()
    return denied, trips, approved


def _settings(tmp_path: Path, **limits: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        use_scanner=False,
        log_level="ERROR",
        sim_initial_cash=Decimal(5000),
        enable_fractional_shares=False,
        max_open_positions=6,
        # The exits the breakers must let through are the strategy's and the close-based stop-loss: with stops at the
        # broker (tests/e2e/test_sim_stops.py) those would often sell first. A test may still ask for stops.
        **{"stop_mode": "close", **limits},
    )


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


def test_a_drawdown_breaker_set_to_flatten_ends_the_replay_flat(tmp_path: Path) -> None:
    _, trips, approved = _run(
        tmp_path, max_drawdown_pct=Decimal("0.01"), on_max_drawdown="flatten", stop_mode="fixed"
    )  # with stops resting at the broker: each flatten exit cancels its stop first
    [trip] = [t for t in trips if t.breaker == "max_drawdown"]
    journal = journal_rows(tmp_path / "sim" / "state.db")
    [flatten] = [row["payload"] for row in journal if row["type"] == "FlattenRequested"]
    assert flatten["breaker"] == "max_drawdown"
    assert flatten["detail"] == trip.detail
    assert flatten["symbols"], "the trip must find positions to flatten"
    flattened = [e for e in approved if e.signal.strategy == "flatten"]
    assert sorted(e.order.symbol for e in flattened) == flatten["symbols"]
    assert all(e.ts_event == trip.ts_event for e in flattened)  # in the very iteration of the trip
    assert all(e.signal.reason.startswith("flatten: max_drawdown: ") for e in flattened)
    assert not [e for e in approved if e.ts_event > trip.ts_event]  # nothing left to sell, no entry: reducing
    with StateStore(tmp_path / "sim" / "state.db") as store:
        assert store.load_positions() == {}
        assert store.get_flag("breaker_drawdown") is not None  # still reducing
        assert {r.strategy for r in store.order_records() if r.order.symbol in flatten["symbols"]} >= {"flatten"}
        assert not [name for name in store.summary()["flags"] if name.startswith("close_request:")]
