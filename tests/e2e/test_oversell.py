"""The over-sell timeline check itself: it must catch a breach at the moment it happens, not only at the end."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.order_ids import client_order_id, protective_stop_id
from core.types import OrderSide
from tests.e2e.oversell import oversell_breaches

BUY = client_order_id("zscore_mr", "AAPL", OrderSide.BUY, datetime(2017, 8, 1, tzinfo=UTC))
SELL = client_order_id("zscore_mr", "AAPL", OrderSide.SELL, datetime(2017, 8, 3, tzinfo=UTC))
STOP = protective_stop_id("AAPL", BUY, datetime(2017, 8, 2).date(), "g", 1)


def event(kind: str, coid: str, side: str, qty: str, status: str, filled: str = "0") -> dict[str, Any]:
    order = {"client_order_id": coid, "symbol": "AAPL", "side": side, "qty": qty, "filled_qty": filled,
             "status": status}  # fmt: skip
    data: dict[str, Any] = {"event": kind, "timestamp": "2017-08-02T13:30:00Z", "order": order}
    if kind == "fill":
        data["qty"] = qty
    return {"stream": "trade_updates", "data": data}


def test_a_stop_canceled_before_the_exit_is_sent_holds_the_invariant() -> None:
    events = [
        event("fill", BUY, "buy", "10", "filled", "10"),
        event("accepted", STOP, "sell", "10", "accepted"),
        event("canceled", STOP, "sell", "10", "canceled"),
        event("accepted", SELL, "sell", "10", "accepted"),
        event("fill", SELL, "sell", "10", "filled", "10"),
    ]
    assert oversell_breaches(events) == []


def test_an_exit_sent_while_the_stop_still_rests_is_a_breach_at_that_moment() -> None:
    events = [
        event("fill", BUY, "buy", "10", "filled", "10"),
        event("accepted", STOP, "sell", "10", "accepted"),
        event("accepted", SELL, "sell", "10", "accepted"),
        event("canceled", STOP, "sell", "10", "canceled"),
    ]
    (breach,) = oversell_breaches(events)
    assert (breach.event_index, breach.open_sell, breach.owned) == (2, 20, 10)


def test_orders_that_are_not_ours_are_ignored() -> None:
    events = [event("accepted", "manual-AAPL", "sell", "5", "accepted")]
    assert oversell_breaches(events) == []
