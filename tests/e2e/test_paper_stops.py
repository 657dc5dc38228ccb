"""Protective stops in paper mode against the fake Alpaca server (its stops follow its documented intraday path).

A scripted strategy plug-in (`tests/e2e/scripted_strategy.py`) makes the one position each test needs; the daemon
iterates before each open and during the session, as a paper daemon does, in the server's time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.clock import NyseCalendar
from core.order_ids import is_protective_stop_id
from core.timeconv import NEW_YORK
from tests.e2e.scripted_strategy import install_scripted, params
from tests.e2e.test_paper_daemon import _paper_app
from tests.fakes.alpaca_server import FakeAlpacaServer, FakeOrder, Fault
from tests.fakes.alpaca_tape import MarketTape, load_tape
from tradingd.app import run_app
from tradingd.orchestrator import Tick

SYMBOLS = ("CELG", "AAPL")
D = Decimal


@pytest.fixture(scope="module")
def tape() -> MarketTape:
    return load_tape(SYMBOLS)


class DaySchedule:
    """Iterations at fixed New York times of each session (09:00 is before the open), moving the server's clock;
    `before` runs what a test wants done at a moment, just before that iteration."""

    def __init__(
        self,
        server: FakeAlpacaServer,
        sessions: list[date],
        times: tuple[time, ...],
        before: Mapping[datetime, Callable[[], None]],
    ) -> None:
        self._server = server
        self._moments = [datetime.combine(s, t, NEW_YORK) for s in sessions for t in times]
        self._before = before

    async def __aiter__(self) -> AsyncIterator[Tick]:
        for moment in self._moments:
            self._server.set_now(moment)
            if moment in self._before:
                self._before[moment]()
            yield Tick.ITERATE


def run_paper(
    tape: MarketTape,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    script: dict[str, str],
    last: date,
    before: Callable[[FakeAlpacaServer], Mapping[datetime, Callable[[], None]]] = lambda _: {},
) -> list[FakeOrder]:
    """The scripted daemon from the session after the entry signal's bar to `last`; the server's orders, in order."""
    calendar = NyseCalendar()
    first = calendar.next_session(date.fromisoformat(script["enter_on"]))
    sessions = calendar.sessions_in_range(first, last)
    name = install_scripted(tmp_path / "site", monkeypatch)
    server = FakeAlpacaServer(tape, now=calendar.session_open(first) - timedelta(hours=1))
    with server:
        schedule = DaySchedule(server, sessions, (time(9), time(10), time(15)), before(server))
        app = _paper_app(
            server,
            tmp_path / "paper",
            sessions,
            schedule=schedule,
            symbols=SYMBOLS,
            strategy_name=name,
            strategy_params=script,
        )
        asyncio.run(run_app(app))
        stored = {f.client_order_id for f in app.store.fills()}
        app.close()
        orders = sorted(server.orders.values(), key=lambda o: o.submitted_ns)
    assert stored == {o.client_order_id for o in orders if o.filled_qty > 0}  # every fill recorded
    return orders


def ny(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, NEW_YORK)


def test_an_entry_gets_its_stops_and_a_gap_below_them_sells_at_the_open(
    tape: MarketTape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CELG: bought at the 2017-10-25 open (120.37); 2017-10-26 opened at 98.95, 18% lower.
    orders = run_paper(tape, tmp_path, monkeypatch, params("CELG", "2017-10-24"), date(2017, 10, 27))
    [entry] = [o for o in orders if o.side == "buy"]
    assert (entry.filled_avg_price, ny(entry.filled_ns)) == (
        D("120.37"),
        datetime(2017, 10, 25, 9, 30, tzinfo=NEW_YORK),
    )
    stops = [o for o in orders if is_protective_stop_id(o.client_order_id)]
    whole = entry.filled_qty.to_integral_value(rounding="ROUND_FLOOR")
    gtc = [o for o in stops if o.time_in_force == "gtc"]
    assert [(o.qty, o.stop_price, ny(o.submitted_ns).date()) for o in gtc] == [(whole, D("114.36"), date(2017, 10, 25))]
    day = [o for o in stops if o.time_in_force == "day"]
    assert {o.qty for o in day} == {entry.filled_qty - whole}  # the fraction, a DAY stop re-placed each session
    assert [o.status for o in day] == ["expired", "filled"]
    sold = [o for o in orders if o.side == "sell" and o.filled_qty > 0]
    assert {o.client_order_id for o in sold} <= {o.client_order_id for o in stops}  # the stops sold, nothing else
    assert sum(o.filled_qty for o in sold) == entry.filled_qty
    assert {(o.filled_avg_price, ny(o.filled_ns)) for o in sold} == {
        (D("98.95"), datetime(2017, 10, 26, 9, 30, tzinfo=NEW_YORK))  # the open it gapped to, not the stop's level
    }


def test_an_exit_signal_cancels_the_resting_stops_and_sells_the_owned_quantity_once(
    tape: MarketTape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # AAPL bought at the 2017-08-02 open; the exit signal on the bar of 2017-08-04 sells at the 08-07 open.
    orders = run_paper(tape, tmp_path, monkeypatch, params("AAPL", "2017-08-01", "2017-08-04"), date(2017, 8, 8))
    [entry] = [o for o in orders if o.side == "buy"]
    [exit_order] = [o for o in orders if o.side == "sell" and not is_protective_stop_id(o.client_order_id)]
    stops = [o for o in orders if is_protective_stop_id(o.client_order_id)]
    assert {o.time_in_force for o in stops} == {"gtc", "day"}
    resting = [o for o in stops if o.status == "canceled"]
    assert resting  # the stops resting at the exit were canceled ...
    assert all(o.updated_ns <= exit_order.submitted_ns for o in resting)  # ... before the exit was sent
    assert all(o.filled_qty == 0 for o in stops)
    assert exit_order.qty == entry.filled_qty  # all of the position, once
    assert exit_order.filled_qty == entry.filled_qty
    assert [o for o in orders if o.status == "rejected"] == []


def test_where_no_broker_stop_could_be_placed_the_intraday_check_sells_at_the_level(
    tape: MarketTape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same CELG position, but the broker refuses every stop (the two a tick places): only the check protects it.
    def refuse_the_stops(server: FakeAlpacaServer) -> Callable[[], None]:
        return lambda: server.inject(Fault.http(422, message="stop orders are not accepted"), "POST", "/v2/orders", 2)

    def before(server: FakeAlpacaServer) -> dict[datetime, Callable[[], None]]:
        moments = (datetime(2017, 10, 25, 10), datetime(2017, 10, 25, 15), datetime(2017, 10, 26, 9))
        return {moment.replace(tzinfo=NEW_YORK): refuse_the_stops(server) for moment in moments}

    orders = run_paper(tape, tmp_path, monkeypatch, params("CELG", "2017-10-24"), date(2017, 10, 27), before)
    [entry] = [o for o in orders if o.side == "buy"]
    assert not [o for o in orders if is_protective_stop_id(o.client_order_id)]  # none reached the broker
    [exit_order] = [o for o in orders if o.side == "sell"]
    assert exit_order.client_order_id.startswith("td-stop-CELG-s-")  # the intraday check's exit (strategy tag stop)
    assert ny(exit_order.submitted_ns) == datetime(2017, 10, 26, 10, tzinfo=NEW_YORK)  # the first look in the session
    assert exit_order.qty == entry.filled_qty
    assert exit_order.filled_qty == entry.filled_qty
