"""Protective stops in a sim replay on real bars: placed at the open an entry fills at, triggered on the bar's low or
at a gapped open, trailing ones too, and never more for sale than owned."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from core.clock import NyseCalendar
from core.order_ids import is_protective_stop_id
from core.types import OrderSide, OrderType, TimeInForce
from tests.e2e.scripted_strategy import install_scripted, params
from tradingd.app import App, build_sim, run_app

D = Decimal
SYMBOLS = ("AAPL", "MSFT", "DHR", "O", "ES", "XOM", "JPM", "JNJ", "GE", "T")


def replay(tmp_path: Path, start: date, end: date, **values: Any) -> App:
    settings = Settings(data_dir=tmp_path, use_scanner=False, log_level="ERROR", **{"symbols": SYMBOLS, **values})
    app = build_sim(settings, start=start, end=end)
    asyncio.run(run_app(app))
    return app


def test_an_entry_is_protected_from_its_open_and_a_gap_sells_at_the_next_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same scripted CELG position as tests/e2e/test_paper_stops.py: the sim and the fake agree.
    name = install_scripted(tmp_path / "site", monkeypatch)
    app = replay(
        tmp_path,
        date(2017, 10, 2),
        date(2017, 10, 31),
        symbols=("CELG",),
        strategy_name=name,
        strategy_params=params("CELG", "2017-10-24"),
        sim_slippage_bps=0,
    )
    records = app.store.order_records()
    fills = app.store.fills()
    stats = app.orchestrator.stats
    app.close()
    [buy] = [f for f in fills if f.side is OrderSide.BUY]
    assert buy.price == D("120.37")
    open_25 = NyseCalendar().session_open(date(2017, 10, 25))
    gtc = [r.order for r in records if r.order.time_in_force is TimeInForce.GTC]
    assert [(o.qty, o.stop_price, o.submitted_at) for o in gtc] == [(D(int(buy.qty)), D("114.36"), open_25)]
    sells = [f for f in fills if f.side is OrderSide.SELL]
    assert all(is_protective_stop_id(f.client_order_id) for f in sells)
    assert sum(f.qty for f in sells) == buy.qty
    assert {(f.price, f.ts.date()) for f in sells} == {(D("98.95"), date(2017, 10, 26))}  # the gapped open
    assert (stats.stops_placed >= 2, len(stats.stops_triggered), stats.oversells) == (True, 2, 0)


@pytest.mark.parametrize("mode", ["fixed", "trailing"])
def test_a_replay_places_and_triggers_stops_and_never_offers_more_than_it_owns(tmp_path: Path, mode: str) -> None:
    app = replay(tmp_path, date(2015, 6, 1), date(2016, 6, 30), stop_mode=mode)
    records = [r.order for r in app.store.order_records() if is_protective_stop_id(r.order.client_order_id)]
    fills = app.store.fills()
    stats = app.orchestrator.stats
    marks = app.store.high_water_marks()
    held = app.store.load_positions()
    app.close()
    kinds = Counter((o.order_type, o.time_in_force) for o in records)
    whole = OrderType.TRAILING_STOP if mode == "trailing" else OrderType.STOP
    assert kinds[(whole, TimeInForce.GTC)] > 0
    assert kinds[(OrderType.STOP, TimeInForce.DAY)] > 0  # fractions
    assert stats.stops_placed == len(records)
    assert len(stats.stops_triggered) > 5
    assert stats.oversells == 0
    for symbol in {f.symbol for f in fills}:
        bought = sum(f.qty for f in fills if f.symbol == symbol and f.side is OrderSide.BUY)
        sold = sum(f.qty for f in fills if f.symbol == symbol and f.side is OrderSide.SELL)
        assert sold <= bought
    if mode == "trailing":
        assert set(marks) == set(held)  # one high-water mark per position still held, none for the others
        assert all(marks[s].price >= held[s].avg_entry_price for s in held)  # it starts at the entry, then rises
