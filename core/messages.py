"""Typed, frozen messages for every arrow of one iteration (docs/ARCHITECTURE.md §Messages).

Commands are `<Verb><Noun>`, events `<Noun><PastParticiple>`. Every message carries `id`, `ts_event` (when the thing
happened, in the clock's time), `ts_init` (when the message object was built) and `correlation_id`, which follows one
candidate from its bar to its fill. Once built, a message never changes: to change one, make a new one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.types import BarFrame, Fill, OrderSide, Tier

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
# COMMANDS
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitOrder(Message):
    """Ask the broker to place an order; built by the ExecutionAgent from an approved order."""

    client_order_id: str
    symbol: str
    side: OrderSide
    qty: Decimal | None
    notional: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder(Message):
    client_order_id: str
    reason: str


# ----------------------------------------------------------------------------------------------------------------------
# EVENTS: iteration
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class IterationStarted(Message):
    iteration: int
    n_symbols: int


@dataclass(frozen=True, slots=True, kw_only=True)
class IterationCompleted(Message):
    iteration: int
    stats: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class BarsFetched(Message):
    """One frame per iteration: the window of bars for every focus symbol (not one message per symbol)."""

    iteration: int
    frame: BarFrame
    new_rows: int
    rejected: dict[str, int]


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
    strategy: str
    symbol: str
    side: OrderSide
    is_exit: bool
    price: float
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
    reason: str


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
    signal: SignalGenerated
    order: SizedOrder


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDenied(Message):
    signal: SignalGenerated
    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitBreakerTripped(Message):
    breaker: str
    detail: str


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
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled(Message):
    fill: Fill


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCanceled(Message):
    client_order_id: str
    symbol: str
    reason: str
