"""Alpaca's wire format (raw JSON dicts, as the SDK returns them with raw_data=True) into our own types.

This is the boundary: vendor strings become `Decimal`, vendor statuses become `OrderStatus`, timestamps become
UTC-aware datetimes. The adapters ask the SDK for raw dicts so that schema drift the SDK's models reject (an asset
without `easy_to_borrow`, an unknown exchange) cannot take the daemon down; what we need is checked here instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from core.bar_sanity import UNREADABLE_TIME
from core.broker.base import BrokerError
from core.timeconv import datetime_to_ns, ny_instant
from core.types import Account, Asset, BrokerOrder, OrderSide, OrderStatus, OrderType, Position, TimeInForce

log = structlog.get_logger(__name__)


class WireFormatError(BrokerError):
    """A broker payload lacks a field we need or holds a value we cannot read."""


# Alpaca has 18 order statuses; we keep 7. The open ones that are not plain "new" keep their fill progress. What a
# resting stop can pass through stays open until Alpaca says it is final: `held` (waiting on another order),
# `stopped` (a trade is guaranteed, not yet made), `pending_cancel` (a cancel asked, not confirmed: it may still fill),
# `done_for_day` / `calculated` / `suspended`. Only filled, canceled, replaced, expired and rejected end an order.
_STATUS: dict[str, OrderStatus] = {
    "new": OrderStatus.NEW,
    "pending_new": OrderStatus.NEW,
    "accepted_for_bidding": OrderStatus.NEW,
    "pending_review": OrderStatus.NEW,
    "held": OrderStatus.NEW,
    "suspended": OrderStatus.NEW,
    "accepted": OrderStatus.ACCEPTED,
    "stopped": OrderStatus.ACCEPTED,
    "pending_cancel": OrderStatus.ACCEPTED,
    "pending_replace": OrderStatus.ACCEPTED,
    "done_for_day": OrderStatus.ACCEPTED,
    "calculated": OrderStatus.ACCEPTED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "replaced": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}


_OUR_STATUS_NAMES = frozenset(s.value for s in OrderStatus)
# The daemon sends market, stop and trailing_stop orders. Another type in the account (a user's limit or stop-limit
# order) reads as a market order, as every order did before stops: it is not ours, and only its qty counts.
_ORDER_TYPES: dict[str, OrderType] = {t.value: t for t in OrderType}


def order_status(raw: str, filled_qty: Decimal) -> OrderStatus:
    status = _STATUS.get(raw)
    if status is None:
        # An unknown status is kept open, so reconciliation keeps asking until it becomes one we know.
        log.warning("unknown_order_status", status=raw)
        status = OrderStatus.ACCEPTED
    if status in (OrderStatus.NEW, OrderStatus.ACCEPTED) and filled_qty > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def parse_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise WireFormatError(f"timestamp is not a string: {value!r}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise WireFormatError(f"unreadable timestamp {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def decimal_or_none(raw: dict[str, Any], name: str) -> Decimal | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise WireFormatError(f"{name} is not a number: {value!r}") from None
    if not number.is_finite():
        raise WireFormatError(f"{name} is not finite: {value!r}")
    return number


def required_decimal(raw: dict[str, Any], name: str) -> Decimal:
    number = decimal_or_none(raw, name)
    if number is None:
        raise WireFormatError(f"{name} is missing")
    return number


def required_str(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise WireFormatError(f"{name} is missing")
    return value


def order_type(raw: dict[str, Any]) -> OrderType:
    """The order's type from `type` (or `order_type`, which Alpaca also sends); unknown types read as market."""
    name = raw.get("type") or raw.get("order_type")
    return _ORDER_TYPES.get(name, OrderType.MARKET) if isinstance(name, str) else OrderType.MARKET


def time_in_force(raw: dict[str, Any]) -> TimeInForce:
    """`gtc` rests until filled or canceled; every other time in force (day, opg, cls, ioc, fok) ends by the close."""
    return TimeInForce.GTC if raw.get("time_in_force") == TimeInForce.GTC.value else TimeInForce.DAY


