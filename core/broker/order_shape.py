"""The shape every order must have when it reaches a broker adapter: the adapters' defensive check.

What to trade is the risk agent's decision (long only, never more than is held, whole shares where fractions are not
allowed, at least the minimum notional); adapters only translate an approved order into their wire format. An order
no approval would produce (a notional order for an asset that trades only whole shares, a sub-cent notional, a qty
finer than the broker counts) is refused here with a typed reason before anything is sent, the same way by the sim
and by Alpaca. Nothing is rounded or re-sized: that would be deciding.
"""

from __future__ import annotations

from decimal import Decimal

from core.broker.base import OrderRejectedError
from core.reasons import RejectionReason
from core.types import CENT, QTY_QUANTUM, Asset, OrderRequest

BROKER_MIN_NOTIONAL = Decimal(1)  # Alpaca's floor for notional orders; the sim keeps the same one
DAY = "day"  # market orders are day orders (Alpaca requires it of fractional ones)


def shape_problem(request: OrderRequest, asset: Asset | None) -> tuple[RejectionReason, str] | None:
    """Why `request` cannot be sent for `asset` as it is (None: it can)."""
    symbol = request.symbol
    if asset is None:
        return RejectionReason.UNKNOWN_ASSET, f"{symbol} is not an asset of this broker"
    if not asset.tradable:
        return RejectionReason.NOT_TRADABLE, f"{symbol} is not tradable"
    if request.time_in_force != DAY:
        return RejectionReason.TIME_IN_FORCE, f"only day orders are sent, got {request.time_in_force!r}"
    if request.notional is not None:
        notional = request.notional
        if not asset.fractionable:
            return RejectionReason.NOT_FRACTIONABLE, f"{symbol} trades in whole shares only, not by notional"
        if notional != notional.quantize(CENT):
            return RejectionReason.INVALID_NOTIONAL, f"notional {notional} is finer than a cent"
        if notional < BROKER_MIN_NOTIONAL:
            return RejectionReason.BELOW_MIN_NOTIONAL, f"notional {notional} is below ${BROKER_MIN_NOTIONAL}"
    if request.qty is not None:
        qty = request.qty
        if qty != qty.quantize(QTY_QUANTUM):
            return RejectionReason.INVALID_QTY, f"qty {qty} is finer than {QTY_QUANTUM}"
        if not asset.fractionable and qty != qty.to_integral_value():
            return RejectionReason.NOT_FRACTIONABLE, f"{symbol} trades in whole shares only, got {qty}"
    return None


def check_order_shape(request: OrderRequest, asset: Asset | None) -> None:
    """Raise `OrderRejectedError` with the typed reason when `request` is not sendable as it is."""
    problem = shape_problem(request, asset)
    if problem is not None:
        raise OrderRejectedError(*problem)
