"""SimBroker's stops: resting sell stops that trigger on a complete bar's low (at the level) or its open (a gap),
trailing stops whose level is fixed before each bar, DAY stops that expire at their session's close, shares held
back from other sells, and marks that never read a bar before its session closed."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import numpy as np
import pytest

from core.broker.base import OrderRejectedError
from core.broker.sim import SimBroker
from core.clock import NyseCalendar
from core.reasons import RejectionReason
from core.timeconv import ny_midnights
from core.types import BarFrame, OrderRequest, OrderSide, OrderStatus, OrderUpdate, TimeInForce
from tests.core.broker.stop_requests import stop_request, trailing_request
from tests.fakes.clock import FakeClock

CALENDAR = NyseCalendar()
SESSIONS = [date(2018, 1, 8), date(2018, 1, 9), date(2018, 1, 10), date(2018, 1, 11), date(2018, 1, 12),
            date(2018, 1, 16)]  # fmt: skip
# One symbol's bars, row by row: (open, high, low, close).
BARS = [
    (100, 102, 99, 101),
    (101, 103, 100, 102),  # a buy placed at row 0's close fills at 101
    (102, 104, 97, 103),
    (95, 98, 94, 97),  # opens below the day before's low: a gap
    (97, 110, 96, 108),  # a wide day: its high is far above anything seen before
    (108, 109, 100, 101),
]
BPS = Decimal(10)
SELL = 1 - BPS / Decimal(10_000)
CASH = Decimal(100_000)


def frame(bars: list[tuple[float, float, float, float]] = BARS) -> BarFrame:
    values = np.array(bars, dtype=np.float64)
    column = [values[:, [i]] for i in range(4)]
    return BarFrame(
        symbols=("X",),
        timestamps=ny_midnights(np.array(SESSIONS[: len(bars)], dtype="datetime64[D]")),
        open=column[0],
        high=column[1],
        low=column[2],
        close=column[3],
        volume=np.full((len(bars), 1), 1e6),
    )


def opens(row: int) -> datetime:
    return CALENDAR.session_open(SESSIONS[row])


def closes(row: int) -> datetime:
    return CALENDAR.session_close(SESSIONS[row])


class Sim:
    """A SimBroker that knows its sessions' opens and closes (as the daemon builds it), and its clock."""

    def __init__(self, history: BarFrame | None = None) -> None:
        self.history = history or frame()
        self.clock = FakeClock(closes(0))
        self.broker = SimBroker(
            self.history,
            self.clock,
            CASH,
            BPS,
            bar_closes_ns=CALENDAR.daily_bar_closes_ns(self.history.timestamps_ns),
            bar_opens_ns=CALENDAR.daily_bar_opens_ns(self.history.timestamps_ns),
        )

    async def hold(self, qty: str = "10") -> None:
        """Buy at row 0's close: filled at row 1's open, polled at row 1's close."""
        await self.broker.submit_order(market("entry", OrderSide.BUY, qty))
        self.clock.set(closes(1))
        [update] = await self.broker.poll_updates()
        assert update.fill is not None

    async def poll_at(self, moment: datetime) -> list[OrderUpdate]:
        self.clock.set(moment)
        return await self.broker.poll_updates()


def market(coid: str, side: OrderSide, qty: str) -> OrderRequest:
    return OrderRequest(client_order_id=coid, symbol="X", side=side, qty=Decimal(qty))


def stop(coid: str, price: str, *, qty: str = "10", tif: TimeInForce = TimeInForce.GTC) -> OrderRequest:
    return stop_request(coid, price, qty=qty, tif=tif)


def trailing(coid: str, percent: str, *, qty: str = "10") -> OrderRequest:
    return trailing_request(coid, percent, qty=qty)


def filled(updates: list[OrderUpdate]) -> list[tuple[str, Decimal, Decimal, datetime]]:
    return [(u.fill.client_order_id, u.fill.qty, u.fill.price, u.fill.ts) for u in updates if u.fill is not None]


