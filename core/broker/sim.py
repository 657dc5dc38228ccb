"""`SimBroker`: the sim `Broker` adapter, a cash account that fills orders against replayed daily bars.

The one rule that keeps a backtest honest: a market order fills at the open of the first bar *after* the latest bar
visible when it was submitted (the bar the signal saw is never a fill price), plus slippage against the trader.

Sell stops rest like they do at a broker, with no lookahead: a stop watches the bars from the first one not complete
when it was placed (a stop placed at a session's open watches that session's bar; one placed after the close, the
next). It triggers when a bar's low reaches its level and fills at the level, or at the open when the bar opens at or
below it (a gap), less the sell slippage. A trailing stop's high-water mark starts at the last complete close when it
is placed and rises with the highs of the complete bars it has watched, never with the bar it is judged on: its level
for a bar is fixed before that bar. The fake Alpaca server (`tests/fakes/alpaca_intraday.py`) walks an invented
intraday path instead, so its mark rises within a day (a stop can trigger on the way down from that day's high); the
two agree on fixed stops and on a trailing stop whose bar does not rise above its mark before reaching the level. A
DAY stop watches one session (the first not complete when placed: one placed after a close is good for the next
session, as at Alpaca) and expires at its close; a GTC stop rests until it fills or is canceled. Every open sell
holds back the shares it would sell, so a market sell of shares a stop covers is refused (`insufficient_qty`).

A bar is *complete* at its session's close (`bar_closes_ns`, from the NYSE calendar) and *started* at its stamp
(midnight New York): market orders fill once their bar has started, while stops, marks (equity, position prices) and
the prices orders are checked against read complete bars only, so a tick at a session's open never sees that day's
close. Without `bar_closes_ns` a bar is complete at its stamp, the rule before stops (the replay's ticks are at
closes, where the two agree).

Outcomes happen when time advances, and `poll_updates()` hands them out like a broker's trade-update stream; every
other call sees the book as of now (a stop that triggered before a cancel fills rather than cancels). Everything is
plain Python and numpy scalar reads, O(open orders + positions) per call, so a 505-symbol, 5-year replay stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

import numpy as np
import numpy.typing as npt

from core.bar_sanity import OHLC_REL_TOLERANCE
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
    OrderType,
    OrderUpdate,
    Position,
    TimeInForce,
    bar_price,
)

_BPS = Decimal(10_000)
_ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)
_LEVEL_QUANTUM = Decimal("0.0001")  # a trailing stop's level, to the 4 decimals Alpaca reports it with
_MARKET = OrderType.MARKET
# What happens within one bar, in this order: market orders fill at its open, then stops trigger on its range.
_OPEN_FILL, _STOP_TRIGGER = 0, 1


def _floor_qty(qty: Decimal, fractionable: bool) -> Decimal:
    if not fractionable:
        return qty.to_integral_value(rounding=ROUND_DOWN)
    return qty.quantize(QTY_QUANTUM, rounding=ROUND_DOWN)


@dataclass(slots=True)
class _Order:
    request: OrderRequest
    # A market order: the bar whose open fills it, the first bar after the last one visible at submit. A stop: the
    # next bar it watches, the first one not complete at submit, then moving on as bars complete.
    fill_row: int
    fractionable: bool
    reserved_cash: Decimal  # buys: cash held back from buying power until the order closes
    reserved_qty: Decimal  # sells: shares held back so two sells cannot sell the same shares
    state: BrokerOrder
    hwm: Decimal = _ZERO  # a trailing stop's high-water mark: the placement price, then complete bars' highs

    @property
    def level(self) -> Decimal:
        """The price at or below which a stop triggers."""
        request = self.request
        if request.stop_price is not None:
            return request.stop_price
        return _trail_level(self.hwm, request.trail_percent or _ZERO)


def _trail_level(hwm: Decimal, percent: Decimal) -> Decimal:
    return (hwm * (_ONE - percent / _HUNDRED)).quantize(_LEVEL_QUANTUM)


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
        bar_closes_ns: npt.NDArray[np.int64] | None = None,
        bar_opens_ns: npt.NDArray[np.int64] | None = None,
    ) -> None:
        """`bar_closes_ns`: when each row of `history` is complete (its session's close, epoch ns); without it a row
        is complete at its stamp. `bar_opens_ns`: when each row's session opens (epoch ns), the time an order filling at
        a bar's open is stamped with; without it, the bar's stamp."""
        if initial_cash < 0:
            raise ValueError(f"initial_cash must not be negative, got {initial_cash}")
        if slippage_bps < 0:
            raise ValueError(f"slippage_bps must not be negative, got {slippage_bps}")
        self._history = history
        self._clock = clock
        self._ts_ns = history.timestamps_ns
        self._complete_ns = self._ts_ns if bar_closes_ns is None else _checked_closes(bar_closes_ns, self._ts_ns)
        self._open_ns = self._ts_ns if bar_opens_ns is None else _checked_opens(bar_opens_ns, self._ts_ns)
        self._column_of = {symbol: i for i, symbol in enumerate(history.symbols)}
        self._last_close_row = last_valid_row(history.close)
        self._non_fractionable = frozenset(non_fractionable)
        self._known = frozenset(history.symbols if known_symbols is None else known_symbols)
        self._assets: dict[str, Asset] = {}
        self._buy_factor = _ONE + slippage_bps / _BPS
        self._sell_factor = _ONE - slippage_bps / _BPS

        self._cash = initial_cash
        self._reserved_cash = _ZERO
        self._reserved_qty: dict[str, Decimal] = {}
        self._holdings: dict[str, _Holding] = {}
        self._orders: dict[str, _Order] = {}
        self._open: dict[str, _Order] = {}  # insertion order = submission order = fill priority
        self._queued: list[OrderUpdate] = []  # outcomes since the last poll, handed out by the next one
        self._sequence = 0
        self._settled_ns = -1  # the book is up to date as of this instant
        # The row counts of the last instant asked (the arrays never change): (epoch ns, rows).
        self._started_at: tuple[int, int] = (-1, 0)
        self._complete_at: tuple[int, int] = (-1, 0)

        # Marks are a pure function of the complete bar count; equity also of the holdings (`_version`).
        self._marks_row = -1
        self._marks: dict[str, Decimal] = {}
        self._version = 0
        self._equity_key = (-1, -1)
        self._positions: dict[str, Position] = {}
        self._positions_key = (-1, -1)
        self._equity = initial_cash

    # ------------------------------------------------------------------------------------------------------------------
    # ACCOUNT
    # ------------------------------------------------------------------------------------------------------------------

    async def get_account(self) -> Account:
        self._settle()
        complete = self._complete_rows()
        key = (complete, self._version)
        if key != self._equity_key:
            marks = self._held_marks(complete)
            self._equity = self._cash + sum((h.qty * marks[symbol] for symbol, h in self._holdings.items()), _ZERO)
            self._equity_key = key
        return Account(equity=self._equity, cash=self._cash, buying_power=self._cash - self._reserved_cash)

    async def get_positions(self) -> dict[str, Position]:
        self._settle()
        complete = self._complete_rows()
        key = (complete, self._version)
        if key != self._positions_key:  # like equity: a function of the marks and the holdings
            marks = self._held_marks(complete)
            self._positions = {
                symbol: Position(
                    symbol=symbol,
                    qty=h.qty,
                    avg_entry_price=h.avg_entry_price,
                    market_price=marks[symbol],
                )
                for symbol, h in self._holdings.items()
            }
            self._positions_key = key
        return dict(self._positions)  # the caller's own dict (of frozen positions)

    async def get_asset(self, symbol: str) -> Asset | None:
        return self._asset(symbol)

    def _asset(self, symbol: str) -> Asset | None:
        if symbol not in self._known:
            return None
        asset = self._assets.get(symbol)  # looked up by every order: built once per symbol (frozen)
        if asset is None:
            asset = self._assets[symbol] = Asset(
                symbol=symbol,
                tradable=symbol in self._column_of,
                fractionable=symbol not in self._non_fractionable,
            )
        return asset

    # ------------------------------------------------------------------------------------------------------------------
    # ORDERS
    # ------------------------------------------------------------------------------------------------------------------

    async def submit_order(self, request: OrderRequest) -> BrokerOrder:
        existing = self._orders.get(request.client_order_id)
        if existing is not None:
            return existing.state
        self._settle()
        now = self._clock.now()
        started, complete = self._started_rows(now), self._complete_rows(now)
        symbol = request.symbol
        asset = self._asset(symbol)
        check_order_shape(request, asset)  # what Alpaca would refuse outright, refused alike
        last_close = self._last_close(symbol, complete)
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
        is_market = request.order_type is _MARKET
        order = _Order(
            request=request,
            fill_row=started if is_market else complete,
            fractionable=fractionable,
            reserved_cash=reserved_cash,
            reserved_qty=reserved_qty,
            state=BrokerOrder(
                client_order_id=request.client_order_id,
                broker_order_id=f"sim-{self._sequence:08d}",
                symbol=symbol,
                side=request.side,
                status=OrderStatus.ACCEPTED,
                qty=qty,
                notional=notional,
                submitted_at=now,
                updated_at=now,
                order_type=request.order_type,
                time_in_force=request.time_in_force,
                stop_price=request.stop_price,
                trail_percent=request.trail_percent,
            ),
        )
        if request.trail_percent is not None:
            # A trailing stop's mark starts at the last price the sim knows, as Alpaca's starts at the price when it is
            # placed: the open of a session under way (at the sim's open tick an entry has just filled there), else the
            # last close. Never a later price of that bar: no lookahead.
            order.hwm = self._session_open(symbol, started, complete) or last_close
            order.state = replace(order.state, stop_price=order.level)
        self._reserve(order)
        self._orders[request.client_order_id] = order
        self._open[request.client_order_id] = order
        return order.state

    async def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        self._settle()
        order = self._orders.get(client_order_id)
        return order.state if order is not None else None

    async def get_order(self, client_order_id: str) -> BrokerOrder | None:
        # Every order in the book is followed by poll_updates already.
        return await self.get_order_by_client_id(client_order_id)

    async def get_open_orders(self) -> list[BrokerOrder]:
        self._settle()
        return [order.state for order in self._open.values()]

    async def list_closed_orders(self, after: datetime | None) -> list[BrokerOrder]:
        # The book keeps every order it ever took, in submission order.
        self._settle()
        return [
            order.state
            for order in self._orders.values()
            if not order.state.status.is_open
            and (after is None or (order.state.submitted_at is not None and order.state.submitted_at > after))
        ]

    async def cancel_order(self, client_order_id: str) -> None:
        """Cancel an open order. One that ended before now (a stop that triggered, a market order whose open came)
        ends as it did, and the next poll says so; only an order whose end a poll already reported is refused."""
        order = self._orders.get(client_order_id)
        if order is None:
            raise OrderRejectedError(RejectionReason.UNKNOWN_ORDER, f"no order with client order id {client_order_id}")
        self._settle()
        if client_order_id in self._open:
            now = self._clock.now()
            self._queued.append(OrderUpdate(order=self._close(order, OrderStatus.CANCELED, now), ts=now))
        elif not any(update.order.client_order_id == client_order_id for update in self._queued):
            raise OrderRejectedError(RejectionReason.NOT_CANCELABLE, f"order is already {order.state.status.value}")

    async def poll_updates(self) -> list[OrderUpdate]:
        self._settle()
        updates, self._queued = self._queued, []
        if len(updates) > 1:
            updates.sort(key=lambda update: update.ts)  # stable: a bar's open fills, then its stops, then cancels
        return updates

    def _settle(self) -> None:
        """Bring the book up to now: market orders whose bar has started fill at its open; stops watch the bars
        completed since they last looked and fill or expire. Outcomes queue for the next poll, oldest bar first."""
        now_ns = datetime_to_ns(self._clock.now())
        if now_ns == self._settled_ns:
            return  # nothing placed since can be due yet: its first bar is after now
        self._settled_ns = now_ns
        if not self._open:
            return
        started = self._started_rows_ns(now_ns)
        complete = self._complete_rows_ns(now_ns)
        due: list[_Order] = []
        watched: list[_Order] = []
        for order in self._open.values():
            if order.request.order_type is _MARKET:
                if order.fill_row < started:
                    due.append(order)
            elif order.fill_row < complete:
                watched.append(order)
        if not watched:
            self._queued.extend(self._execute(order) for order in due)
            return
        events: list[tuple[int, int, _Order, Decimal | None]] = [(o.fill_row, _OPEN_FILL, o, None) for o in due]
        for order in watched:
            outcome = self._watch(order, complete)
            if outcome is not None:
                events.append((outcome[0], _STOP_TRIGGER, order, outcome[1]))
        events.sort(key=lambda event: (event[0], event[1]))  # stable: submission order within a bar and kind
        for row, kind, order, price in events:
            if kind == _OPEN_FILL:
                self._queued.append(self._execute(order))
            elif price is None:
                self._queued.append(self._expire(order, row))
            else:
                self._queued.append(self._trigger(order, row, price))

    # ------------------------------------------------------------------------------------------------------------------
    # FILLS
    # ------------------------------------------------------------------------------------------------------------------

    def _execute(self, order: _Order) -> OrderUpdate:
        request = order.request
        row = order.fill_row
        bar_ts = ns_to_datetime(int(self._open_ns[row]))  # the fill's real time: the open it fills at
        self._release(order)
        column = self._column_of[request.symbol]
        raw_open = float(self._history.open[row, column])
        low, high = float(self._history.low[row, column]), float(self._history.high[row, column])
        # The data agent rejects such a bar (`ohlc_inconsistent`), but the fill reads the history itself: an open
        # outside [low, high] (1e6 under a high of 498 once filled a sell at 999,500) is no tradable open either.
        inconsistent = _outside_range(raw_open, low, high)
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

    # ------------------------------------------------------------------------------------------------------------------
    # STOPS
    # ------------------------------------------------------------------------------------------------------------------

    def _session_open(self, symbol: str, started: int, complete: int) -> Decimal | None:
        """The open of the bar under way (started, not complete), when it has a tradable one (the sim ticks inside a
        session at its open or later, never before it)."""
        if started <= complete:
            return None
        column = self._column_of[symbol]
        row = started - 1
        raw_open, low, high = (
            float(a[row, column]) for a in (self._history.open, self._history.low, self._history.high)
        )
        return bar_price(raw_open) if _tradable(raw_open, low, high) else None

    def _watch(self, order: _Order, complete: int) -> tuple[int, Decimal | None] | None:
        """Follow a resting stop over the complete bars it has not seen: `(row, price)` for the bar that triggers it
        and the price it fills at before slippage, `(row, None)` when a DAY stop's session ended untriggered (it
        expires), None while it rests (it has then seen every complete bar)."""
        column = self._column_of[order.request.symbol]
        trailing = order.request.trail_percent is not None
        day = order.request.time_in_force == TimeInForce.DAY
        hwm = order.hwm
        opens, lows, highs = self._history.open, self._history.low, self._history.high
        for row in range(order.fill_row, complete):  # per resting stop per session: three scalar reads, no generator
            raw_open, low, high = float(opens[row, column]), float(lows[row, column]), float(highs[row, column])
            if _tradable(raw_open, low, high):
                level = order.level
                opened = bar_price(raw_open)
                if opened <= level:
                    return row, opened  # the bar opens through the stop: the open is the first price it can get
                if bar_price(low) <= level:
                    return row, level
                if trailing:
                    order.hwm = max(order.hwm, bar_price(high))  # known once the bar is complete: for the next bar
            if day:
                return row, None
        order.fill_row = complete
        if order.hwm != hwm:
            order.state = replace(order.state, stop_price=order.level)
        return None

    def _trigger(self, order: _Order, row: int, price: Decimal) -> OrderUpdate:
        # A gap through the stop fills at the open, so it is stamped at the session's open (a stop placed at that open
        # watches the bar from then on: never before it was placed). One that triggers within the bar is stamped at
        # the session's close, when the bar is complete: the sim does not know the moment within the day.
        self._release(order)
        opened = bar_price(float(self._history.open[row, self._column_of[order.request.symbol]]))
        at = self._open_ns[row] if price == opened else self._complete_ns[row]
        return self._fill_sell(order, price * self._sell_factor, ns_to_datetime(int(at)))

    def _expire(self, order: _Order, row: int) -> OrderUpdate:
        closed_at = ns_to_datetime(int(self._complete_ns[row]))
        return OrderUpdate(order=self._close(order, OrderStatus.EXPIRED, closed_at), ts=closed_at)

    def _record_fill(self, order: _Order, qty: Decimal, price: Decimal, ts: datetime, reason: str) -> OrderUpdate:
        self._version += 1
        del self._open[order.request.client_order_id]
        state = order.state
        order.state = _moved(state, OrderStatus.FILLED, ts, reason, filled_qty=qty, filled_avg_price=price)
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
        state = order.state
        order.state = _moved(state, status, ts, reason, state.filled_qty, state.filled_avg_price)
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

    def _started_rows(self, now: datetime) -> int:
        """How many bars have started (their stamp is at or before now): their opens are known."""
        return self._started_rows_ns(datetime_to_ns(now))

    def _started_rows_ns(self, now_ns: int) -> int:
        # Asked for every order and every settle at the same instant: one search per clock reading.
        if now_ns != self._started_at[0]:
            self._started_at = (now_ns, int(np.searchsorted(self._ts_ns, now_ns, side="right")))
        return self._started_at[1]

    def _complete_rows(self, now: datetime | None = None) -> int:
        """How many bars are complete (their session closed by now): their closes, lows and highs are known."""
        return self._complete_rows_ns(datetime_to_ns(self._clock.now() if now is None else now))

    def _complete_rows_ns(self, now_ns: int) -> int:
        if now_ns != self._complete_at[0]:
            self._complete_at = (now_ns, int(np.searchsorted(self._complete_ns, now_ns, side="right")))
        return self._complete_at[1]

    def _last_close(self, symbol: str, complete: int) -> Decimal | None:
        if complete == 0:
            return None
        column = self._column_of[symbol]
        row = int(self._last_close_row[complete - 1, column])
        return bar_price(self._history.close[row, column]) if row >= 0 else None

    def _held_marks(self, complete: int) -> dict[str, Decimal]:
        """The marks of every held symbol (`_mark` of each), the ones not cached yet read in one numpy gather: a
        new session asks them all at once, ~200 holdings in the peer bench."""
        if complete != self._marks_row:
            self._marks_row = complete
            self._marks = {}
        marks = self._marks
        missing = [symbol for symbol in self._holdings if symbol not in marks]
        if missing and complete > 0:
            columns = np.fromiter((self._column_of[symbol] for symbol in missing), dtype=np.intp, count=len(missing))
            rows = self._last_close_row[complete - 1, columns]
            closes = self._history.close[rows, columns].tolist()
            for symbol, row, close in zip(missing, rows.tolist(), closes, strict=True):
                if row >= 0:
                    marks[symbol] = bar_price(close)
        for symbol in missing:
            if symbol not in marks:
                # A holding implies a fill after a complete close, so this is a broken invariant, not missing data.
                raise BrokerError(f"no complete close for held symbol {symbol}")
        return marks

    @staticmethod
    def _require(value: Decimal | None) -> Decimal:
        if value is None:
            raise BrokerError("order amount missing")
        return value


def _tradable(raw_open: float, low: float, high: float) -> bool:
    """Whether a bar's open, low and high are prices a stop can trigger on: the bar-sanity rules (`core/bar_sanity.py`)
    for these three, on scalars (this runs per resting stop per bar)."""
    if not (math.isfinite(raw_open) and math.isfinite(low) and math.isfinite(high)) or low <= 0:
        return False
    slack = OHLC_REL_TOLERANCE * abs(high)
    return low - slack <= raw_open <= high + slack


def _outside_range(price: float, low: float, high: float) -> bool:
    """`core/bar_sanity.py::outside_range` on scalars (once per fill: no arrays made), the same float arithmetic."""
    slack = OHLC_REL_TOLERANCE * abs(high)
    return price > high + slack or price < low - slack


def _checked_opens(opens_ns: npt.NDArray[np.int64], stamps_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    if opens_ns.shape != stamps_ns.shape or bool(np.any(opens_ns < stamps_ns)):
        raise ValueError("bar_opens_ns must give one time per bar, none before the bar's stamp")
    return opens_ns


def _checked_closes(closes_ns: npt.NDArray[np.int64], stamps_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    closes = np.asarray(closes_ns, dtype=np.int64)
    if closes.shape != stamps_ns.shape:
        raise ValueError(f"bar_closes_ns has {closes.shape[0]} rows, the history {stamps_ns.shape[0]}")
    if (closes < stamps_ns).any() or (np.diff(closes) <= 0).any():
        raise ValueError("bar_closes_ns must be increasing and no earlier than each bar's stamp")
    return closes


def _moved(
    state: BrokerOrder,
    status: OrderStatus,
    ts: datetime,
    reason: str,
    filled_qty: Decimal,
    filled_avg_price: Decimal | None,
) -> BrokerOrder:
    """`state` in its new status. Built field by field, not by `dataclasses.replace` (which inspects the fields on
    every call): once per fill and per expiring DAY stop (~19,000 a default replay)."""
    return BrokerOrder(
        client_order_id=state.client_order_id,
        broker_order_id=state.broker_order_id,
        symbol=state.symbol,
        side=state.side,
        status=status,
        qty=state.qty,
        notional=state.notional,
        filled_qty=filled_qty,
        filled_avg_price=filled_avg_price,
        submitted_at=state.submitted_at,
        updated_at=ts,
        reason=reason,
        order_type=state.order_type,
        time_in_force=state.time_in_force,
        stop_price=state.stop_price,
        trail_percent=state.trail_percent,
    )
