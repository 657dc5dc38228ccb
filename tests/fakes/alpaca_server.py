"""A local fake of Alpaca for adapter tests: trading REST, market-data REST and the trade_updates websocket.

The *real* alpaca-py clients talk to it through `url_override` (`server.url` for REST, `server.stream_url` for
the trading stream). It speaks the wire format of the fixtures in `tests/fakes/fixtures/` (copied from the
alpaca-py test suite): trading numbers are strings, market-data numbers are JSON numbers, bars carry `n`/`vw`,
calendar times are HH:MM, assets carry `easy_to_borrow` unless told otherwise, the account has no PDT fields.

Time is the server's own `now`, moved by the test (`set_now`). Bars come from the bundled real data
(`MarketTape`); a daily bar is served once it is complete (`t + 1 day <= now`). A market order fills at the open
of the first bar whose session opens (09:30 NEW_YORK) at or after its submission, once `now` has reached that open:
fills happen in `set_now()` / `process_fills()`, never inside the submit request, so tests control them.

Besides market orders it takes sell `stop` and `trailing_stop` orders (DAY or GTC). They trigger from the bars along
a documented intraday path (see `tests/fakes/alpaca_intraday.py`: open → low → high → close on an up day, open →
high → low → close on a down day, each leg a third of the session), never from a bar part they could not have seen;
a DAY stop still open at its first session close expires there (`expired`). During a session the snapshots'
latest trade and quote are the path's price at `now`: a test device so an intraday check can be tested, not market
data. Market orders keep the rule above (no DAY expiry: the fake fills them at the next open, which may be the next
day's).

Faults are injected on demand (`inject`): 429 with Retry-After, any 5xx, a reply withheld past the client
timeout, a connection reset, malformed JSON; with `process=True` the request is handled first (the order
lands) and the failure comes after, which is what makes a submit failure *ambiguous*. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from core.timeconv import NEW_YORK, datetime_to_ns, ns_to_datetime
from tests.fakes.alpaca_intraday import StopRule, path_price, price_when_placed, session_index, walk
from tests.fakes.alpaca_tape import CLOSE_OFFSET_NS, DAY_NS, OPEN_OFFSET_NS, MarketTape, SymbolTape

FIXTURES = Path(__file__).parent / "fixtures"
QTY_QUANTUM = Decimal("0.000000001")
PRICE_QUANTUM = Decimal("0.0001")
OPEN_STATUSES = frozenset({"new", "accepted", "pending_new", "partially_filled"})
MAX_BARS_PAGE = 10_000
MAX_ORDERS_PAGE = 500
STOP_TYPES = ("stop", "trailing_stop")

BarPatch = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def iso(ns: int) -> str:
    """RFC 3339 UTC with microseconds and a Z, as Alpaca's trading API writes timestamps."""
    return ns_to_datetime(ns).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_bar(ns: int) -> str:
    return ns_to_datetime(ns).strftime("%Y-%m-%dT%H:%M:%SZ")


