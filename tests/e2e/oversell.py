"""The over-sell invariant, checked at every moment of the fake broker's history, not only at the end of a run.

The fake Alpaca server appends every trade event (accepted, fill, canceled, expired) to `server.events`, in the order
they happened. Replaying them gives, after each event, what the daemon owned in each symbol (its own fills) and how
much its open sell orders (protective stops included) could still sell. The invariant: the second never exceeds the
first. The broker itself only refuses sells above the *account's* position, which also holds the user's own shares,
so it would not stop the daemon from selling those; this check does.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core.order_ids import is_our_client_order_id

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Breach:
    event_index: int
    timestamp: str
    symbol: str
    open_sell: Decimal
    owned: Decimal


def _qty(value: Any) -> Decimal:
    return Decimal(value) if value not in (None, "") else _ZERO


def oversell_breaches(events: list[dict[str, Any]]) -> list[Breach]:
    """Every moment at which the daemon's open sells of a symbol exceeded what it owned (empty: the invariant held)."""
    owned: dict[str, Decimal] = defaultdict(Decimal)
    open_sell: dict[str, Decimal] = {}  # client order id → quantity it may still sell
    symbol_of: dict[str, str] = {}
    breaches: list[Breach] = []
    for index, message in enumerate(events):
        data = message["data"]
        order = data["order"]
        coid = order["client_order_id"]
        if not is_our_client_order_id(coid):
            continue
        symbol, event = order["symbol"], data["event"]
        symbol_of[coid] = symbol
        if event == "fill" or event == "partial_fill":
            qty = _qty(data.get("qty"))
            owned[symbol] += qty if order["side"] == "buy" else -qty
        if order["side"] == "sell":
            if order["status"] in ("new", "accepted", "pending_new", "partially_filled"):
                open_sell[coid] = _qty(order["qty"]) - _qty(order["filled_qty"])
            else:
                open_sell.pop(coid, None)
        selling = sum((q for c, q in open_sell.items() if symbol_of[c] == symbol), _ZERO)
        if selling > owned[symbol] or owned[symbol] < 0:
            breaches.append(Breach(index, data["timestamp"], symbol, selling, owned[symbol]))
    return breaches
