from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from core.order_ids import client_order_id, protective_stop_id
from core.portfolio import OwnedLedger, PortfolioView
from core.types import Asset, Fill, OrderRequest, OrderSide, OrderType, TimeInForce
from tests.fakes.clock import FakeClock
from tests.fakes.stop_broker import StopBroker

D = Decimal
T0 = datetime(2017, 8, 1, 13, 30, tzinfo=UTC)


def buy(coid: str, qty: str, at: datetime) -> Fill:
    return Fill(f"x-{coid}", coid, "AAPL", OrderSide.BUY, D(qty), D(100), at)


def test_the_ledger_knows_which_entry_opened_the_holding_and_which_came_last() -> None:
    first, added, again = (f"td-entry-{n}" for n in (1, 2, 3))
    ledger = OwnedLedger([buy(first, "10", T0), buy(added, "2", T0 + timedelta(days=1))])
    assert ledger.qty("AAPL") == D(12)
    opened = ledger.opened_by("AAPL")
    assert opened is not None
    assert opened.client_order_id == first
    assert ledger.latest_entry("AAPL") == added

    ledger.apply(Fill("x-s", "td-exit", "AAPL", OrderSide.SELL, D(12), D(101), T0 + timedelta(days=2)))
    ledger.apply(buy(again, "5", T0 + timedelta(days=3)))
    opened = ledger.opened_by("AAPL")
    assert opened is not None
    assert opened.client_order_id == again
    assert ledger.latest_entry("AAPL") == again
    assert ledger.opened_by("MSFT") is None
    assert ledger.latest_entry("MSFT") is None


async def test_a_resting_protective_stop_is_not_an_open_order_that_blocks_a_signal() -> None:
    clock = FakeClock(T0)
    broker = StopBroker(clock, prices={"AAPL": D(100)}, assets=[Asset("AAPL", tradable=True, fractionable=True)])
    entry = client_order_id("zscore_mr", "AAPL", OrderSide.BUY, T0)
    await broker.submit_order(OrderRequest(entry, "AAPL", OrderSide.BUY, qty=D(10)))
    fills = [u.fill for u in await broker.poll_updates() if u.fill is not None]
    stop = protective_stop_id("AAPL", entry, date(2017, 8, 1), "g", 1)
    await broker.submit_order(
        OrderRequest(
            stop, "AAPL", OrderSide.SELL, qty=D(10), time_in_force=TimeInForce.GTC, order_type=OrderType.STOP,
            stop_price=D(95),
        )
    )  # fmt: skip
    view = PortfolioView(broker, OwnedLedger(fills))
    await view.refresh()
    assert not view.has_open_order("AAPL")
    assert not view.has_open_order("AAPL", OrderSide.SELL)
    assert [o.client_order_id for o in view.snapshot.open_orders] == [stop]  # still listed for the stop planner
