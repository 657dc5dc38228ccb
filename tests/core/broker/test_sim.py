from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import numpy as np
import pytest

from core.bars import load_daily_bars
from core.broker.base import Broker, OrderRejectedError
from core.broker.sim import SimBroker
from core.timeconv import ns_to_datetime
from core.types import QTY_QUANTUM, Asset, BarFrame, OrderRequest, OrderSide, OrderStatus, bar_price
from tests.fakes.clock import FakeClock

BARS = Path(__file__).resolve().parents[3] / "data" / "sp500_daily_2013_2018.csv.xz"
BPS = Decimal(5)
CASH = Decimal(100_000)
CLOSE_OF_DAY = timedelta(hours=16)  # 16:00 after midnight ET: the bar is complete


@pytest.fixture(scope="module")
def history() -> BarFrame:
    # A real year of four large caps; DHR has a bar with no open on 2015-07-17.
    return load_daily_bars(BARS, ["AAPL", "MSFT", "XOM", "DHR"], date(2015, 1, 1), date(2015, 12, 31))


def bar_time(history: BarFrame, row: int) -> datetime:
    return ns_to_datetime(int(history.timestamps_ns[row]))


def price(history: BarFrame, field: str, row: int, symbol: str) -> Decimal:
    return bar_price(getattr(history, field)[row, history.symbols.index(symbol)])


def buy(coid: str, symbol: str = "AAPL", qty: str | None = None, notional: str | None = None) -> OrderRequest:
    return OrderRequest(
        client_order_id=coid,
        symbol=symbol,
        side=OrderSide.BUY,
        qty=Decimal(qty) if qty is not None else None,
        notional=Decimal(notional) if notional is not None else None,
    )


def sell(coid: str, symbol: str = "AAPL", qty: str | None = None, notional: str | None = None) -> OrderRequest:
    return OrderRequest(
        client_order_id=coid,
        symbol=symbol,
        side=OrderSide.SELL,
        qty=Decimal(qty) if qty is not None else None,
        notional=Decimal(notional) if notional is not None else None,
    )


class Sim:
    """A broker plus its clock, stepped bar by bar like the orchestrator does."""

    def __init__(
        self,
        history: BarFrame,
        row: int,
        cash: Decimal = CASH,
        non_fractionable: frozenset[str] = frozenset(),
        known_symbols: set[str] | None = None,
    ) -> None:
        self.history = history
        self.row = row
        self.clock = FakeClock(bar_time(history, row) + CLOSE_OF_DAY)
        self.broker = SimBroker(
            history, self.clock, cash, BPS, non_fractionable=non_fractionable, known_symbols=known_symbols
        )

    def advance(self, bars: int = 1) -> None:
        self.row += bars
        self.clock.set(bar_time(self.history, self.row) + CLOSE_OF_DAY)


async def rejection(broker: SimBroker, request: OrderRequest) -> str:
    with pytest.raises(OrderRejectedError) as caught:
        await broker.submit_order(request)
    return caught.value.reason


def test_implements_the_broker_port(history: BarFrame) -> None:
    assert isinstance(Sim(history, 0).broker, Broker)


@pytest.mark.parametrize("offset", [timedelta(0), CLOSE_OF_DAY], ids=["at_bar_start", "at_close"])
async def test_fills_at_next_bars_open_with_slippage_never_at_the_signal_bar(
    history: BarFrame, offset: timedelta
) -> None:
    t = 20
    clock = FakeClock(bar_time(history, t) + offset)
    broker = SimBroker(history, clock, CASH, BPS)
    order = await broker.submit_order(buy("c1", qty="10"))
    assert order.status is OrderStatus.ACCEPTED

    assert await broker.poll_updates() == []  # bar t is all there is: nothing to fill against yet
    clock.set(bar_time(history, t + 1) + offset)
    [update] = await broker.poll_updates()

    assert update.fill is not None
    expected = price(history, "open", t + 1, "AAPL") * (1 + BPS / Decimal(10_000))
    assert update.fill.price == expected
    signal_bar = {price(history, f, t, "AAPL") * (1 + BPS / Decimal(10_000)) for f in ("open", "high", "low", "close")}
    assert update.fill.price not in signal_bar
    assert update.fill.ts == bar_time(history, t + 1)
    assert update.fill.qty == Decimal(10)
    assert update.fill.execution_id == "c1-1"
    assert update.order.status is OrderStatus.FILLED
    assert update.order.filled_avg_price == expected
    assert (await broker.get_account()).cash == CASH - 10 * expected


