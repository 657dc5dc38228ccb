"""The whole daemon in sim mode over a few hundred real sessions: orders, caps, no lookahead, restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import pytest

from config.settings import Settings
from core.clock import NyseCalendar
from core.messages import OrderApproved, OrderFilled, SignalGenerated
from core.order_ids import is_protective_stop_id
from core.store import StateStore
from core.types import OrderSide
from tests.state_db import equity_curve, journal_count
from tradingd.app import App, build_sim, load_assets

START, END = date(2015, 6, 1), date(2016, 6, 30)  # includes the real bad rows of 2015-07-17 and 2016-01-12


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    data_dir = tmp_path_factory.mktemp("sim")
    settings = Settings(
        data_dir=data_dir, use_scanner=False, symbols=("AAPL", "MSFT", "DHR", "O", "ES", "XOM", "JPM", "JNJ", "GE", "T")
    )
    app = build_sim(settings, start=START, end=END)
    signals: list[SignalGenerated] = []
    approved: list[OrderApproved] = []
    fills: list[OrderFilled] = []
    bus = app.orchestrator.bus
    bus.subscribe(SignalGenerated, signals.append)
    bus.subscribe(OrderApproved, approved.append)
    bus.subscribe(OrderFilled, fills.append)

    async def go(app_: App) -> None:
        await load_assets(app_)
        await app_.orchestrator.run()

    asyncio.run(go(app))
    before = {
        "orders": app.store.order_records(),
        "fills": app.store.fills(),
        "positions": app.store.load_positions(),
        "curve": equity_curve(app.store.path),
        "journal": app.store.summary()["journal"],
        "journal_orders": journal_count(app.store.path, "OrderSubmitted") + journal_count(app.store.path, "StopPlaced"),
        "journal_iterations": journal_count(app.store.path, "IterationCompleted"),
    }
    result = {"app": app, "signals": signals, "approved": approved, "fills": fills, "before": before}
    app.close()
    return result


def test_orders_were_placed_and_filled(sim_run: dict[str, object]) -> None:
    app = sim_run["app"]
    assert isinstance(app, App)
    stats = app.orchestrator.stats
    assert stats.iterations > 250
    assert len(sim_run["approved"]) > 10  # type: ignore[arg-type]
    assert len(sim_run["fills"]) > 10  # type: ignore[arg-type]
    assert stats.bad_bars["missing_price"] >= 4  # DHR, ES, O on 2015-07-17; DHR, O on 2016-01-12


def test_every_entry_respects_the_tier_cap_and_min_notional(sim_run: dict[str, object]) -> None:
    app = sim_run["app"]
    assert isinstance(app, App)
    settings = app.settings
    curve = dict(sim_run["before"]["curve"])  # type: ignore[index]
    for event in sim_run["approved"]:  # type: ignore[attr-defined]
        order = event.order
        if order.side is not OrderSide.BUY:
            continue
        equity = curve[event.signal.bar_ts.astimezone(UTC).date()]  # the session's mark, taken before risk ran
        tier_cap = settings.tier_allocations[order.tier] * settings.tier_max_position_pct * equity
        assert order.est_notional >= settings.min_order_notional
        assert order.est_notional <= tier_cap + Decimal("0.01")
        assert order.est_notional <= settings.max_position_pct * equity + Decimal("0.01")


def test_no_fill_uses_a_price_from_the_signals_own_bar(sim_run: dict[str, object]) -> None:
    app = sim_run["app"]
    assert isinstance(app, App)
    history = app.market_data.history  # type: ignore[attr-defined]
    ts_ns = history.timestamps_ns
    slip_bps = app.settings.sim_slippage_bps / Decimal(10_000)
    fills = [event.fill for event in sim_run["fills"]]  # type: ignore[attr-defined]
    assert fills
    calendar = NyseCalendar()
    with StateStore(app.store.path) as store:
        for fill in fills:
            record = store.order_record(fill.client_order_id)
            assert record is not None
            if is_protective_stop_id(fill.client_order_id):
                # A stop has no signal: it fills on a bar that was not complete when it was placed, at its level or
                # below (a gap opens under it), less the slippage.
                placed_at, level = record.order.submitted_at, record.order.stop_price
                assert placed_at is not None
                assert level is not None
                assert calendar.session_close(calendar.session_date(fill.ts)) > placed_at
                assert fill.price <= level
                continue
            assert record.signal_bar_ts is not None
            col = history.symbols.index(fill.symbol)
            signal_row = int(np.searchsorted(ts_ns, int(record.signal_bar_ts.timestamp() * 1e9)))
            # The fill's bar: the last one started at or before it (a fill is stamped at its session's open, 09:30).
            fill_row = int(np.searchsorted(ts_ns, int(fill.ts.timestamp() * 1e9), side="right")) - 1
            assert fill_row == signal_row + 1, "a signal from bar t fills at bar t+1"
            own_bar = {float(getattr(history, f)[signal_row, col]) for f in ("open", "high", "low", "close")}
            sign = 1 if fill.side is OrderSide.BUY else -1
            expected = Decimal(str(history.open[fill_row, col])) * (1 + sign * slip_bps)
            assert abs(fill.price - expected) < Decimal("0.0001")
            assert float(fill.price) not in own_bar


def test_every_published_event_is_journaled(sim_run: dict[str, object]) -> None:
    app = sim_run["app"]
    assert isinstance(app, App)
    before = sim_run["before"]
    assert before["journal_iterations"] == app.orchestrator.stats.iterations  # type: ignore[index]
    assert before["journal_orders"] == len(before["orders"])  # type: ignore[index]


def test_store_after_restart_matches_the_store_before(sim_run: dict[str, object]) -> None:
    app = sim_run["app"]
    assert isinstance(app, App)
    with StateStore(app.store.path) as reopened:
        assert reopened.order_records() == sim_run["before"]["orders"]  # type: ignore[index]
        assert reopened.fills() == sim_run["before"]["fills"]  # type: ignore[index]
        assert reopened.load_positions() == sim_run["before"]["positions"]  # type: ignore[index]
        assert equity_curve(reopened.path) == sim_run["before"]["curve"]  # type: ignore[index]
        assert reopened.summary()["journal"] == sim_run["before"]["journal"]  # type: ignore[index]


def test_signal_times_are_bar_times_not_wall_clock(sim_run: dict[str, object]) -> None:
    for sig in sim_run["signals"]:  # type: ignore[attr-defined]
        assert datetime(2015, 5, 1, tzinfo=UTC) < sig.bar_ts < datetime(2016, 7, 1, tzinfo=UTC)
