"""Alpaca trading behind the `Broker` port (the only module that imports `alpaca.trading`).

The SDK is synchronous and blind: its calls run in worker threads, its retry is off and ours (`Retrier`) sorts
failures, every request has a timeout and waits for the rate limiter, and payloads are raw dicts converted at
the boundary (`alpaca_wire`). Orders are translated, not decided: the risk agent already chose qty or notional, whole
shares or fractions, and never approves a short or an order below the minimum; an order no approval would hold is
refused before it is sent (`order_shape`), never rounded or re-sized here.

Orders are idempotent through the deterministic client order id: after an ambiguous failure (timeout, reset, 5xx,
garbled reply) the order is looked up by that id before it is sent again with the same id, and a 422
"client_order_id must be unique" means the first attempt landed.

Order updates come from the trade_updates stream, run inside the caller's event loop, and from REST
reconciliation of the orders we follow: after every (re)connect, on a timer, and on every poll while the stream
is down, so that polling alone tracks every order to its final state (Alpaca never replays missed events).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from alpaca.common.enums import Sort
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import AssetClass, AssetStatus, QueryOrderStatus
from alpaca.trading.enums import OrderSide as AlpacaSide
from alpaca.trading.enums import TimeInForce as AlpacaTimeInForce
from alpaca.trading.requests import (
    GetAssetsRequest,
    GetCalendarRequest,
    GetOrdersRequest,
    MarketOrderRequest,
    StopOrderRequest,
    TrailingStopOrderRequest,
)
from alpaca.trading.requests import OrderRequest as AlpacaOrderRequest
from alpaca.trading.stream import TradingStream

from core.broker.alpaca_http import AsyncSleep, CallCounter, FailureKind, Retrier, RetryPolicy, install_transport
from core.broker.alpaca_options import AlpacaConnection
from core.broker.alpaca_wire import (
    AccountSummary,
    MarketClock,
    TradingSession,
    WireFormatError,
    account_from_wire,
    account_summary_from_wire,
    asset_from_wire,
    clock_from_wire,
    order_from_wire,
    position_from_wire,
    session_from_wire,
    trade_event_from_wire,
)
from core.broker.base import AuthenticationError, BrokerError, OrderRejectedError
from core.broker.order_shape import check_order_shape
from core.broker.order_tracker import Observation, OrderTracker
from core.broker.rate_limit import RateLimiter
from core.clock import Clock
from core.reasons import RejectionReason
from core.redact import register_secrets
from core.timeconv import NEW_YORK
from core.types import (
    Account,
    Asset,
    BrokerOrder,
    OrderRequest,
    OrderType,
    OrderUpdate,
    Position,
)

log = structlog.get_logger(__name__)

MAX_ORDERS_PAGE = 500
STOP_STREAM_TIMEOUT_S = 5.0
# Broker messages (lower case) → the stable reasons OrderRejected events carry.
_REJECTION_REASONS = (
    ("insufficient buying power", RejectionReason.INSUFFICIENT_BUYING_POWER),
    ("not fractionable", RejectionReason.NOT_FRACTIONABLE),
    ("not tradable", RejectionReason.NOT_TRADABLE),
    ("insufficient qty", RejectionReason.INSUFFICIENT_QTY),
    ("not allowed to short", RejectionReason.SHORT_NOT_ALLOWED),
    ("sold short", RejectionReason.SHORT_NOT_ALLOWED),
    ("pattern day trad", RejectionReason.PATTERN_DAY_TRADING),
    ("not found", RejectionReason.UNKNOWN_ASSET),
    # Stops (the shape check refuses these first; the broker's own words in case its rules move).
    ("sub-penny", RejectionReason.INVALID_STOP_PRICE),
    ("stop_price", RejectionReason.INVALID_STOP_PRICE),
    ("fractional orders are not supported", RejectionReason.FRACTIONAL_TRAILING_STOP),
    ("trail_percent", RejectionReason.INVALID_TRAIL_PERCENT),
    ("must be day orders", RejectionReason.TIME_IN_FORCE),
    ("time_in_force", RejectionReason.TIME_IN_FORCE),
    ("notional orders must be", RejectionReason.STOP_NOTIONAL),
)


def rejection_reason(status: int | None, message: str) -> RejectionReason:
    """The stable reason for a refusal: from the broker's words, else its HTTP status (`http_<status>`)."""
    lowered = message.lower()
    for needle, reason in _REJECTION_REASONS:
        if needle in lowered:
            return reason
    return RejectionReason.parse(f"http_{status}") if status is not None else RejectionReason.REJECTED


