from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from agents.execution import ExecutionAgent, client_order_id, is_our_client_order_id
from core.broker.sim import SimBroker
from core.bus import EventBus
from core.clock import NyseCalendar, SimClock
from core.messages import OrderApproved, OrderFilled, OrderRejected, OrderSubmitted, SignalGenerated, SizedOrder
from core.portfolio import PortfolioView
from core.store import StateStore
from core.types import BarFrame, OrderSide, Tier

BAR_TS = datetime(2016, 3, 1, 5, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _all_levels() -> None:
    """capture_logs replaces the processors, not the level filter an earlier CLI test may have left at WARNING."""
    structlog.reset_defaults()


def approved(symbol: str = "AAPL", notional: str | None = "1000", qty: str | None = None) -> OrderApproved:
    now = datetime(2016, 3, 1, 21, tzinfo=UTC)
    sig = SignalGenerated(
        ts_event=now,
        ts_init=now,
        correlation_id=f"zscore_mr:{symbol}",
        strategy="zscore_mr",
        symbol=symbol,
        side=OrderSide.BUY,
        is_exit=False,
        price=100.0,
        score=2.1,
        volatility=0.01,
        bar_ts=BAR_TS,
        reason="test",
    )
    order = SizedOrder(
        symbol=symbol,
        side=OrderSide.BUY,
        tier=Tier.TIER3,
        qty=Decimal(qty) if qty else None,
        notional=Decimal(notional) if notional else None,
        est_price=Decimal(100),
        est_notional=Decimal(1000),
        fractional=notional is not None,
    )
    return OrderApproved(ts_event=now, ts_init=now, correlation_id=sig.correlation_id, signal=sig, order=order)


def test_client_order_id_is_deterministic_and_distinct() -> None:
    a = client_order_id("zscore_mr", "AAPL", OrderSide.BUY, BAR_TS)
    assert a == client_order_id("zscore_mr", "AAPL", OrderSide.BUY, BAR_TS)
    assert a != client_order_id("zscore_mr", "AAPL", OrderSide.SELL, BAR_TS)
    assert a != client_order_id("zscore_mr", "MSFT", OrderSide.BUY, BAR_TS)
    assert a != client_order_id("zscore_mr", "AAPL", OrderSide.BUY, BAR_TS.replace(day=2))
    assert len(a) <= 48


@pytest.fixture
def world(small_history: BarFrame, calendar: NyseCalendar, tmp_path: Path):  # type: ignore[no-untyped-def]
    clock = SimClock(calendar.session_close(date(2016, 3, 1)))
    broker = SimBroker(small_history, clock, Decimal(100_000), Decimal(5), non_fractionable=frozenset({"XOM"}))
    store = StateStore(tmp_path / "state.db")
    bus = EventBus()
    agent = ExecutionAgent(bus, broker, store, PortfolioView(broker), clock)
    events: list[object] = []
    for kind in (OrderSubmitted, OrderRejected, OrderFilled):
        bus.subscribe(kind, events.append)
    yield clock, broker, store, bus, agent, events
    store.close()


async def test_approved_order_is_submitted_recorded_and_filled_next_open(world, calendar, small_history) -> None:  # type: ignore[no-untyped-def]
    clock, _broker, store, bus, agent, events = world
    bus.publish(approved())
    placed = await agent.submit_approved()
    agent.record_placed(placed)
    assert len(placed) == 1
    coid = placed[0].order.client_order_id
    assert store.get_order(coid) is not None
    assert isinstance(events[0], OrderSubmitted)
    assert events[0].notional == Decimal(1000)
    clock.set(calendar.session_close(date(2016, 3, 2)))
    assert await agent.sync_updates() == 1
    fill = next(e for e in events if isinstance(e, OrderFilled)).fill
    col = small_history.symbols.index("AAPL")
    row = int((small_history.timestamps_ns < int(datetime(2016, 3, 2, 6, tzinfo=UTC).timestamp() * 1e9)).sum()) - 1
    assert float(fill.price) == pytest.approx(small_history.open[row, col] * (1 + 5 / 1e4), rel=1e-9)
    assert store.fills()[0].execution_id == fill.execution_id


async def test_the_same_approval_twice_places_one_order(world) -> None:  # type: ignore[no-untyped-def]
    _, broker, store, bus, agent, _ = world
    bus.publish(approved())
    agent.record_placed(await agent.submit_approved())
    bus.publish(approved())  # e.g. the iteration re-ran after a crash
    placed = await agent.submit_approved()
    assert placed == []
    assert agent.duplicates == 1
    assert agent.submitted == 1
    assert len(store.all_orders()) == 1
    assert len(await broker.get_open_orders()) == 1


async def test_broker_rejection_becomes_an_event_with_the_reason(world) -> None:  # type: ignore[no-untyped-def]
    _, _, store, bus, agent, events = world
    bus.publish(approved("XOM", notional="500"))  # XOM is not fractionable in this world
    assert await agent.submit_approved() == []
    rejected = [e for e in events if isinstance(e, OrderRejected)]
    assert [r.reason for r in rejected] == ["not_fractionable"]
    assert store.all_orders() == []
    assert agent.rejected == {"not_fractionable": 1}


async def test_each_new_fill_is_logged_once(world, calendar) -> None:  # type: ignore[no-untyped-def]
    clock, _broker, _store, bus, agent, _ = world
    bus.publish(approved())
    placed = await agent.submit_approved()
    agent.record_placed(placed)
    clock.set(calendar.session_close(date(2016, 3, 2)))
    updates = await agent.fetch_updates()
    with capture_logs() as logs:
        assert agent.apply_updates(updates) == 1
        assert agent.apply_updates(updates) == 0  # the same fill reported again is not a new fill
    filled = [e for e in logs if e["event"] == "order_filled"]
    assert len(filled) == 1
    assert filled[0]["client_order_id"] == placed[0].order.client_order_id
    assert filled[0]["symbol"] == "AAPL"
    assert filled[0]["side"] == "buy"
    assert float(filled[0]["price"]) > 0


def test_our_client_order_ids_are_recognised_without_the_store() -> None:
    for strategy, symbol, side in [
        ("zscore_mr", "AAPL", OrderSide.BUY),
        ("zscore_mr", "BRK.B", OrderSide.SELL),
        ("mean-rev-abc", "GOOGLEXX", OrderSide.BUY),  # both at their longest: the id is cut to 48 chars
    ]:
        coid = client_order_id(strategy, symbol, side, BAR_TS)
        assert len(coid) <= 48
        assert is_our_client_order_id(coid)
    ours = client_order_id("zscore_mr", "AAPL", OrderSide.BUY, BAR_TS)
    tampered = ours[:-1] + ("0" if ours[-1] != "0" else "1")
    for foreign in ["my-manual-order-1", "", tampered, ours.replace("AAPL", "MSFT"), ours.replace("-b-", "-x-")]:
        assert not is_our_client_order_id(foreign), foreign