# ----------------------------------------------------------------------------------------------------------------------
# TRIGGERING
# ----------------------------------------------------------------------------------------------------------------------


async def test_a_stop_the_low_reaches_fills_at_its_level_less_slippage_when_the_bar_completes() -> None:
    sim = Sim()
    await sim.hold()
    placed = await sim.broker.submit_order(stop("ps", "98.00"))
    assert (placed.status, placed.is_stop, placed.stop_price) == (OrderStatus.ACCEPTED, True, Decimal("98.00"))

    assert await sim.poll_at(opens(2)) == []  # the bar that will reach it has started, not completed
    updates = await sim.poll_at(closes(2))

    assert filled(updates) == [("ps", Decimal(10), Decimal("98.00") * SELL, closes(2))]
    assert updates[0].order.status is OrderStatus.FILLED
    assert await sim.broker.get_positions() == {}
    account = await sim.broker.get_account()
    assert account.cash == CASH - 10 * Decimal(101) * (2 - SELL) + 10 * Decimal("98.00") * SELL


async def test_a_market_fill_is_stamped_at_the_open_of_its_bar_not_at_the_bars_midnight_stamp() -> None:
    sim = Sim()
    await sim.broker.submit_order(market("entry", OrderSide.BUY, "10"))
    [update] = await sim.poll_at(closes(1))
    assert update.fill is not None
    assert update.fill.ts == opens(1) == update.ts


async def test_a_bar_that_opens_through_the_stop_fills_it_at_the_open() -> None:
    sim = Sim()
    await sim.hold()
    await sim.broker.submit_order(stop("ps", "96.00"))  # row 2's low, 97, stays above it; row 3 opens at 95

    assert await sim.poll_at(closes(2)) == []
    # Known once row 3 is complete, stamped at the open it filled at.
    assert filled(await sim.poll_at(closes(3))) == [("ps", Decimal(10), Decimal(95) * SELL, opens(3))]


async def test_a_stop_never_sees_the_bar_that_was_complete_when_it_was_placed() -> None:
    sim = Sim()
    await sim.hold()
    sim.clock.set(closes(2))
    await sim.broker.submit_order(stop("ps", "98.00"))  # row 2 went down to 97 earlier today: too late for it

    assert await sim.broker.poll_updates() == []
    # Known once row 3 is complete, stamped at the open it filled at.
    assert filled(await sim.poll_at(closes(3))) == [("ps", Decimal(10), Decimal(95) * SELL, opens(3))]


async def test_a_stop_placed_at_the_open_watches_that_sessions_bar_and_marks_ignore_its_close() -> None:
    sim = Sim()
    await sim.broker.submit_order(market("entry", OrderSide.BUY, "10"))
    [entry] = await sim.poll_at(opens(1))  # the open is known at the open: the entry fills there
    assert entry.fill is not None
    assert entry.fill.price == Decimal(101) * (2 - SELL)
    positions = await sim.broker.get_positions()
    assert positions["X"].market_price == Decimal(101)  # row 0's close: row 1 is not complete

    await sim.broker.submit_order(stop("ps", "100.50"))  # the entry's own bar goes down to 100 after its open

    assert filled(await sim.poll_at(closes(1))) == [("ps", Decimal(10), Decimal("100.50") * SELL, closes(1))]


async def test_marks_and_prices_read_complete_bars_only() -> None:
    sim = Sim()
    await sim.hold()
    sim.clock.set(opens(2))

    account = await sim.broker.get_account()
    positions = await sim.broker.get_positions()

    assert positions["X"].market_price == Decimal(102)  # row 1's close, not row 2's 103
    assert account.equity == account.cash + 10 * Decimal(102)
    sim.clock.set(closes(2))
    assert (await sim.broker.get_positions())["X"].market_price == Decimal(103)


