"""Order updates from overlapping, out-of-order observations: each fill once, at the price it happened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from core.broker.alpaca_wire import Execution
from core.broker.order_tracker import Observation, OrderTracker
from core.types import BrokerOrder, OrderSide, OrderStatus

T0 = datetime(2018, 1, 10, 14, 30, tzinfo=UTC)


def order(status: OrderStatus, filled: str = "0", avg: str | None = None) -> BrokerOrder:
    return BrokerOrder(
        client_order_id="c1",
        broker_order_id="b1",
        symbol="AAPL",
        side=OrderSide.BUY,
        status=status,
        qty=Decimal(10),
        notional=None,
        filled_qty=Decimal(filled),
        filled_avg_price=Decimal(avg) if avg is not None else None,
        submitted_at=T0,
    )


def seen(o: BrokerOrder, minutes: int = 0, execution: Execution | None = None) -> Observation:
    return Observation(o, T0 + timedelta(minutes=minutes), execution)


def test_partial_fills_seen_only_over_rest_get_their_own_prices() -> None:
    tracker = OrderTracker()
    tracker.track(order(OrderStatus.ACCEPTED))

    tracker.observe(seen(order(OrderStatus.PARTIALLY_FILLED, "4", "100"), 1))
    tracker.observe(seen(order(OrderStatus.FILLED, "10", "103"), 2))

    fills = [u.fill for u in tracker.drain() if u.fill is not None]
    assert [(f.qty, f.price) for f in fills] == [(Decimal(4), Decimal(100)), (Decimal(6), Decimal(105))]
    assert fills[0].execution_id != fills[1].execution_id


def test_a_fill_seen_on_the_stream_and_over_rest_counts_once() -> None:
    tracker = OrderTracker()
    tracker.track(order(OrderStatus.ACCEPTED))
    stream_fill = Execution("exec-1", Decimal(10), Decimal("101.5"))

    tracker.observe(seen(order(OrderStatus.FILLED, "10", "101.5"), 1))  # REST first
    tracker.observe(seen(order(OrderStatus.FILLED, "10", "101.5"), 1, stream_fill))  # the late stream event

    updates = tracker.drain()
    assert len(updates) == 1
    assert updates[0].fill is not None
    assert updates[0].fill.qty == Decimal(10)


def test_the_stream_execution_is_used_when_it_matches() -> None:
    tracker = OrderTracker()
    tracker.track(order(OrderStatus.ACCEPTED))

    tracker.observe(
        seen(order(OrderStatus.FILLED, "10", "101.5"), 1, Execution("exec-1", Decimal(10), Decimal("101.5")))
    )

    (update,) = tracker.drain()
    assert update.fill is not None
    assert update.fill.execution_id == "exec-1"


def test_stale_observations_change_nothing() -> None:
    tracker = OrderTracker()
    tracker.observe(seen(order(OrderStatus.FILLED, "10", "100"), 2))
    tracker.drain()

    assert tracker.observe(seen(order(OrderStatus.ACCEPTED), 1)) is None
    assert tracker.observe(seen(order(OrderStatus.PARTIALLY_FILLED, "4", "100"), 1)) is None
    assert tracker.open_orders() == []


def test_a_fill_without_any_price_waits_for_one() -> None:
    tracker = OrderTracker()
    tracker.track(order(OrderStatus.ACCEPTED))

    assert tracker.observe(seen(order(OrderStatus.FILLED, "10", None), 1)) is None
    assert tracker.observe(seen(order(OrderStatus.FILLED, "10", "99"), 2)) is not None


def test_updates_drain_oldest_first_and_once() -> None:
    tracker = OrderTracker()
    tracker.observe(seen(order(OrderStatus.ACCEPTED), 5))
    other = BrokerOrder("c2", "b2", "MSFT", OrderSide.BUY, OrderStatus.NEW, Decimal(1), None, submitted_at=T0)
    tracker.observe(Observation(other, T0))

    assert [u.order.client_order_id for u in tracker.drain()] == ["c2", "c1"]
    assert tracker.drain() == []
