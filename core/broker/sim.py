"""`SimBroker`: the sim `Broker` adapter, a cash account that fills market orders against replayed bars.

The one rule that keeps a backtest honest: an order fills at the open of the first bar *after* the latest bar visible
when it was submitted (the bar the signal saw is never a fill price), plus slippage against the trader. Fills happen
when time advances and `poll_updates()` runs, like a broker's trade-update stream. Everything is plain Python and
numpy scalar reads, O(open orders + positions) per call, so a 505-symbol, 5-year replay stays fast.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

import numpy as np

from core.bar_sanity import outside_range
from core.bars import last_valid_row
from core.broker.base import BrokerError, OrderRejectedError
from core.broker.order_shape import check_order_shape
from core.clock import Clock
from core.reasons import CancelReason, FillNote, RejectionReason
from core.timeconv import datetime_to_ns, ns_to_datetime
from core.types import (
    QTY_QUANTUM,
    Account,
    Asset,
    BarFrame,
    BrokerOrder,
    Fill,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderUpdate,
    Position,
    bar_price,
)

_BPS = Decimal(10_000)
_ZERO = Decimal(0)
_ONE = Decimal(1)


def _floor_qty(qty: Decimal, fractionable: bool) -> Decimal:
    if not fractionable:
        return qty.to_integral_value(rounding=ROUND_DOWN)
    return qty.quantize(QTY_QUANTUM, rounding=ROUND_DOWN)


@dataclass(slots=True)
class _Order:
    request: OrderRequest
    fill_row: int  # index of the bar whose open fills it: the first bar after the last one visible at submit
    fractionable: bool
    reserved_cash: Decimal  # buys: cash held back from buying power until the order closes
    reserved_qty: Decimal  # sells: shares held back so two sells cannot sell the same shares
    state: BrokerOrder


@dataclass(slots=True)
class _Holding:
    qty: Decimal
    avg_entry_price: Decimal


class SimBroker:
    def __init__(
        self,
        history: BarFrame,
        clock: Clock,
        initial_cash: Decimal,
        slippage_bps: Decimal,
        *,
        non_fractionable: Collection[str] = frozenset(),
        known_symbols: Collection[str] | None = None,
    ) -> None:
        if initial_cash < 0:
            raise ValueError(f"initial_cash must not be negative, got {initial_cash}")
        if slippage_bps < 0:
            raise ValueError(f"slippage_bps must not be negative, got {slippage_bps}")
        self._history = history
        self._clock = clock
        self._ts_ns = history.timestamps_ns
        self._column_of = {symbol: i for i, symbol in enumerate(history.symbols)}
        self._last_close_row = last_valid_row(history.close)
        self._non_fractionable = frozenset(non_fractionable)
        self._known = frozenset(history.symbols if known_symbols is None else known_symbols)
        self._buy_factor = _ONE + slippage_bps / _BPS
        self._sell_factor = _ONE - slippage_bps / _BPS

        self._cash = initial_cash
        self._reserved_cash = _ZERO
        self._reserved_qty: dict[str, Decimal] = {}
        self._holdings: dict[str, _Holding] = {}
        self._orders: dict[str, _Order] = {}
        self._open: dict[str, _Order] = {}  # insertion order = submission order = fill priority
        self._queued: list[OrderUpdate] = []  # updates not tied to a bar (cancels), handed out by the next poll
        self._sequence = 0

        # Marks are a pure function of the visible bar count; equity also of the holdings (`_version`).
        self._marks_row = -1
        self._marks: dict[str, Decimal] = {}
        self._version = 0
        self._equity_key = (-1, -1)
        self._equity = initial_cash

    # ------------------------------------------------------------------------------------------------------------------
    # ACCOUNT
    # ------------------------------------------------------------------------------------------------------------------

    async def get_account(self) -> Account:
        visible = self._visible_rows()
        key = (visible, self._version)
        if key != self._equity_key:
            self._equity = self._cash + sum(
                (h.qty * self._mark(symbol, visible) for symbol, h in self._holdings.items()), _ZERO
            )
            self._equity_key = key
        return Account(equity=self._equity, cash=self._cash, buying_power=self._cash - self._reserved_cash)

    async def get_positions(self) -> dict[str, Position]:
        visible = self._visible_rows()
        return {
            symbol: Position(
                symbol=symbol,
                qty=h.qty,
                avg_entry_price=h.avg_entry_price,
                market_price=self._mark(symbol, visible),
            )
            for symbol, h in self._holdings.items()
        }

    async def get_asset(self, symbol: str) -> Asset | None:
        return self._asset(symbol)

    def _asset(self, symbol: str) -> Asset | None:
        if symbol not in self._known:
            return None
        return Asset(
            symbol=symbol,
            tradable=symbol in self._column_of,
            fractionable=symbol not in self._non_fractionable,
        )

    # ------------------------------------------------------------------------------------------------------------------
    # ORDERS
    # ------------------------------------------------------------------------------------------------------------------

    async def submit_order(self, request: OrderRequest) -> BrokerOrder:
        existing = self._orders.get(request.client_order_id)
        if existing is not None:
            return existing.state
        now = self._clock.now()
        visible = self._visible_rows(now)
        symbol = request.symbol
        asset = self._asset(symbol)
        check_order_shape(request, asset)  # what Alpaca would refuse outright, refused alike
        last_close = self._last_close(symbol, visible)
        if asset is None or last_close is None:
            raise OrderRejectedError(RejectionReason.NOT_TRADABLE, f"{symbol} has not traded yet")
        fractionable = asset.fractionable
        # Exact already (checked above); written at the broker's 9 decimals, as a broker reports quantities.
        qty = request.qty.quantize(QTY_QUANTUM) if request.qty is not None else None
        notional = request.notional

        reserved_cash = _ZERO
        reserved_qty = _ZERO
        if request.side is OrderSide.BUY:
            estimate = notional if notional is not None else self._require(qty) * last_close * self._buy_factor
            buying_power = self._cash - self._reserved_cash
            if estimate > buying_power:
                shortfall = f"needs {estimate:.2f}, buying power is {buying_power:.2f}"
                raise OrderRejectedError(RejectionReason.INSUFFICIENT_BUYING_POWER, shortfall)
            reserved_cash = estimate
        else:
            holding = self._holdings.get(symbol)
            available = (holding.qty if holding is not None else _ZERO) - self._reserved_qty.get(symbol, _ZERO)
            wanted = qty if qty is not None else _floor_qty(self._require(notional) / last_close, fractionable=True)
            if wanted > available:
                raise OrderRejectedError(
                    RejectionReason.INSUFFICIENT_QTY, f"sell {wanted} {symbol} but only {available} available"
                )
            reserved_qty = wanted

        self._sequence += 1
        state = BrokerOrder(
            client_order_id=request.client_order_id,
            broker_order_id=f"sim-{self._sequence:08d}",
            symbol=symbol,
            side=request.side,
            status=OrderStatus.ACCEPTED,
            qty=qty,
            notional=notional,
            submitted_at=now,
            updated_at=now,
        )
        order = _Order(
            request=request,
            fill_row=visible,
            fractionable=fractionable,
            reserved_cash=reserved_cash,
            reserved_qty=reserved_qty,
            state=state,
        )
        self._reserve(order)
        self._orders[request.client_order_id] = order
        self._open[request.client_order_id] = order
        return state

    async def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        order = self._orders.get(client_order_id)
        return order.state if order is not None else None

    async def get_order(self, client_order_id: str) -> BrokerOrder | None:
        # Every order in the book is followed by poll_updates already.
        return await self.get_order_by_client_id(client_order_id)

    async def get_open_orders(self) -> list[BrokerOrder]:
        return [order.state for order in self._open.values()]

    async def list_closed_orders(self, after: datetime | None) -> list[BrokerOrder]:
        # The book keeps every order it ever took, in submission order.
        return [
            order.state
            for order in self._orders.values()
            if not order.state.status.is_open
            and (after is None or (order.state.submitted_at is not None and order.state.submitted_at > after))
        ]

    async def cancel_order(self, client_order_id: str) -> None:
        order = self._orders.get(client_order_id)
        if order is None:
            raise OrderRejectedError(RejectionReason.UNKNOWN_ORDER, f"no order with client order id {client_order_id}")
        if client_order_id not in self._open:
            raise OrderRejectedError(RejectionReason.NOT_CANCELABLE, f"order is already {order.state.status.value}")
        now = self._clock.now()
        self._queued.append(OrderUpdate(order=self._close(order, OrderStatus.CANCELED, now), ts=now))

    async def poll_updates(self) -> list[OrderUpdate]:
        updates, self._queued = self._queued, []
        if self._open:
            visible = self._visible_rows()
            due = [order for order in self._open.values() if order.fill_row < visible]
            if due:
                updates.extend(self._execute(order) for order in due)
                if len(updates) > len(due):
                    updates.sort(key=lambda update: update.ts)  # cancels (stamped now) after older bar fills
        return updates

    # ------------------------------------------------------------------------------------------------------------------
    # FILLS
    # ------------------------------------------------------------------------------------------------------------------

    def _execute(self, order: _Order) -> OrderUpdate:
        request = order.request
        row = order.fill_row
        bar_ts = ns_to_datetime(int(self._ts_ns[row]))
        self._release(order)
        column = self._column_of[request.symbol]
        raw_open = float(self._history.open[row, column])
        low, high = float(self._history.low[row, column]), float(self._history.high[row, column])
        # The data agent rejects such a bar (`ohlc_inconsistent`), but the fill reads the history itself: an open
        # outside [low, high] (1e6 under a high of 498 once filled a sell at 999,500) is no tradable open either.
        inconsistent = bool(outside_range(np.array(raw_open), np.array(low), np.array(high)))
        if not np.isfinite(raw_open) or raw_open <= 0 or inconsistent:
            # A day order with no tradable open on its bar cannot fill: it expires rather than fill at a made-up price.
            return OrderUpdate(order=self._close(order, OrderStatus.EXPIRED, bar_ts, CancelReason.NO_BAR), ts=bar_ts)
        if request.side is OrderSide.BUY:
            return self._fill_buy(order, bar_price(raw_open) * self._buy_factor, bar_ts)
        return self._fill_sell(order, bar_price(raw_open) * self._sell_factor, bar_ts)

    def _fill_buy(self, order: _Order, price: Decimal, ts: datetime) -> OrderUpdate:
        request = order.request
        reason = ""
        if request.qty is not None:
            qty = self._require(order.state.qty)
            if qty * price > self._cash:
                qty = _floor_qty(self._cash / price, order.fractionable)
                reason = FillNote.REDUCED_TO_BUYING_POWER
            if qty <= 0:
                return self._reject_at_fill(order, RejectionReason.INSUFFICIENT_BUYING_POWER, ts)
        else:
            notional = self._require(request.notional)
            if notional > self._cash:
                return self._reject_at_fill(order, RejectionReason.INSUFFICIENT_BUYING_POWER, ts)
            qty = _floor_qty(notional / price, fractionable=True)
            if qty <= 0:
                return self._reject_at_fill(order, RejectionReason.BELOW_MIN_NOTIONAL, ts)
        self._cash -= qty * price
        holding = self._holdings.get(request.symbol)
        if holding is None:
            self._holdings[request.symbol] = _Holding(qty=qty, avg_entry_price=price)
        else:
            total = holding.qty + qty
            holding.avg_entry_price = (holding.qty * holding.avg_entry_price + qty * price) / total
            holding.qty = total
        return self._record_fill(order, qty, price, ts, reason)

    def _fill_sell(self, order: _Order, price: Decimal, ts: datetime) -> OrderUpdate:
        request = order.request
        holding = self._holdings.get(request.symbol)
        held = holding.qty if holding is not None else _ZERO
        wanted = request.qty if request.qty is not None else self._require(request.notional) / price
        qty = min(_floor_qty(wanted, order.fractionable), held)
        if holding is None or qty <= 0:
            return self._reject_at_fill(order, RejectionReason.INSUFFICIENT_QTY, ts)
        self._cash += qty * price
        holding.qty -= qty
        if holding.qty == 0:
            del self._holdings[request.symbol]
        return self._record_fill(order, qty, price, ts, "")

    def _record_fill(self, order: _Order, qty: Decimal, price: Decimal, ts: datetime, reason: str) -> OrderUpdate:
        self._version += 1
        del self._open[order.request.client_order_id]
        order.state = replace(
            order.state,
            status=OrderStatus.FILLED,
            filled_qty=qty,
            filled_avg_price=price,
            updated_at=ts,
            reason=reason,
        )
        fill = Fill(
            execution_id=f"{order.request.client_order_id}-1",
            client_order_id=order.request.client_order_id,
            symbol=order.request.symbol,
            side=order.request.side,
            qty=qty,
            price=price,
            ts=ts,
        )
        return OrderUpdate(order=order.state, ts=ts, fill=fill)

    def _reject_at_fill(self, order: _Order, reason: RejectionReason, ts: datetime) -> OrderUpdate:
        return OrderUpdate(order=self._close(order, OrderStatus.REJECTED, ts, reason), ts=ts)

    # ------------------------------------------------------------------------------------------------------------------
    # BOOKKEEPING
    # ------------------------------------------------------------------------------------------------------------------

    def _close(self, order: _Order, status: OrderStatus, ts: datetime, reason: str = "") -> BrokerOrder:
        """Move an open order to a final state without a fill."""
        self._release(order)
        self._open.pop(order.request.client_order_id, None)
        order.state = replace(order.state, status=status, updated_at=ts, reason=reason)
        return order.state

    def _reserve(self, order: _Order) -> None:
        self._reserved_cash += order.reserved_cash
        if order.reserved_qty:
            symbol = order.request.symbol
            self._reserved_qty[symbol] = self._reserved_qty.get(symbol, _ZERO) + order.reserved_qty

    def _release(self, order: _Order) -> None:
        """Give back what the order held aside (idempotent: the amounts are zeroed once released)."""
        self._reserved_cash -= order.reserved_cash
        order.reserved_cash = _ZERO
        if order.reserved_qty:
            symbol = order.request.symbol
            left = self._reserved_qty[symbol] - order.reserved_qty
            if left:
                self._reserved_qty[symbol] = left
            else:
                del self._reserved_qty[symbol]
            order.reserved_qty = _ZERO

    def _visible_rows(self, now: datetime | None = None) -> int:
        moment = self._clock.now() if now is None else now
        return int(np.searchsorted(self._ts_ns, datetime_to_ns(moment), side="right"))

    def _last_close(self, symbol: str, visible: int) -> Decimal | None:
        if visible == 0:
            return None
        column = self._column_of[symbol]
        row = int(self._last_close_row[visible - 1, column])
        return bar_price(self._history.close[row, column]) if row >= 0 else None

    def _mark(self, symbol: str, visible: int) -> Decimal:
        """Last close at or before now of a held symbol (cached per visible bar)."""
        if visible != self._marks_row:
            self._marks_row = visible
            self._marks = {}
        mark = self._marks.get(symbol)
        if mark is None:
            mark = self._last_close(symbol, visible)
            if mark is None:
                # A holding implies a fill after a visible close, so this is a broken invariant, not missing data.
                raise BrokerError(f"no close at or before now for held symbol {symbol}")
            self._marks[symbol] = mark
        return mark

    @staticmethod
    def _require(value: Decimal | None) -> Decimal:
        if value is None:
            raise BrokerError("order amount missing")
        return value