async def test_a_market_order_placed_at_the_open_fills_at_the_next_open_as_before() -> None:
    sim = Sim()
    sim.clock.set(opens(1))
    await sim.broker.submit_order(market("entry", OrderSide.BUY, "10"))

    assert await sim.poll_at(closes(1)) == []
    [update] = await sim.poll_at(opens(2))
    assert update.fill is not None
    assert update.fill.price == Decimal(102) * (2 - SELL)


async def test_a_bar_with_no_tradable_prices_cannot_trigger_a_stop() -> None:
    bars = list(BARS)
    bars[2] = (float("nan"), float("nan"), float("nan"), 103)  # the close is there, the rest is not
    sim = Sim(frame(bars))
    await sim.hold()
    await sim.broker.submit_order(stop("gtc", "98.00", qty="6"))
    await sim.broker.submit_order(stop("day", "98.00", qty="4", tif=TimeInForce.DAY))

    updates = await sim.poll_at(closes(2))

    assert [(u.order.client_order_id, u.order.status, u.fill) for u in updates] == [("day", OrderStatus.EXPIRED, None)]
    assert filled(await sim.poll_at(closes(3))) == [("gtc", Decimal(6), Decimal(95) * SELL, opens(3))]  # a gap


# ----------------------------------------------------------------------------------------------------------------------
# TIME IN FORCE
# ----------------------------------------------------------------------------------------------------------------------


async def test_a_day_stop_placed_after_a_close_is_good_for_the_next_session_and_expires_at_its_close() -> None:
    sim = Sim()
    await sim.hold()
    await sim.broker.submit_order(stop("ps", "96.00", tif=TimeInForce.DAY))  # row 2 never reaches it

    [update] = await sim.poll_at(closes(3))  # row 3 would have: too late, the stop ended with row 2

    assert (update.order.status, update.fill, update.ts) == (OrderStatus.EXPIRED, None, closes(2))
    assert await sim.broker.get_open_orders() == []
    sold = await sim.broker.submit_order(market("exit", OrderSide.SELL, "10"))  # the shares are free again
    assert sold.status is OrderStatus.ACCEPTED


async def test_a_gtc_stop_rests_across_sessions_until_it_triggers() -> None:
    sim = Sim()
    await sim.hold()
    await sim.broker.submit_order(stop("ps", "94.50"))  # row 2 stays above it; row 3 opens at 95 and falls to 94

    assert await sim.poll_at(closes(2)) == []
    (resting,) = await sim.broker.get_open_orders()
    assert (resting.client_order_id, resting.status) == ("ps", OrderStatus.ACCEPTED)

    assert filled(await sim.poll_at(closes(3))) == [("ps", Decimal(10), Decimal("94.50") * SELL, closes(3))]


async def test_a_fractional_remainder_rests_as_a_day_stop_beside_the_gtc_stop_for_the_whole_shares() -> None:
    sim = Sim()
    await sim.hold("10.75")
    await sim.broker.submit_order(stop("ps-g", "98.00", qty="10"))
    await sim.broker.submit_order(stop("ps-d", "98.00", qty="0.75", tif=TimeInForce.DAY))

    updates = await sim.poll_at(closes(2))

    price = Decimal("98.00") * SELL
    assert filled(updates) == [("ps-g", Decimal(10), price, closes(2)), ("ps-d", Decimal("0.75"), price, closes(2))]
    assert await sim.broker.get_positions() == {}


# ----------------------------------------------------------------------------------------------------------------------
# TRAILING STOPS
# ----------------------------------------------------------------------------------------------------------------------


