"""The adapters' defensive check: an order no approval would hold is refused with a typed reason, nothing rounded."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.broker.base import OrderRejectedError
from core.broker.order_shape import check_order_shape, round_stop_price, shape_problem, stop_price_tick
from core.reasons import RejectionReason
from core.types import Asset, OrderRequest, OrderSide, TimeInForce
from tests.core.broker.stop_requests import stop_request, trailing_request

WHOLE = Asset("BRK.A", tradable=True, fractionable=False)
FRACTIONAL = Asset("AAPL", tradable=True, fractionable=True)


def order(*, qty: str | None = None, notional: str | None = None, tif: str = "day") -> OrderRequest:
    return OrderRequest(
        client_order_id="c1",
        symbol="X",
        side=OrderSide.BUY,
        qty=Decimal(qty) if qty is not None else None,
        notional=Decimal(notional) if notional is not None else None,
        time_in_force=TimeInForce(tif),
    )


def stop(
    price: str = "142.50",
    *,
    qty: str | None = "10",
    notional: str | None = None,
    tif: TimeInForce = TimeInForce.GTC,
    side: OrderSide = OrderSide.SELL,
) -> OrderRequest:
    return stop_request("ps1", price, qty=qty, notional=notional, tif=tif, side=side)


def trailing(percent: str = "5", *, qty: str = "10", tif: TimeInForce = TimeInForce.GTC) -> OrderRequest:
    return trailing_request("ps2", percent, qty=qty, tif=tif)


@pytest.mark.parametrize(
    ("request_", "asset", "reason"),
    [
        (order(qty="1"), None, RejectionReason.UNKNOWN_ASSET),
        (order(qty="1"), Asset("X", tradable=False, fractionable=True), RejectionReason.NOT_TRADABLE),
        (order(qty="1", tif="gtc"), FRACTIONAL, RejectionReason.TIME_IN_FORCE),
        (order(notional="100"), WHOLE, RejectionReason.NOT_FRACTIONABLE),
        (order(qty="1.5"), WHOLE, RejectionReason.NOT_FRACTIONABLE),
        (order(notional="100.001"), FRACTIONAL, RejectionReason.INVALID_NOTIONAL),
        (order(notional="0.99"), FRACTIONAL, RejectionReason.BELOW_MIN_NOTIONAL),
        (order(qty="0.0000000001"), FRACTIONAL, RejectionReason.INVALID_QTY),
    ],
)
def test_what_no_approval_would_hold_is_refused(request_: OrderRequest, asset: Asset | None, reason: str) -> None:
    problem = shape_problem(request_, asset)
    assert problem is not None
    assert problem[0] is reason
    with pytest.raises(OrderRejectedError) as caught:
        check_order_shape(request_, asset)
    assert caught.value.reason is reason


@pytest.mark.parametrize(
    ("request_", "asset"),
    [
        (order(qty="3"), WHOLE),
        (order(qty="2.123456789"), FRACTIONAL),
        (order(notional="1.00"), FRACTIONAL),
        (order(notional="1234.56"), FRACTIONAL),
    ],
)
def test_what_risk_approves_passes_as_it_is(request_: OrderRequest, asset: Asset) -> None:
    assert shape_problem(request_, asset) is None
    check_order_shape(request_, asset)


# ----------------------------------------------------------------------------------------------------------------------
# STOPS
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "asset", "reason", "words"),
    [
        (stop(side=OrderSide.BUY), FRACTIONAL, RejectionReason.STOP_SIDE, "protective sells"),
        (stop(qty=None, notional="1000"), FRACTIONAL, RejectionReason.STOP_NOTIONAL, "not a notional"),
        (stop("142.505"), FRACTIONAL, RejectionReason.INVALID_STOP_PRICE, "not a multiple of 0.01"),
        (stop("0.50005"), FRACTIONAL, RejectionReason.INVALID_STOP_PRICE, "not a multiple of 0.0001"),
        (stop("0"), FRACTIONAL, RejectionReason.INVALID_STOP_PRICE, "not positive"),
        (stop("-1.00"), FRACTIONAL, RejectionReason.INVALID_STOP_PRICE, "not positive"),
        (stop(qty="191.75"), FRACTIONAL, RejectionReason.TIME_IN_FORCE, "gtc order needs whole shares"),
        (stop(qty="0.75", tif=TimeInForce.DAY), WHOLE, RejectionReason.NOT_FRACTIONABLE, "whole shares only"),
        (stop(qty="1.0000000001", tif=TimeInForce.DAY), FRACTIONAL, RejectionReason.INVALID_QTY, "finer than"),
        (trailing(qty="0.75", tif=TimeInForce.DAY), FRACTIONAL, RejectionReason.FRACTIONAL_TRAILING_STOP, "whole"),
        (trailing("0"), FRACTIONAL, RejectionReason.INVALID_TRAIL_PERCENT, "not in (0, 100)"),
        (trailing("100"), FRACTIONAL, RejectionReason.INVALID_TRAIL_PERCENT, "not in (0, 100)"),
        (trailing("-5"), FRACTIONAL, RejectionReason.INVALID_TRAIL_PERCENT, "not in (0, 100)"),
    ],
)
def test_a_stop_alpaca_would_refuse_is_refused_with_its_reason(
    request_: OrderRequest, asset: Asset, reason: RejectionReason, words: str
) -> None:
    with pytest.raises(OrderRejectedError) as caught:
        check_order_shape(request_, asset)
    assert caught.value.reason is reason
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("request_", "asset"),
    [
        (stop("142.50"), WHOLE),  # a GTC stop for whole shares
        (stop("142.5", qty="191"), FRACTIONAL),  # 142.5 is 142.50: on the cent
        (stop("1.00"), FRACTIONAL),
        (stop("0.5005", qty="0.75", tif=TimeInForce.DAY), FRACTIONAL),  # fractional: a DAY stop; sub-dollar tick
        (trailing("5"), WHOLE),
        (trailing("0.5", tif=TimeInForce.DAY), FRACTIONAL),
        (trailing("99.9"), FRACTIONAL),
    ],
)
def test_a_stop_the_daemon_would_place_passes(request_: OrderRequest, asset: Asset) -> None:
    assert shape_problem(request_, asset) is None


def test_market_orders_stay_day_orders() -> None:
    problem = shape_problem(order(qty="1", tif="gtc"), FRACTIONAL)
    assert problem is not None
    assert problem[0] is RejectionReason.TIME_IN_FORCE


@pytest.mark.parametrize(
    ("price", "rounded"),
    [
        ("142.5", "142.50"),
        ("142.501", "142.51"),  # up: never below the level it was computed as
        ("142.509999", "142.51"),
        ("1", "1.00"),
        ("0.12341", "0.1235"),
        ("0.99995", "1.0000"),  # onto the dollar, which is on the cent too
        ("0.00001", "0.0001"),
    ],
)
def test_round_stop_price_rounds_up_onto_the_tick(price: str, rounded: str) -> None:
    assert str(round_stop_price(Decimal(price))) == rounded


@pytest.mark.parametrize("price", ["0", "-0.01"])
def test_round_stop_price_refuses_a_price_that_is_not_positive(price: str) -> None:
    with pytest.raises(ValueError, match="positive"):
        round_stop_price(Decimal(price))


@given(st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(100_000), places=6))
def test_a_rounded_stop_price_is_on_its_tick_within_a_tick_above_and_the_shape_check_takes_it(price: Decimal) -> None:
    rounded = round_stop_price(price)
    tick = stop_price_tick(rounded)
    assert rounded % tick == 0
    assert price <= rounded < price + stop_price_tick(price)
    assert shape_problem(stop(str(rounded)), WHOLE) is None
