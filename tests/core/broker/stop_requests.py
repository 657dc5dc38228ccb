"""The stop orders the broker tests ask for: sell stops and trailing stops, as the daemon's stop logic would."""

from __future__ import annotations

from decimal import Decimal

from core.types import OrderRequest, OrderSide, OrderType, TimeInForce


def stop_request(
    coid: str,
    price: Decimal | str,
    *,
    symbol: str = "X",
    qty: str | None = "10",
    notional: str | None = None,
    tif: TimeInForce = TimeInForce.GTC,
    side: OrderSide = OrderSide.SELL,
) -> OrderRequest:
    return OrderRequest(
        client_order_id=coid,
        symbol=symbol,
        side=side,
        qty=None if qty is None else Decimal(qty),
        notional=None if notional is None else Decimal(notional),
        time_in_force=tif,
        order_type=OrderType.STOP,
        stop_price=Decimal(price),
    )


def trailing_request(
    coid: str,
    percent: Decimal | str,
    *,
    symbol: str = "X",
    qty: str = "10",
    tif: TimeInForce = TimeInForce.GTC,
) -> OrderRequest:
    return OrderRequest(
        client_order_id=coid,
        symbol=symbol,
        side=OrderSide.SELL,
        qty=Decimal(qty),
        time_in_force=tif,
        order_type=OrderType.TRAILING_STOP,
        trail_percent=Decimal(percent),
    )
