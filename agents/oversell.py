"""The over-sell invariant: per symbol, the daemon's open sells (protective stops included) never add up to more
than it owns. Pure; the orchestrator checks it after every portfolio refresh and after the stop step's placements,
and risk holds every stop placement to it.

A breach would mean two orders could sell the same shares (the broker would refuse the second fill, or worse, a
margin account would go short); it is logged as an error and published (`OversellDetected`), and the stop planner's
next pass cancels the excess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from core.order_ids import is_our_client_order_id
from core.types import BrokerOrder, OrderSide, OrderStatus, Position

_ZERO = Decimal(0)
OPEN_STATUSES = frozenset(status for status in OrderStatus if status.is_open)


@dataclass(frozen=True, slots=True)
class Oversell:
    symbol: str
    open_sell_qty: Decimal
    owned_qty: Decimal


def open_sell_qty(orders: Iterable[BrokerOrder]) -> dict[str, Decimal]:
    """The quantity the daemon's open sell orders may still sell, per symbol (stops included; a user's own orders
    in the same account are not the daemon's and sell the user's shares)."""
    selling: dict[str, Decimal] = {}
    sell = OrderSide.SELL
    for order in orders:  # asked at every invariant check and stop plan: plain attribute reads, no property calls
        if order.side is not sell or order.status not in OPEN_STATUSES:
            continue
        if is_our_client_order_id(order.client_order_id):
            qty = order.qty  # `remaining_sell_qty`, inlined: this loop sees every open order at every check
            remaining = _ZERO if qty is None else max(qty - order.filled_qty, _ZERO)
            selling[order.symbol] = selling.get(order.symbol, _ZERO) + remaining
    return selling


def remaining_sell_qty(order: BrokerOrder) -> Decimal:
    """`BrokerOrder.open_qty` on plain attribute reads: what a qty order may still sell; 0 for a notional one."""
    qty = order.qty
    return _ZERO if qty is None else max(qty - order.filled_qty, _ZERO)


def oversells(positions: Mapping[str, Position], open_orders: Iterable[BrokerOrder]) -> list[Oversell]:
    """Every symbol whose open sell quantity exceeds the owned quantity, by symbol."""
    breaches = []
    for symbol, selling in sorted(open_sell_qty(open_orders).items()):
        position = positions.get(symbol)
        owned = position.qty if position is not None else _ZERO
        if selling > owned:
            breaches.append(Oversell(symbol, selling, owned))
    return breaches
