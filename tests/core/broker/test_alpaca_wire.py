"""Alpaca payloads into our types, using the wire-format fixtures."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.bar_sanity import UNREADABLE_TIME
from core.broker.alpaca_wire import (
    WireFormatError,
    account_from_wire,
    asset_from_wire,
    bars_from_wire,
    mask_account_number,
    order_from_wire,
    order_status,
    position_from_wire,
    session_from_wire,
    trade_event_from_wire,
)
from core.types import OrderSide, OrderStatus, OrderType, TimeInForce

FIXTURES = Path(__file__).parents[2] / "fakes" / "fixtures"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_order_fixture() -> None:
    order = order_from_wire(fixture("order.json"))

    assert order.side is OrderSide.BUY
    assert order.status is OrderStatus.ACCEPTED
    assert (order.notional, order.qty, order.filled_qty, order.filled_avg_price) == (
        Decimal(500),
        None,
        Decimal(0),
        None,
    )
    assert order.submitted_at == datetime(2021, 3, 16, 18, 38, 1, 937734, tzinfo=UTC)


def test_money_fields_are_decimals() -> None:
    account = account_from_wire(fixture("account.json"))
    (position,) = (position_from_wire(p) for p in fixture("positions.json"))

    assert account.equity == Decimal("103820.56")
    assert account.cash == Decimal("-23140.2")
    assert (position.qty, position.avg_entry_price, position.market_price) == (Decimal(5), Decimal(100), Decimal(120))


def test_asset_without_easy_to_borrow_still_reads() -> None:
    raw = fixture("asset.json")
    del raw["easy_to_borrow"]

    assert asset_from_wire(raw).fractionable is True


@pytest.mark.parametrize(
    ("raw", "filled", "ours"),
    [
        ("pending_new", "0", OrderStatus.NEW),
        ("done_for_day", "3", OrderStatus.PARTIALLY_FILLED),
        ("replaced", "0", OrderStatus.CANCELED),
        ("some_future_status", "0", OrderStatus.ACCEPTED),
    ],
)
def test_status_mapping(raw: str, filled: str, ours: OrderStatus) -> None:
    assert order_status(raw, Decimal(filled)) is ours


@pytest.mark.parametrize(
    ("raw", "filled", "ours"),
    [
        ("held", "0", OrderStatus.NEW),  # waiting on another order: still resting
        ("stopped", "0", OrderStatus.ACCEPTED),  # a trade is guaranteed, not yet made
        ("pending_cancel", "0", OrderStatus.ACCEPTED),  # a cancel asked, not confirmed: it may still fill
        ("pending_cancel", "4", OrderStatus.PARTIALLY_FILLED),
        ("suspended", "0", OrderStatus.NEW),
        ("calculated", "10", OrderStatus.PARTIALLY_FILLED),
    ],
)
def test_every_status_a_resting_stop_passes_through_keeps_it_open(raw: str, filled: str, ours: OrderStatus) -> None:
    status = order_status(raw, Decimal(filled))
    assert status is ours
    assert status.is_open


def stop_wire(**fields: Any) -> dict[str, Any]:
    return {
        **fixture("order.json"),
        "notional": None,
        "qty": "191",
        "side": "sell",
        "type": "stop",
        "order_type": "stop",
        "time_in_force": "gtc",
        "stop_price": "142.5",
        **fields,
    }


def test_a_stop_reads_with_its_type_time_in_force_and_price() -> None:
    order = order_from_wire(stop_wire())

    assert (order.order_type, order.time_in_force, order.stop_price, order.trail_percent) == (
        OrderType.STOP,
        TimeInForce.GTC,
        Decimal("142.5"),
        None,
    )
    assert (order.is_stop, order.open_qty) == (True, Decimal(191))


def test_a_trailing_stop_reads_its_current_level_from_stop_price() -> None:
    raw = stop_wire(type="trailing_stop", order_type="trailing_stop", stop_price="168.3405", trail_percent="5",
                    hwm="177.2")  # fmt: skip

    order = order_from_wire(raw)

    assert (order.order_type, order.stop_price, order.trail_percent) == (
        OrderType.TRAILING_STOP,
        Decimal("168.3405"),
        Decimal(5),
    )


@pytest.mark.parametrize(
    ("fields", "order_type", "tif"),
    [
        ({"type": "limit", "order_type": "limit"}, OrderType.MARKET, TimeInForce.GTC),  # a user's: not ours
        ({"type": None, "order_type": "trailing_stop"}, OrderType.TRAILING_STOP, TimeInForce.GTC),
        ({"time_in_force": "ioc"}, OrderType.STOP, TimeInForce.DAY),  # ends by the close, like a day order
        ({"time_in_force": None}, OrderType.STOP, TimeInForce.DAY),
    ],
)
def test_types_and_times_in_force_we_never_send_still_read(
    fields: dict[str, Any], order_type: OrderType, tif: TimeInForce
) -> None:
    order = order_from_wire(stop_wire(**fields))
    assert (order.order_type, order.time_in_force) == (order_type, tif)


def test_a_market_order_reads_as_a_day_market_order() -> None:
    order = order_from_wire(fixture("order.json"))
    assert (order.order_type, order.time_in_force, order.stop_price, order.is_stop) == (
        OrderType.MARKET,
        TimeInForce.DAY,
        None,
        False,
    )


def test_folded_vendor_status_is_kept_as_the_reason() -> None:
    raw = {**fixture("order.json"), "status": "done_for_day"}

    assert order_from_wire(raw).reason == "done_for_day"


def test_calendar_row_keeps_early_closes() -> None:
    session = session_from_wire({"date": "2018-11-23", "open": "09:30", "close": "13:00"})

    assert session.close == datetime(2018, 11, 23, 18, tzinfo=UTC)


def test_trade_update_fixture() -> None:
    message = fixture("trade_update_accepted.json")
    # The SDK's fixture trims the order; Alpaca sends the whole order object, as order.json has it.
    message["data"]["order"] = {**fixture("order.json"), **message["data"]["order"]}

    event = trade_event_from_wire(message)

    assert event.event == "accepted"
    assert event.order.client_order_id == "123"
    assert event.execution is None
    assert event.ts == datetime(2025, 1, 1, 11, 11, 11, 123456, tzinfo=UTC)


def test_trade_update_with_a_trimmed_order_is_refused() -> None:
    with pytest.raises(WireFormatError, match="missing"):
        trade_event_from_wire(fixture("trade_update_accepted.json"))


def test_missing_required_money_is_an_error_not_a_default() -> None:
    raw = fixture("account.json")
    del raw["equity"]

    with pytest.raises(WireFormatError, match="equity"):
        account_from_wire(raw)


def test_mask_account_number() -> None:
    assert mask_account_number("PA3T8N0ZK5QA") == "********K5QA"
    assert mask_account_number("123") == "***"


def test_buying_power_is_cash_not_margin() -> None:
    from core.broker.alpaca_wire import account_from_wire  # noqa: PLC0415

    raw = {"equity": "100000", "cash": "60000", "buying_power": "200000", "non_marginable_buying_power": "60000"}
    assert account_from_wire(raw).buying_power == Decimal(60000)


def test_bars_read_as_arrays_and_unreadable_parts_are_marked_not_dropped() -> None:
    raw = [
        {"t": "2018-02-05T05:00:00Z", "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 100},
        {"t": "2018-02-06T05:00:00+00:00", "o": None, "h": "x", "l": 0.5, "c": 1.5, "v": 100},
        {"t": "yesterday", "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 100},
    ]
    t, values = bars_from_wire(raw)
    assert t.tolist() == [
        int(datetime(2018, 2, 5, 5, tzinfo=UTC).timestamp()) * 10**9,
        int(datetime(2018, 2, 6, 5, tzinfo=UTC).timestamp()) * 10**9,
        UNREADABLE_TIME,
    ]
    assert values.shape == (3, 5)
    assert values[0].tolist() == [1.0, 2.0, 0.5, 1.5, 100.0]
    assert np.isnan(values[1, :2]).all()  # missing or not a number: NaN for the sanity stage to judge
    assert values[1, 2:].tolist() == [0.5, 1.5, 100.0]
