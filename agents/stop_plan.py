"""The protective-stop plan: what to cancel and what to place so that each owned position is covered exactly once.

Pure (no clock, no I/O): given the owned positions with their stop levels and the orders resting at the broker, it
says which protective stops (`td-ps-…`, recognised by id) stay, which go, and which new ones to place.

A position is covered by at most two stops: its whole shares by a GTC stop (part `g`, which keeps protecting them
while the daemon is down) and its fraction by a DAY stop (part `d`: Alpaca rests fractional quantities only as DAY
orders, so the daemon re-places it every session). A non-fractionable asset has whole shares only. In trailing mode
the GTC part is a broker `trailing_stop`; the DAY part is a plain stop at the daemon's own trailing level, which the
intraday check enforces between placements.

The planner never plans a sell above what is owned minus the other open sells of the symbol (an exit on its way, a
stop already triggered and filling), so the over-sell invariant holds by construction; whatever no longer fits
(an orphan, a stop of the wrong size, a duplicate) is canceled. A changed stop is replaced under a fresh client order
id (Alpaca refuses a reused one, even after a cancel): the anchor is the position's latest entry, `seq` the first
sequence number whose id is not used yet.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_FLOOR, Decimal

import structlog

from agents.oversell import OPEN_STATUSES, remaining_sell_qty
from core.order_ids import is_our_client_order_id, is_protective_stop_id, protective_stop_id
from core.reasons import StopReason
from core.types import BrokerOrder, OrderRequest, OrderSide, OrderType, TimeInForce

log = structlog.get_logger(__name__)

GTC_PART, DAY_PART = "g", "d"
MAX_STOP_SEQ = 999
_ZERO = Decimal(0)


def stop_part(coid: str) -> str:
    """The part letter of a protective stop's id (`td-ps-<symbol>-<part><seq>-…`)."""
    return coid.rsplit("-", 3)[1][:1]


@dataclass(frozen=True, slots=True)
class Holding:
    """What the planner needs of one owned position."""

    symbol: str
    qty: Decimal
    level: Decimal  # the stop level, on the tick: fixed, or the daemon's trailing level
    fractional: bool  # a fractional quantity may be ordered (fractionable asset, fractional shares on)
    anchor: str  # the client order id of the position's latest entry


@dataclass(frozen=True, slots=True)
class StopPlacement:
    """A protective stop to place: a sell of `qty` covering one part of a position."""

    client_order_id: str
    symbol: str
    qty: Decimal
    order_type: OrderType
    time_in_force: TimeInForce
    stop_price: Decimal | None
    trail_percent: Decimal | None
    reason: StopReason

    def request(self) -> OrderRequest:
        return OrderRequest(
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=OrderSide.SELL,
            qty=self.qty,
            time_in_force=self.time_in_force,
            order_type=self.order_type,
            stop_price=self.stop_price,
            trail_percent=self.trail_percent,
        )


@dataclass(frozen=True, slots=True)
class StopCancel:
    """A resting protective stop to cancel, and why."""

    order: BrokerOrder
    reason: StopReason

    @property
    def client_order_id(self) -> str:
        return self.order.client_order_id

    @property
    def symbol(self) -> str:
        return self.order.symbol


@dataclass(frozen=True, slots=True)
class StopPlan:
    """Cancels first: execution places a symbol's new stops only once its cancels are confirmed."""

    cancels: tuple[StopCancel, ...] = ()
    placements: tuple[StopPlacement, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.cancels or self.placements)


@dataclass(frozen=True, slots=True)
class _Spec:
    part: str
    qty: Decimal
    order_type: OrderType
    stop_price: Decimal | None
    trail_percent: Decimal | None

    @property
    def time_in_force(self) -> TimeInForce:
        return TimeInForce.GTC if self.part == GTC_PART else TimeInForce.DAY


def is_resting_stop(order: BrokerOrder) -> bool:
    """A protective stop of ours that is open and has not started to fill (a triggered stop is a sale under way)."""
    return (
        order.side is OrderSide.SELL
        and order.status.is_open
        and order.filled_qty == 0
        and is_protective_stop_id(order.client_order_id)
    )


def plan_stops(
    holdings: Mapping[str, Holding],
    open_orders: Sequence[BrokerOrder],
    *,
    trail_percent: Decimal | None,
    session: date,
    is_used: Callable[[str], bool],
    used_among: Callable[[Collection[str]], set[str]] | None = None,
) -> StopPlan:
    """The cancels and placements that leave every holding covered exactly once (see the module docstring).

    `trail_percent`: None for fixed stops, else the broker trailing stop's percent (5 = 5%). `session`: the session
    new stops are for (part of their id). `is_used(coid)`: whether an id was ever used (the store holds it);
    `used_among(coids)`: the same for many ids at once (one query for the plan's first-choice ids, not one each).
    """
    resting, other_sells = _resting_and_other_sells(open_orders)
    cancels: list[StopCancel] = []
    wanted_placements: list[tuple[Holding, _Spec, bool]] = []
    for symbol in sorted(resting.keys() | holdings.keys()):
        holding = holdings.get(symbol)
        stops = resting.get(symbol, [])
        wanted = _wanted(holding, other_sells.get(symbol, _ZERO), trail_percent) if holding is not None else []
        kept: set[str] = set()
        missing: list[_Spec] = []
        for spec in wanted:
            match = next((o for o in stops if o.client_order_id not in kept and _covers(o, spec, trail_percent)), None)
            if match is None:
                missing.append(spec)
            else:
                kept.add(match.client_order_id)
        missing_parts = {spec.part for spec in missing}
        dropped = [o for o in stops if o.client_order_id not in kept]
        for order in dropped:
            if holding is None:
                reason = StopReason.ORPHAN
            elif stop_part(order.client_order_id) in missing_parts:
                reason = StopReason.RESIZED
            else:
                reason = StopReason.EXCESS
            cancels.append(StopCancel(order, reason))
        replaced = {stop_part(o.client_order_id) for o in dropped}
        for spec in missing:
            assert holding is not None  # a part is only wanted for a holding
            wanted_placements.append((holding, spec, spec.part in replaced))
    if used_among is not None and wanted_placements:
        # Nearly every placement takes sequence 1 (a new session, a new entry): those ids are asked in one query,
        # the rare later sequence numbers one by one as before.
        first_ids = {
            protective_stop_id(holding.symbol, holding.anchor, session, spec.part, 1)
            for holding, spec, _ in wanted_placements
        }
        is_used = _answered_first(first_ids, used_among(first_ids), is_used)
    placements: list[StopPlacement] = []
    for holding, spec, resized in wanted_placements:
        placement = _placement(holding, spec, session, is_used, resized=resized)
        if placement is not None:
            placements.append(placement)
    return StopPlan(tuple(cancels), tuple(placements))