def order_from_wire(raw: dict[str, Any]) -> BrokerOrder:
    """An order as Alpaca reports it. A trailing stop's `stop_price` is its current level (`hwm` less the trail),
    which moves with the high-water mark; the mark itself is not kept."""
    filled_qty = decimal_or_none(raw, "filled_qty") or Decimal(0)
    side = required_str(raw, "side")
    if side not in ("buy", "sell"):
        raise WireFormatError(f"unknown order side {side!r}")
    status_text = required_str(raw, "status")
    return BrokerOrder(
        client_order_id=required_str(raw, "client_order_id"),
        broker_order_id=required_str(raw, "id"),
        symbol=required_str(raw, "symbol"),
        side=OrderSide(side),
        status=order_status(status_text, filled_qty),
        qty=decimal_or_none(raw, "qty"),
        notional=decimal_or_none(raw, "notional"),
        filled_qty=filled_qty,
        filled_avg_price=decimal_or_none(raw, "filled_avg_price"),
        submitted_at=parse_time(raw.get("submitted_at")) or parse_time(raw.get("created_at")),
        updated_at=parse_time(raw.get("updated_at")),
        # A vendor status our enum folds away (done_for_day, replaced, held...) is kept as the reason.
        reason="" if status_text in _OUR_STATUS_NAMES else status_text,
        order_type=order_type(raw),
        time_in_force=time_in_force(raw),
        stop_price=decimal_or_none(raw, "stop_price"),
        trail_percent=decimal_or_none(raw, "trail_percent"),
    )


def asset_from_wire(raw: dict[str, Any]) -> Asset:
    status = raw.get("status", "active")
    return Asset(
        symbol=required_str(raw, "symbol"),
        tradable=bool(raw.get("tradable")) and status == "active",
        fractionable=bool(raw.get("fractionable")),
    )


def position_from_wire(raw: dict[str, Any]) -> Position:
    qty = required_decimal(raw, "qty")
    if raw.get("side") == "short" and qty > 0:
        qty = -qty  # Alpaca already signs short quantities; guard against a payload that does not
    return Position(
        symbol=required_str(raw, "symbol"),
        qty=qty,
        avg_entry_price=required_decimal(raw, "avg_entry_price"),
        market_price=required_decimal(raw, "current_price"),
    )


def account_from_wire(raw: dict[str, Any]) -> Account:
    """`buying_power` here is cash the daemon may spend: never margin. Alpaca's `buying_power` is 2-4x equity on a
    margin account; `non_marginable_buying_power` is the cash figure, and both are already net of open orders."""
    buying_power = required_decimal(raw, "buying_power")
    if raw.get("non_marginable_buying_power") is not None:
        buying_power = min(buying_power, required_decimal(raw, "non_marginable_buying_power"))
    return Account(
        equity=required_decimal(raw, "equity"),
        cash=required_decimal(raw, "cash"),
        buying_power=buying_power,
    )


def mask_account_number(number: str) -> str:
    """Enough to recognise the account in a log line, not enough to use it: all but the last 4 characters hidden."""
    visible = number[-4:] if len(number) > 4 else ""
    return "*" * (len(number) - len(visible)) + visible


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """What the live-trading banner shows."""

    masked_number: str
    status: str
    currency: str
    equity: Decimal
    trading_blocked: bool


def account_summary_from_wire(raw: dict[str, Any]) -> AccountSummary:
    return AccountSummary(
        masked_number=mask_account_number(str(raw.get("account_number", ""))),
        status=str(raw.get("status", "")),
        currency=str(raw.get("currency", "")),
        equity=required_decimal(raw, "equity"),
        trading_blocked=bool(raw.get("trading_blocked")) or bool(raw.get("account_blocked")),
    )


@dataclass(frozen=True, slots=True)
class MarketClock:
    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime


