"""The last known state of every order we follow, and the updates that fresh observations imply.

Observations come from two places that overlap and arrive out of order: the trade_updates stream (which carries
the exact execution of a fill) and REST reconciliation (which only carries cumulative `filled_qty` and
`filled_avg_price`). Fills are derived from the growth of the cumulative filled quantity, so a fill seen by both
is reported once, a fill missed by the stream is recovered from REST, and a stale event changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import structlog

from core.broker.alpaca_wire import Execution
from core.types import BrokerOrder, Fill, OrderStatus, OrderUpdate

log = structlog.get_logger(__name__)

PRICE_QUANTUM = Decimal("0.000001")

# How far along its life an order is; an observation that goes backwards is stale.
_PROGRESS = {
    OrderStatus.PENDING_SUBMIT: -1,
    OrderStatus.NEW: 0,
    OrderStatus.ACCEPTED: 1,
    OrderStatus.PARTIALLY_FILLED: 2,
    OrderStatus.FILLED: 3,
    OrderStatus.CANCELED: 3,
    OrderStatus.EXPIRED: 3,
    OrderStatus.REJECTED: 3,
}


@dataclass(frozen=True, slots=True)
class Observation:
    order: BrokerOrder
    ts: datetime
    execution: Execution | None = None


class OrderTracker:
    def __init__(self) -> None:
        self._known: dict[str, BrokerOrder] = {}
        self._pending: list[OrderUpdate] = []

    def __len__(self) -> int:
        return len(self._known)

    def get(self, client_order_id: str) -> BrokerOrder | None:
        return self._known.get(client_order_id)

    def open_orders(self) -> list[BrokerOrder]:
        return [o for o in self._known.values() if o.status.is_open]

    def track(self, order: BrokerOrder) -> None:
        """Record a state the caller already knows about (a submit's reply, an adopted order): no update."""
        known = self._known.get(order.client_order_id)
        if known is None or not self._is_stale(known, order):
            self._known[order.client_order_id] = order

    def observe(self, observation: Observation) -> OrderUpdate | None:
        """Fold in a state seen on the stream or over REST; queue and return the update it implies, if any."""
        order = observation.order
        known = self._known.get(order.client_order_id)
        if known is not None and (self._is_stale(known, order) or self._same(known, order)):
            return None
        fill = None
        previous_qty = known.filled_qty if known is not None else Decimal(0)
        delta = order.filled_qty - previous_qty
        if delta > 0:
            fill = self._fill(known, order, delta, observation)
            if fill is None:
                return None  # wait for an observation that says at what price; never invent one
        self._known[order.client_order_id] = order
        update = OrderUpdate(order=order, ts=observation.ts, fill=fill)
        self._pending.append(update)
        return update

    def drain(self) -> list[OrderUpdate]:
        updates, self._pending = self._pending, []
        return sorted(updates, key=lambda u: u.ts)

    @staticmethod
    def _is_stale(known: BrokerOrder, seen: BrokerOrder) -> bool:
        if seen.filled_qty < known.filled_qty:
            return True
        if not known.status.is_open:
            return True  # final states never change
        return seen.filled_qty == known.filled_qty and _PROGRESS[seen.status] < _PROGRESS[known.status]

    @staticmethod
    def _same(known: BrokerOrder, seen: BrokerOrder) -> bool:
        return known.status == seen.status and known.filled_qty == seen.filled_qty

    @staticmethod
    def _fill(known: BrokerOrder | None, order: BrokerOrder, delta: Decimal, seen: Observation) -> Fill | None:
        execution = seen.execution
        if execution is not None and execution.qty == delta:
            price, execution_id = execution.price, execution.execution_id
        else:
            average = order.filled_avg_price
            if average is None:
                log.warning("fill_without_price", client_order_id=order.client_order_id, filled_qty=order.filled_qty)
                return None
            previous_qty = known.filled_qty if known is not None else Decimal(0)
            previous_cost = previous_qty * (known.filled_avg_price or Decimal(0)) if known is not None else Decimal(0)
            price = average if previous_qty == 0 else ((average * order.filled_qty - previous_cost) / delta)
            price = price.quantize(PRICE_QUANTUM).normalize()
            # Derived from cumulative totals: the same totals always give the same id, so it cannot double up.
            execution_id = f"{order.broker_order_id}:{order.filled_qty}"
        return Fill(
            execution_id=execution_id,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            qty=delta,
            price=price,
            ts=seen.ts,
        )