async def test_sell_fills_at_next_open_minus_slippage(history: BarFrame) -> None:
    sim = Sim(history, 30)
    await sim.broker.submit_order(buy("b", qty="5"))
    sim.advance()
    await sim.broker.poll_updates()
    await sim.broker.submit_order(sell("s", qty="5"))
    sim.advance()
    [update] = await sim.broker.poll_updates()
    assert update.fill is not None
    assert update.fill.price == price(history, "open", sim.row, "AAPL") * (1 - BPS / Decimal(10_000))


async def test_notional_buy_fills_a_fractional_qty_rounded_down_to_9_decimals(history: BarFrame) -> None:
    sim = Sim(history, 40)
    await sim.broker.submit_order(buy("n", notional="1000"))
    sim.advance()
    [update] = await sim.broker.poll_updates()
    assert update.fill is not None
    fill_price = update.fill.price
    assert update.fill.qty == (Decimal(1000) / fill_price).quantize(QTY_QUANTUM, rounding=ROUND_DOWN)
    assert update.fill.qty.as_tuple().exponent == -9
    assert update.fill.qty != update.fill.qty.to_integral_value()
    cost = update.fill.qty * fill_price
    assert Decimal(1000) - fill_price * QTY_QUANTUM < cost <= Decimal(1000)
    assert (await sim.broker.get_account()).cash == CASH - cost


async def test_non_fractionable_accepts_whole_shares_only(history: BarFrame) -> None:
    sim = Sim(history, 40, non_fractionable=frozenset({"XOM"}))
    assert await sim.broker.get_asset("XOM") == Asset(symbol="XOM", tradable=True, fractionable=False)
    assert await rejection(sim.broker, buy("n", "XOM", notional="500")) == "not_fractionable"
    assert await rejection(sim.broker, buy("f", "XOM", qty="1.5")) == "not_fractionable"
    order = await sim.broker.submit_order(buy("w", "XOM", qty="2"))
    assert order.status is OrderStatus.ACCEPTED
    sim.advance()
    [update] = await sim.broker.poll_updates()
    assert update.fill is not None
    assert update.fill.qty == Decimal(2)


async def test_unknown_and_untradable_symbols_are_rejected(history: BarFrame) -> None:
    sim = Sim(history, 10, known_symbols={"AAPL", "GONE"})
    assert await sim.broker.get_asset("NOPE") is None
    assert await sim.broker.get_asset("GONE") == Asset(symbol="GONE", tradable=False, fractionable=True)
    assert await rejection(sim.broker, buy("a", "NOPE", qty="1")) == "unknown_asset"
    assert await rejection(sim.broker, buy("b", "GONE", qty="1")) == "not_tradable"
    assert await rejection(sim.broker, buy("c", "MSFT", qty="1")) == "unknown_asset"  # in data, not known


async def test_notional_below_one_dollar_is_rejected(history: BarFrame) -> None:
    assert await rejection(Sim(history, 10).broker, buy("x", notional="0.99")) == "below_min_notional"


async def test_insufficient_buying_power_counts_open_buys(history: BarFrame) -> None:
    sim = Sim(history, 10, cash=Decimal(1000))
    assert await rejection(sim.broker, buy("big", qty="100")) == "insufficient_buying_power"
    await sim.broker.submit_order(buy("first", notional="600"))
    assert (await sim.broker.get_account()).buying_power == Decimal(400)
    assert await rejection(sim.broker, buy("second", notional="600")) == "insufficient_buying_power"

    await sim.broker.cancel_order("first")
    assert (await sim.broker.get_account()).buying_power == Decimal(1000)
    assert (await sim.broker.submit_order(buy("second", notional="600"))).status is OrderStatus.ACCEPTED


async def test_resubmitting_a_client_order_id_returns_the_same_order_and_fills_once(history: BarFrame) -> None:
    sim = Sim(history, 50)
    first = await sim.broker.submit_order(buy("dup", qty="3"))
    again = await sim.broker.submit_order(buy("dup", qty="3"))
    assert again == first
    assert len(await sim.broker.get_open_orders()) == 1
    sim.advance()
    updates = await sim.broker.poll_updates()
    assert [u.fill.qty for u in updates if u.fill is not None] == [Decimal(3)]
    after_fill = await sim.broker.submit_order(buy("dup", qty="3"))
    assert after_fill.status is OrderStatus.FILLED
    sim.advance()
    assert await sim.broker.poll_updates() == []
    assert (await sim.broker.get_positions())["AAPL"].qty == Decimal(3)


