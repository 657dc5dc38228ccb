"""Round trips from the store's fills and orders: FIFO lots per symbol, one `RoundTrip` per (entry order, exit order)
pair matched.

Buys open lots (one per buy fill, oldest first); a sell consumes the oldest lots first, so scaling in, partial exits
and several fills of one order all match lot by lot. The matched pieces of one (entry order, exit order) pair add up
into one round trip: its prices are qty-weighted, its P&L is proceeds minus cost of the matched quantity, exactly
(Decimal), so the ledger's total is the realised P&L to the cent. What is still held is left out (`open_lots`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from analytics.model import ExitReason, RoundTrip
from core.exit_reasons import exit_reason_of
from core.types import Fill, OrderSide, Tier

_ZERO = Decimal(0)
_SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class OrderTags:
    """What the ledger needs of a stored order: its tag (strategy), tier and, for an exit, the reason stored with it
    (`None` on rows written before schema 5: the tag alone decides)."""

    tag: str
    tier: Tier | None
    exit_reason: ExitReason | None = None


@dataclass(frozen=True, slots=True)
class OpenLot:
    symbol: str
    qty: Decimal
    price: Decimal
    entry_order_id: str
    entry_time: datetime


@dataclass(frozen=True, slots=True)
class Ledger:
    trips: tuple[RoundTrip, ...]  # by exit time
    open_lots: tuple[OpenLot, ...]
    unmatched_sell_qty: Decimal  # sold beyond what the fills bought (a position older than the store): left out


@dataclass(slots=True)
class _Lot:
    order_id: str
    qty: Decimal
    price: Decimal
    ts: datetime


@dataclass(slots=True)
class _Pair:
    """The matched pieces of one (entry order, exit order) pair so far."""

    symbol: str
    qty: Decimal
    cost: Decimal
    proceeds: Decimal
    entry_time: datetime
    exit_time: datetime


def build_ledger(fills: Iterable[Fill], orders: Mapping[str, OrderTags]) -> Ledger:
    """Match `fills` (in time order, as the store reads them) FIFO per symbol; `orders` by client order id."""
    lots: dict[str, deque[_Lot]] = {}
    pairs: dict[tuple[str, str], _Pair] = {}
    unmatched = _ZERO
    for fill in fills:
        book = lots.setdefault(fill.symbol, deque())
        if fill.side is OrderSide.BUY:
            book.append(_Lot(fill.client_order_id, fill.qty, fill.price, fill.ts))
            continue
        remaining = fill.qty
        while remaining > 0 and book:
            lot = book[0]
            take = min(lot.qty, remaining)
            key = (lot.order_id, fill.client_order_id)
            pair = pairs.get(key)
            if pair is None:
                pairs[key] = _Pair(fill.symbol, take, take * lot.price, take * fill.price, lot.ts, fill.ts)
            else:
                pair.qty += take
                pair.cost += take * lot.price
                pair.proceeds += take * fill.price
                pair.entry_time = min(pair.entry_time, lot.ts)
                pair.exit_time = max(pair.exit_time, fill.ts)
            lot.qty -= take
            remaining -= take
            if lot.qty == 0:
                book.popleft()
        unmatched += remaining
    trips = [_round_trip(entry_id, exit_id, pair, orders) for (entry_id, exit_id), pair in pairs.items()]
    trips.sort(key=lambda trip: trip.exit_time)  # stable: FIFO order within one exit time
    open_lots = tuple(
        OpenLot(symbol, lot.qty, lot.price, lot.order_id, lot.ts) for symbol, book in lots.items() for lot in book
    )
    return Ledger(trips=tuple(trips), open_lots=open_lots, unmatched_sell_qty=unmatched)


def _round_trip(entry_id: str, exit_id: str, pair: _Pair, orders: Mapping[str, OrderTags]) -> RoundTrip:
    entry, exit_ = orders.get(entry_id), orders.get(exit_id)
    pnl = pair.proceeds - pair.cost
    return RoundTrip(
        symbol=pair.symbol,
        tier=None if entry is None else entry.tier,
        entry_time=pair.entry_time,
        exit_time=pair.exit_time,
        qty=pair.qty,
        entry_price=pair.cost / pair.qty,
        exit_price=pair.proceeds / pair.qty,
        pnl=pnl,
        pnl_pct=float(pnl / pair.cost * 100) if pair.cost else 0.0,
        days_held=(pair.exit_time - pair.entry_time).total_seconds() / _SECONDS_PER_DAY,
        exit_reason=_exit_reason(exit_),
        entry_order_id=entry_id,
        exit_order_id=exit_id,
    )


def _exit_reason(order: OrderTags | None) -> ExitReason:
    if order is None:
        return exit_reason_of(None)
    return order.exit_reason if order.exit_reason is not None else exit_reason_of(order.tag)
