"""AlpacaBroker against the fake Alpaca server, through the real alpaca-py TradingClient and TradingStream."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from pydantic import SecretStr

from core.broker.alpaca import AlpacaBroker, stream_url_for
from core.broker.alpaca_http import RetryPolicy
from core.broker.alpaca_options import AlpacaConnection
from core.broker.base import AuthenticationError, Broker, OrderRejectedError, TransientBrokerError
from core.broker.rate_limit import RateLimiter
from core.broker.reconcile import NEVER_SUBMITTED, reconcile_orders
from core.reasons import RejectionReason
from core.types import BrokerOrder, OrderRequest, OrderSide, OrderStatus
from tests.core.broker.conftest import FakeTime, RecordingSleep
from tests.fakes.alpaca_server import FakeAlpacaServer, Fault

MakeBroker = Callable[..., AlpacaBroker]
ORDERS = "/v2/orders"
BY_CLIENT_ID = "/v2/orders:by_client_order_id"


def buy(
    client_order_id: str, symbol: str = "AAPL", *, notional: str | None = "1000", qty: str | None = None
) -> OrderRequest:
    return OrderRequest(
        client_order_id=client_order_id,
        symbol=symbol,
        side=OrderSide.BUY,
        notional=Decimal(notional) if notional is not None and qty is None else None,
        qty=Decimal(qty) if qty is not None else None,
    )


def order_bodies(server: FakeAlpacaServer) -> list[dict[str, object]]:
    return [r.body for r in server.requests("POST", ORDERS)]


def test_implements_the_broker_port(make_broker: MakeBroker) -> None:
    assert isinstance(make_broker(), Broker)


# --- order shape ---------------------------------------------------------------------------------------------------


async def test_notional_order_wire_body(make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer) -> None:
    broker = make_broker()

    order = await broker.submit_order(buy("zs-aapl-1", notional="1234.56"))

    assert order_bodies(fake_alpaca) == [
        {
            "symbol": "AAPL",
            "notional": 1234.56,
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
            "extended_hours": False,
            "client_order_id": "zs-aapl-1",
        }
    ]
    assert order.status is OrderStatus.ACCEPTED
    assert (order.notional, order.qty) == (Decimal("1234.56"), None)


async def test_amounts_are_sent_as_approved(make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer) -> None:
    fake_alpaca.set_asset("BRK.B", fractionable=False)
    broker = make_broker()

    await broker.submit_order(buy("zs-aapl-q", qty="2.123456789"))
    await broker.submit_order(buy("zs-brk-1", "BRK.B", qty="3"))

    first, second = order_bodies(fake_alpaca)
    assert (first["qty"], "notional" in first) == (2.123456789, False)
    assert (second["qty"], "notional" in second) == (3.0, False)
    assert fake_alpaca.count("GET", "/v2/stocks") == 0  # no snapshot: sizing is the risk agent's, not ours


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (buy("zs-1", "BRK.B", notional="1000"), RejectionReason.NOT_FRACTIONABLE),  # would need re-sizing
        (buy("zs-2", "BRK.B", qty="3.7"), RejectionReason.NOT_FRACTIONABLE),  # would need rounding
        (buy("zs-3", notional="1234.567"), RejectionReason.INVALID_NOTIONAL),
        (buy("zs-4", notional="0.50"), RejectionReason.BELOW_MIN_NOTIONAL),
        (buy("zs-5", qty="1.0000000001"), RejectionReason.INVALID_QTY),
        (buy("zs-6", "NOPE"), RejectionReason.UNKNOWN_ASSET),
    ],
)
async def test_an_order_no_approval_would_hold_is_refused_before_sending(
    make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer, request_: OrderRequest, reason: RejectionReason
) -> None:
    fake_alpaca.set_asset("BRK.B", fractionable=False)

    with pytest.raises(OrderRejectedError) as caught:
        await make_broker().submit_order(request_)

    assert caught.value.reason is reason
    assert fake_alpaca.count("POST", ORDERS) == 0


async def test_a_sell_is_translated_without_a_position_lookup(
    make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer
) -> None:
    fake_alpaca.seed_position("AAPL", Decimal("5.5"), Decimal(150))
    sell = OrderRequest(client_order_id="zs-aapl-s", symbol="AAPL", side=OrderSide.SELL, qty=Decimal("5.5"))

    order = await make_broker().submit_order(sell)

    assert order.side is OrderSide.SELL
    assert order_bodies(fake_alpaca)[0]["qty"] == 5.5
    assert fake_alpaca.count("GET", "/v2/positions") == 0  # whether a sell may go is the risk agent's decision


async def test_the_brokers_refusal_of_a_short_is_a_typed_reason(
    make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer
) -> None:
    sell = OrderRequest(client_order_id="zs-aapl-s", symbol="AAPL", side=OrderSide.SELL, qty=Decimal(1))

    with pytest.raises(OrderRejectedError) as caught:
        await make_broker().submit_order(sell)

    assert caught.value.reason is RejectionReason.INSUFFICIENT_QTY  # the defensive net is the broker's own


# --- idempotency ---------------------------------------------------------------------------------------------------


async def test_504_after_the_order_landed_is_resolved_by_lookup(
    make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer
) -> None:
    fake_alpaca.inject(Fault.http(504, process=True), "POST", ORDERS)

    order = await make_broker().submit_order(buy("zs-504"))

    assert order.client_order_id == "zs-504"
    assert len(fake_alpaca.orders_for("zs-504")) == 1
    assert fake_alpaca.count("POST", ORDERS) == 1  # no second submission once the lookup found it
    assert fake_alpaca.count("GET", BY_CLIENT_ID) == 1


async def test_504_before_the_order_landed_resubmits_with_the_same_id(
    make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer
) -> None:
    fake_alpaca.inject(Fault.http(504, process=False), "POST", ORDERS)

    await make_broker().submit_order(buy("zs-504b"))

    assert [b["client_order_id"] for b in order_bodies(fake_alpaca)] == ["zs-504b", "zs-504b"]
    assert len(fake_alpaca.orders_for("zs-504b")) == 1


@pytest.mark.parametrize(
    "fault",
    [Fault.hang(), Fault.reset(), Fault.malformed(), Fault.http(500, process=True), Fault.http(502, process=True)],
    ids=["timeout", "reset", "malformed-json", "500", "502-html"],
)
async def test_ambiguous_failure_after_acceptance_leaves_exactly_one_order(
    make_broker: MakeBroker, connection: AlpacaConnection, fake_alpaca: FakeAlpacaServer, fault: Fault
) -> None:
    fake_alpaca.inject(fault, "POST", ORDERS)
    # The hung reply never comes, so the timeout only bounds how long the test waits; healthy calls never reach it.
    order = await make_broker(replace(connection, http_timeout_seconds=2.0)).submit_order(buy("zs-amb"))

    assert len(fake_alpaca.orders_for("zs-amb")) == 1
    assert order.broker_order_id == fake_alpaca.orders_for("zs-amb")[0].id
    assert fake_alpaca.count("POST", ORDERS) == 1


async def test_duplicate_client_order_id_returns_the_existing_order(
    make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer
) -> None:
    landed = fake_alpaca.place_order(
        {"symbol": "AAPL", "notional": "1000", "side": "buy", "type": "market", "time_in_force": "day",
         "client_order_id": "zs-dup"}
    )  # fmt: skip

    order = await make_broker().submit_order(buy("zs-dup"))

    assert order.broker_order_id == landed["id"]
    assert len(fake_alpaca.orders_for("zs-dup")) == 1


# --- retries and errors --------------------------------------------------------------------------------------------


async def test_429_honours_retry_after(
    make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer, retry_sleep: RecordingSleep
) -> None:
    fake_alpaca.inject(Fault.rate_limited(retry_after=7), "GET", "/v2/account")

    account = await make_broker().get_account()

    assert account.equity == Decimal(100_000)
    assert fake_alpaca.count("GET", "/v2/account") == 2
    assert len(retry_sleep.calls) == 1
    assert 7 <= retry_sleep.calls[0] <= 8


async def test_429_honours_x_ratelimit_reset(
    make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer, retry_sleep: RecordingSleep
) -> None:
    reset_at = fake_alpaca.now.timestamp() + 12
    fake_alpaca.inject(Fault.rate_limited(retry_after=None, ratelimit_reset=reset_at), "GET", "/v2/account")

    await make_broker().get_account()

    assert 12 <= retry_sleep.calls[0] <= 13.5


async def test_429_on_submit_is_retried_without_a_lookup(
    make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer, retry_sleep: RecordingSleep
) -> None:
    fake_alpaca.inject(Fault.rate_limited(retry_after=2), "POST", ORDERS)

    await make_broker().submit_order(buy("zs-429"))

    assert fake_alpaca.count("POST", ORDERS) == 2
    assert fake_alpaca.count("GET", BY_CLIENT_ID) == 0  # a 429 is refused before any work: nothing to look up
    assert len(fake_alpaca.orders_for("zs-429")) == 1


async def test_transient_failures_stop_within_the_policy(
    make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer, retry_sleep: RecordingSleep
) -> None:
    fake_alpaca.inject(Fault.http(503), "GET", "/v2/account", times=20)
    policy = RetryPolicy(max_attempts=4, budget_s=30.0)

    with pytest.raises(TransientBrokerError, match="HTTP 503"):
        await make_broker(retry=policy).get_account()

    assert fake_alpaca.count("GET", "/v2/account") == 4
    assert sum(retry_sleep.calls) <= policy.budget_s
    assert len(set(retry_sleep.calls)) == 3  # jittered


async def test_retry_after_beyond_the_budget_gives_up_at_once(
    make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer, retry_sleep: RecordingSleep
) -> None:
    fake_alpaca.inject(Fault.rate_limited(retry_after=120), "GET", "/v2/account")

    with pytest.raises(TransientBrokerError):
        await make_broker(retry=RetryPolicy(budget_s=30)).get_account()

    assert retry_sleep.calls == []


async def test_401_stops_with_a_clear_message(
    make_broker: MakeBroker, connection: AlpacaConnection, fake_alpaca: FakeAlpacaServer
) -> None:
    broker = make_broker(replace(connection, secret_key=SecretStr("wrong")))

    with pytest.raises(AuthenticationError) as caught:
        await broker.get_account()

    message = str(caught.value)
    assert "HTTP 401" in message
    assert "ALPACA_API_KEY" in message
    assert "wrong" not in message  # the secret never reaches a message
    assert fake_alpaca.count() == 1  # not retried


async def test_permanent_rejection_carries_the_broker_message(
    make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer
) -> None:
    with pytest.raises(OrderRejectedError) as caught:
        await make_broker().submit_order(buy("zs-big", notional="5000000"))

    assert caught.value.reason == "insufficient_buying_power"
    assert caught.value.message == "insufficient buying power"
    assert fake_alpaca.count("POST", ORDERS) == 1


async def test_broker_side_not_fractionable_rejection_is_mapped(
    make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer
) -> None:
    broker = make_broker()
    await broker.get_asset("MSFT")  # cached as fractionable...
    fake_alpaca.set_asset("MSFT", fractionable=False)  # ...then the broker changes its mind

    with pytest.raises(OrderRejectedError) as caught:
        await broker.submit_order(buy("zs-msft", "MSFT"))

    assert caught.value.reason == "not_fractionable"


# --- account, assets, clock ----------------------------------------------------------------------------------------


async def test_assets_are_cached_for_the_day_and_tolerate_a_missing_easy_to_borrow(
    make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer
) -> None:
    fake_alpaca.set_asset("AAPL", easy_to_borrow=None)  # Alpaca drops the field on 2026-09-22
    broker = make_broker()

    first = await broker.get_asset("AAPL")
    again = await broker.get_asset("AAPL")
    unknown = await broker.get_asset("NOPE")
    fake_alpaca.set_now(fake_alpaca.now + timedelta(days=1))
    await broker.get_asset("AAPL")

    assert first == again
    assert first is not None
    assert first.fractionable
    assert first.tradable
    assert unknown is None
    assert fake_alpaca.count("GET", "/v2/assets/AAPL") == 2


async def test_preloaded_assets_answer_without_calls(make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer) -> None:
    broker = make_broker()

    loaded = await broker.preload_assets()
    assets = [await broker.get_asset(s) for s in ("AAPL", "MSFT", "NOPE")]

    assert loaded == len(fake_alpaca.tape.symbols)
    assert [a.symbol if a else None for a in assets] == ["AAPL", "MSFT", None]
    assert fake_alpaca.count("GET", "/v2/assets") == 1


async def test_account_positions_and_masked_summary(make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer) -> None:
    fake_alpaca.seed_position("MSFT", Decimal(10), Decimal(80))
    broker = make_broker()

    summary = await broker.get_account_summary()
    positions = await broker.get_positions()

    assert summary.masked_number == "********K5QA"
    assert fake_alpaca.account_number not in repr(summary)
    assert summary.equity == Decimal(100_000) + 10 * fake_alpaca._price("MSFT")
    assert positions["MSFT"].qty == Decimal(10)
    assert positions["MSFT"].avg_entry_price == Decimal(80)


async def test_clock_and_calendar(make_broker: MakeBroker) -> None:
    broker = make_broker()

    market = await broker.get_clock()
    sessions = await broker.get_calendar(market.next_open.date(), market.next_open.date() + timedelta(days=6))

    assert market.is_open is False  # midnight ET
    assert market.next_open.hour == 14
    assert market.next_open.minute == 30
    assert sessions[0].open == market.next_open
    assert all(s.close - s.open == timedelta(hours=6, minutes=30) for s in sessions)


def test_stream_url_follows_the_trading_url() -> None:
    assert stream_url_for("https://paper-api.alpaca.markets") == "wss://paper-api.alpaca.markets/stream"
    assert stream_url_for("http://127.0.0.1:8080") == "ws://127.0.0.1:8080/stream"
    assert stream_url_for(None) is None


# --- order updates -------------------------------------------------------------------------------------------------


async def test_polling_alone_tracks_every_order_to_its_final_state(
    make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer
) -> None:
    broker = make_broker()
    filled = await broker.submit_order(buy("zs-fill", "AAPL"))
    canceled = await broker.submit_order(buy("zs-cancel", "MSFT"))
    await broker.cancel_order("zs-cancel")
    fake_alpaca.set_now(fake_alpaca.now + timedelta(hours=10))  # past 09:30 ET: AAPL fills at the open
    expired = await broker.submit_order(buy("zs-expire", "XOM"))  # after the open: waits for tomorrow
    fake_alpaca.expire_open_orders()

    updates = await broker.poll_updates()

    final = {u.order.client_order_id: u.order.status for u in updates}
    assert final == {
        filled.client_order_id: OrderStatus.FILLED,
        canceled.client_order_id: OrderStatus.CANCELED,
        expired.client_order_id: OrderStatus.EXPIRED,
    }
    fills = [u.fill for u in updates if u.fill is not None]
    server_order = fake_alpaca.orders_for("zs-fill")[0]
    assert len(fills) == 1
    assert fills[0].qty == server_order.filled_qty
    assert fills[0].price == server_order.filled_avg_price
    calls = fake_alpaca.count("GET", ORDERS)
    assert await broker.poll_updates() == []
    assert fake_alpaca.count("GET", ORDERS) == calls  # nothing open is followed: no call at all


async def _streaming_broker(
    make_broker: MakeBroker, account: AlpacaConnection, server: FakeAlpacaServer, reconcile_s: float
) -> AlpacaBroker:
    broker = make_broker(
        replace(account, stream_url=server.stream_url), stream_backoff_s=(0.05, 0.2), reconcile_interval_s=reconcile_s
    )
    await broker.start_stream()
    async with asyncio.timeout(30):
        await broker.wait_stream_connected()
    await asyncio.to_thread(server.wait_for_listeners, 1)
    return broker


async def _until(condition: Callable[[], bool]) -> None:
    """Wait for state that other threads (the fake's servers) change; there is no event to await."""
    async with asyncio.timeout(30):
        while not condition():  # noqa: ASYNC110 - the state lives in other threads
            await asyncio.sleep(0.01)


async def test_stream_fills_arrive_exactly_once_without_rest_calls(
    make_broker: MakeBroker, connection: AlpacaConnection, fake_alpaca: FakeAlpacaServer
) -> None:
    broker = await _streaming_broker(make_broker, connection, fake_alpaca, reconcile_s=3600)
    await broker.submit_order(buy("zs-s1", "AAPL"))
    await broker.submit_order(buy("zs-s2", "MSFT"))
    await _until(lambda: len(fake_alpaca.stream.delivered) == 2)
    await broker.poll_updates()  # the reconciliation due after connecting
    rest_calls = fake_alpaca.count("GET", ORDERS)

    fake_alpaca.set_now(fake_alpaca.now + timedelta(hours=10))
    await _until(lambda: not broker.followed_orders())  # both fills arrived over the stream
    updates = await broker.poll_updates()  # the hourly timer is due, but nothing is left open to ask about
    updates += await broker.poll_updates()

    fills = [u.fill for u in updates if u.fill is not None]
    assert sorted(f.client_order_id for f in fills) == ["zs-s1", "zs-s2"]
    stream_ids = {m["data"].get("execution_id") for m in fake_alpaca.stream.delivered}
    assert {f.execution_id for f in fills} <= stream_ids  # the exact executions, from the stream
    assert fake_alpaca.count("GET", ORDERS) == rest_calls


async def test_fills_missed_while_the_stream_was_down_are_recovered_on_reconnect(
    make_broker: MakeBroker, connection: AlpacaConnection, fake_alpaca: FakeAlpacaServer
) -> None:
    broker = await _streaming_broker(
        make_broker, connection, fake_alpaca, reconcile_s=1e9
    )  # only the reconnect may trigger
    await broker.submit_order(buy("zs-m1", "AAPL"))
    await broker.submit_order(buy("zs-m2", "JPM"))
    await _until(lambda: len(fake_alpaca.stream.delivered) == 2)
    await broker.poll_updates()  # steady state: the accepted events are known

    fake_alpaca.drop_stream(block=True)
    fake_alpaca.set_now(fake_alpaca.now + timedelta(hours=10))  # both fill while nobody listens
    await _until(lambda: sum(m["data"]["event"] == "fill" for m in fake_alpaca.stream.missed) == 2)
    fake_alpaca.unblock_stream()
    await _until(lambda: broker.stream_connects >= 2 and broker.stream_connected)

    updates = await broker.poll_updates()

    fills = {u.fill.client_order_id: u.fill for u in updates if u.fill is not None}
    assert set(fills) == {"zs-m1", "zs-m2"}
    for client_order_id, fill in fills.items():
        server_order = fake_alpaca.orders_for(client_order_id)[0]
        assert (fill.qty, fill.price) == (server_order.filled_qty, server_order.filled_avg_price)


async def test_startup_reconciliation(make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer) -> None:
    fake_alpaca.seed_position("XOM", Decimal(4), Decimal(85))
    foreign = fake_alpaca.place_order(
        {"symbol": "MSFT", "notional": "500", "side": "buy", "type": "market", "time_in_force": "day",
         "client_order_id": "other-process-1"}
    )  # fmt: skip
    broker = make_broker()
    closed = await broker.submit_order(buy("zs-away", "AAPL"))
    fake_alpaca.set_now(fake_alpaca.now + timedelta(hours=10))  # AAPL and MSFT fill while "we" are down
    still_open = fake_alpaca.place_order(
        {"symbol": "JPM", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day",
         "client_order_id": "zs-open"}
    )  # fmt: skip
    ghost = BrokerOrder(
        client_order_id="zs-ghost", broker_order_id="", symbol="V", side=OrderSide.BUY,
        status=OrderStatus.NEW, qty=Decimal(1), notional=None,
    )  # fmt: skip
    local_open = [closed, ghost, _as_local(still_open)]

    report = await reconcile_orders(make_broker(), local_open, fake_alpaca.now)

    assert [o.client_order_id for o in report.open_orders] == ["zs-open"]
    assert report.adopted == ()  # the foreign order filled already; nothing open is unknown to us
    assert [(o.client_order_id, o.status) for o in report.closed_while_away] == [("zs-away", OrderStatus.FILLED)]
    assert [(o.client_order_id, o.status, o.reason) for o in report.never_submitted] == [
        ("zs-ghost", OrderStatus.CANCELED, NEVER_SUBMITTED)
    ]
    fills = [u.fill for u in report.updates if u.fill is not None]
    away = fake_alpaca.orders_for("zs-away")[0]
    assert [(f.client_order_id, f.qty, f.price) for f in fills] == [("zs-away", away.filled_qty, away.filled_avg_price)]
    assert set(report.positions) == {"XOM", "AAPL", "MSFT"}
    assert foreign["client_order_id"] == "other-process-1"


async def test_startup_adopts_open_orders_unknown_locally(
    make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer
) -> None:
    fake_alpaca.place_order(
        {"symbol": "MSFT", "qty": "2", "side": "buy", "type": "market", "time_in_force": "day",
         "client_order_id": "other-process-2"}
    )  # fmt: skip
    broker = make_broker()

    report = await reconcile_orders(broker, [], fake_alpaca.now)
    fake_alpaca.set_now(fake_alpaca.now + timedelta(hours=10))
    updates = await broker.poll_updates()

    assert [o.client_order_id for o in report.adopted] == ["other-process-2"]
    assert [(u.order.client_order_id, u.order.status) for u in updates] == [("other-process-2", OrderStatus.FILLED)]


def _as_local(wire: dict[str, object]) -> BrokerOrder:
    return BrokerOrder(
        client_order_id=str(wire["client_order_id"]),
        broker_order_id=str(wire["id"]),
        symbol=str(wire["symbol"]),
        side=OrderSide.BUY,
        status=OrderStatus.ACCEPTED,
        qty=Decimal(str(wire["qty"])),
        notional=None,
    )


async def test_every_request_waits_for_the_rate_limiter(make_broker: MakeBroker, fake_alpaca: FakeAlpacaServer) -> None:
    fake = FakeTime()
    limiter = RateLimiter(60, monotonic=fake.monotonic, sleep=fake.sleep)  # burst of 3, then one a second
    broker = make_broker(limiter=limiter)

    for _ in range(8):
        await broker.get_clock()

    assert limiter.acquired == fake_alpaca.count() == 8
    assert fake.t == pytest.approx(5 * 60 / 57)  # five waits for a refill at 57 tokens a minute


async def test_lists_tradable_equities_for_the_scanner_in_one_call(make_broker, fake_alpaca) -> None:  # type: ignore[no-untyped-def]
    from core.universe import AssetDirectory  # noqa: PLC0415

    fake_alpaca.set_asset("AAPL", tradable=False)
    broker = make_broker()
    assert isinstance(broker, AssetDirectory)
    before = len(fake_alpaca.requests("GET", "/v2/assets"))
    symbols = await broker.list_tradable_equities()
    again = await broker.list_tradable_equities()
    assert symbols == again
    assert "AAPL" not in symbols
    assert "MSFT" in symbols
    assert len(fake_alpaca.requests("GET", "/v2/assets")) - before == 1  # cached for the day
