"""Typed, frozen events: what each stage of an iteration did (docs/ARCHITECTURE.md §Messages).

The stages hand their outputs to each other as return values; these events tell the observers (the journal first)
what happened. There are no commands: nothing is asked of anyone over the bus. Events are `<Noun><PastParticiple>`.
Every message carries `id`, `ts_event` (when the thing happened, in the clock's time), `ts_init` (when the message
object was built) and `correlation_id`, which follows one candidate from its signal to its fills
(`core/order_ids.py::signal_correlation_id`); messages about no one candidate (iterations, bar frames, breakers, the
trading state) leave it empty. Once built, a message never changes, down to its fields: money and quantities are
`Decimal`, counts are read-only mappings, reasons are enums (`core/reasons.py`). To change a message, make a new one.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from core.reasons import (
    Breaker,
    CancelReason,
    DenialReason,
    ExitWithheldReason,
    RejectionReason,
    SignalRejectReason,
    StopReason,
    TradingStateReason,
)
from core.types import BarFrame, Fill, OrderSide, OrderType, Tier, TimeInForce, TradingState

_ids = itertools.count(1)


def next_message_id() -> int:
    """Process-unique, monotonically increasing id (cheaper than uuid4 on the hot path)."""
    return next(_ids)


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    ts_event: datetime
    ts_init: datetime
    correlation_id: str = ""
    id: int = field(default_factory=next_message_id)


# ----------------------------------------------------------------------------------------------------------------------
# EVENTS: iteration
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class IterationStarted(Message):
    iteration: int
    n_symbols: int


@dataclass(frozen=True, slots=True)
class IterationStats:
    """What one iteration did, carried by `IterationCompleted` (a value, not a message)."""

    session: date
    bars: int
    rejected_bars: int
    orders: int
    fills: int
    equity: Decimal
    positions: int

    def as_json(self) -> dict[str, Any]:
        return {
            "session": self.session.isoformat(),
            "bars": self.bars,
            "rejected_bars": self.rejected_bars,
            "orders": self.orders,
            "fills": self.fills,
            "equity": str(self.equity),
            "positions": self.positions,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class IterationCompleted(Message):
    iteration: int
    stats: IterationStats


@dataclass(frozen=True, slots=True, kw_only=True)
class IterationFailed(Message):
    """A tick ended early on a `BrokerError` (the adapter's bounded retries ran out, or the broker refused): the
    daemon stays alive and tries again at the next tick. `kind` is the error's class name; `detail` its text with
    every registered secret masked (`core/redact.py`). Observers: the dashboard's health, the notifier's
    broker-unreachable timer."""

    tick: str
    kind: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionClosed(Message):
    """A session the daemon iterated in is over, its daily scan (if any) done: published once per session, at the
    first tick at or after the session's close (with the scanner on, its scan time). Observers: the notifier's
    daily digest."""

    session: date


# ----------------------------------------------------------------------------------------------------------------------
# EVENTS: the daemon's life
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonStarted(Message):
    """The daemon took its state and is about to run its first tick. `unclean_restart`: the previous daemon of this
    state did not stop cleanly (killed, crashed, power lost), so this start recovered from the broker."""

    mode: str
    unclean_restart: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonStopped(Message):
    """The daemon left its loop cleanly (`reason`: `signal`, `finished`, `error`) after `iterations` iterations."""

    mode: str
    reason: str
    iterations: int


def frozen_counts(counts: Mapping[str, int]) -> Mapping[str, int]:
    """A read-only copy: whoever built the counts can go on changing their own dict, never the message's."""
    return MappingProxyType(dict(counts))


@dataclass(frozen=True, slots=True, kw_only=True)
class BarsFetched(Message):
    """One frame per iteration: the window of bars for every focus symbol (not one message per symbol).

    The frame's arrays are read-only views (`agents/data.py::RollingWindow`); `rejected` counts bad bars by reason.
    """

    iteration: int
    frame: BarFrame
    new_rows: int
    rejected: Mapping[str, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "rejected", frozen_counts(self.rejected))


@dataclass(frozen=True, slots=True, kw_only=True)
class DataRejected(Message):
    """A bar that failed sanity checks; it never reaches the scanner."""

    symbol: str
    bar_ts: datetime
    reason: str


# ----------------------------------------------------------------------------------------------------------------------
# EVENTS: signals
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalGenerated(Message):
    """A strategy's idea. `price` is the exact price it saw (the bar's close as `Decimal`); score and volatility are
    ranking statistics, not money."""

    strategy: str
    symbol: str
    side: OrderSide
    is_exit: bool
    price: Decimal
    score: float
    volatility: float
    bar_ts: datetime
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalValidated(Message):
    signal: SignalGenerated


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalRejected(Message):
    signal: SignalGenerated
    reason: SignalRejectReason


# ----------------------------------------------------------------------------------------------------------------------
# EVENTS: risk
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SizedOrder:
    """The risk agent's answer: what to trade, sized and capped."""

    symbol: str
    side: OrderSide
    tier: Tier | None
    qty: Decimal | None
    notional: Decimal | None
    est_price: Decimal
    est_notional: Decimal
    fractional: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderApproved(Message):
    """Risk's yes. `client_order_id` is computed here, once (`core/order_ids.py`); execution and the broker carry it."""

    signal: SignalGenerated
    order: SizedOrder
    client_order_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDenied(Message):
    signal: SignalGenerated
    reason: DenialReason
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitBreakerTripped(Message):
    breaker: Breaker
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FlattenRequested(Message):
    """A breaker set to flatten (ON_DAILY_LOSS / ON_MAX_DRAWDOWN=flatten) tripped: every owned position is to be
    sold, through a close request for all (`core/close_requests.py`). `symbols`: those owned when it tripped."""

    breaker: Breaker
    detail: str
    symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TradingStateChanged(Message):
    """The risk agent's trading state moved (README "Trading states"); `reason` is the most severe cause now
    holding, or `cleared` when nothing does."""

    previous: TradingState
    current: TradingState
    reason: TradingStateReason
    detail: str = ""


# ----------------------------------------------------------------------------------------------------------------------
# EVENTS: execution
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderSubmitted(Message):
    client_order_id: str
    broker_order_id: str
    symbol: str
    side: OrderSide
    qty: Decimal | None
    notional: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(Message):
    client_order_id: str
    symbol: str
    reason: RejectionReason
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled(Message):
    fill: Fill


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCanceled(Message):
    client_order_id: str
    symbol: str
    reason: CancelReason
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitWithheld(Message):
    """An approved exit not sent: its stop filled first (dropped), or the stop's cancel is not confirmed yet (the
    exit is tried again at the next iteration)."""

    client_order_id: str
    symbol: str
    reason: ExitWithheldReason
    detail: str = ""


# ----------------------------------------------------------------------------------------------------------------------
# EVENTS: protective stops
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StopPlaced(Message):
    """The broker accepted a protective stop (`td-ps-…`): a sell of `qty` at `stop_price`, or trailing by
    `trail_percent` (percent units)."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    qty: Decimal
    order_type: OrderType
    time_in_force: TimeInForce
    stop_price: Decimal | None
    trail_percent: Decimal | None
    reason: StopReason


@dataclass(frozen=True, slots=True, kw_only=True)
class StopCancelRequested(Message):
    """The daemon asked the broker to cancel a protective stop; the outcome comes as `OrderCanceled` (or
    `OrderFilled`, when the stop triggered first)."""

    client_order_id: str
    symbol: str
    reason: StopReason


@dataclass(frozen=True, slots=True, kw_only=True)
class StopDenied(Message):
    """Risk withheld a stop placement or cancel (`action`: place | cancel), e.g. while halted."""

    client_order_id: str
    symbol: str
    action: str
    reason: DenialReason
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OversellDetected(Message):
    """The invariant broke: the symbol's open sells (stops included) would sell more than the daemon owns."""

    symbol: str
    open_sell_qty: Decimal
    owned_qty: Decimal
    checked: str  # when: after the portfolio refresh, or after the stop step's placements
