"""The shape every order must have when it reaches a broker adapter: the adapters' defensive check.

What to trade is the risk agent's decision (long only, never more than is held, whole shares where fractions are not
allowed, at least the minimum notional); adapters only translate an approved order into their wire format. An order
no approval would produce (a notional order for an asset that trades only whole shares, a sub-cent notional, a qty
finer than the broker counts) is refused here with a typed reason before anything is sent, the same way by the sim
and by Alpaca. Nothing is rounded or re-sized: that would be deciding.

Market orders are DAY orders (Alpaca requires it of fractional ones). Stops are the daemon's protective stops, held to
Alpaca's rules: a sell of a qty (never a notional), the stop price positive and on the tick (`stop_price_tick`), GTC
only for whole shares (a fractional qty rests only as a DAY order), a trailing stop only for whole shares and by a
percent in (0, 100). `round_stop_price` is how the caller puts a computed level on the tick before it asks.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from core.broker.base import OrderRejectedError
from core.reasons import RejectionReason
from core.types import CENT, QTY_QUANTUM, Asset, OrderRequest, OrderSide, OrderType, TimeInForce

BROKER_MIN_NOTIONAL = Decimal(1)  # Alpaca's floor for notional orders; the sim keeps the same one
SUB_DOLLAR_TICK = Decimal("0.0001")  # the price increment below $1 (Reg NMS rule 612, as Alpaca applies it)
_HUNDRED = Decimal(100)

Problem = tuple[RejectionReason, str]


def stop_price_tick(price: Decimal) -> Decimal:
    """The increment a stop price must be a multiple of: $0.01 at $1 and above, $0.0001 below."""
    return CENT if price >= 1 else SUB_DOLLAR_TICK


def round_stop_price(price: Decimal) -> Decimal:
    """`price` (positive) on the tick, rounded *up*: a sell stop is never placed below the level it was computed as.

    A stop level is a promise about the worst price the trader accepts (entry x (1 - STOP_LOSS_PCT)); rounding down
    would let the loss exceed it by up to a tick, rounding up only triggers the sale a fraction of a tick sooner. A
    price just under $1 that rounds up to $1.0000 is on the cent, so the result is always on its own tick.
    """
    if price <= 0:
        raise ValueError(f"a stop price must be positive, got {price}")
    tick = stop_price_tick(price)
    return price.quantize(tick, rounding=ROUND_CEILING)


def shape_problem(request: OrderRequest, asset: Asset | None) -> Problem | None:
    """Why `request` cannot be sent for `asset` as it is (None: it can)."""
    symbol = request.symbol
    if asset is None:
        return RejectionReason.UNKNOWN_ASSET, f"{symbol} is not an asset of this broker"
    if not asset.tradable:
        return RejectionReason.NOT_TRADABLE, f"{symbol} is not tradable"
    problem = _market_problem(request) if request.order_type is OrderType.MARKET else _stop_problem(request)
    if problem is not None:
        return problem
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


def _market_problem(request: OrderRequest) -> Problem | None:
    if request.time_in_force != TimeInForce.DAY:
        return RejectionReason.TIME_IN_FORCE, f"market orders are day orders, got {request.time_in_force!r}"
    return None


def _stop_problem(request: OrderRequest) -> Problem | None:
    kind = request.order_type.value
    if request.side is not OrderSide.SELL:
        return RejectionReason.STOP_SIDE, f"{kind} orders are protective sells, got a {request.side.value}"
    if request.qty is None:
        return RejectionReason.STOP_NOTIONAL, f"a {kind} order sells a qty, not a notional"
    whole = request.qty == request.qty.to_integral_value()
    if request.stop_price is not None:
        price = request.stop_price
        if price <= 0:
            return RejectionReason.INVALID_STOP_PRICE, f"stop price {price} is not positive"
        tick = stop_price_tick(price)
        if price % tick:
            return RejectionReason.INVALID_STOP_PRICE, f"stop price {price} is not a multiple of {tick}"
    if request.trail_percent is not None:
        if not whole:
            return RejectionReason.FRACTIONAL_TRAILING_STOP, f"a trailing stop needs whole shares, got {request.qty}"
        if not 0 < request.trail_percent < _HUNDRED:
            return RejectionReason.INVALID_TRAIL_PERCENT, f"trail percent {request.trail_percent} is not in (0, 100)"
    if request.time_in_force not in (TimeInForce.DAY, TimeInForce.GTC):
        return RejectionReason.TIME_IN_FORCE, f"stops are day or gtc orders, got {request.time_in_force!r}"
    if request.time_in_force == TimeInForce.GTC and not whole:
        return (
            RejectionReason.TIME_IN_FORCE,
            f"a gtc order needs whole shares (a fractional qty rests only as day), got {request.qty}",
        )
    return None
