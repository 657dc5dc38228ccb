"""Recovery: what the broker says against what our store remembers, over the `Broker` port (any adapter).

The broker is the source of truth for orders and positions. Every order the store holds as not final, including
the ones written ahead of a broker call that never got their answer stored (`pending_submit`), is looked up by its
client order id whatever its broker state. What changed while we were away becomes `OrderUpdate`s, fills included,
for the caller to apply in one store transaction. Fills are derived the way `OrderTracker` derives them from REST
(the growth of the cumulative filled quantity, execution id `<broker order id>:<filled qty>`), so the adapter's own
tracker, which derives the same id from the same totals, can never count one twice. Open orders the broker lists and
we do not know are adopted; ours it has never heard of are closed as `never_submitted`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from core.broker.base import Broker
from core.broker.order_tracker import Observation, OrderTracker
from core.types import BrokerOrder, OrderStatus, OrderUpdate, Position

log = structlog.get_logger(__name__)

NEVER_SUBMITTED = "never_submitted"


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    positions: dict[str, Position]
    open_orders: tuple[BrokerOrder, ...]  # every order open at the broker (all now followed for updates)
    adopted: tuple[BrokerOrder, ...]  # open at the broker, unknown locally
    closed_while_away: tuple[BrokerOrder, ...]  # open locally, final at the broker: the broker's final state
    never_submitted: tuple[BrokerOrder, ...]  # open locally, never seen by the broker: closed as never_submitted
    updates: tuple[OrderUpdate, ...]  # to apply to the store: new states and the fills they imply, oldest first

    @property
    def clean(self) -> bool:
        return not (self.adopted or self.closed_while_away or self.never_submitted)


@dataclass(frozen=True, slots=True)
class OrderSplit:
    matched: tuple[BrokerOrder, ...]  # broker's version of orders both sides list as open
    adopted: tuple[BrokerOrder, ...]
    local_only: tuple[BrokerOrder, ...]


def split_orders(local_open: Sequence[BrokerOrder], broker_open: Sequence[BrokerOrder]) -> OrderSplit:
    local_ids = {o.client_order_id for o in local_open}
    broker_ids = {o.client_order_id for o in broker_open}
    return OrderSplit(
        matched=tuple(o for o in broker_open if o.client_order_id in local_ids),
        adopted=tuple(o for o in broker_open if o.client_order_id not in local_ids),
        local_only=tuple(o for o in local_open if o.client_order_id not in broker_ids),
    )


def never_submitted(order: BrokerOrder, now: datetime) -> OrderUpdate:
    """Close an order the broker has never heard of (final, so it is never looked up again)."""
    closed = replace(order, status=OrderStatus.CANCELED, reason=NEVER_SUBMITTED, updated_at=now)
    return OrderUpdate(order=closed, ts=now)


def updates_between(known: Sequence[BrokerOrder], seen: Sequence[BrokerOrder], now: datetime) -> list[OrderUpdate]:
    """The updates (with derived fills) that take our `known` states to the broker's `seen` ones."""
    tracker = OrderTracker()
    for order in known:
        tracker.track(order)
    for order in seen:
        tracker.observe(Observation(order, order.updated_at or now))
    return tracker.drain()


async def reconcile_orders(broker: Broker, local_open: Sequence[BrokerOrder], now: datetime) -> ReconcileReport:
    """Start-up reconciliation of the store's non-final orders (`pending_submit` included) against the broker."""
    broker_open = await broker.get_open_orders()
    positions = await broker.get_positions()
    split = split_orders(local_open, broker_open)
    closed: list[BrokerOrder] = []
    gone: list[OrderUpdate] = []
    for order in split.local_only:
        found = await broker.get_order(order.client_order_id)
        if found is None:
            gone.append(never_submitted(order, now))
            log.warning("order_never_submitted", client_order_id=order.client_order_id, symbol=order.symbol)
            continue
        closed.append(found)
        log.info(
            "order_closed_while_away",
            client_order_id=found.client_order_id,
            status=found.status.value,
            filled_qty=str(found.filled_qty),
        )
    for order in split.adopted:
        log.warning("order_adopted", client_order_id=order.client_order_id, symbol=order.symbol)
    updates = [*updates_between(local_open, (*split.matched, *split.adopted, *closed), now), *gone]
    log.info(
        "startup_reconciled",
        positions=len(positions),
        open_orders=len(broker_open),
        adopted=len(split.adopted),
        closed_while_away=len(closed),
        never_submitted=len(gone),
        fills_recovered=sum(u.fill is not None for u in updates),
    )
    return ReconcileReport(
        positions=positions,
        open_orders=tuple(broker_open),
        adopted=split.adopted,
        closed_while_away=tuple(closed),
        never_submitted=tuple(u.order for u in gone),
        updates=tuple(updates),
    )
