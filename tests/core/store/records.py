"""The orders, fills and signals the state store tests write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from core.messages import SignalGenerated
from core.types import BrokerOrder, Fill, OrderSide, OrderStatus, OrderType, TimeInForce, bar_price

T0 = datetime(2018, 2, 5, 21, 0, tzinfo=UTC)  # the close of 2018-02-05, inside the bundled data's range
QUARANTINE_TIME = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
OPEN_STATUSES = [s for s in OrderStatus if s.is_open]
FINAL_STATUSES = [s for s in OrderStatus if not s.is_open]


def make_order(
    coid: str = "zscore-AAPL-buy-1",
    *,
    status: OrderStatus = OrderStatus.NEW,
    symbol: str = "AAPL",
    qty: Decimal | None = None,
    notional: Decimal | None = Decimal("1500.00"),
    filled_qty: Decimal = Decimal(0),
    filled_avg_price: Decimal | None = None,
    broker_order_id: str = "b-1",
    updated_at: datetime | None = T0,
    reason: str = "",
    side: OrderSide = OrderSide.BUY,
    order_type: OrderType = OrderType.MARKET,
    time_in_force: TimeInForce = TimeInForce.DAY,
    stop_price: Decimal | None = None,
    trail_percent: Decimal | None = None,
) -> BrokerOrder:
    return BrokerOrder(
        client_order_id=coid,
        broker_order_id=broker_order_id,
        symbol=symbol,
        side=side,
        status=status,
        qty=qty,
        notional=notional,
        filled_qty=filled_qty,
        filled_avg_price=filled_avg_price,
        submitted_at=T0,
        updated_at=updated_at,
        reason=reason,
        order_type=order_type,
        time_in_force=time_in_force,
        stop_price=stop_price,
        trail_percent=trail_percent,
    )


def make_fill(execution_id: str = "x-1", *, ts: datetime = T0, qty: str = "8.851540744", price: str = "159.54") -> Fill:
    return Fill(
        execution_id=execution_id,
        client_order_id="zscore-AAPL-buy-1",
        symbol="AAPL",
        side=OrderSide.BUY,
        qty=Decimal(qty),
        price=Decimal(price),
        ts=ts,
    )


def make_signal(symbol: str = "AAPL", price: float = 159.54) -> SignalGenerated:
    return SignalGenerated(
        ts_event=T0,
        ts_init=T0,
        correlation_id=f"c-{symbol}",
        strategy="zscore",
        symbol=symbol,
        side=OrderSide.BUY,
        is_exit=False,
        price=bar_price(price),
        score=-2.4,
        volatility=0.012,
        bar_ts=T0 - timedelta(hours=6, minutes=30),
        reason="zscore<-2",
    )