async def test_selling_more_than_held_or_short_is_rejected(history: BarFrame) -> None:
    sim = Sim(history, 60)
    assert await rejection(sim.broker, sell("short", qty="1")) == "insufficient_qty"
    await sim.broker.submit_order(buy("b", qty="10"))
    sim.advance()
    await sim.broker.poll_updates()
    assert await rejection(sim.broker, sell("too_many", qty="10.5")) == "insufficient_qty"
    await sim.broker.submit_order(sell("s1", qty="6"))
    # The first sell holds back 6 shares: a second sell cannot sell them again.
    assert await rejection(sim.broker, sell("s2", qty="6")) == "insufficient_qty"
    assert (await sim.broker.submit_order(sell("s3", qty="4"))).status is OrderStatus.ACCEPTED


async def test_notional_sell_sells_its_value_and_cannot_exceed_the_position(history: BarFrame) -> None:
    sim = Sim(history, 80)
    await sim.broker.submit_order(buy("b", qty="10"))
    sim.advance()
    await sim.broker.poll_updates()
    worth = 10 * price(history, "close", sim.row, "AAPL")
    assert await rejection(sim.broker, sell("too_much", notional=str(worth * 2))) == "insufficient_qty"
    await sim.broker.submit_order(sell("part", notional="300"))
    sim.advance()
    [update] = await sim.broker.poll_updates()
    assert update.fill is not None
    assert update.fill.qty == (Decimal(300) / update.fill.price).quantize(QTY_QUANTUM, rounding=ROUND_DOWN)
    assert (await sim.broker.get_positions())["AAPL"].qty == 10 - update.fill.qty


@pytest.mark.parametrize(
    ("day", "row_kind"),
    [(date(2015, 7, 17), "source row with an empty open"), (date(2015, 3, 9), "no source row at all")],
)
async def test_order_expires_when_the_next_bar_has_no_open(history: BarFrame, day: date, row_kind: str) -> None:
    dhr = history.symbols.index("DHR")
    bad = next(row for row in range(history.n_rows) if bar_time(history, row).date() == day)
    assert np.isnan(history.open[bad, dhr])
    assert np.isnan(history.close[bad, dhr]) == (row_kind == "no source row at all")
    sim = Sim(history, bad - 1)
    await sim.broker.submit_order(buy("dhr", "DHR", notional="1000"))
    sim.advance()
    [update] = await sim.broker.poll_updates()
    assert update.fill is None
    assert update.order.status is OrderStatus.EXPIRED
    assert update.order.reason == "no_bar"
    account = await sim.broker.get_account()
    assert account.cash == CASH
    assert account.buying_power == CASH
    assert await sim.broker.get_positions() == {}
    assert await sim.broker.get_open_orders() == []


async def test_round_trip_bookkeeping_ends_with_equity_equal_to_cash(history: BarFrame) -> None:
    sim = Sim(history, 100)
    await sim.broker.submit_order(buy("b1", qty="7"))
    await sim.broker.submit_order(buy("b2", "MSFT", notional="2500"))
    sim.advance()
    fills = [u.fill for u in await sim.broker.poll_updates() if u.fill is not None]
    cost = sum((f.qty * f.price for f in fills), Decimal(0))

    sim.advance(3)
    positions = await sim.broker.get_positions()
    account = await sim.broker.get_account()
    assert positions["AAPL"].market_price == price(history, "close", sim.row, "AAPL")
    assert account.cash == CASH - cost
    assert account.equity == account.cash + sum((p.qty * p.market_price for p in positions.values()), Decimal(0))

    for symbol, position in positions.items():
        await sim.broker.submit_order(sell(f"x-{symbol}", symbol, qty=str(position.qty)))
    sim.advance()
    sells = [u.fill for u in await sim.broker.poll_updates() if u.fill is not None]
    proceeds = sum((f.qty * f.price for f in sells), Decimal(0))
    account = await sim.broker.get_account()
    assert await sim.broker.get_positions() == {}
    assert account.equity == account.cash == CASH - cost + proceeds


