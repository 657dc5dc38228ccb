"""AlpacaBroker's stops against the fake Alpaca server, through the real alpaca-py TradingClient: placed as Alpaca
takes them, followed by polling to a fill, an expiry or a cancel, and holding the shares they cover."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal

import pytest

from core.broker.alpaca import AlpacaBroker, rejection_reason
from core.broker.base import OrderRejectedError
from core.reasons import RejectionReason
from core.timeconv import NEW_YORK
from core.types import OrderRequest, OrderSide, OrderStatus, OrderType, OrderUpdate, TimeInForce
from tests.core.broker.conftest import START_DAY
from tests.core.broker.stop_requests import stop_request, trailing_request
from tests.fakes.alpaca_server import FakeAlpacaServer

MakeBroker = Callable[..., AlpacaBroker]
ORDERS = "/v2/orders"
# The CSV's AAPL bar for 2018-01-10 closes above its open, so the fake's path is open → low → high → close:
# 09:30 173.16, 11:40 173.00, 13:50 174.30, 16:00 174.29. The day before closed at 174.33.
OPEN = Decimal("173.16")


def at(hour: int, minute: int = 0, day: date = START_DAY) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=NEW_YORK)


def stop(coid: str, price: str, *, qty: str = "10", tif: TimeInForce = TimeInForce.GTC) -> OrderRequest:
    return stop_request(coid, price, symbol="AAPL", qty=qty, tif=tif)


def trailing(coid: str, percent: str, *, qty: str = "10") -> OrderRequest:
    return trailing_request(coid, percent, symbol="AAPL", qty=qty)


def last_body(server: FakeAlpacaServer) -> dict[str, object]:
    return server.requests("POST", ORDERS)[-1].body


def final(updates: list[OrderUpdate], coid: str) -> OrderUpdate:
    return [u for u in updates if u.order.client_order_id == coid][-1]


@pytest.fixture
def held(fake_alpaca: FakeAlpacaServer) -> FakeAlpacaServer:
    fake_alpaca.seed_position("AAPL", Decimal("10.75"), Decimal(170))
    return fake_alpaca


# --- placing -------------------------------------------------------------------------------------------------------


async def test_a_gtc_stop_for_whole_shares_is_sent_as_a_stop_order(
    make_broker: MakeBroker, held: FakeAlpacaServer
) -> None:
    order = await make_broker().submit_order(stop("ps-g1", "165.25"))

    assert last_body(held) == {
        "symbol": "AAPL",
        "qty": 10.0,
        "side": "sell",
        "type": "stop",
        "time_in_force": "gtc",
        "extended_hours": False,
        "client_order_id": "ps-g1",
        "stop_price": 165.25,
    }
    assert (order.status, order.order_type, order.time_in_force, order.is_stop) == (
        OrderStatus.ACCEPTED,
        OrderType.STOP,
        TimeInForce.GTC,
        True,
    )
    assert (order.stop_price, order.qty, order.open_qty) == (Decimal("165.25"), Decimal(10), Decimal(10))


async def test_a_fractional_qty_rests_as_a_day_stop(make_broker: MakeBroker, held: FakeAlpacaServer) -> None:
    order = await make_broker().submit_order(stop("ps-d1", "165.25", qty="0.75", tif=TimeInForce.DAY))

    body = last_body(held)
    assert (body["qty"], body["time_in_force"], body["type"]) == (0.75, "day", "stop")
    assert (order.time_in_force, order.qty, order.stop_price) == (TimeInForce.DAY, Decimal("0.75"), Decimal("165.25"))


async def test_a_trailing_stop_is_sent_by_percent_and_reports_its_level(
    make_broker: MakeBroker, held: FakeAlpacaServer
) -> None:
    order = await make_broker().submit_order(trailing("ps-t1", "5"))

    body = last_body(held)
    assert (body["type"], body["trail_percent"], "stop_price" in body) == ("trailing_stop", 5.0, False)
    assert (order.order_type, order.trail_percent, order.is_stop) == (OrderType.TRAILING_STOP, Decimal(5), True)
    # Placed at midnight: the mark starts at the last close, 174.33, and the level is 5 % below it.
    assert order.stop_price == (Decimal("174.33") * Decimal("0.95")).quantize(Decimal("0.0001"))


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (stop("ps-x1", "165.255"), RejectionReason.INVALID_STOP_PRICE),
        (stop("ps-x2", "165.25", qty="10.75"), RejectionReason.TIME_IN_FORCE),  # GTC needs whole shares
        (trailing("ps-x3", "5", qty="0.75"), RejectionReason.FRACTIONAL_TRAILING_STOP),
    ],
)
async def test_a_stop_alpaca_would_refuse_is_refused_before_sending(
    make_broker: MakeBroker, held: FakeAlpacaServer, request_: OrderRequest, reason: RejectionReason
) -> None:
    with pytest.raises(OrderRejectedError) as caught:
        await make_broker().submit_order(request_)

    assert caught.value.reason is reason
    assert held.count("POST", ORDERS) == 0


@pytest.mark.parametrize(
    ("status", "message", "reason"),
    [
        (422, "invalid stop_price 170.005. sub-penny increment does not fulfill minimum pricing criteria",
         RejectionReason.INVALID_STOP_PRICE),
        (422, "stop_price must be > 0", RejectionReason.INVALID_STOP_PRICE),
        (422, "fractional orders must be DAY orders", RejectionReason.TIME_IN_FORCE),
        (422, "time_in_force ioc is not supported for stop orders", RejectionReason.TIME_IN_FORCE),
        (422, "fractional orders are not supported for trailing_stop orders", RejectionReason.FRACTIONAL_TRAILING_STOP),
        (422, "trail_price or trail_percent must be positive (a percent below 100)",
         RejectionReason.INVALID_TRAIL_PERCENT),
        (422, "notional orders must be market or limit orders", RejectionReason.STOP_NOTIONAL),
        (403, "insufficient qty available for order (requested: 10, available: 0)", RejectionReason.INSUFFICIENT_QTY),
    ],
)  # fmt: skip
def test_the_brokers_own_stop_refusals_are_typed(status: int, message: str, reason: RejectionReason) -> None:
    """Were Alpaca's rules to move past our shape check, its words (as the fake speaks them) become our reasons."""
    assert rejection_reason(status, message) is reason


