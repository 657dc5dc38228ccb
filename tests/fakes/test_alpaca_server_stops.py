"""Stop and trailing-stop orders in the fake Alpaca server, driven through the real alpaca-py TradingClient."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.models import Order
from alpaca.trading.requests import StopOrderRequest, TrailingStopOrderRequest

from core.timeconv import NEW_YORK
from tests.fakes.alpaca_server import FakeAlpacaServer, Fault
from tests.fakes.alpaca_tape import MarketTape, load_tape

ORDERS = "/v2/orders"
DAY = date(2018, 1, 10)
# The CSV's AAPL bar for 2018-01-10 closes above its open, so its path is open → low → high → close:
# 09:30 173.16, 11:40 173.00, 13:50 174.30, 16:00 174.29.
OPEN = Decimal("173.16")


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=NEW_YORK)


@pytest.fixture(scope="module")
def tape() -> MarketTape:
    return load_tape(["AAPL", "MSFT"])


@pytest.fixture
def server(tape: MarketTape) -> Iterator[FakeAlpacaServer]:
    fake = FakeAlpacaServer(tape, now=tape.session_start(DAY))
    fake.seed_position("AAPL", Decimal(10), Decimal(170))
    with fake:
        yield fake


@pytest.fixture
def client(server: FakeAlpacaServer) -> TradingClient:
    trading = TradingClient(server.key, server.secret, paper=True, url_override=server.url)
    trading._retry = 0  # the SDK would resubmit on its own; these tests look at single requests
    # A hung reply never comes, so the timeout only bounds the wait in the timeout test; healthy calls never reach it.
    trading._session.request = functools.partial(trading._session.request, timeout=2.0)  # type: ignore[method-assign]
    return trading


def stop(client: TradingClient, price: str, tif: TimeInForce = TimeInForce.DAY, qty: str = "10") -> Order:
    request = StopOrderRequest(
        symbol="AAPL", qty=float(qty), side=OrderSide.SELL, time_in_force=tif, stop_price=float(price)
    )
    order = client.submit_order(request)
    assert isinstance(order, Order)
    return order


def fetch(client: TradingClient, order: Order) -> Order:
    fetched = client.get_order_by_id(order.id)
    assert isinstance(fetched, Order)
    return fetched


def events(server: FakeAlpacaServer, order: Order) -> list[str]:
    return [e["data"]["event"] for e in server.events if e["data"]["order"]["id"] == str(order.id)]


def snapshot_price(server: FakeAlpacaServer) -> float:
    reply = requests.get(
        f"{server.url}/v2/stocks/snapshots",
        params={"symbols": "AAPL"},
        headers={"APCA-API-KEY-ID": server.key, "APCA-API-SECRET-KEY": server.secret},
        timeout=10,
    )
    return float(reply.json()["AAPL"]["latestTrade"]["p"])


def test_the_stop_wire_carries_type_and_price(client: TradingClient, server: FakeAlpacaServer) -> None:
    order = stop(client, "170.50")

    body = server.requests("POST", ORDERS)[-1].body
    assert (body["type"], body["stop_price"]) == ("stop", 170.5)
    assert (order.type, order.order_type, order.stop_price, order.status) == ("stop", "stop", "170.5", "accepted")


def test_a_stop_above_the_open_fills_at_the_open(client: TradingClient, server: FakeAlpacaServer) -> None:
    order = stop(client, "174.00")  # placed at midnight; the day opens at 173.16, through the stop

    server.set_now(at(DAY, 9, 29))
    assert fetch(client, order).status == "accepted"
    server.set_now(at(DAY, 9, 30))

    filled = fetch(client, order)
    assert (filled.status, filled.filled_avg_price, filled.filled_qty) == ("filled", str(OPEN), "10")
    assert filled.filled_at == at(DAY, 9, 30)
    assert "AAPL" not in server.positions


def test_a_stop_the_low_touches_fills_at_the_stop_when_the_path_reaches_it(
    client: TradingClient, server: FakeAlpacaServer
) -> None:
    order = stop(client, "173.10")
    # The first leg falls 0.16 from the open to the low over 130 minutes: 173.10 comes 0.06 / 0.16 of the way.
    reached = at(DAY, 9, 30) + timedelta(minutes=130 * 0.06 / 0.16)

    server.set_now(reached - timedelta(minutes=1))
    assert fetch(client, order).status == "accepted"
    assert snapshot_price(server) > 173.10
    server.set_now(reached)

    filled = fetch(client, order)
    assert (filled.status, filled.filled_avg_price, filled.filled_at) == ("filled", "173.1", reached)
    assert snapshot_price(server) == pytest.approx(173.10)
    assert events(server, order) == ["accepted", "fill"]


def test_a_stop_below_the_low_stays_open_and_a_gtc_one_survives_the_close(
    client: TradingClient, server: FakeAlpacaServer
) -> None:
    order = stop(client, "172.99", TimeInForce.GTC)

    server.set_now(at(DAY, 23))

    assert fetch(client, order).status == "accepted"
    assert events(server, order) == ["accepted"]


def test_a_stop_placed_after_the_low_does_not_see_it_and_a_day_stop_expires_at_the_close(
    client: TradingClient, server: FakeAlpacaServer
) -> None:
    server.set_now(at(DAY, 12))  # 20 minutes into the rise from the 173.00 low to the 174.30 high
    assert snapshot_price(server) == pytest.approx(173.0 + 1.3 * 20 / 130)
    order = stop(client, "173.10")  # below today's price now, above the low that already happened

    server.set_now(at(DAY, 15, 59))
    assert fetch(client, order).status == "accepted"
    server.set_now(at(DAY, 17))

    expired = fetch(client, order)
    assert (expired.status, expired.expired_at, expired.filled_at) == ("expired", at(DAY, 16), None)
    assert events(server, order) == ["accepted", "expired"]
    assert server.positions["AAPL"].qty == Decimal(10)


def test_a_trailing_stop_follows_the_high_and_fills_the_trail_below_it(
    client: TradingClient, server: FakeAlpacaServer
) -> None:
    # The CSV's AAPL bars: 2018-01-12 closes at 177.09; 2018-01-16 (after the holiday) opens 177.9, high 179.39,
    # low 176.14, closes 176.19, below its open: the path is open → high → low → close.
    day = date(2018, 1, 16)
    server.set_now(at(day, 8))
    request = TrailingStopOrderRequest(
        symbol="AAPL", qty=10, side=OrderSide.SELL, time_in_force=TimeInForce.DAY, trail_percent=1
    )
    order = client.submit_order(request)
    assert isinstance(order, Order)
    assert (order.type, order.hwm, order.trail_percent) == ("trailing_stop", "177.09", "1")

    server.set_now(at(day, 10, 35))  # halfway up the first leg: the mark is the price
    halfway = fetch(client, order)
    assert float(halfway.hwm or 0) == pytest.approx(177.9 + (179.39 - 177.9) / 2)
    assert float(halfway.hwm or 0) == pytest.approx(snapshot_price(server))

    server.set_now(at(day, 16))

    filled = fetch(client, order)
    level = round(179.39 * 0.99, 4)  # the high less 1 %: 177.5961, crossed on the way down to 176.14
    assert (filled.status, filled.hwm, filled.filled_avg_price) == ("filled", "179.39", str(level))
    down = (179.39 - level) / (179.39 - 176.14) * 130
    assert filled.filled_at is not None
    assert abs(filled.filled_at - (at(day, 11, 40) + timedelta(minutes=down))) < timedelta(seconds=1)


def test_cancel_an_open_stop_and_refuse_to_cancel_a_filled_one(client: TradingClient, server: FakeAlpacaServer) -> None:
    resting = stop(client, "160.00", TimeInForce.GTC, qty="5")
    gapped = stop(client, "174.00", qty="5")

    client.cancel_order_by_id(resting.id)
    server.set_now(at(DAY, 10))

    assert (fetch(client, resting).status, events(server, resting)) == ("canceled", ["accepted", "canceled"])
    assert fetch(client, gapped).status == "filled"
    with pytest.raises(APIError) as refused:
        client.cancel_order_by_id(gapped.id)
    assert refused.value.status_code == 422


def test_a_stop_placement_that_times_out_after_acceptance_exists_at_the_server(
    client: TradingClient, server: FakeAlpacaServer
) -> None:
    server.inject(Fault.hang(), "POST", ORDERS)

    with pytest.raises(requests.Timeout):
        stop(client, "170.00")

    (landed,) = server.orders.values()
    assert (landed.type, landed.stop_price, landed.status) == ("stop", Decimal("170.00"), "accepted")


def test_a_5xx_on_cancel_leaves_the_stop_open_until_a_retry(client: TradingClient, server: FakeAlpacaServer) -> None:
    order = stop(client, "170.00")
    path = f"{ORDERS}/{order.id}"
    server.inject(Fault.http(500), "DELETE", path)

    with pytest.raises(APIError) as failed:
        client.cancel_order_by_id(order.id)
    assert failed.value.status_code == 500
    assert fetch(client, order).status == "accepted"

    client.cancel_order_by_id(order.id)
    assert fetch(client, order).status == "canceled"


def test_a_fault_on_a_path_prefix_hits_an_order_whose_id_the_test_does_not_know(
    client: TradingClient, server: FakeAlpacaServer
) -> None:
    server.inject(Fault.http(503), "DELETE", f"{ORDERS}/*")
    order = stop(client, "170.00")  # POST /v2/orders is not under the prefix "/v2/orders/"

    with pytest.raises(APIError) as failed:
        client.cancel_order_by_id(order.id)
    assert failed.value.status_code == 503
    client.cancel_order_by_id(order.id)  # the fault was used up
    assert fetch(client, order).status == "canceled"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "stop", "qty": "1"}, "stop_price is required"),
        ({"type": "stop", "qty": "1", "stop_price": "0"}, "stop_price must be > 0"),
        ({"type": "stop", "qty": "1", "stop_price": "170.005"}, "sub-penny increment"),
        ({"type": "stop", "qty": "1.5", "stop_price": "170", "time_in_force": "gtc"}, "must be DAY orders"),
        ({"type": "trailing_stop", "qty": "1.5", "trail_percent": "1"}, "not supported for trailing_stop"),
        ({"type": "trailing_stop", "qty": "1"}, "exactly one of trail_price or trail_percent"),
        ({"type": "trailing_stop", "qty": "1", "trail_price": "1", "trail_percent": "1"}, "exactly one of"),
        ({"type": "stop", "qty": "1", "stop_price": "170", "time_in_force": "ioc"}, "not supported for stop"),
    ],
)
def test_invalid_stops_are_refused_with_422(server: FakeAlpacaServer, body: dict[str, str], message: str) -> None:
    wire = {"symbol": "AAPL", "side": "sell", "time_in_force": "day", **body}
    reply = requests.post(
        f"{server.url}{ORDERS}",
        json=wire,
        headers={"APCA-API-KEY-ID": server.key, "APCA-API-SECRET-KEY": server.secret},
        timeout=10,
    )
    assert reply.status_code == 422
    assert message in reply.json()["message"]
    assert not server.orders


def test_a_sub_dollar_stop_may_have_four_decimals(server: FakeAlpacaServer) -> None:
    order = server.place_order(
        {"symbol": "AAPL", "side": "sell", "type": "stop", "qty": "1", "stop_price": "0.5005", "time_in_force": "day"}
    )
    assert order["stop_price"] == "0.5005"