def order_request(request: OrderRequest) -> AlpacaOrderRequest:
    """The wire request for an approved order, amounts and prices as given: a market order, or a sell stop
    (`StopOrderRequest`) or trailing stop (`TrailingStopOrderRequest`, by percent) with the request's time in force.

    The SDK's fields are floats: a cents notional, a 9-decimal qty of up to 15 significant digits and a stop price on
    the tick survive the round trip exactly.
    """
    common: dict[str, Any] = {
        "symbol": request.symbol,
        "qty": float(request.qty) if request.qty is not None else None,
        "notional": float(request.notional) if request.notional is not None else None,
        "side": AlpacaSide(request.side.value),
        "time_in_force": AlpacaTimeInForce(request.time_in_force.value),
        "extended_hours": False,
        "client_order_id": request.client_order_id,
    }
    if request.order_type is OrderType.STOP and request.stop_price is not None:
        return StopOrderRequest(stop_price=float(request.stop_price), **common)
    if request.order_type is OrderType.TRAILING_STOP and request.trail_percent is not None:
        return TrailingStopOrderRequest(trail_percent=float(request.trail_percent), **common)
    return MarketOrderRequest(**common)


def stream_url_for(trading_url: str | None) -> str | None:
    """The trade_updates websocket next to an overridden trading URL; None lets the SDK pick paper or live."""
    if not trading_url:
        return None
    parts = urlsplit(trading_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}/stream"


