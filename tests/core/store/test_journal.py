"""The journal: every published event, in order, with a payload that says what the agents saw."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from core.messages import (
    BarsFetched,
    IterationCompleted,
    IterationStats,
    Message,
    OrderFilled,
    OrderSubmitted,
    SignalValidated,
)
from core.store import StateStore
from core.types import BarFrame, OrderSide
from tests.core.store.records import T0, make_fill, make_signal
from tests.state_db import journal_count, journal_rows


def test_journal_appends_every_event_in_order(store: StateStore) -> None:
    signal = make_signal()
    store.journal([signal, SignalValidated(ts_event=T0, ts_init=T0, correlation_id="c-AAPL", signal=signal)])
    store.journal([make_signal("MSFT")])
    store.journal([])

    assert store.summary()["journal"] == 3
    assert journal_count(store.path, "SignalGenerated") == 2
    assert journal_count(store.path, "OrderFilled") == 0
    tail = journal_rows(store.path, last=2)
    assert [(r["type"], r["correlation_id"]) for r in tail] == [
        ("SignalValidated", "c-AAPL"),
        ("SignalGenerated", "c-MSFT"),
    ]
    assert [r["seq"] for r in journal_rows(store.path)] == [1, 2, 3]


STATS = IterationStats(
    session=date(2018, 2, 5), bars=505, rejected_bars=1, orders=2, fills=3, equity=Decimal("100000.00"), positions=4
)


def test_journal_payload_serialises_fields_generically(store: StateStore) -> None:
    signal = make_signal(price=float("nan"))
    counts = {"missing_price": 1}
    fill = make_fill()
    events: list[Message] = [
        signal,
        SignalValidated(ts_event=T0, ts_init=T0, correlation_id="c-AAPL", signal=signal),
        OrderSubmitted(
            ts_event=T0,
            ts_init=T0,
            client_order_id="zscore-AAPL-buy-1",
            broker_order_id="b-1",
            symbol="AAPL",
            side=OrderSide.BUY,
            qty=None,
            notional=Decimal("1500.00"),
        ),
        OrderFilled(ts_event=T0, ts_init=T0, fill=fill),
        IterationCompleted(ts_event=T0, ts_init=T0, iteration=7, stats=STATS),
        BarsFetched(ts_event=T0, ts_init=T0, iteration=7, frame=BarFrame.empty(("AAPL",)), new_rows=0, rejected=counts),
    ]
    counts["missing_price"] = 99  # the message holds its own read-only copy
    store.journal(events)

    generated, validated, submitted, filled, completed, fetched = journal_rows(store.path)
    assert validated["id"] == events[1].id
    assert validated["ts_event"] == "2018-02-05T21:00:00.000000+00:00"
    # a message nested in another is journaled on its own and referenced by id
    assert validated["payload"]["signal"] == {"ref": signal.id, "type": "SignalGenerated"}
    nested = generated["payload"]
    assert nested["side"] == "buy"
    assert nested["price"] == "NaN"  # exact money as text: an unusable price stays visibly unusable
    assert datetime.fromisoformat(nested["bar_ts"]) == T0 - timedelta(hours=6, minutes=30)
    assert submitted["payload"]["notional"] == "1500.00"
    assert submitted["payload"]["qty"] is None
    assert filled["payload"]["fill"]["qty"] == "8.851540744"
    assert completed["payload"]["stats"] == {
        "session": "2018-02-05",
        "bars": 505,
        "rejected_bars": 1,
        "orders": 2,
        "fills": 3,
        "equity": "100000.00",
        "positions": 4,
    }
    assert fetched["payload"]["rejected"] == {"missing_price": 1}
    assert "id" not in validated["payload"]  # kept in its own column
    assert datetime.fromisoformat(validated["payload"]["ts_init"]) == T0


def test_journal_records_a_bar_frame_as_a_summary(store: StateStore) -> None:
    frame = BarFrame.empty(("AAPL", "MSFT"))
    store.journal([BarsFetched(ts_event=T0, ts_init=T0, iteration=1, frame=frame, new_rows=0, rejected={})])

    [row] = journal_rows(store.path)
    assert row["payload"]["frame"] == {"symbols": 2, "rows": 0, "last_bar": None}
