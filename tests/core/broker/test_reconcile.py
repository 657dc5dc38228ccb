"""Recovery over the `Broker` port: every non-final stored order, pending_submit included, settled by client id."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from agents.execution import ExecutionAgent
from core.broker.reconcile import NEVER_SUBMITTED, reconcile_orders
from core.broker.sim import SimBroker
from core.bus import EventBus
from core.clock import NyseCalendar, SimClock
from core.portfolio import OwnedLedger, PortfolioView
from core.store import StateStore
from core.types import BarFrame, BrokerOrder, OrderRequest, OrderSide, OrderStatus, Position

NOW = datetime(2016, 3, 3, 14, tzinfo=UTC)


def pending(coid: str, symbol: str = "AAPL", qty: str = "10") -> BrokerOrder:
    return BrokerOrder(
        client_order_id=coid,
        broker_order_id="",
        symbol=symbol,
        side=OrderSide.BUY,
        status=OrderStatus.PENDING_SUBMIT,
        qty=Decimal(qty),
        notional=None,
    )


class BookBroker:
    """Only what recovery asks of a broker: open orders, positions and the by-client-id lookup."""

    def __init__(self, *orders: BrokerOrder) -> None:
        self.book = {o.client_order_id: o for o in orders}
        self.followed: list[str] = []

    async def get_open_orders(self) -> list[BrokerOrder]:
        return [o for o in self.book.values() if o.status.is_open]

    async def get_positions(self) -> dict[str, Position]:
        return {}

    async def get_order(self, client_order_id: str) -> BrokerOrder | None:
        self.followed.append(client_order_id)
        return self.book.get(client_order_id)


def at_broker(coid: str, status: OrderStatus, filled: str = "0", price: str | None = None) -> BrokerOrder:
    return replace(
        pending(coid),
        broker_order_id=f"b-{coid}",
        status=status,
        filled_qty=Decimal(filled),
        filled_avg_price=Decimal(price) if price else None,
        updated_at=NOW,
    )


def recover(store: StateStore, broker: Any) -> tuple[ExecutionAgent, Any]:
    """What start-up does: reconcile, then apply states and fills in one transaction."""
    agent = ExecutionAgent(EventBus(), broker, store, PortfolioView(broker, OwnedLedger(store.fills())), SimClock(NOW))

    async def run() -> Any:
        report = await reconcile_orders(broker, store.open_orders(), NOW)
        with store.transaction():
            agent.apply_updates(report.updates)
        return report

    return agent, run


async def test_pending_found_filled_records_its_fill(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.upsert_order(pending("p-filled"), strategy="zs")
    broker = BookBroker(at_broker("p-filled", OrderStatus.FILLED, "10", "101.5"))
    _, run = recover(store, broker)

    report = await run()
    await run()  # recovery again (another restart) changes nothing

    assert [(o.client_order_id, o.status) for o in report.closed_while_away] == [("p-filled", OrderStatus.FILLED)]
    [fill] = store.fills()
    assert (fill.client_order_id, fill.qty, fill.price) == ("p-filled", Decimal(10), Decimal("101.5"))
    assert store.get_order("p-filled").status is OrderStatus.FILLED  # type: ignore[union-attr]
    store.close()


async def test_pending_never_seen_is_closed_as_never_submitted(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.upsert_order(pending("p-ghost"))
    _, run = recover(store, BookBroker())

    await run()

    order = store.get_order("p-ghost")
    assert order is not None
    assert (order.status, order.reason) == (OrderStatus.CANCELED, NEVER_SUBMITTED)
    assert store.open_orders() == []
    assert store.fills() == []
    store.close()


async def test_cancelled_at_the_broker_becomes_final(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.upsert_order(replace(at_broker("o-cxl", OrderStatus.ACCEPTED)))
    _, run = recover(store, BookBroker(at_broker("o-cxl", OrderStatus.CANCELED)))

    await run()

    assert store.get_order("o-cxl").status is OrderStatus.CANCELED  # type: ignore[union-attr]
    assert store.fills() == []
    store.close()


async def test_partial_fill_is_recorded_and_the_order_stays_followed(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.upsert_order(pending("p-part"))
    broker = BookBroker(at_broker("p-part", OrderStatus.PARTIALLY_FILLED, "4", "100"))
    _, run = recover(store, broker)

    await run()
    # The rest fills later; recovered again from cumulative totals, only the increment is new.
    broker.book["p-part"] = at_broker("p-part", OrderStatus.FILLED, "10", "101.2")
    await run()

    assert [(f.qty, f.price) for f in store.fills()] == [(Decimal(4), Decimal(100)), (Decimal(6), Decimal(102))]
    assert store.get_order("p-part").status is OrderStatus.FILLED  # type: ignore[union-attr]
    store.close()


async def test_pending_order_filled_by_the_sim_broker_is_recovered(
    small_history: BarFrame, calendar: NyseCalendar, tmp_path: Path
) -> None:
    clock = SimClock(calendar.session_close(date(2016, 3, 1)))
    broker = SimBroker(small_history, clock, Decimal(100_000), Decimal(0))
    store = StateStore(tmp_path / "state.db")
    store.upsert_order(pending("sim-crash", qty="3"))  # written ahead; the process died after the submit
    await broker.submit_order(OrderRequest(client_order_id="sim-crash", symbol="AAPL", side=OrderSide.BUY,
                                           qty=Decimal(3), notional=None))  # fmt: skip
    clock.set(calendar.session_close(date(2016, 3, 2)))
    lost = await broker.poll_updates()  # the fill happened while no daemon listened

    _, run = recover(store, broker)
    await run()

    [fill] = store.fills()
    assert (fill.qty, fill.price) == (lost[0].fill.qty, lost[0].fill.price)  # type: ignore[union-attr]
    positions = await broker.get_positions()
    assert positions["AAPL"].qty == sum(f.qty for f in store.fills())
    store.close()


async def test_second_net_adopts_only_our_closed_orders_the_store_lacks(tmp_path: Path) -> None:
    from core.broker.reconcile import ClosedNet  # noqa: PLC0415
    from core.order_ids import client_order_id, is_our_client_order_id  # noqa: PLC0415

    store = StateStore(tmp_path / "state.db")
    ours = client_order_id("zscore_mr", "AAPL", OrderSide.BUY, datetime(2016, 3, 2, 5, tzinfo=UTC))
    known = client_order_id("zscore_mr", "AAPL", OrderSide.BUY, datetime(2016, 3, 1, 5, tzinfo=UTC))
    store.upsert_order(at_broker(known, OrderStatus.FILLED, "10", "100"), strategy="zscore_mr")
    closed = [
        at_broker(ours, OrderStatus.FILLED, "10", "101"),
        at_broker(known, OrderStatus.FILLED, "10", "100"),
        at_broker("manual-1", OrderStatus.FILLED, "5", "99"),
    ]
    asked: list[datetime | None] = []

    class ClosedBook(BookBroker):
        async def list_closed_orders(self, after: datetime | None) -> list[BrokerOrder]:
            asked.append(after)
            return closed

    broker = ClosedBook(*closed)
    net = ClosedNet(
        last_fill_at=None, is_known=lambda c: store.get_order(c) is not None, is_ours=is_our_client_order_id
    )
    report = await reconcile_orders(broker, store.open_orders(), NOW, net)
    assert asked == [None]
    assert [o.client_order_id for o in report.adopted_closed] == [ours]
    assert [(u.fill.client_order_id, u.fill.qty) for u in report.updates if u.fill] == [(ours, Decimal(10))]


async def test_open_orders_are_adopted_only_when_ours(tmp_path: Path) -> None:
    """An open order the user placed by hand is the user's: adopting it would record its fill as ours."""
    from core.broker.reconcile import ClosedNet  # noqa: PLC0415
    from core.order_ids import client_order_id, is_our_client_order_id  # noqa: PLC0415

    store = StateStore(tmp_path / "state.db")
    ours = client_order_id("zscore_mr", "MSFT", OrderSide.BUY, datetime(2016, 3, 2, 5, tzinfo=UTC))

    class NoClosed(BookBroker):
        async def list_closed_orders(self, after: datetime | None) -> list[BrokerOrder]:
            return []

    broker = NoClosed(at_broker(ours, OrderStatus.NEW), at_broker("manual-open-1", OrderStatus.NEW))
    net = ClosedNet(
        last_fill_at=None, is_known=lambda c: store.get_order(c) is not None, is_ours=is_our_client_order_id
    )
    report = await reconcile_orders(broker, store.open_orders(), NOW, net)
    assert [o.client_order_id for o in report.adopted] == [ours]
    assert {o.client_order_id for o in report.open_orders} == {ours, "manual-open-1"}  # still listed as open
    store.close()
