"""An order whose submit reply is lost, then found filled by client id: the daemon records its fill, once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from agents.execution import ExecutionAgent
from core.broker.alpaca import AlpacaBroker
from core.broker.alpaca_options import AlpacaConnection
from core.broker.base import Broker
from core.bus import EventBus
from core.portfolio import PortfolioView
from core.store import StateStore
from core.types import BrokerOrder, OrderStatus
from tests.agents.test_execution import approved
from tests.core.broker.conftest import ServerClock
from tests.fakes.alpaca_server import FakeAlpacaServer, Fault


async def test_timed_out_submit_found_filled_records_its_fill(
    make_broker: Callable[..., AlpacaBroker],
    connection: AlpacaConnection,
    fake_alpaca: FakeAlpacaServer,
    clock: ServerClock,
    tmp_path: Path,
) -> None:
    fake_alpaca.inject(Fault.hang(), "POST", "/v2/orders")
    # The hung reply never comes, so the timeout only bounds how long the test waits.
    broker = make_broker(replace(connection, http_timeout_seconds=2.0))
    lookup = broker.get_order_by_client_id

    async def lookup_after_the_fill(client_order_id: str) -> BrokerOrder | None:
        fake_alpaca.set_now(fake_alpaca.now + timedelta(hours=10))  # it filled while the reply hung
        return await lookup(client_order_id)

    broker.get_order_by_client_id = lookup_after_the_fill  # type: ignore[method-assign]
    store = StateStore(tmp_path / "state.db")
    port: Broker = broker
    agent = ExecutionAgent(EventBus(), port, store, PortfolioView(port), clock)

    [placed] = await agent.submit([approved("AAPL", notional="1000")])
    with store.transaction():
        assert agent.apply_updates(await agent.fetch_updates()) == []  # later reports of it are not new fills

    [server_order] = fake_alpaca.orders_for(placed.order.client_order_id)
    assert server_order.status == "filled"
    [fill] = store.fills()
    assert (fill.qty, fill.price) == (server_order.filled_qty, server_order.filled_avg_price)
    assert store.get_order(fill.client_order_id).status is OrderStatus.FILLED  # type: ignore[union-attr]
    store.close()