# --- following -----------------------------------------------------------------------------------------------------


async def test_a_stop_the_path_reaches_fills_at_its_price_through_poll_updates(
    make_broker: MakeBroker, held: FakeAlpacaServer
) -> None:
    broker = make_broker()
    await broker.submit_order(stop("ps-hit", "173.10", tif=TimeInForce.DAY))
    held.set_now(at(11))  # on the first leg, past 173.10 on the way down to the low

    update = final(await broker.poll_updates(), "ps-hit")

    assert update.order.status is OrderStatus.FILLED
    assert update.order.is_stop
    assert update.fill is not None
    assert (update.fill.side, update.fill.qty, update.fill.price) == (OrderSide.SELL, Decimal(10), Decimal("173.10"))
    assert held.positions["AAPL"].qty == Decimal("0.75")


async def test_a_day_stop_the_day_never_reaches_expires_at_the_close(
    make_broker: MakeBroker, held: FakeAlpacaServer
) -> None:
    broker = make_broker()
    await broker.submit_order(stop("ps-exp", "172.99", qty="0.75", tif=TimeInForce.DAY))
    held.set_now(at(15, 59))
    assert await broker.poll_updates() == []

    held.set_now(at(17))
    update = final(await broker.poll_updates(), "ps-exp")

    assert (update.order.status, update.fill) == (OrderStatus.EXPIRED, None)
    assert await broker.get_open_orders() == []


async def test_a_canceled_stop_ends_canceled_and_frees_its_shares(
    make_broker: MakeBroker, held: FakeAlpacaServer
) -> None:
    broker = make_broker()
    await broker.submit_order(stop("ps-can", "160.00"))
    assert [o.client_order_id for o in await broker.get_open_orders()] == ["ps-can"]

    await broker.cancel_order("ps-can")  # asks; the answer comes as an update
    update = final(await broker.poll_updates(), "ps-can")

    assert update.order.status is OrderStatus.CANCELED
    sold = await broker.submit_order(
        OrderRequest(client_order_id="x-all", symbol="AAPL", side=OrderSide.SELL, qty=Decimal("10.75"))
    )
    assert sold.status is OrderStatus.ACCEPTED


async def test_cancelling_a_stop_that_already_filled_ends_filled(
    make_broker: MakeBroker, held: FakeAlpacaServer
) -> None:
    broker = make_broker()
    await broker.submit_order(stop("ps-gap", "174.00"))  # the day opens at 173.16, through the stop
    held.set_now(at(10))  # the fill happened; the broker has not been polled since

    await broker.cancel_order("ps-gap")  # Alpaca answers 422 "not cancelable": nothing to do
    update = final(await broker.poll_updates(), "ps-gap")

    assert update.order.status is OrderStatus.FILLED
    assert update.fill is not None
    assert (update.fill.qty, update.fill.price) == (Decimal(10), OPEN)
    looked_up = await broker.get_order("ps-gap")
    assert looked_up is not None
    assert looked_up.status is OrderStatus.FILLED
    assert held.count("DELETE", ORDERS) == 1


async def test_a_market_sell_of_shares_a_stop_holds_is_refused(make_broker: MakeBroker, held: FakeAlpacaServer) -> None:
    broker = make_broker()
    await broker.submit_order(stop("ps-hold", "160.00"))
    exit_all = OrderRequest(client_order_id="x-1", symbol="AAPL", side=OrderSide.SELL, qty=Decimal("10.75"))

    with pytest.raises(OrderRejectedError) as caught:
        await broker.submit_order(exit_all)

    assert caught.value.reason is RejectionReason.INSUFFICIENT_QTY
    rest = OrderRequest(client_order_id="x-2", symbol="AAPL", side=OrderSide.SELL, qty=Decimal("0.75"))
    assert (await broker.submit_order(rest)).status is OrderStatus.ACCEPTED  # what the stop leaves is free


async def test_a_trailing_stops_level_follows_the_mark_until_it_fills(
    make_broker: MakeBroker, held: FakeAlpacaServer
) -> None:
    # 2018-01-16 (after the holiday) opens 177.9, high 179.39, low 176.14: open → high → low → close.
    day = date(2018, 1, 16)
    held.set_now(at(8, day=day))
    broker = make_broker()
    placed = await broker.submit_order(trailing("ps-trail", "1"))
    assert placed.stop_price == (Decimal("177.09") * Decimal("0.99")).quantize(Decimal("0.0001"))

    held.set_now(at(11, 40, day=day))  # at the high, before the fall
    (open_stop,) = await broker.get_open_orders()
    assert open_stop.stop_price == (Decimal("179.39") * Decimal("0.99")).quantize(Decimal("0.0001"))

    held.set_now(at(16, day=day))
    update = final(await broker.poll_updates(), "ps-trail")
    assert update.order.status is OrderStatus.FILLED
    assert update.fill is not None
    assert update.fill.price == Decimal("177.5961")