async def test_average_entry_price_weights_each_buy(history: BarFrame) -> None:
    sim = Sim(history, 120)
    await sim.broker.submit_order(buy("a", qty="2"))
    sim.advance()
    [first] = await sim.broker.poll_updates()
    await sim.broker.submit_order(buy("b", qty="6"))
    sim.advance()
    [second] = await sim.broker.poll_updates()
    assert first.fill is not None
    assert second.fill is not None
    position = (await sim.broker.get_positions())["AAPL"]
    assert position.qty == Decimal(8)
    assert position.avg_entry_price == (2 * first.fill.price + 6 * second.fill.price) / 8


async def test_gap_up_reduces_a_qty_buy_and_rejects_an_unaffordable_notional(history: BarFrame) -> None:
    aapl = history.symbols.index("AAPL")
    gaps = np.flatnonzero(history.open[1:, aapl] > history.close[:-1, aapl] * 1.01)
    t = int(gaps[0])
    estimate = 10 * price(history, "close", t, "AAPL") * (1 + BPS / Decimal(10_000))
    sim = Sim(history, t, cash=estimate + Decimal(5))
    await sim.broker.submit_order(buy("qty", qty="10"))  # reserves exactly `estimate`: affordable at the close
    await sim.broker.submit_order(buy("notional", notional="5"))
    sim.advance()
    reduced, rejected = await sim.broker.poll_updates()

    fill_price = price(history, "open", t + 1, "AAPL") * (1 + BPS / Decimal(10_000))
    assert reduced.fill is not None
    assert reduced.order.reason == "reduced_to_buying_power"
    assert reduced.fill.qty == ((estimate + 5) / fill_price).quantize(QTY_QUANTUM, rounding=ROUND_DOWN)
    assert reduced.fill.qty < 10
    assert rejected.fill is None
    assert rejected.order.status is OrderStatus.REJECTED
    assert rejected.order.reason == "insufficient_buying_power"
    assert (await sim.broker.get_account()).cash >= 0


async def test_cancel_closes_an_open_order_and_is_reported_once(history: BarFrame) -> None:
    sim = Sim(history, 70)
    await sim.broker.submit_order(buy("c", qty="1"))
    await sim.broker.cancel_order("c")
    order = await sim.broker.get_order_by_client_id("c")
    assert order is not None
    assert order.status is OrderStatus.CANCELED
    sim.advance()
    [update] = await sim.broker.poll_updates()
    assert update.order.status is OrderStatus.CANCELED
    assert update.fill is None
    assert await sim.broker.poll_updates() == []
    assert await rejection_on_cancel(sim.broker, "c") == "not_cancelable"
    assert await rejection_on_cancel(sim.broker, "missing") == "unknown_order"
    assert await sim.broker.get_order_by_client_id("missing") is None


async def rejection_on_cancel(broker: SimBroker, coid: str) -> str:
    with pytest.raises(OrderRejectedError) as caught:
        await broker.cancel_order(coid)
    return caught.value.reason


async def test_per_iteration_calls_follow_the_replay_to_its_end(history: BarFrame) -> None:
    """The daemon's per-iteration broker calls, every session (their cost is measured by `make bench`)."""
    sim = Sim(history, 0)
    for i, symbol in enumerate(history.symbols):
        await sim.broker.submit_order(buy(f"b{i}", symbol, notional="1000"))
    sim.advance()
    await sim.broker.poll_updates()
    while sim.row < history.n_rows - 1:
        sim.advance()
        await sim.broker.poll_updates()
        account = await sim.broker.get_account()
        positions = await sim.broker.get_positions()
        assert await sim.broker.get_open_orders() == []
    assert set(positions) == set(history.symbols)
    assert account.equity > 0


async def test_order_expires_when_the_next_open_is_outside_its_range(history: BarFrame) -> None:
    # An open of 1e6 under a high of ~100 once filled a sell at 999,500: such an open is no tradable open.
    row = 150
    aapl = history.symbols.index("AAPL")
    opens = history.open.copy()
    opens[row + 1, aapl] = 1e6
    corrupt = BarFrame(
        symbols=history.symbols,
        timestamps=history.timestamps,
        open=opens,
        high=history.high,
        low=history.low,
        close=history.close,
        volume=history.volume,
    )
    sim = Sim(corrupt, row)
    await sim.broker.submit_order(buy("aapl", notional="1000"))
    sim.advance()
    [update] = await sim.broker.poll_updates()
    assert update.fill is None
    assert update.order.status is OrderStatus.EXPIRED
    assert (await sim.broker.get_account()).cash == CASH
