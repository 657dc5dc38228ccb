"""Recovery: what the broker says against what our store remembers, over the `Broker` port (any adapter).

The broker is the source of truth for orders and positions. Every order the store holds as not final, including
the ones written ahead of a broker call that never got their answer stored (`pending_submit`), is looked up by its
client order id whatever its broker state. What changed while we were away becomes `OrderUpdate`s, fills included,
for the caller to apply in one store transaction. Fills are derived the way `OrderTracker` derives them from REST
(the growth of the cumulative filled quantity, execution id `<broker order id>:<filled qty>`), so the adapter's own
tracker, which derives the same id from the same totals, can never count one twice. Open orders the broker lists and
we do not know are adopted; ours it has never heard of are closed as `never_submitted`.

Second net: orders closed at the broker since shortly before the last recorded fill that the store has no row for
(a lost write-ahead row, a restored older state) are adopted with their fills, but only those whose client order
id this daemon provably made (`is_ours`): a manual order in the same account is never counted as ours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from core.broker.base import Broker
from core.broker.order_tracker import Observation, OrderTracker
from core.failpoints import failpoint
from core.reasons import CancelReason
from core.types import BrokerOrder, OrderStatus, OrderUpdate, Position

log = structlog.get_logger(__name__)

NEVER_SUBMITTED = CancelReason.NEVER_SUBMITTED
# How far before the last recorded fill the second net looks: Alpaca filters `after` on submission time, and an
# order submitted before that fill (same batch, say) may have closed after it.
CLOSED_LOOKBACK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class ClosedNet:
    """What the second net needs from the caller: where to start, and which ids are known / ours."""

    last_fill_at: datetime | None  # None: no fill recorded, so every closed order at the broker is looked at
    is_known: Callable[[str], bool]  # the store has a row under this client order id
    is_ours: Callable[[str], bool]  # this daemon made the id (checked without the store)


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    positions: dict[str, Position]
    open_orders: tuple[BrokerOrder, ...]  # every order open at the broker (all now followed for updates)
    adopted: tuple[BrokerOrder, ...]  # open at the broker, unknown locally
    adopted_closed: tuple[BrokerOrder, ...]  # ours, final at the broker, unknown locally (the second net)
    closed_while_away: tuple[BrokerOrder, ...]  # open locally, final at the broker: the broker's final state
    never_submitted: tuple[BrokerOrder, ...]  # open locally, never seen by the broker: closed as never_submitted
    updates: tuple[OrderUpdate, ...]  # to apply to the store: new states and the fills they imply, oldest first

    @property
    def clean(self) -> bool:
        return not (self.adopted or self.adopted_closed or self.closed_while_away or self.never_submitted)


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


async def adopt_closed(broker: Broker, net: ClosedNet, skip: set[str]) -> list[BrokerOrder]:
    """Ours, closed at the broker, that neither the store nor `skip` (already handled) knows."""
    after = None if net.last_fill_at is None else net.last_fill_at - CLOSED_LOOKBACK
    adopted: list[BrokerOrder] = []
    foreign = 0
    for order in await broker.list_closed_orders(after):
        coid = order.client_order_id
        if coid in skip or net.is_known(coid):
            continue
        if not net.is_ours(coid):
            foreign += 1  # a manual order, or another program's: not ours to count
            continue
        adopted.append(order)
        log.warning(
            "order_adopted_closed",
            client_order_id=coid,
            symbol=order.symbol,
            status=order.status.value,
            filled_qty=str(order.filled_qty),
        )
    if foreign:
        log.info("closed_orders_not_ours", count=foreign)
    return adopted


async def reconcile_orders(
    broker: Broker, local_open: Sequence[BrokerOrder], now: datetime, closed_net: ClosedNet | None = None
) -> ReconcileReport:
    """Start-up reconciliation of the store's non-final orders (`pending_submit` included) against the broker;
    with `closed_net`, then the second net over orders closed at the broker."""
    broker_open = await broker.get_open_orders()
    positions = await broker.get_positions()
    split = split_orders(local_open, broker_open)
    if closed_net is not None:  # open orders of the user's own (or another program's) are not ours to adopt
        foreign_open = [o for o in split.adopted if not closed_net.is_ours(o.client_order_id)]
        if foreign_open:
            log.info("open_orders_not_ours", count=len(foreign_open))
            split = replace(split, adopted=tuple(o for o in split.adopted if closed_net.is_ours(o.client_order_id)))
    closed: list[BrokerOrder] = []
    gone: list[OrderUpdate] = []
    for order in split.local_only:
        found = await broker.get_order(order.client_order_id)
        failpoint("recovery.after_lookup")
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
    handled = {o.client_order_id for o in (*local_open, *split.adopted)}
    adopted_closed = await adopt_closed(broker, closed_net, handled) if closed_net is not None else []
    seen = (*split.matched, *split.adopted, *closed, *adopted_closed)
    updates = [*updates_between(local_open, seen, now), *gone]
    log.info(
        "startup_reconciled",
        positions=len(positions),
        open_orders=len(broker_open),
        adopted=len(split.adopted),
        adopted_closed=len(adopted_closed),
        closed_while_away=len(closed),
        never_submitted=len(gone),
        fills_recovered=sum(u.fill is not None for u in updates),
    )
    return ReconcileReport(
        positions=positions,
        open_orders=tuple(broker_open),
        adopted=split.adopted,
        adopted_closed=tuple(adopted_closed),
        closed_while_away=tuple(closed),
        never_submitted=tuple(u.order for u in gone),
        updates=tuple(updates),
    )