def dec(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def parse_time(text: str) -> int:
    """Query-string timestamps: RFC 3339 (the SDK sends isoformat) or a bare date."""
    if len(text) == 10:
        return datetime_to_ns(datetime.fromisoformat(text).replace(tzinfo=UTC))
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return datetime_to_ns(moment)


# ---------------------------------------------------------------------------------------------------------------------
# Test-facing records
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected failure. `process=True`: the request is handled first and the failure comes afterwards."""

    kind: Literal["status", "hang", "reset", "malformed"]
    status: int = 503
    process: bool = False
    retry_after: float | None = None
    ratelimit_reset: float | None = None  # epoch seconds, as in X-Ratelimit-Reset
    message: str | None = None  # the JSON body's message instead of the default (e.g. a server echoing a key)

    @classmethod
    def rate_limited(cls, retry_after: float | None = 1.0, ratelimit_reset: float | None = None) -> Fault:
        return cls("status", status=429, retry_after=retry_after, ratelimit_reset=ratelimit_reset)

    @classmethod
    def http(cls, status: int, *, process: bool = False, message: str | None = None) -> Fault:
        return cls("status", status=status, process=process, message=message)

    @classmethod
    def hang(cls) -> Fault:
        """Handle the request, then withhold the reply until the server stops: the client's read timeout fires.

        Waiting on an event rather than a fixed delay keeps the test independent of the machine's speed: the
        reply never arrives however slow or fast the client is.
        """
        return cls("hang", process=True)

    @classmethod
    def reset(cls, *, process: bool = True) -> Fault:
        return cls("reset", process=process)

    @classmethod
    def malformed(cls) -> Fault:
        return cls("malformed", process=True)


@dataclass(slots=True)
class AssetConfig:
    symbol: str
    tradable: bool = True
    fractionable: bool = True
    shortable: bool = True
    easy_to_borrow: bool | None = True  # None: field omitted, as Alpaca will after its 2026-09-22 removal
    exchange: str = "NYSE"
    status: str = "active"


@dataclass(slots=True)
class FakeOrder:
    id: str
    client_order_id: str
    symbol: str
    asset_id: str
    side: str
    qty: Decimal | None
    notional: Decimal | None
    time_in_force: str
    submitted_ns: int
    updated_ns: int
    status: str = "accepted"
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    filled_ns: int | None = None
    canceled_ns: int | None = None
    expired_ns: int | None = None
    type: str = "market"
    stop_price: Decimal | None = None  # a trailing stop's current level
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    hwm: Decimal | None = None
    watched_ns: int = 0  # a stop has followed the intraday path up to here

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": iso(self.submitted_ns),
            "updated_at": iso(self.updated_ns),
            "submitted_at": iso(self.submitted_ns),
            "filled_at": None if self.filled_ns is None else iso(self.filled_ns),
            "expired_at": None if self.expired_ns is None else iso(self.expired_ns),
            "expires_at": None,
            "canceled_at": None if self.canceled_ns is None else iso(self.canceled_ns),
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": self.asset_id,
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": dec(self.notional),
            "qty": dec(self.qty),
            "filled_qty": dec(self.filled_qty),
            "filled_avg_price": dec(self.filled_avg_price),
            "order_class": "simple",
            "order_type": self.type,
            "type": self.type,
            "side": self.side,
            "time_in_force": self.time_in_force,
            "limit_price": None,
            "stop_price": dec(self.stop_price),
            "status": self.status,
            "extended_hours": False,
            "legs": None,
            "trail_percent": dec(self.trail_percent),
            "trail_price": dec(self.trail_price),
            "hwm": dec(self.hwm),
            "position_intent": "buy_to_open" if self.side == "buy" else "sell_to_close",
            "subtag": None,
            "source": None,
        }


@dataclass(slots=True)
class FakePosition:
    symbol: str
    qty: Decimal
    avg_entry_price: Decimal


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: int | None = None, **extra: Any) -> None:
        super().__init__(message)
        body: dict[str, Any] = {"message": message, **extra}
        if code is not None:
            body = {"code": code, **body}
        self.reply = Reply(status, body)


# ---------------------------------------------------------------------------------------------------------------------
# The trade_updates websocket
# ---------------------------------------------------------------------------------------------------------------------


class TradeUpdatesServer:
    """Alpaca's /stream protocol: authenticate, listen to trade_updates, then binary JSON frames (as paper sends).

    Like Alpaca it never replays: an event sent while nobody listens is gone.
    """

    def __init__(self, key: str, secret: str) -> None:
        self._key = key
        self._secret = secret
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-alpaca-ws", daemon=True)
        self._server: Server | None = None
        self._connections: set[ServerConnection] = set()
        self._listeners: set[ServerConnection] = set()
        self.blocked = False  # while True, new connections are closed before authentication
        self.delivered: list[dict[str, Any]] = []
        self.missed: list[dict[str, Any]] = []
        self.url = ""

    def start(self) -> str:
        self._thread.start()
        self._server = self._run(self._serve())
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/stream"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            server = self._server
            self._server = None
            server.close()
            self._run(server.wait_closed())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    @property
    def listener_count(self) -> int:
        return len(self._listeners)

    def broadcast(self, message: dict[str, Any]) -> None:
        """Queue one message for every listener (FIFO with respect to other broadcasts and drops)."""
        asyncio.run_coroutine_threadsafe(self._broadcast(message), self._loop)

    def drop_connections(self) -> None:
        """Cut every connection abruptly, like a network drop."""
        self._run(self._drop())

    async def _serve(self) -> Server:
        return await serve(self._handle, "127.0.0.1", 0)

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _broadcast(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message).encode()
        if not self._listeners:
            self.missed.append(message)
            return
        for connection in list(self._listeners):
            try:
                await connection.send(payload)
            except ConnectionClosed:
                self._listeners.discard(connection)
        self.delivered.append(message)

    async def _drop(self) -> None:
        for connection in list(self._connections):
            connection.transport.abort()
        self._listeners.clear()
        self._connections.clear()

    async def _handle(self, connection: ServerConnection) -> None:
        self._connections.add(connection)
        try:
            if self.blocked:
                await connection.close()
                return
            hello = json.loads(await connection.recv())
            data = hello.get("data") or {}
            ok = (
                hello.get("action") == "authenticate"
                and data.get("key_id") == self._key
                and data.get("secret_key") == self._secret
            )
            status = "authorized" if ok else "unauthorized"
            reply = {"stream": "authorization", "data": {"action": "authenticate", "status": status}}
            await connection.send(json.dumps(reply).encode())
            if not ok:
                await connection.close()
                return
            async for raw in connection:
                message = json.loads(raw)
                if message.get("action") != "listen":
                    continue
                streams = [s for s in (message.get("data") or {}).get("streams", []) if s == "trade_updates"]
                if streams:
                    self._listeners.add(connection)
                await connection.send(json.dumps({"stream": "listening", "data": {"streams": streams}}).encode())
        except ConnectionClosed:
            return  # the client went away: nothing to answer
        finally:
            self._listeners.discard(connection)
            self._connections.discard(connection)


# ---------------------------------------------------------------------------------------------------------------------
# The HTTP side
# ---------------------------------------------------------------------------------------------------------------------


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeAlpacaServer


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def finish(self) -> None:
        # The socket was reset on purpose, or the client gave up waiting.
        with contextlib.suppress(OSError, ValueError):
            super().finish()

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            self._send(Reply(400, {"code": 40010000, "message": "request body format is invalid"}))
            return
        fake._record(RecordedRequest(method, split.path, query, body, dict(self.headers.items())))

        if not fake._authorized(self.headers.get("APCA-API-KEY-ID"), self.headers.get("APCA-API-SECRET-KEY")):
            self._send(Reply(401, {"message": "unauthorized"}))
            return
        fault = fake._take_fault(method, split.path)
        if fault is not None and not fault.process:
            self._send(_fault_reply(fault))
            return
        reply = fake._route(method, split.path, query, body)
        if fault is None:
            self._send(reply)
        elif fault.kind == "status":
            self._send(_fault_reply(fault))
        elif fault.kind == "hang":
            fake._stopping.wait()  # no reply at all: the client gave up at its read timeout long ago
        elif fault.kind == "reset":
            self._reset()
        else:
            text = json.dumps(reply.body)
            self._send_raw(200, text[: max(1, len(text) // 2)].encode(), {"Content-Type": "application/json"})

    def _send(self, reply: Reply) -> None:
        if reply.status == 204 or reply.body is None:
            self._send_raw(reply.status, b"", reply.headers)
            return
        if isinstance(reply.body, str):
            headers = {"Content-Type": "text/html", **reply.headers}
            self._send_raw(reply.status, reply.body.encode(), headers)
            return
        headers = {"Content-Type": "application/json", **reply.headers}
        self._send_raw(reply.status, json.dumps(reply.body).encode(), headers)

    def _send_raw(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the client timed out and went away: the work is done either way

    def _reset(self) -> None:
        # SO_LINGER 0 turns close() into a TCP RST: the client sees "connection reset by peer".
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


def _fault_reply(fault: Fault) -> Reply:
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = f"{fault.retry_after:g}"
    if fault.ratelimit_reset is not None:
        headers["X-Ratelimit-Limit"] = "200"
        headers["X-Ratelimit-Remaining"] = "0"
        headers["X-Ratelimit-Reset"] = f"{fault.ratelimit_reset:.0f}"
    if fault.status == 429:
        return Reply(429, {"code": 42910000, "message": "rate limit exceeded"}, headers)
    if fault.message is not None:
        return Reply(fault.status, {"code": fault.status * 100_000 + 10_000, "message": fault.message}, headers)
    if fault.status >= 502:
        return Reply(fault.status, f"<html><body><h1>{fault.status} gateway error</h1></body></html>", headers)
    return Reply(fault.status, {"code": fault.status * 100_000 + 10_000, "message": "internal server error"}, headers)


# ---------------------------------------------------------------------------------------------------------------------
# The fake itself
# ---------------------------------------------------------------------------------------------------------------------


class FakeAlpacaServer:
    def __init__(
        self,
        tape: MarketTape,
        *,
        now: datetime | None = None,
        key: str = "test-key",
        secret: str = "test-secret",
        cash: Decimal = Decimal(100_000),
        account_number: str = "PA3T8N0ZK5QA",
    ) -> None:
        self.tape = tape
        self.key = key
        self.secret = secret
        self.account_number = account_number
        self.cash = cash
        self.max_page_size = MAX_BARS_PAGE  # tests shrink it to force pagination
        # Time-lapse for a daemon in a subprocess reading this clock (`BrokerClock`): each GET /v2/clock moves the
        # clock this far on (never past `clock_until`), so time passes only when the daemon waits for it.
        self.clock_step: timedelta | None = None
        self.clock_until: datetime | None = None
        self.assets: dict[str, AssetConfig] = {s: AssetConfig(s) for s in tape.symbols}
        self.positions: dict[str, FakePosition] = {}
        self.orders: dict[str, FakeOrder] = {}
        self.events: list[dict[str, Any]] = []
        self._by_client_id: dict[str, str] = {}
        self._bar_patches: dict[str, BarPatch] = {}
        self._faults: list[tuple[str, str, Fault]] = []
        self._requests: list[RecordedRequest] = []
        self._lock = threading.RLock()
        self._stopping = threading.Event()  # releases hung requests (Fault.hang) at stop()
        last = max((int(b.t[-1]) for b in tape.bars.values() if len(b)), default=int(tape.session_t[-1]))
        self._now_ns = datetime_to_ns(now) if now is not None else last + DAY_NS
        self._http: _HttpServer | None = None
        self._http_thread: threading.Thread | None = None
        self.stream = TradeUpdatesServer(key, secret)
        self.url = ""
        self.stream_url = ""

    # --- lifecycle ---------------------------------------------------------------------------------------------------
    def start(self) -> FakeAlpacaServer:
        self._http = _HttpServer(("127.0.0.1", 0), _Handler)
        self._http.fake = self
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-alpaca-http", daemon=True
        )
        self._http_thread.start()
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self.stream_url = self.stream.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.stream.stop()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> FakeAlpacaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- control -----------------------------------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        return ns_to_datetime(self._now_ns)

    def set_now(self, moment: datetime) -> None:
        """Move the server clock; orders whose fill bar has opened by then fill at that bar's open."""
        with self._lock:
            self._now_ns = datetime_to_ns(moment)
            self._process_fills()

    def process_fills(self) -> None:
        with self._lock:
            self._process_fills()

    def inject(self, fault: Fault, method: str, path: str, times: int = 1) -> None:
        """Fail the next `times` requests whose method and path (no query) match: exactly, or by prefix when `path`
        ends in `*` (`/v2/orders/*`: any one order's path, whose id the test does not know in advance)."""
        with self._lock:
            self._faults.extend([(method, path, fault)] * times)

    def set_asset(self, symbol: str, **changes: Any) -> None:
        with self._lock:
            asset = self.assets.setdefault(symbol, AssetConfig(symbol))
            for name, value in changes.items():
                setattr(asset, name, value)

    def patch_bars(self, symbol: str, patch: BarPatch) -> None:
        """Rewrite the wire bars served for `symbol` (after the visibility filter): bad data on demand."""
        with self._lock:
            self._bar_patches[symbol] = patch

    def seed_position(self, symbol: str, qty: Decimal, avg_entry_price: Decimal) -> None:
        with self._lock:
            self.positions[symbol] = FakePosition(symbol, qty, avg_entry_price)

    def place_order(self, body: dict[str, Any]) -> dict[str, Any]:
        """Submit an order as another client would (it bypasses the request log and the faults)."""
        reply = self._route("POST", "/v2/orders", {}, body)
        if reply.status != 200:
            raise AssertionError(f"fake refused the seeded order: {reply.body}")
        return dict(reply.body)

    def expire_open_orders(self) -> None:
        with self._lock:
            for order in self.orders.values():
                if order.status in OPEN_STATUSES:
                    order.status = "expired"
                    order.expired_ns = order.updated_ns = self._now_ns
                    self._emit("expired", order)

    def drop_stream(self, *, block: bool = False) -> None:
        """Cut the trade_updates connections; with block=True reconnects fail until `unblock_stream()`."""
        self.stream.blocked = block
        self.stream.drop_connections()

    def unblock_stream(self) -> None:
        self.stream.blocked = False

    def wait_for_listeners(self, count: int = 1, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.stream.listener_count < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.stream.listener_count} trade_updates listeners, wanted {count}")
            time.sleep(0.01)

    # --- inspection --------------------------------------------------------------------------------------------------
    def requests(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self._requests
                if (method is None or r.method == method) and (path is None or r.path.startswith(path))
            ]

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return len(self.requests(method, path))

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def orders_for(self, client_order_id: str) -> list[FakeOrder]:
        with self._lock:
            return [o for o in self.orders.values() if o.client_order_id == client_order_id]

    # --- internals used by the handler -------------------------------------------------------------------------------
    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _authorized(self, key: str | None, secret: str | None) -> bool:
        return key == self.key and secret == self.secret

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for index, (m, p, fault) in enumerate(self._faults):
                if m == method and (p == path or (p.endswith("*") and path.startswith(p[:-1]))):
                    del self._faults[index]
                    return fault
        return None

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        try:
            with self._lock:
                return self._route_locked(method, path.removeprefix("/v2"), query, body)
        except ApiError as error:
            return error.reply

    def _route_locked(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        simple: dict[tuple[str, str], Callable[[dict[str, str], Any], Reply]] = {
            ("GET", "/account"): self._account,
            ("GET", "/assets"): self._list_assets,
            ("GET", "/positions"): self._list_positions,
            ("POST", "/orders"): self._submit,
            ("GET", "/orders"): self._list_orders,
            ("DELETE", "/orders"): self._cancel_all,
            ("GET", "/orders:by_client_order_id"): self._order_by_client_id,
            ("GET", "/clock"): self._clock,
            ("GET", "/calendar"): self._calendar,
            ("GET", "/stocks/bars"): self._bars,
            ("GET", "/stocks/snapshots"): self._snapshots,
        }
        handler = simple.get((method, path))
        if handler is not None:
            return handler(query, body)
        head, _, tail = path[1:].partition("/")
        if tail and "/" not in tail:
            if (method, head) == ("GET", "assets"):
                return Reply(200, self._asset_wire(self._asset(tail)))
            if (method, head) == ("GET", "positions"):
                position = self.positions.get(tail)
                if position is None:
                    raise ApiError(404, "position does not exist", 40410000)
                return Reply(200, self._position_wire(position))
            if (method, head) == ("GET", "orders"):
                return Reply(200, self._order(tail).wire())
            if (method, head) == ("DELETE", "orders"):
                return self._cancel(self._order(tail))
        raise ApiError(404, "endpoint not found", 40410000)

    # --- account, assets, positions ----------------------------------------------------------------------------------
    def _account(self, _query: dict[str, str], _body: Any) -> Reply:
        wire = fixture("account.json")
        for pdt_field in ("pattern_day_trader", "daytrade_count", "daytrading_buying_power"):
            wire.pop(pdt_field)  # removed from /v2/account on 2026-07-06
        long_value = sum((p.qty * self._price(p.symbol) for p in self.positions.values()), Decimal(0))
        equity = self.cash + long_value
        # Like Alpaca, open buy orders reduce buying power until they fill or are canceled.
        reserved = sum(
            (
                o.notional if o.notional is not None else (o.qty or Decimal(0)) * self._price(o.symbol)
                for o in self.orders.values()
                if o.side == "buy" and o.status in OPEN_STATUSES
            ),
            Decimal(0),
        )
        available = max(self.cash - reserved, Decimal(0))
        wire.update(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, self.account_number)),
            account_number=self.account_number,
            cash=dec(self.cash),
            buying_power=dec(available * 2),  # a RegT margin account: twice the cash, which the daemon must not use
            regt_buying_power=dec(available * 2),
            non_marginable_buying_power=dec(available),
            options_buying_power=dec(available),
            equity=dec(equity),
            last_equity=dec(equity),
            portfolio_value=dec(equity),
            long_market_value=dec(long_value),
            initial_margin="0",
            maintenance_margin="0",
            last_maintenance_margin="0",
            multiplier="1",
        )
        return Reply(200, wire)

    def _asset(self, symbol: str) -> AssetConfig:
        asset = self.assets.get(symbol)
        if asset is None:
            raise ApiError(404, "asset not found", 40410000)
        return asset

    def _asset_wire(self, asset: AssetConfig) -> dict[str, Any]:
        wire: dict[str, Any] = fixture("asset.json")
        wire.update(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, asset.symbol)),
            symbol=asset.symbol,
            name=f"{asset.symbol} Common Stock",
            exchange=asset.exchange,
            status=asset.status,
            tradable=asset.tradable,
            fractionable=asset.fractionable,
            shortable=asset.shortable,
            attributes=[],
        )
        for stale in ("last_close_pct_change", "last_price"):
            wire.pop(stale)
        if asset.easy_to_borrow is None:
            wire.pop("easy_to_borrow")
        else:
            wire["easy_to_borrow"] = asset.easy_to_borrow
        return wire

    def _list_assets(self, query: dict[str, str], _body: Any) -> Reply:
        status = query.get("status")
        assets = [a for a in self.assets.values() if status is None or a.status == status]
        return Reply(200, [self._asset_wire(a) for a in assets])

    def _position_wire(self, position: FakePosition) -> dict[str, Any]:
        price = self._price(position.symbol)
        value = position.qty * price
        cost = position.qty * position.avg_entry_price
        pl = value - cost
        return {
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, position.symbol)),
            "symbol": position.symbol,
            "exchange": self._asset(position.symbol).exchange,
            "asset_class": "us_equity",
            "asset_marginable": True,
            "avg_entry_price": dec(position.avg_entry_price),
            "qty": dec(position.qty),
            "qty_available": dec(position.qty - self._held_for_sells(position.symbol)),
            "side": "long" if position.qty >= 0 else "short",
            "market_value": dec(value),
            "cost_basis": dec(cost),
            "unrealized_pl": dec(pl),
            "unrealized_plpc": dec((pl / cost).quantize(PRICE_QUANTUM)) if cost else "0",
            "unrealized_intraday_pl": "0",
            "unrealized_intraday_plpc": "0",
            "current_price": dec(price),
            "lastday_price": dec(price),
            "change_today": "0",
        }

    def _list_positions(self, _query: dict[str, str], _body: Any) -> Reply:
        return Reply(200, [self._position_wire(p) for p in self.positions.values()])

    # --- orders ------------------------------------------------------------------------------------------------------
    def _order(self, order_id: str) -> FakeOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise ApiError(404, "order not found", 40410000)
        return order

    def _order_by_client_id(self, query: dict[str, str], _body: Any) -> Reply:
        order_id = self._by_client_id.get(query.get("client_order_id", ""))
        if order_id is None:
            raise ApiError(404, "order not found", 40410000)
        return Reply(200, self.orders[order_id].wire())

    def _submit(self, _query: dict[str, str], body: Any) -> Reply:
        if not isinstance(body, dict):
            raise ApiError(422, "request body format is invalid", 40010001)
        for required in ("symbol", "side", "type", "time_in_force"):
            if not body.get(required):
                raise ApiError(422, f"{required} is required", 40010001)
        client_order_id = str(body.get("client_order_id") or uuid.uuid4())
        if client_order_id in self._by_client_id:
            raise ApiError(422, "client_order_id must be unique", 40010001)
        symbol, side, tif = str(body["symbol"]), str(body["side"]), str(body["time_in_force"])
        asset = self.assets.get(symbol)
        if asset is None:
            raise ApiError(422, f'asset "{symbol}" not found', 42210000)
        if not asset.tradable:
            raise ApiError(422, f'asset "{symbol}" is not tradable', 42210000)
        order_type = str(body["type"])
        if order_type not in ("market", *STOP_TYPES):
            raise ApiError(422, "this fake accepts market, stop and trailing_stop orders only", 42210000)
        if side not in ("buy", "sell"):
            raise ApiError(422, "invalid side", 40010001)
        qty, notional = _exactly_one(body, "qty", "notional", "qty or notional is required, not both")
        amount = qty if qty is not None else notional
        if amount is None or amount <= 0:
            raise ApiError(422, "qty and notional must be positive", 40010001)
        fractional = notional is not None or (qty is not None and qty != qty.to_integral_value())
        if fractional and not asset.fractionable:
            raise ApiError(422, "requested asset is not fractionable", 42210000)
        if fractional and tif != "day":
            raise ApiError(422, "fractional orders must be DAY orders", 42210000)
        if body.get("extended_hours"):
            raise ApiError(422, "extended hours order must be DAY limit orders", 42210000)
        if notional is not None and notional < 1:
            raise ApiError(422, "notional amount must be at least $1", 40010001)
        terms = (
            self._stop_terms(order_type, symbol, side, tif, body, notional, fractional)
            if order_type != "market"
            else {}
        )
        price = self._price(symbol)
        if side == "sell":
            held = self.positions[symbol].qty if symbol in self.positions else Decimal(0)
            available = held - self._held_for_sells(symbol)
            wanted = qty if qty is not None else (notional or Decimal(0)) / (price or Decimal(1))
            if wanted > available:
                raise ApiError(
                    403,
                    f"insufficient qty available for order (requested: {dec(wanted)}, available: {dec(available)})",
                    40310000,
                )
        else:
            cost = notional if notional is not None else (qty or Decimal(0)) * price
            if cost > self.cash - self._committed_to_buys():
                raise ApiError(
                    403, "insufficient buying power", 40310000, buying_power=dec(self.cash), cost_basis=dec(cost)
                )
        order = FakeOrder(
            id=str(uuid.uuid4()),
            client_order_id=client_order_id,
            symbol=symbol,
            asset_id=str(uuid.uuid5(uuid.NAMESPACE_URL, symbol)),
            side=side,
            qty=qty,
            notional=notional,
            time_in_force=tif,
            submitted_ns=self._now_ns,
            updated_ns=self._now_ns,
            type=order_type,
            watched_ns=self._now_ns,
            **terms,
        )
        self.orders[order.id] = order
        self._by_client_id[client_order_id] = order.id
        self._emit("accepted", order)
        return Reply(200, order.wire())

    def _stop_terms(
        self,
        order_type: str,
        symbol: str,
        side: str,
        tif: str,
        body: dict[str, Any],
        notional: Decimal | None,
        fractional: bool,
    ) -> dict[str, Any]:
        """Validate a stop or trailing stop as Alpaca does (the fake's own limit: sell stops only); its order fields."""
        if side != "sell":
            raise ApiError(422, "this fake accepts sell stop orders only", 42210000)
        if notional is not None:
            raise ApiError(422, "notional orders must be market or limit orders", 42210000)
        if tif not in ("day", "gtc"):
            raise ApiError(422, f"time_in_force {tif} is not supported for {order_type} orders", 42210000)
        if order_type == "stop":
            stop_price = _decimal(body.get("stop_price"), "stop_price")
            if stop_price is None:
                raise ApiError(422, "stop_price is required", 40010001)
            if stop_price <= 0:
                raise ApiError(422, "stop_price must be > 0", 40010001)
            tick = Decimal("0.01") if stop_price >= 1 else PRICE_QUANTUM
            if stop_price % tick:
                raise ApiError(
                    422,
                    f"invalid stop_price {body['stop_price']}. sub-penny increment does not fulfill minimum pricing "
                    "criteria",
                    42210000,
                )
            return {"stop_price": stop_price}
        if fractional:
            raise ApiError(422, "fractional orders are not supported for trailing_stop orders", 42210000)
        if body.get("stop_price") is not None:
            raise ApiError(422, "stop_price must not be given for trailing_stop orders", 40010001)
        trail_price, trail_percent = _exactly_one(
            body, "trail_price", "trail_percent", "exactly one of trail_price or trail_percent is required"
        )
        trail = trail_price if trail_price is not None else trail_percent
        if trail is None or trail <= 0 or (trail_percent is not None and trail_percent >= 100):
            raise ApiError(422, "trail_price or trail_percent must be positive (a percent below 100)", 40010001)
        bars = self.tape.bars.get(symbol)
        placed = None if bars is None else price_when_placed(bars, self._now_ns)
        if placed is None:
            raise ApiError(422, f'no price to trail for "{symbol}"', 42210000)
        hwm = _price_decimal(placed)
        return {
            "trail_price": trail_price,
            "trail_percent": trail_percent,
            "hwm": hwm,
            "stop_price": self._trail_level(trail_price, trail_percent, hwm),
        }

    def _held_for_sells(self, symbol: str) -> Decimal:
        held = Decimal(0)
        for order in self.orders.values():
            if order.symbol == symbol and order.side == "sell" and order.status in OPEN_STATUSES:
                held += (order.qty or Decimal(0)) - order.filled_qty
        return held

    def _committed_to_buys(self) -> Decimal:
        committed = Decimal(0)
        for order in self.orders.values():
            if order.side == "buy" and order.status in OPEN_STATUSES:
                if order.notional is not None:
                    committed += order.notional
                else:
                    committed += (order.qty or Decimal(0)) * self._price(order.symbol)
        return committed

    def _list_orders(self, query: dict[str, str], _body: Any) -> Reply:
        status = query.get("status", "open")
        limit = min(int(query.get("limit", "50")), MAX_ORDERS_PAGE)
        after = parse_time(query["after"]) if "after" in query else None
        until = parse_time(query["until"]) if "until" in query else None
        symbols = set(query["symbols"].split(",")) if query.get("symbols") else None
        selected = [
            o
            for o in self.orders.values()
            if (
                status == "all"
                or (status == "open" and o.status in OPEN_STATUSES)
                or (status == "closed" and o.status not in OPEN_STATUSES)
            )
            and (after is None or o.submitted_ns > after)
            and (until is None or o.submitted_ns <= until)
            and (symbols is None or o.symbol in symbols)
            and (query.get("side") is None or o.side == query["side"])
        ]
        selected.sort(key=lambda o: o.submitted_ns, reverse=query.get("direction", "desc") == "desc")
        return Reply(200, [o.wire() for o in selected[:limit]])

    def _cancel(self, order: FakeOrder) -> Reply:
        if order.status not in OPEN_STATUSES:
            raise ApiError(422, "order is not cancelable", 42210000)
        order.status = "canceled"
        order.canceled_ns = order.updated_ns = self._now_ns
        self._emit("canceled", order)
        return Reply(204)

    def _cancel_all(self, _query: dict[str, str], _body: Any) -> Reply:
        results = []
        for order in list(self.orders.values()):
            if order.status in OPEN_STATUSES:
                self._cancel(order)
                results.append({"id": order.id, "status": 200})
        return Reply(207, results)

    # --- fills -------------------------------------------------------------------------------------------------------
    def _process_fills(self) -> None:
        for order in sorted(self.orders.values(), key=lambda o: o.submitted_ns):
            if order.status not in OPEN_STATUSES:
                continue
            bars = self.tape.bars.get(order.symbol)
            if bars is None:
                continue
            if order.type in STOP_TYPES:
                self._follow_stop(order, bars)
                continue
            index = int(np.searchsorted(bars.t + OPEN_OFFSET_NS, order.submitted_ns, side="left"))
            if index >= len(bars):
                continue
            opened_ns = int(bars.t[index]) + OPEN_OFFSET_NS
            if opened_ns > self._now_ns:
                continue
            price = Decimal(repr(float(bars.open[index]))).quantize(PRICE_QUANTUM)
            qty = order.qty if order.qty is not None else ((order.notional or Decimal(0)) / price)
            qty = qty.quantize(QTY_QUANTUM, rounding=ROUND_DOWN)
            self._apply_fill(order, qty, price, opened_ns)

    def _follow_stop(self, order: FakeOrder, bars: SymbolTape) -> None:
        """Walk a resting stop along the intraday path to `now`: it fills, or a DAY one expires at its first close."""
        rule = StopRule(
            stop_price=None if order.type != "stop" else float(order.stop_price or 0),
            trail_price=None if order.trail_price is None else float(order.trail_price),
            trail_percent=None if order.trail_percent is None else float(order.trail_percent),
        )
        expires_ns: int | None = None
        if order.time_in_force == "day":
            first = session_index(bars, order.submitted_ns)
            expires_ns = int(bars.t[first]) + CLOSE_OFFSET_NS if first < len(bars) else None
        until = self._now_ns if expires_ns is None else min(self._now_ns, expires_ns)
        walked = walk(bars, rule, order.watched_ns, until, float(order.hwm or 0))
        order.watched_ns = until
        if order.type == "trailing_stop":
            order.hwm = _price_decimal(walked.hwm)
            order.stop_price = self._trail_level(order.trail_price, order.trail_percent, order.hwm)
        if walked.fill is not None:
            ts_ns, price = walked.fill
            self._apply_fill(order, order.qty or Decimal(0), _price_decimal(price), ts_ns)
        elif expires_ns is not None and expires_ns <= self._now_ns:
            order.status = "expired"
            order.expired_ns = order.updated_ns = expires_ns
            self._emit("expired", order, ts_ns=expires_ns)

    @staticmethod
    def _trail_level(trail_price: Decimal | None, trail_percent: Decimal | None, hwm: Decimal) -> Decimal:
        level = hwm - trail_price if trail_price is not None else hwm * (1 - (trail_percent or Decimal(0)) / 100)
        return level.quantize(PRICE_QUANTUM)

    def _apply_fill(self, order: FakeOrder, qty: Decimal, price: Decimal, ts_ns: int) -> None:
        signed = qty if order.side == "buy" else -qty
        position = self.positions.get(order.symbol)
        if position is None:
            position = self.positions[order.symbol] = FakePosition(order.symbol, Decimal(0), price)
        if signed > 0:
            total = position.qty + signed
            position.avg_entry_price = ((position.qty * position.avg_entry_price + signed * price) / total).quantize(
                PRICE_QUANTUM
            )
        position.qty += signed
        if position.qty == 0:
            del self.positions[order.symbol]
        self.cash -= signed * price
        order.filled_qty = qty
        order.filled_avg_price = price
        order.filled_ns = order.updated_ns = ts_ns
        order.status = "filled"
        self._emit("fill", order, price=price, qty=qty, position_qty=position.qty, ts_ns=ts_ns)

    def _emit(
        self,
        event: str,
        order: FakeOrder,
        *,
        price: Decimal | None = None,
        qty: Decimal | None = None,
        position_qty: Decimal | None = None,
        ts_ns: int | None = None,
    ) -> None:
        data: dict[str, Any] = {"event": event, "timestamp": iso(ts_ns or self._now_ns), "order": order.wire()}
        if price is not None:
            data.update(execution_id=str(uuid.uuid4()), price=dec(price), qty=dec(qty), position_qty=dec(position_qty))
        message = {"stream": "trade_updates", "data": data}
        self.events.append(message)
        self.stream.broadcast(message)

    # --- clock and calendar ------------------------------------------------------------------------------------------
    def _sessions(self) -> Iterator[tuple[date, int]]:
        """Trading dates with their midnight-ET start: the tape's, then weekdays after it."""
        yield from zip(self.tape.sessions, (int(t) for t in self.tape.session_t), strict=True)
        day = self.tape.sessions[-1]
        while True:
            day += timedelta(days=1)
            if day.weekday() < 5:
                yield day, datetime_to_ns(datetime(day.year, day.month, day.day, tzinfo=NEW_YORK))

    def _clock(self, _query: dict[str, str], _body: Any) -> Reply:
        if self.clock_step is not None:
            moved = self._now_ns + int(self.clock_step.total_seconds() * 1e9)
            if self.clock_until is not None:
                moved = min(moved, datetime_to_ns(self.clock_until))
            if moved > self._now_ns:
                self._now_ns = moved
                self._process_fills()
        now = self._now_ns
        is_open = False
        next_open = next_close = 0
        for _day, start in self._sessions():
            opens, closes = start + OPEN_OFFSET_NS, start + CLOSE_OFFSET_NS
            if opens <= now < closes:
                is_open = True
            if closes > now:
                next_close = next_close or closes
            if opens > now:
                next_open = opens
                break
        return Reply(
            200,
            {
                "timestamp": ns_to_datetime(now).astimezone(NEW_YORK).isoformat(),
                "is_open": is_open,
                "next_open": ns_to_datetime(next_open).astimezone(NEW_YORK).isoformat(),
                "next_close": ns_to_datetime(next_close).astimezone(NEW_YORK).isoformat(),
            },
        )

    def _calendar(self, query: dict[str, str], _body: Any) -> Reply:
        start = date.fromisoformat(query.get("start", self.tape.sessions[0].isoformat()))
        end = date.fromisoformat(query.get("end", self.tape.sessions[-1].isoformat()))
        rows = []
        for day, _start in self._sessions():
            if day > end:
                break
            if day >= start:
                rows.append(
                    {
                        "date": day.isoformat(),
                        "open": "09:30",
                        "close": "16:00",
                        "session_open": "0400",
                        "session_close": "2000",
                        "settlement_date": (day + timedelta(days=1)).isoformat(),
                    }
                )
        return Reply(200, rows)

    # --- market data -------------------------------------------------------------------------------------------------
    def _visible(self, symbol: str) -> int:
        """How many of the symbol's bars are complete at the server's now."""
        bars = self.tape.bars.get(symbol)
        if bars is None:
            return 0
        return int(np.searchsorted(bars.t + DAY_NS, self._now_ns, side="right"))

    def _price(self, symbol: str) -> Decimal:
        visible = self._visible(symbol)
        if visible == 0:
            return Decimal(0)
        return Decimal(repr(float(self.tape.bars[symbol].close[visible - 1]))).quantize(PRICE_QUANTUM)

    def _wire_bars(
        self,
        symbol: str,
        start_ns: int | None,
        end_ns: int | None,
        *,
        after: str | None = None,
        limit: int | None = None,
        last: int | None = None,
    ) -> list[dict[str, Any]]:
        """The visible bars of `symbol` in [start, end], strictly after the stamp `after`, at most `limit` of them
        (or only the `last` few). Only the bars asked for are built, so a request costs time in proportion to its
        answer, not to the history the fake holds."""
        bars = self.tape.bars.get(symbol)
        if bars is None:
            return []
        stop = self._visible(symbol)
        first = 0 if start_ns is None else int(np.searchsorted(bars.t, start_ns, side="left"))
        if end_ns is not None:
            stop = min(stop, int(np.searchsorted(bars.t, end_ns, side="right")))
        patch = self._bar_patches.get(symbol)
        if patch is not None:  # a patch may drop, add or restate bars: build them all, then select
            wire = [w for w in patch(self._build_wire(bars, first, stop)) if after is None or w["t"] > after]
            wire = wire[-last:] if last is not None else wire
            return wire[:limit] if limit is not None else wire
        if after is not None:
            first = max(first, int(np.searchsorted(bars.t, parse_time(after), side="right")))
        if last is not None:
            first = max(first, stop - last)
        if limit is not None:
            stop = min(stop, first + limit)
        return self._build_wire(bars, first, stop)

    @staticmethod
    def _build_wire(bars: SymbolTape, first: int, stop: int) -> list[dict[str, Any]]:
        return [
            {
                "t": iso_bar(int(bars.t[i])),
                "o": float(bars.open[i]),
                "h": float(bars.high[i]),
                "l": float(bars.low[i]),
                "c": float(bars.close[i]),
                "v": float(bars.volume[i]),
                "n": 1000,
                "vw": round((float(bars.high[i]) + float(bars.low[i]) + float(bars.close[i])) / 3, 4),
            }
            for i in range(first, stop)
        ]

    def _bars(self, query: dict[str, str], _body: Any) -> Reply:
        if query.get("timeframe") != "1Day":
            raise ApiError(422, "this fake serves 1Day bars only", 42210000)
        if query.get("feed", "iex") not in ("iex", "sip"):
            raise ApiError(422, "invalid feed", 42210000)
        symbols = sorted({s for s in query.get("symbols", "").split(",") if s})
        if not symbols:
            raise ApiError(422, "symbols is required", 42210000)
        limit = min(int(query.get("limit") or 1000), MAX_BARS_PAGE, self.max_page_size)
        start = parse_time(query["start"]) if "start" in query else None
        end = parse_time(query["end"]) if "end" in query else None
        cursor: tuple[str, str] | None = None
        if query.get("page_token"):
            symbol, _, stamp = base64.b64decode(query["page_token"]).decode().split("|")
            cursor = (symbol, stamp)
        page: dict[str, list[dict[str, Any]]] = {}
        served = 0
        next_token: str | None = None
        for symbol in symbols:
            if cursor is not None and symbol < cursor[0]:
                continue
            after = cursor[1] if cursor is not None and symbol == cursor[0] else None
            room = limit - served
            # One bar more than fits tells whether another page follows.
            wire = self._wire_bars(symbol, start, end, after=after, limit=room + 1)
            if wire[:room]:
                page[symbol] = wire[:room]
                served += len(page[symbol])
            if len(wire) > room:
                last_symbol = next(reversed(page))
                token = f"{last_symbol}|D|{page[last_symbol][-1]['t']}"
                next_token = base64.b64encode(token.encode()).decode()
                break
        return Reply(200, {"bars": page, "next_page_token": next_token})

    def _snapshots(self, query: dict[str, str], _body: Any) -> Reply:
        result: dict[str, Any] = {}
        for symbol in (s for s in query.get("symbols", "").split(",") if s):
            wire = self._wire_bars(symbol, None, None, last=2)
            if not wire:
                continue
            daily = wire[-1]
            previous = wire[-2] if len(wire) > 1 else None
            trade_time = iso(datetime_to_ns(datetime.fromisoformat(daily["t"])) + CLOSE_OFFSET_NS)
            trade_price = daily["c"]
            intraday = path_price(self.tape.bars[symbol], self._now_ns)
            if intraday is not None:  # during a session: the documented intraday path (alpaca_intraday), not data
                trade_time, trade_price = iso(self._now_ns), round(intraday, 4)
            result[symbol] = {
                "latestTrade": {
                    "t": trade_time,
                    "x": "V",
                    "p": trade_price,
                    "s": 100,
                    "c": ["@"],
                    "i": 1,
                    "z": "C",
                },
                "latestQuote": {
                    "t": trade_time,
                    "ax": "V",
                    "ap": trade_price,
                    "as": 1,
                    "bx": "V",
                    "bp": trade_price,
                    "bs": 1,
                    "c": ["R"],
                    "z": "C",
                },
                "minuteBar": daily,
                "dailyBar": daily,
                "prevDailyBar": previous,
            }
        return Reply(200, result)


def _price_decimal(price: float) -> Decimal:
    return Decimal(repr(price)).quantize(PRICE_QUANTUM)


def _exactly_one(body: dict[str, Any], first: str, second: str, message: str) -> tuple[Decimal | None, Decimal | None]:
    pair = _decimal(body.get(first), first), _decimal(body.get(second), second)
    if (pair[0] is None) == (pair[1] is None):
        raise ApiError(422, message, 40010001)
    return pair


def _decimal(value: Any, name: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ApiError(422, f"invalid {name}", 40010001) from None
