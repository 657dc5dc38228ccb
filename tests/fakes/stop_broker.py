"""`StopBroker`: a small in-memory `Broker` double that follows the stop contract (docs/ARCHITECTURE.md §Ports and
adapters), for the protective-stop tests.

- Market orders fill at `prices[symbol]` on the next `poll_updates()`.
- Sell `stop` / `trailing_stop` orders rest until the test triggers them (`trigger`), fully or partly, or a DAY one
  expires (`expire_day_orders`). GTC needs a whole-share qty; stop prices must be on the tick.
- Open sells hold their remaining quantity back: a sell for shares an open sell already covers is refused
  (`insufficient_qty`), so the daemon must see a stop canceled before it sells the same shares.
- `cancel_order` only asks: the cancel is confirmed by the next poll (after `cancel_lag` more polls), unless the
  test said the stop triggers first (`fill_before_cancel`): then it fills instead.
- Every refusal is kept in `refused`; every fill in `fills`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from core.broker.base import BrokerError, OrderRejectedError
from core.clock import Clock
from core.reasons import RejectionReason
from core.types import (
    CENT,
    Account,
    Asset,
    BrokerOrder,
    Fill,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    TimeInForce,
)

_ZERO = Decimal(0)


class StopBroker:
    def __init__(
        self,
        clock: Clock,
        *,
        prices: dict[str, Decimal],
        assets: Iterable[Asset] = (),
        cash: Decimal = Decimal(1_000_000),
    ) -> None:
        self._clock = clock
        self.prices = dict(prices)
        self.assets = {a.symbol: a for a in assets} or {s: Asset(s, tradable=True, fractionable=True) for s in prices}
        self.cash = cash
        self.held: dict[str, tuple[Decimal, Decimal]] = {}  # symbol -> (qty, avg entry price)
        self.orders: dict[str, BrokerOrder] = {}
        self.refused: list[tuple[str, RejectionReason]] = []
        self.fills: list[Fill] = []
        self.fill_before_cancel: set[str] = set()  # stops that trigger before the broker acts on their cancel
        self.cancel_lag = 0  # polls a cancel waits before it is confirmed
        self.cancel_requests: list[str] = []
        self._cancels: dict[str, int] = {}  # coid -> polls still to wait
        self._queued: list[OrderUpdate] = []
        self._sequence = 0
        self._executions = 0

    # -- account ------------------------------------------------------------------------------------------------
    async def get_account(self) -> Account:
        equity = self.cash + sum((qty * self.prices[s] for s, (qty, _) in self.held.items()), _ZERO)
        return Account(equity=equity, cash=self.cash, buying_power=self.cash)

    async def get_positions(self) -> dict[str, Position]:
        return {s: Position(s, qty, avg, self.prices[s]) for s, (qty, avg) in self.held.items()}

    async def get_asset(self, symbol: str) -> Asset | None:
        return self.assets.get(symbol)

    # -- orders -------------------------------------------------------------------------------------------------
    async def submit_order(self, request: OrderRequest) -> BrokerOrder:
        known = self.orders.get(request.client_order_id)
        if known is not None:
            return known
        self._check(request)
        self._sequence += 1
        now = self._clock.now()
        order = BrokerOrder(
            client_order_id=request.client_order_id,
            broker_order_id=f"sb-{self._sequence}",
            symbol=request.symbol,
            side=request.side,
            status=OrderStatus.ACCEPTED,
            qty=request.qty,
            notional=request.notional,
            submitted_at=now,
            updated_at=now,
            order_type=request.order_type,
            time_in_force=request.time_in_force,
            stop_price=request.stop_price,
            trail_percent=request.trail_percent,
        )
        self.orders[order.client_order_id] = order
        return order

    def _check(self, request: OrderRequest) -> None:
        def refuse(reason: RejectionReason, message: str) -> None:
            self.refused.append((request.client_order_id, reason))
            raise OrderRejectedError(reason, message)

        if request.order_type is not OrderType.MARKET:
            if request.side is not OrderSide.SELL or request.qty is None:
                refuse(RejectionReason.REJECTED, "stops are sell orders with a qty")
            qty = request.qty or _ZERO
            if request.time_in_force is TimeInForce.GTC and qty != qty.to_integral_value():
                refuse(RejectionReason.INVALID_QTY, "a fractional qty rests only as a DAY order")
            price = request.stop_price
            if price is not None and price != price.quantize(CENT if price >= 1 else Decimal("0.0001")):
                refuse(RejectionReason.REJECTED, f"stop price {price} is off the tick")
        if request.side is OrderSide.SELL:
            wanted = request.qty if request.qty is not None else _ZERO
            if wanted > self.available(request.symbol):
                refuse(RejectionReason.INSUFFICIENT_QTY, f"sell {wanted}, {self.available(request.symbol)} available")

    def available(self, symbol: str) -> Decimal:
        """Held shares not already covered by an open sell."""
        held = self.held.get(symbol, (_ZERO, _ZERO))[0]
        sells = (o for o in self.open_orders() if o.symbol == symbol and o.side is OrderSide.SELL)
        covered = sum((o.open_qty for o in sells), _ZERO)
        return held - covered

    def open_orders(self) -> list[BrokerOrder]:
        return [o for o in self.orders.values() if o.status.is_open]

    async def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        return self.orders.get(client_order_id)

    async def get_order(self, client_order_id: str) -> BrokerOrder | None:
        return self.orders.get(client_order_id)

    async def get_open_orders(self) -> list[BrokerOrder]:
        return self.open_orders()

    async def list_closed_orders(self, after: datetime | None) -> list[BrokerOrder]:
        return [
            o
            for o in self.orders.values()
            if not o.status.is_open and (after is None or (o.submitted_at is not None and o.submitted_at > after))
        ]

    async def cancel_order(self, client_order_id: str) -> None:
        self.cancel_requests.append(client_order_id)
        order = self.orders.get(client_order_id)
        if order is None:
            raise OrderRejectedError(RejectionReason.UNKNOWN_ORDER, client_order_id)
        if not order.status.is_open:
            raise OrderRejectedError(RejectionReason.NOT_CANCELABLE, f"order is {order.status.value}")
        if client_order_id in self.fill_before_cancel:
            self.trigger(client_order_id)
            return
        self._cancels.setdefault(client_order_id, self.cancel_lag)

    async def poll_updates(self) -> list[OrderUpdate]:
        for order in self.open_orders():
            if order.order_type is OrderType.MARKET:
                self._fill(order, order.open_qty if order.qty is not None else None, self.prices[order.symbol])
        for coid, lag in list(self._cancels.items()):
            if lag > 0:
                self._cancels[coid] = lag - 1
                continue
            del self._cancels[coid]
            order = self.orders[coid]
            if order.status.is_open:
                self._close(order, OrderStatus.CANCELED)
        updates, self._queued = self._queued, []
        return updates

    # -- what the market does -----------------------------------------------------------------------------------
    def trigger(self, client_order_id: str, qty: Decimal | None = None, price: Decimal | None = None) -> None:
        """The stop triggers and sells `qty` (default: all it still may) at `price` (default: its stop price)."""
        order = self.orders[client_order_id]
        if not order.status.is_open or order.order_type is OrderType.MARKET:
            raise BrokerError(f"{client_order_id} is not a resting stop")
        fill_price = price or order.stop_price or self.prices[order.symbol]
        self._fill(order, order.open_qty if qty is None else min(qty, order.open_qty), fill_price)

    def expire_day_orders(self) -> None:
        """The session closed: DAY stops still open expire."""
        for order in self.open_orders():
            if order.order_type is not OrderType.MARKET and order.time_in_force is TimeInForce.DAY:
                self._close(order, OrderStatus.EXPIRED)

    def _fill(self, order: BrokerOrder, qty: Decimal | None, price: Decimal) -> None:
        symbol = order.symbol
        held, avg = self.held.get(symbol, (_ZERO, _ZERO))
        if qty is None:  # a notional buy
            qty = ((order.notional or _ZERO) / price).quantize(Decimal("0.000000001"))
        if order.side is OrderSide.SELL:
            if qty > held:
                raise AssertionError(f"{order.client_order_id} would sell {qty} {symbol} of {held} held")
            self.held[symbol] = (held - qty, avg)
            if held == qty:
                del self.held[symbol]
            self.cash += qty * price
        else:
            total = held + qty
            self.held[symbol] = (total, (held * avg + qty * price) / total)
            self.cash -= qty * price
        filled = order.filled_qty + qty
        status = OrderStatus.FILLED if order.qty is None or filled >= order.qty else OrderStatus.PARTIALLY_FILLED
        order = replace(order, status=status, filled_qty=filled, filled_avg_price=price, updated_at=self._clock.now())
        self.orders[order.client_order_id] = order
        self._executions += 1
        fill = Fill(
            execution_id=f"sbx-{self._executions}",
            client_order_id=order.client_order_id,
            symbol=symbol,
            side=order.side,
            qty=qty,
            price=price,
            ts=self._clock.now(),
        )
        self.fills.append(fill)
        self._queued.append(OrderUpdate(order=order, ts=fill.ts, fill=fill))

    def _close(self, order: BrokerOrder, status: OrderStatus) -> None:
        order = replace(order, status=status, updated_at=self._clock.now())
        self.orders[order.client_order_id] = order
        self._queued.append(OrderUpdate(order=order, ts=self._clock.now()))

    # -- what tests check ---------------------------------------------------------------------------------------
    def sold(self, symbol: str) -> Decimal:
        return sum((f.qty for f in self.fills if f.symbol == symbol and f.side is OrderSide.SELL), _ZERO)

    def bought(self, symbol: str) -> Decimal:
        return sum((f.qty for f in self.fills if f.symbol == symbol and f.side is OrderSide.BUY), _ZERO)

    def resting_stops(self, symbol: str) -> list[BrokerOrder]:
        return [o for o in self.open_orders() if o.symbol == symbol and o.order_type is not OrderType.MARKET]