def clock_from_wire(raw: dict[str, Any]) -> MarketClock:
    def required_time(name: str) -> datetime:
        moment = parse_time(raw.get(name))
        if moment is None:
            raise WireFormatError(f"{name} is missing")
        return moment

    return MarketClock(
        timestamp=required_time("timestamp"),
        is_open=bool(raw.get("is_open")),
        next_open=required_time("next_open"),
        next_close=required_time("next_close"),
    )


@dataclass(frozen=True, slots=True)
class TradingSession:
    """One trading day's regular session, UTC-aware (an early close shows as a close before 16:00 ET)."""

    day: date
    open: datetime
    close: datetime


def session_from_wire(raw: dict[str, Any]) -> TradingSession:
    try:
        day = date.fromisoformat(required_str(raw, "date"))
        opens = time.fromisoformat(required_str(raw, "open"))
        closes = time.fromisoformat(required_str(raw, "close"))
    except ValueError as error:
        raise WireFormatError(f"unreadable calendar row {raw!r}: {error}") from None
    return TradingSession(
        day=day,
        open=ny_instant(day, opens),
        close=ny_instant(day, closes),
    )


@dataclass(frozen=True, slots=True)
class Execution:
    """The exact execution a fill / partial_fill trade update reports."""

    execution_id: str
    qty: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True)
class TradeEvent:
    event: str
    order: BrokerOrder
    ts: datetime
    execution: Execution | None


def trade_event_from_wire(message: dict[str, Any]) -> TradeEvent:
    """One `trade_updates` stream message (the whole `{"stream": ..., "data": ...}` object)."""
    data = message.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("order"), dict):
        raise WireFormatError("trade update without data.order")
    order = order_from_wire(data["order"])
    ts = parse_time(data.get("timestamp")) or order.updated_at
    if ts is None:
        raise WireFormatError("trade update without a timestamp")
    execution = None
    price, qty = decimal_or_none(data, "price"), decimal_or_none(data, "qty")
    if data.get("execution_id") and price is not None and qty is not None:
        execution = Execution(execution_id=str(data["execution_id"]), qty=qty, price=price)
    return TradeEvent(event=str(data.get("event", "")), order=order, ts=ts, execution=execution)


# ---- market data -----------------------------------------------------------------------------------------------------

_BAR_FIELDS = ("o", "h", "l", "c", "v")


def bars_from_wire(raw: Sequence[dict[str, Any]]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """One symbol's bars (`{"t","o","h","l","c","v",...}`) as arrays, judged later (`core.bar_sanity`), never here:
    bar start times in epoch ns (`UNREADABLE_TIME` where unreadable) and (n, 5) open, high, low, close, volume (NaN
    where missing or not a number)."""
    return _bar_times(raw), _bar_values(raw)


def _bar_times(raw: Sequence[dict[str, Any]]) -> npt.NDArray[np.int64]:
    stamps = [bar.get("t") for bar in raw]
    if all(isinstance(s, str) and s.endswith("Z") for s in stamps):
        try:
            return np.array([s[:-1] for s in stamps], dtype="datetime64[ns]").astype(np.int64)  # type: ignore[index]
        except ValueError:
            pass  # fall back to one at a time
    return np.array([_bar_time(stamp) for stamp in stamps], dtype=np.int64)


def _bar_time(stamp: Any) -> int:
    try:
        moment = parse_time(stamp)
    except WireFormatError:
        return UNREADABLE_TIME
    return UNREADABLE_TIME if moment is None else datetime_to_ns(moment)


def _bar_values(raw: Sequence[dict[str, Any]]) -> npt.NDArray[np.float64]:
    rows = [[bar.get(name) for name in _BAR_FIELDS] for bar in raw]
    try:
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(_BAR_FIELDS))
    except (TypeError, ValueError):
        out = np.full((len(rows), len(_BAR_FIELDS)), np.nan)
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                if isinstance(value, int | float) and not isinstance(value, bool):
                    out[i, j] = float(value)
        return out
