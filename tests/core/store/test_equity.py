"""Equity marks: the start-of-day equity the daily-loss limit uses and the all-time peak the drawdown limit uses."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from core.store import EquityMark, StateStore


def test_start_of_day_equity_is_never_overwritten(store: StateStore) -> None:
    day = date(2018, 2, 5)
    store.mark_equity(day, Decimal("100000.00"))
    store.mark_equity(day, Decimal("98500.25"))
    mark = store.mark_equity(day, Decimal("99000.10"))

    assert mark == EquityMark(day, Decimal("100000.00"), Decimal("99000.10"), Decimal("100000.00"))
    assert store.equity_mark(day) == mark


def test_peak_is_the_all_time_high_and_never_falls(store: StateStore) -> None:
    d1, d2, d3 = date(2018, 2, 1), date(2018, 2, 2), date(2018, 2, 5)
    store.mark_equity(d1, Decimal("100000"))
    store.mark_equity(d1, Decimal("101500.50"))  # intraday high
    store.mark_equity(d1, Decimal("100800"))
    store.mark_equity(d2, Decimal("99000"))
    mark = store.mark_equity(d3, Decimal("97000"))

    assert store.summary()["peak_equity"] == "101500.50"
    assert mark.peak_equity == Decimal("101500.50")
    assert mark.start_equity == Decimal("97000")  # a new session starts from its own first mark

    assert store.mark_equity(d3, Decimal("102000")).peak_equity == Decimal("102000")
    assert store.summary()["peak_equity"] == "102000"


def test_equity_queries(store: StateStore) -> None:
    assert store.summary()["peak_equity"] is None
    assert store.latest_equity_mark() is None
    assert store.equity_mark(date(2018, 2, 5)) is None

    store.mark_equity(date(2018, 2, 5), Decimal("100500"))
    store.mark_equity(date(2018, 2, 2), Decimal("100000"))  # an earlier session marked later
    store.mark_equity(date(2018, 2, 5), Decimal("100700"))

    latest = store.latest_equity_mark()
    assert latest is not None
    assert latest.session == date(2018, 2, 5)
    assert latest.last_equity == Decimal("100700")
    earlier = store.equity_mark(date(2018, 2, 2))
    assert earlier is not None
    assert earlier.last_equity == Decimal("100000")
    assert store.summary()["peak_equity"] == "100700"
