"""Start-up reconciliation: what the broker says against what our store remembers, before the first iteration.

The broker is the source of truth for orders and positions. Its open orders that we do not know are adopted;
our open orders that it no longer lists are resolved to their final broker state, or marked with a reason when
the broker has never heard of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.types import BrokerOrder, Position

UNKNOWN_TO_BROKER = "unknown_to_broker"


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    positions: dict[str, Position]
    open_orders: tuple[BrokerOrder, ...]  # every order open at the broker (all now tracked for updates)
    adopted: tuple[BrokerOrder, ...]  # open at the broker, unknown locally
    closed_while_away: tuple[BrokerOrder, ...]  # open locally, final at the broker: the broker's final state
    unknown_to_broker: tuple[tuple[BrokerOrder, str], ...]  # open locally, never seen by the broker: (order, reason)

    @property
    def clean(self) -> bool:
        return not (self.adopted or self.closed_while_away or self.unknown_to_broker)


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
