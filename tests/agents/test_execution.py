from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from agents.execution import ExecutionAgent
from core.broker.sim import SimBroker
from core.bus import EventBus
from core.clock import NyseCalendar, SimClock
from core.messages import OrderApproved, OrderFilled, OrderRejected, OrderSubmitted, SignalGenerated, SizedOrder
from core.order_ids import client_order_id, signal_correlation_id
from core.portfolio import PortfolioView
from core.reasons import RejectionReason
from core.store import StateStore
from core.types import BarFrame, BrokerOrder, Fill, OrderSide, OrderStatus, OrderUpdate, Tier

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
        correlation_id=signal_correlation_id("zscore_mr", symbol, OrderSide.BUY, BAR_TS),
        strategy="zscore_mr",
        symbol=symbol,
        side=OrderSide.BUY,
        is_exit=False,
        price=Decimal(100),
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
    return OrderApproved(
        ts_event=now,
        ts_init=now,
        correlation_id=sig.correlation_id,
        signal=sig,
        order=order,
        client_order_id=client_order_id("zscore_mr", symbol, OrderSide.BUY, BAR_TS),
    )


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
    clock, _broker, store, _bus, agent, events = world
    placed = await agent.submit([approved()])
    agent.record_placed(placed)
    assert len(placed) == 1
    coid = placed[0].order.client_order_id
    assert store.get_order(coid) is not None
    assert isinstance(events[0], OrderSubmitted)
    assert events[0].notional == Decimal(1000)
    clock.set(calendar.session_close(date(2016, 3, 2)))
    [fill] = await agent.sync_updates()
    assert [e.fill for e in events if isinstance(e, OrderFilled)] == [fill]  # returned and published alike
    col = small_history.symbols.index("AAPL")
    row = int((small_history.timestamps_ns < int(datetime(2016, 3, 2, 6, tzinfo=UTC).timestamp() * 1e9)).sum()) - 1
    assert float(fill.price) == pytest.approx(small_history.open[row, col] * (1 + 5 / 1e4), rel=1e-9)
    assert store.fills()[0].execution_id == fill.execution_id


async def test_the_same_approval_twice_places_one_order(world) -> None:  # type: ignore[no-untyped-def]
    _, broker, store, _bus, agent, _ = world
    assert len(await agent.submit([approved(), approved()])) == 1  # twice in one batch
    assert await agent.submit([approved()]) == []  # e.g. the iteration re-ran after a crash
    assert len(store.order_records()) == 1
    assert len(await broker.get_open_orders()) == 1


async def test_broker_rejection_becomes_an_event_with_the_reason(world) -> None:  # type: ignore[no-untyped-def]
    _, _, store, _bus, agent, events = world
    assert await agent.submit([approved("XOM", notional="500")]) == []  # XOM is not fractionable in this world
    rejected = [e for e in events if isinstance(e, OrderRejected)]
    assert [r.reason for r in rejected] == [RejectionReason.NOT_FRACTIONABLE]
    assert rejected[0].correlation_id == "zscore_mr:XOM:buy:20160301T0500"
    assert store.order_records() == []


async def test_each_new_fill_is_logged_once(world, calendar) -> None:  # type: ignore[no-untyped-def]
    clock, _broker, _store, _bus, agent, _ = world
    placed = await agent.submit([approved()])
    agent.record_placed(placed)
    clock.set(calendar.session_close(date(2016, 3, 2)))
    updates = await agent.fetch_updates()
    with capture_logs() as logs:
        assert len(agent.apply_updates(updates)) == 1
        assert agent.apply_updates(updates) == []  # the same fill reported again is not a new fill
    filled = [e for e in logs if e["event"] == "order_filled"]
    assert len(filled) == 1
    assert filled[0]["client_order_id"] == placed[0].order.client_order_id
    assert filled[0]["symbol"] == "AAPL"
    assert filled[0]["side"] == "buy"
    assert float(filled[0]["price"]) > 0


async def test_the_users_own_orders_reported_by_the_broker_are_not_recorded(world) -> None:  # type: ignore[no-untyped-def]
    """The account's update stream reports every order, the user's own too: a fill of theirs recorded as ours would
    make their shares the daemon's to sell."""
    clock, broker, store, _bus, agent, events = world
    now = clock.now()
    manual = BrokerOrder(
        client_order_id="my-manual-order-1",
        broker_order_id="b-1",
        symbol="AAPL",
        side=OrderSide.BUY,
        status=OrderStatus.FILLED,
        qty=Decimal(50),
        notional=None,
        filled_qty=Decimal(50),
        filled_avg_price=Decimal(100),
    )
    fill = Fill("b-1:50", manual.client_order_id, "AAPL", OrderSide.BUY, Decimal(50), Decimal(100), now)

    async def poll_updates() -> list[OrderUpdate]:
        return [OrderUpdate(order=manual, ts=now, fill=fill)]

    broker.poll_updates = poll_updates
    assert await agent.sync_updates() == []
    assert store.get_order("my-manual-order-1") is None
    assert store.fills() == []
    assert not any(isinstance(e, OrderFilled) for e in events)


async def test_the_approved_client_order_id_is_the_one_placed(world) -> None:  # type: ignore[no-untyped-def]
    _, broker, store, _bus, agent, _ = world
    approval = approved()
    [placed] = await agent.submit([approval])
    assert placed.order.client_order_id == approval.client_order_id
    assert store.get_order(approval.client_order_id) is not None
    assert await broker.get_order(approval.client_order_id) is not None


async def test_every_event_from_approval_to_fill_carries_the_signals_correlation_id(world, calendar) -> None:  # type: ignore[no-untyped-def]
    clock, _broker, _store, _bus, agent, events = world
    approval = approved()
    agent.record_placed(await agent.submit([approval]))
    clock.set(calendar.session_close(date(2016, 3, 2)))
    await agent.sync_updates()
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["OrderSubmitted", "OrderFilled"]
    assert {e.correlation_id for e in events} == {approval.signal.correlation_id}  # type: ignore[attr-defined]


async def test_a_fill_after_a_restart_still_names_its_signal(world, calendar, tmp_path) -> None:  # type: ignore[no-untyped-def]
    clock, broker, store, _bus, agent, _ = world
    approval = approved()
    agent.record_placed(await agent.submit([approval]))
    # A new process: nothing in memory but the store and the broker.
    fresh_bus = EventBus()
    fills: list[OrderFilled] = []
    fresh_bus.subscribe(OrderFilled, fills.append)
    restarted = ExecutionAgent(fresh_bus, broker, store, PortfolioView(broker), clock)
    clock.set(calendar.session_close(date(2016, 3, 2)))
    assert len(await restarted.sync_updates()) == 1
    assert [f.correlation_id for f in fills] == [approval.signal.correlation_id]