def _answered_first(asked: set[str], used: set[str], is_used: Callable[[str], bool]) -> Callable[[str], bool]:
    """`is_used` with the ids in `asked` answered from `used` (their batched answer)."""

    def answered(coid: str) -> bool:
        return coid in used if coid in asked else is_used(coid)

    return answered


def _resting_and_other_sells(
    open_orders: Sequence[BrokerOrder],
) -> tuple[dict[str, list[BrokerOrder]], dict[str, Decimal]]:
    """The resting protective stops by symbol, and what the daemon's other open sells may still sell by symbol
    (`open_sell_qty` of the orders that are not resting stops), in one pass: this runs twice a session over every
    open order."""
    resting: dict[str, list[BrokerOrder]] = {}
    other_sells: dict[str, Decimal] = {}
    sell = OrderSide.SELL
    for order in open_orders:
        if order.side is not sell or order.status not in OPEN_STATUSES:
            continue  # neither a resting stop nor an open sell
        coid = order.client_order_id
        if order.filled_qty == 0 and is_protective_stop_id(coid):
            resting.setdefault(order.symbol, []).append(order)
        elif is_our_client_order_id(coid):
            other_sells[order.symbol] = other_sells.get(order.symbol, _ZERO) + remaining_sell_qty(order)
    return resting, other_sells


def _wanted(holding: Holding, other_sells: Decimal, trail_percent: Decimal | None) -> list[_Spec]:
    """The parts that cover what the other open sells leave of the holding."""
    room = holding.qty - other_sells
    if room <= 0 or holding.level <= 0:
        return []
    whole = room.to_integral_value(rounding=ROUND_FLOOR)
    fraction = room - whole if holding.fractional else _ZERO
    specs: list[_Spec] = []
    if whole >= 1:
        if trail_percent is not None:
            specs.append(_Spec(GTC_PART, whole, OrderType.TRAILING_STOP, None, trail_percent))
        else:
            specs.append(_Spec(GTC_PART, whole, OrderType.STOP, holding.level, None))
    if fraction > 0:
        specs.append(_Spec(DAY_PART, fraction, OrderType.STOP, holding.level, None))
    return specs


def _covers(order: BrokerOrder, spec: _Spec, trail_percent: Decimal | None) -> bool:
    """Whether a resting stop already is the wanted part: same part, quantity, kind and level.

    In trailing mode a resting DAY stop at a lower level still covers: its level is fixed for the session (the
    intraday check enforces the rising one), so a rising high-water mark does not re-place it every iteration.
    """
    if (
        stop_part(order.client_order_id) != spec.part
        or order.open_qty != spec.qty
        or order.order_type != spec.order_type
    ):
        return False
    if spec.order_type is OrderType.TRAILING_STOP:
        return order.trail_percent == spec.trail_percent
    if order.stop_price is None or spec.stop_price is None:
        return False
    if trail_percent is not None:
        return order.stop_price <= spec.stop_price
    return order.stop_price == spec.stop_price


def _placement(
    holding: Holding, spec: _Spec, session: date, is_used: Callable[[str], bool], *, resized: bool
) -> StopPlacement | None:
    """The placement of a wanted part; None when its ids for this entry, part and session are all used (a broker
    refusing every exit, say, made the daemon re-place this stop 999 times today): the intraday check still
    enforces the level, and the next session has ids again. Never an exception: a plan must not stop the daemon."""
    coid = fresh_stop_id(holding.symbol, holding.anchor, session, spec.part, is_used)
    if coid is None:
        log.warning("stop_ids_exhausted", symbol=holding.symbol, part=spec.part, session=session.isoformat())
        return None
    return StopPlacement(
        client_order_id=coid,
        symbol=holding.symbol,
        qty=spec.qty,
        order_type=spec.order_type,
        time_in_force=spec.time_in_force,
        stop_price=spec.stop_price,
        trail_percent=spec.trail_percent,
        reason=StopReason.RESIZED if resized else StopReason.UNCOVERED,
    )


def fresh_stop_id(symbol: str, anchor: str, session: date, part: str, is_used: Callable[[str], bool]) -> str | None:
    """The first protective stop id of (anchor, part, session) not used yet (None: all are)."""
    for seq in range(1, MAX_STOP_SEQ + 1):
        coid = protective_stop_id(symbol, anchor, session, part, seq)
        if not is_used(coid):
            return coid
    return None
