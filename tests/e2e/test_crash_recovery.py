"""Crashes between the broker call and the store commit lose nothing: write-ahead rows plus recovery by client id.

In-process stand-ins for kill -9: the broker call succeeds, then the process "dies" (an exception no handler catches,
no final sync, no closing transaction). A fresh daemon on the same DATA_DIR, against the same fake server, after
the orders filled, must hold every server fill exactly once and own what the server says it holds.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.clock import NyseCalendar
from core.order_ids import is_our_client_order_id, is_protective_stop_id
from core.store import StateStore
from core.types import OrderRequest, OrderSide, OrderStatus
from tests.e2e.test_paper_daemon import _paper_app
from tests.fakes.alpaca_server import FakeAlpacaServer
from tests.fakes.alpaca_tape import MarketTape, largest_symbols, load_tape
from tradingd.app import App, run_app

SYMBOLS = tuple(largest_symbols(29))


class SimulatedCrash(BaseException):
    """Not an Exception: nothing in the daemon catches it, as nothing runs after a SIGKILL."""


@pytest.fixture(scope="module")
def tape() -> MarketTape:
    return load_tape(SYMBOLS)


def _crash_after_first_submit(app: App) -> None:
    real_submit = app.broker.submit_order

    async def submit_then_die(request: OrderRequest) -> Any:
        await real_submit(request)  # the broker has the order ...
        raise SimulatedCrash  # ... and the process dies before storing its answer

    async def no_final_sync() -> None:  # a killed process syncs nothing on the way out
        return None

    app.broker.submit_order = submit_then_die  # type: ignore[method-assign]
    app.orchestrator._final_sync = no_final_sync  # type: ignore[method-assign]


def _owned_from_fills(store: StateStore) -> dict[str, Decimal]:
    owned: dict[str, Decimal] = defaultdict(Decimal)
    for fill in store.fills():
        owned[fill.symbol] += fill.qty if fill.side is OrderSide.BUY else -fill.qty
    return {symbol: qty for symbol, qty in owned.items() if qty}


def test_crash_between_submit_and_commit_loses_no_fill(tape: MarketTape, tmp_path: Path) -> None:
    calendar = NyseCalendar()
    sessions = calendar.sessions_in_range(date(2017, 8, 1), date(2017, 9, 15))
    server = FakeAlpacaServer(tape, now=calendar.session_open(sessions[0]) - timedelta(hours=1))
    crashes = 0
    with server:
        for session in sessions:
            app = _paper_app(server, tmp_path / "paper", [session])
            _crash_after_first_submit(app)
            try:
                asyncio.run(run_app(app))
            except SimulatedCrash:
                crashes += 1
                pending = {o.client_order_id for o in app.store.pending_orders()}
                # The whole batch was committed before the first broker call; the broker got one of them.
                assert pending, "the orders were committed before the broker call"
                assert sum(1 for coid in pending if server.orders_for(coid)) == 1
            app.close()
        server.set_now(calendar.session_close(sessions[-1]))  # everything submitted has filled by now
        app = _paper_app(server, tmp_path / "paper", [])
        asyncio.run(run_app(app))  # start-up recovery only
        fills = app.store.fills()
        orders = {r.order.client_order_id: r.order for r in app.store.order_records()}
        owned = _owned_from_fills(app.store)
        app.close()
        server_filled = {o.client_order_id: o for o in server.orders.values() if o.status == "filled"}
        server_held = {symbol: p.qty for symbol, p in server.positions.items() if p.qty}

    assert crashes >= 5, "the period must crash several times"
    assert server_filled
    assert Counter(f.client_order_id for f in fills) == Counter(server_filled.keys())  # every fill, exactly once
    for coid, wire in server_filled.items():
        assert sum(f.qty for f in fills if f.client_order_id == coid) == wire.filled_qty
        assert orders[coid].status is OrderStatus.FILLED
    # Only protective stops may still be open: they rest at the broker by design (GTC whole shares).
    assert not [o for o in orders.values() if o.status.is_open and not is_protective_stop_id(o.client_order_id)]
    # The rest of each crashed batch never reached the broker: closed, not left pending, never counted as filled.
    never = [o for o in orders.values() if o.reason == "never_submitted"]
    assert never
    assert all(o.status is OrderStatus.CANCELED and o.filled_qty == 0 for o in never)
    assert owned == server_held


def test_lost_row_is_adopted_closed_and_a_manual_order_is_not(tape: MarketTape, tmp_path: Path) -> None:
    """The second net: an order of ours at the broker that the store has no row for (its write-ahead row lost) and
    that filled while no daemon ran is adopted with its fill; a manual order in the same account is left alone."""
    calendar = NyseCalendar()
    sessions = calendar.sessions_in_range(date(2017, 8, 1), date(2017, 9, 15))
    server = FakeAlpacaServer(tape, now=calendar.session_open(sessions[0]) - timedelta(hours=1))
    with server:
        lost: str | None = None
        for session in sessions:
            app = _paper_app(server, tmp_path / "paper", [session])
            _crash_after_first_submit(app)
            try:
                asyncio.run(run_app(app))
            except SimulatedCrash:
                sent = [o.client_order_id for o in app.store.pending_orders() if server.orders_for(o.client_order_id)]
                assert len(sent) == 1
                lost = sent[0]
                assert app.store.discard_pending(lost)  # the row is gone: the by-client-id lookup cannot find it
                app.close()
                break
            app.close()
        assert lost is not None, "the period must submit an order"
        assert is_our_client_order_id(lost)
        manual = server.place_order(
            {"symbol": SYMBOLS[0], "qty": "1", "side": "buy", "type": "market", "time_in_force": "day",
             "client_order_id": "my-manual-order-1"}
        )  # fmt: skip
        server.set_now(calendar.session_close(session))  # both fill while no daemon runs
        assert {o.status for o in server.orders.values() if o.client_order_id in (lost, manual["client_order_id"])} == {
            "filled"
        }
        app = _paper_app(server, tmp_path / "paper", [])
        asyncio.run(run_app(app))  # start-up recovery only
        fills = app.store.fills()
        adopted = app.store.get_order(lost)
        manual_row = app.store.get_order("my-manual-order-1")
        app.close()

    assert adopted is not None
    assert adopted.status is OrderStatus.FILLED
    assert [f.qty for f in fills if f.client_order_id == lost] == [server.orders_for(lost)[0].filled_qty]
    assert manual_row is None
    assert not [f for f in fills if f.client_order_id == "my-manual-order-1"]
