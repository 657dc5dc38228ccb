"""The adapters' defensive check: an order no approval would hold is refused with a typed reason, nothing rounded."""

from decimal import Decimal

import pytest

from core.broker.base import OrderRejectedError
from core.broker.order_shape import check_order_shape, shape_problem
from core.reasons import RejectionReason
from core.types import Asset, OrderRequest, OrderSide

WHOLE = Asset("BRK.A", tradable=True, fractionable=False)
FRACTIONAL = Asset("AAPL", tradable=True, fractionable=True)


def order(*, qty: str | None = None, notional: str | None = None, tif: str = "day") -> OrderRequest:
    return OrderRequest(
        client_order_id="c1",
        symbol="X",
        side=OrderSide.BUY,
        qty=Decimal(qty) if qty is not None else None,
        notional=Decimal(notional) if notional is not None else None,
        time_in_force=tif,
    )


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
