"""The sim and the fake Alpaca server agree on stops: the same stops on the same real bars trigger on the same
session at the same price (the open when a bar gaps through the level, else the level) or expire together, with the
SimBroker at zero slippage and the real AlpacaBroker against the fake.

Trailing stops differ by design: the fake walks an intraday path, so on a day that first rises above the mark and
then falls, its mark (and level) rises with that day's high before the fall; the sim fixes each bar's level from the
bars before it. Both marks are equal at every session's start, and the fake's is never lower during one, so the fake
triggers no later than the sim. They agree whenever no day rises above the mark before reaching the level: 24 of the
29 trailing stops of the period, which this test holds to the same end; the other five it holds to that order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import pytest

from core.bars import load_daily_bars
from core.broker.alpaca import AlpacaBroker
from core.broker.base import Broker
from core.broker.order_shape import round_stop_price
from core.broker.sim import SimBroker
from core.clock import NyseCalendar
from core.timeconv import ns_to_datetime, ny_date
from core.types import BarFrame, OrderRequest, OrderSide, OrderStatus, TimeInForce, bar_price
from tests.core.broker.conftest import START_DAY, SYMBOLS_29
from tests.core.broker.stop_requests import stop_request, trailing_request
from tests.fakes.alpaca_server import FakeAlpacaServer
from tests.fakes.alpaca_tape import DATA_FILE
from tests.fakes.clock import FakeClock

CALENDAR = NyseCalendar()
LAST_DAY = date(2018, 2, 7)  # the bundled data's last session
PLACED_AFTER = CALENDAR.previous_session(START_DAY)  # the fake's day starts at midnight after this session closed
SESSIONS = CALENDAR.sessions_in_range(START_DAY, LAST_DAY)
HELD = Decimal(40)
# A fixed stop's distance below the last close, and its time in force: GTC stops rest through the period, the DAY
# ones live for START_DAY only.
FIXED = {"g3": ("0.97", TimeInForce.GTC), "g6": ("0.94", TimeInForce.GTC), "d1": ("0.99", TimeInForce.DAY)}
TRAIL_PERCENT = Decimal(3)
# The symbols with a day that rose above the trailing stop's mark and then fell through the level that high set
# (e.g. MA on 2018-02-02, below): the fake's stop fills that day, the sim's on the same day lower or on a later one.
PART = frozenset({"MSFT", "AMZN", "VZ", "BA", "MA"})

Outcome = tuple[OrderStatus, date, Decimal | None]


@pytest.fixture(scope="module")
def history() -> BarFrame:
    return load_daily_bars(DATA_FILE, list(SYMBOLS_29), date(2017, 12, 1), LAST_DAY)


def session_of(history: BarFrame, row: int) -> date:
    return ny_date(ns_to_datetime(int(history.timestamps_ns[row])))


def price(history: BarFrame, field: str, session: date, symbol: str) -> Decimal:
    row = next(r for r in range(history.n_rows) if session_of(history, r) == session)
    return bar_price(getattr(history, field)[row, history.column(symbol)])


def stops(history: BarFrame) -> list[OrderRequest]:
    """For every symbol: three fixed stops below its last close and a trailing stop, 10 shares each."""
    orders = []
    for symbol in SYMBOLS_29:
        close = price(history, "close", PLACED_AFTER, symbol)
        for name, (fraction, tif) in FIXED.items():
            level = round_stop_price(close * Decimal(fraction))
            orders.append(stop_request(f"{name}-{symbol}", level, symbol=symbol, tif=tif))
        orders.append(trailing_request(f"tr-{symbol}", TRAIL_PERCENT, symbol=symbol))
    return orders


async def outcomes(broker: Broker, advance: Callable[[date], None]) -> dict[str, Outcome]:
    """Each stop's end (status, New York date, fill price), moving time to each session's end and polling."""
    ended: dict[str, Outcome] = {}
    for session in SESSIONS:
        advance(session)
        for update in await broker.poll_updates():
            order = update.order
            if not order.status.is_open:
                fill_price = update.fill.price if update.fill is not None else None
                ts = update.fill.ts if update.fill is not None else update.ts
                ended[order.client_order_id] = (order.status, ny_date(ts), fill_price)
    return ended


async def sim_outcomes(history: BarFrame, requests: list[OrderRequest]) -> dict[str, Outcome]:
    clock = FakeClock(CALENDAR.session_close(CALENDAR.previous_session(PLACED_AFTER)))
    closes = CALENDAR.daily_bar_closes_ns(history.timestamps_ns)
    sim = SimBroker(history, clock, Decimal(10_000_000), Decimal(0), bar_closes_ns=closes)
    for symbol in SYMBOLS_29:
        await sim.submit_order(
            OrderRequest(client_order_id=f"buy-{symbol}", symbol=symbol, side=OrderSide.BUY, qty=HELD)
        )
    clock.set(CALENDAR.session_close(PLACED_AFTER))
    assert all(u.fill is not None for u in await sim.poll_updates())
    for request in requests:
        await sim.submit_order(request)
    return await outcomes(sim, lambda session: clock.set(CALENDAR.session_close(session)))


async def fake_outcomes(
    server: FakeAlpacaServer, broker: AlpacaBroker, requests: list[OrderRequest]
) -> dict[str, Outcome]:
    for symbol in SYMBOLS_29:
        server.seed_position(symbol, HELD, Decimal(100))
    for request in requests:
        await broker.submit_order(request)
    return await outcomes(
        broker, lambda session: server.set_now(CALENDAR.session_close(session) + timedelta(minutes=1))
    )


async def test_the_same_stops_on_the_same_bars_end_the_same_in_the_sim_and_at_the_fake(
    history: BarFrame, fake_alpaca: FakeAlpacaServer, make_broker: Callable[..., AlpacaBroker]
) -> None:
    requests = stops(history)

    in_sim = await sim_outcomes(history, requests)
    at_fake = await fake_outcomes(fake_alpaca, make_broker(), requests)

    fixed = {coid for coid in in_sim.keys() | at_fake.keys() if not coid.startswith("tr-")}
    assert {c: in_sim.get(c) for c in fixed} == {c: at_fake.get(c) for c in fixed}
    agreeing = {f"tr-{s}" for s in SYMBOLS_29 if s not in PART}
    assert {c: in_sim.get(c) for c in agreeing} == {c: at_fake.get(c) for c in agreeing}
    for symbol in PART:
        sim_end, fake_end = in_sim[f"tr-{symbol}"], at_fake[f"tr-{symbol}"]
        assert sim_end[0] is fake_end[0] is OrderStatus.FILLED
        assert fake_end != sim_end
        assert fake_end[1] <= sim_end[1]  # the fake's level is never below the sim's: it fires no later
    # What the comparison covered: fills at a gap's open and at the level, DAY expiries, stops that never fired.
    fills = {coid: (day, fill) for coid, (_status, day, fill) in in_sim.items() if fill is not None}
    gaps = {coid for coid, (day, fill) in fills.items() if fill == price(history, "open", day, coid.split("-", 1)[1])}
    assert gaps
    assert fills.keys() - gaps
    assert [coid for coid, (status, _day, _fill) in in_sim.items() if status is OrderStatus.EXPIRED]
    assert len(in_sim) < len(requests)  # some GTC stops rest to the end of the data


async def test_a_day_that_rises_above_the_mark_before_it_falls_moves_the_fakes_level_not_the_sims(
    history: BarFrame, fake_alpaca: FakeAlpacaServer, make_broker: Callable[..., AlpacaBroker]
) -> None:
    # On 2018-02-02 MA opened at 171.90 under a mark of 176.715 (3 % below: 171.4136), rose to 177.11 (171.7967),
    # then fell to 170.42 through both.
    requests = [r for r in stops(history) if r.client_order_id == "tr-MA"]

    in_sim = await sim_outcomes(history, requests)
    at_fake = await fake_outcomes(fake_alpaca, make_broker(), requests)

    day = date(2018, 2, 2)
    assert in_sim["tr-MA"] == (OrderStatus.FILLED, day, Decimal("171.4136"))
    assert at_fake["tr-MA"] == (OrderStatus.FILLED, day, Decimal("171.7967"))