class _TradeUpdatesStream(TradingStream):
    """TradingStream that reports each (re)connection: whatever happened while it was down must be reconciled."""

    def __init__(self, on_connect: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_connect = on_connect

    async def _start_ws(self) -> None:
        await super()._start_ws()  # type: ignore[no-untyped-call]
        self._on_connect()


class AlpacaBroker:
    def __init__(
        self,
        connection: AlpacaConnection,
        clock: Clock,
        *,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        sleep: AsyncSleep = asyncio.sleep,
        reconcile_interval_s: float = 60.0,
        stream_backoff_s: tuple[float, float] = (1.0, 30.0),
    ) -> None:
        if connection.api_key is None or connection.secret_key is None:
            raise AuthenticationError("Alpaca trading needs ALPACA_API_KEY and ALPACA_SECRET_KEY")
        self._clock = clock
        # whoever built us (CLI, tests, benchmarks), error texts never carry the keys
        register_secrets(connection.api_key, connection.secret_key)
        self._key = connection.api_key.get_secret_value()
        self._secret = connection.secret_key.get_secret_value()
        self._paper = connection.paper
        self._client = TradingClient(
            api_key=self._key,
            secret_key=self._secret,
            paper=self._paper,
            raw_data=True,  # converted in alpaca_wire; the SDK models reject fields Alpaca is retiring
            url_override=connection.trading_url,
        )
        self._counter = CallCounter()
        install_transport(
            self._client,
            timeout=connection.http_timeout_seconds,
            limiter=limiter or RateLimiter(connection.trading_rate_limit_per_min),
            counter=self._counter,
        )
        self._retrier = Retrier(retry or RetryPolicy(), clock, sleep=sleep)
        self._tracker = OrderTracker()
        self._assets: dict[str, Asset | None] = {}
        self._assets_day: date | None = None
        self._assets_complete = False
        self._stream_url = connection.stream_url or stream_url_for(connection.trading_url)
        self._stream_backoff = stream_backoff_s
        self._stream: _TradeUpdatesStream | None = None
        self._stream_task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._reconcile_interval = timedelta(seconds=reconcile_interval_s)
        self._reconcile_due = True
        self._last_reconcile: datetime | None = None
        self.stream_connects = 0

    @property
    def api_calls(self) -> int:
        return self._counter.calls

    @property
    def retries(self) -> int:
        return self._retrier.retries

    @property
    def paper(self) -> bool:
        return self._paper

    # --- SDK calls ---------------------------------------------------------------------------------------------------
    async def _call(
        self, operation: str, fn: Callable[..., Any], *args: Any, tolerate: frozenset[FailureKind] = frozenset()
    ) -> Any:
        """`fn(*args)` in a thread, retried; a failure of a kind in `tolerate` returns None instead of raising."""

        async def attempt() -> Any:
            try:
                return await asyncio.to_thread(fn, *args)
            except Exception as error:
                failure = self._retrier.classify(error)
                if failure is not None and failure.kind in tolerate:
                    return None
                raise

        return await self._retrier.run(operation, attempt)

    # --- account, positions, assets, calendar ------------------------------------------------------------------------
    async def get_account(self) -> Account:
        return account_from_wire(_as_dict(await self._call("get_account", self._client.get_account)))

    async def get_account_summary(self) -> AccountSummary:
        """Masked account number, status and equity: what the live banner logs once at start-up."""
        return account_summary_from_wire(_as_dict(await self._call("get_account", self._client.get_account)))

    async def get_positions(self) -> dict[str, Position]:
        rows = _as_list(await self._call("get_all_positions", self._client.get_all_positions))
        positions = (position_from_wire(_as_dict(row)) for row in rows)
        return {p.symbol: p for p in positions}

    async def get_asset(self, symbol: str) -> Asset | None:
        self._roll_asset_day()
        if symbol in self._assets:
            return self._assets[symbol]
        if self._assets_complete:
            return None
        raw = await self._call("get_asset", self._client.get_asset, symbol, tolerate=frozenset({FailureKind.NOT_FOUND}))
        asset = None if raw is None else asset_from_wire(_as_dict(raw))
        self._assets[symbol] = asset
        return asset

    async def preload_assets(self) -> int:
        """Every active US equity in one call, cached for the day; later `get_asset` calls cost nothing."""
        self._roll_asset_day()
        request = GetAssetsRequest(status=AssetStatus.ACTIVE, asset_class=AssetClass.US_EQUITY)
        rows = _as_list(await self._call("get_all_assets", self._client.get_all_assets, request))
        for row in rows:
            asset = asset_from_wire(_as_dict(row))
            self._assets[asset.symbol] = asset
        self._assets_complete = True
        return len(rows)

    async def list_tradable_equities(self) -> list[str]:
        """The scanner's universe without SCAN_UNIVERSE: every active, tradable US equity (one call per day)."""
        self._roll_asset_day()
        if not self._assets_complete:
            await self.preload_assets()
        return sorted(symbol for symbol, asset in self._assets.items() if asset is not None and asset.tradable)

    def _roll_asset_day(self) -> None:
        today = self._clock.now().astimezone(NEW_YORK).date()
        if today != self._assets_day:
            self._assets.clear()
            self._assets_complete = False
            self._assets_day = today

    async def get_clock(self) -> MarketClock:
        return clock_from_wire(_as_dict(await self._call("get_clock", self._client.get_clock)))

    async def get_calendar(self, start: date, end: date) -> list[TradingSession]:
        request = GetCalendarRequest(start=start, end=end)
        rows = _as_list(await self._call("get_calendar", self._client.get_calendar, request))
        return [session_from_wire(_as_dict(row)) for row in rows]

    # --- orders ------------------------------------------------------------------------------------------------------
    async def submit_order(self, request: OrderRequest) -> BrokerOrder:
        # The asset is cached for the day: the defensive check costs no call after the first order of a symbol.
        check_order_shape(request, await self.get_asset(request.symbol))
        order = await self._submit_idempotent(order_request(request))
        self._tracker.track(order)
        # The ExecutionAgent logs `order_submitted` for every adapter; this line only adds the wire-level detail.
        log.debug(
            "alpaca_order_accepted",
            client_order_id=order.client_order_id,
            order_type=request.order_type.value,
            time_in_force=request.time_in_force.value,
            qty=str(request.qty) if request.qty is not None else None,
            notional=str(request.notional) if request.notional is not None else None,
            stop_price=str(order.stop_price) if order.stop_price is not None else None,
            status=order.status.value,
        )
        return order

    async def _submit_idempotent(self, wire: AlpacaOrderRequest) -> BrokerOrder:
        client_order_id = str(wire.client_order_id)

        async def attempt() -> BrokerOrder:
            try:
                return order_from_wire(_as_dict(await asyncio.to_thread(self._client.submit_order, wire)))
            except Exception as error:
                failure = self._retrier.classify(error)
                if failure is None:
                    raise
                if failure.kind is FailureKind.DUPLICATE:
                    existing = await self.get_order_by_client_id(client_order_id)
                    if existing is None:
                        raise BrokerError(f"{client_order_id} is a duplicate yet cannot be found") from error
                    log.info("order_already_placed", client_order_id=client_order_id)
                    return existing
                if failure.kind is FailureKind.AMBIGUOUS:
                    existing = await self.get_order_by_client_id(client_order_id)
                    if existing is not None:
                        log.warning(
                            "order_found_after_ambiguous_failure",
                            client_order_id=client_order_id,
                            failure=failure.describe(),
                        )
                        return existing
                    raise  # it did not land: the retry resubmits with the same client order id
                if failure.kind in (FailureKind.PERMANENT, FailureKind.NOT_FOUND):
                    reason = rejection_reason(failure.status, failure.message)
                    log.warning("order_rejected", client_order_id=client_order_id, reason=reason)
                    raise OrderRejectedError(reason, failure.message) from error
                raise

        return await self._retrier.run("submit_order", attempt)

    async def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        raw = await self._call(
            "get_order_by_client_id",
            self._client.get_order_by_client_id,
            client_order_id,
            tolerate=frozenset({FailureKind.NOT_FOUND}),
        )
        return None if raw is None else order_from_wire(_as_dict(raw))

    async def get_order(self, client_order_id: str) -> BrokerOrder | None:
        """The lookup recovery uses: an open order found here is followed from its current state, so later
        fills are derived as increments over what the caller has just recorded."""
        order = await self.get_order_by_client_id(client_order_id)
        if order is not None and order.status.is_open:
            self._tracker.track(order)
        return order

    async def get_open_orders(self) -> list[BrokerOrder]:
        request = GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=MAX_ORDERS_PAGE, direction=Sort.ASC)
        rows = _as_list(await self._call("get_orders", self._client.get_orders, request))
        orders = [order_from_wire(_as_dict(row)) for row in rows]
        for order in orders:
            self._tracker.track(order)
        return orders

    async def list_closed_orders(self, after: datetime | None) -> list[BrokerOrder]:
        """Closed orders submitted after `after`, oldest first, paged by submission time (500 a page at most)."""
        orders: dict[str, BrokerOrder] = {}
        cursor = after
        while True:
            request = GetOrdersRequest(
                status=QueryOrderStatus.CLOSED, after=cursor, direction=Sort.ASC, limit=MAX_ORDERS_PAGE
            )
            page = [
                order_from_wire(_as_dict(row))
                for row in _as_list(await self._call("get_orders", self._client.get_orders, request))
            ]
            fresh = [o for o in page if o.client_order_id not in orders]
            orders.update((o.client_order_id, o) for o in fresh)
            stamps = [o.submitted_at for o in page if o.submitted_at is not None]
            if len(page) < MAX_ORDERS_PAGE or not fresh or not stamps:
                return list(orders.values())
            # `after` is exclusive: the next page starts just before the last stamp, so orders sharing it are not
            # skipped (the overlap is deduplicated by client order id; a page with nothing new ends the walk).
            cursor = max(stamps) - timedelta(microseconds=1)

    async def cancel_order(self, client_order_id: str) -> None:
        """Ask to cancel; the final state arrives as an update. An order already final or unknown is left alone."""
        order = self._tracker.get(client_order_id) or await self.get_order_by_client_id(client_order_id)
        if order is None or not order.status.is_open:
            log.info("cancel_skipped", client_order_id=client_order_id, status=order.status.value if order else None)
            return
        await self._call(
            "cancel_order",
            self._client.cancel_order_by_id,
            order.broker_order_id,
            tolerate=frozenset({FailureKind.NOT_FOUND, FailureKind.PERMANENT}),
        )

    # --- updates -----------------------------------------------------------------------------------------------------
    async def poll_updates(self) -> list[OrderUpdate]:
        now = self._clock.now()
        timer_due = self._last_reconcile is None or now - self._last_reconcile >= self._reconcile_interval
        if self._reconcile_due or timer_due or not self.stream_connected:
            self._reconcile_due = False
            try:
                await self._reconcile_followed_orders(now)
            except BaseException:
                self._reconcile_due = True
                raise
            self._last_reconcile = now
        return self._tracker.drain()

    async def _reconcile_followed_orders(self, now: datetime) -> None:
        followed = self._tracker.open_orders()
        if not followed:
            return
        stamps = [o.submitted_at for o in followed if o.submitted_at is not None]
        seen: set[str] = set()
        if stamps:
            # Alpaca filters `after` on submission time, so ask from just before the oldest order still open.
            request = GetOrdersRequest(
                status=QueryOrderStatus.ALL,
                after=min(stamps) - timedelta(seconds=1),
                direction=Sort.ASC,
                limit=MAX_ORDERS_PAGE,
            )
            for row in _as_list(await self._call("get_orders", self._client.get_orders, request)):
                order = order_from_wire(_as_dict(row))
                if self._tracker.get(order.client_order_id) is not None:
                    seen.add(order.client_order_id)
                    self._tracker.observe(Observation(order, order.updated_at or now))
        for missing in (o for o in followed if o.client_order_id not in seen):
            found = await self.get_order_by_client_id(missing.client_order_id)
            if found is not None:
                self._tracker.observe(Observation(found, found.updated_at or now))

    def followed_orders(self) -> list[BrokerOrder]:
        """Orders still open as far as the last update knows; each is followed until its final state."""
        return self._tracker.open_orders()

    async def start_stream(self) -> None:
        """Consume trade_updates inside the running loop until `stop_stream()`; the SDK reconnects by itself."""
        if self._stream_task is not None and not self._stream_task.done():
            return
        stream = _TradeUpdatesStream(
            self._on_stream_connect,
            api_key=self._key,
            secret_key=self._secret,
            paper=self._paper,
            raw_data=True,
            url_override=self._stream_url,
        )
        stream._reconnect_min_backoff, stream._reconnect_max_backoff = self._stream_backoff
        stream.subscribe_trade_updates(self._on_trade_update)
        self._stream = stream
        self._connected.clear()
        self._stream_task = asyncio.create_task(stream._run_forever(), name="alpaca-trade-updates")  # type: ignore[no-untyped-call]
        self._stream_task.add_done_callback(_log_stream_end)

    async def stop_stream(self) -> None:
        stream, task = self._stream, self._stream_task
        self._stream = None
        self._stream_task = None
        if stream is None or task is None:
            return
        # Closing the socket under the SDK's consumer makes it warn "websocket error, restarting" on every clean
        # stop (it then sees the stop request and returns): not news to whoever asked for the stop.
        sdk_log = logging.getLogger("alpaca.trading.stream")
        level = sdk_log.level
        sdk_log.setLevel(logging.ERROR)
        try:
            await stream.stop_ws()
            await stream.close()  # wakes the consumer, which otherwise sits up to 5 s in recv()
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=STOP_STREAM_TIMEOUT_S)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            sdk_log.setLevel(level)

    @property
    def stream_connected(self) -> bool:
        return (
            self._stream is not None
            and self._stream_task is not None
            and not self._stream_task.done()
            and bool(self._stream._running)
        )

    async def wait_stream_connected(self) -> None:
        """Returns once the stream has (re)connected since `start_stream()`; wrap it in `asyncio.timeout`."""
        await self._connected.wait()

    def _on_stream_connect(self) -> None:
        self.stream_connects += 1
        self._reconcile_due = True  # events sent while we were away are gone; REST will tell
        self._connected.set()
        log.info("trade_stream_connected", connects=self.stream_connects)

    async def _on_trade_update(self, message: Any) -> None:
        try:
            event = trade_event_from_wire(_as_dict(message))
        except WireFormatError as error:
            log.warning("trade_update_unreadable", error=str(error))
            self._reconcile_due = True  # REST will say what this event could not
            return
        self._tracker.observe(Observation(event.order, event.ts, event.execution))


def _log_stream_end(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("trade_stream_crashed", error=repr(error))


def _as_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WireFormatError(f"expected an object, got {type(value).__name__}")
    return value


def _as_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise WireFormatError(f"expected a list, got {type(value).__name__}")
    return value