async def test_a_trailing_stops_level_comes_from_prior_bars_never_from_the_bar_it_judges() -> None:
    sim = Sim()
    await sim.hold()
    sim.clock.set(closes(3))
    placed = await sim.broker.submit_order(trailing("ps", "5"))
    assert placed.stop_price == Decimal("92.1500")  # 5 % below the last close, 97

    # Row 4 rises to 110 and falls back to 96: judged by its own high the level would be 104.50 and it would fill;
    # its level was fixed at 92.15 before it opened.
    assert await sim.poll_at(closes(4)) == []
    (resting,) = await sim.broker.get_open_orders()
    assert resting.stop_price == Decimal("104.5000")  # the mark is row 4's high now that row 4 is complete

    assert filled(await sim.poll_at(closes(5))) == [("ps", Decimal(10), Decimal("104.5000") * SELL, closes(5))]


async def test_a_trailing_stop_placed_at_a_sessions_open_starts_its_mark_at_that_open() -> None:
    # Placed at row 3's open tick (95, a gap down from row 2's close of 103): Alpaca's mark starts at the price when
    # the stop is placed, the open, not at the close before the gap (which would put the level above the open and
    # sell at once).
    sim = Sim()
    await sim.hold()
    sim.clock.set(opens(3))
    placed = await sim.broker.submit_order(trailing("ps", "5"))
    assert placed.stop_price == Decimal("90.2500")  # 5 % below the open, 95
    assert await sim.poll_at(closes(3)) == []  # row 3's low, 94, stays above it


async def test_a_trailing_stop_refuses_a_fractional_qty_like_alpaca() -> None:
    sim = Sim()
    await sim.hold("10.75")
    with pytest.raises(OrderRejectedError) as caught:
        await sim.broker.submit_order(trailing("ps", "5", qty="10.75"))
    assert caught.value.reason is RejectionReason.FRACTIONAL_TRAILING_STOP


# ----------------------------------------------------------------------------------------------------------------------
# HOLDING SHARES AND CANCELLING
# ----------------------------------------------------------------------------------------------------------------------


async def test_a_resting_stop_holds_its_shares_until_its_cancel() -> None:
    sim = Sim()
    await sim.hold()
    await sim.broker.submit_order(stop("ps", "90.00"))

    with pytest.raises(OrderRejectedError) as caught:
        await sim.broker.submit_order(market("exit", OrderSide.SELL, "10"))
    assert caught.value.reason is RejectionReason.INSUFFICIENT_QTY
    with pytest.raises(OrderRejectedError):
        await sim.broker.submit_order(stop("ps-2", "90.00"))  # nor can a second stop cover the same shares

    await sim.broker.cancel_order("ps")
    [canceled] = await sim.broker.poll_updates()
    assert canceled.order.status is OrderStatus.CANCELED
    assert (await sim.broker.submit_order(market("exit", OrderSide.SELL, "10"))).status is OrderStatus.ACCEPTED


async def test_cancelling_a_stop_that_already_triggered_ends_filled() -> None:
    sim = Sim()
    await sim.hold()
    await sim.broker.submit_order(stop("ps", "98.00"))
    sim.clock.set(closes(2))  # row 2 reached it; nobody has polled yet

    await sim.broker.cancel_order("ps")  # only asks: the answer is the fill

    assert filled(await sim.broker.poll_updates()) == [("ps", Decimal(10), Decimal("98.00") * SELL, closes(2))]
    order = await sim.broker.get_order("ps")
    assert order is not None
    assert order.status is OrderStatus.FILLED
    with pytest.raises(OrderRejectedError) as caught:
        await sim.broker.cancel_order("ps")  # its end was reported: there is nothing left to ask
    assert caught.value.reason is RejectionReason.NOT_CANCELABLE


async def test_bar_closes_must_fit_the_history() -> None:
    history = frame()
    closes_ns = CALENDAR.daily_bar_closes_ns(history.timestamps_ns)
    clock = FakeClock(closes(0))
    with pytest.raises(ValueError, match="rows"):
        SimBroker(history, clock, CASH, BPS, bar_closes_ns=closes_ns[:-1])
    with pytest.raises(ValueError, match="increasing"):
        SimBroker(history, clock, CASH, BPS, bar_closes_ns=closes_ns[::-1].copy())
