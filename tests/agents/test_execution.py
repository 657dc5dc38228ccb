from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from agents.execution import CANCEL_TRIES, CANCEL_WAIT_SECONDS, ExecutionAgent
from agents.stop_plan import StopCancel, StopPlacement, StopPlan
from core.broker.base import BrokerError
from core.broker.sim import SimBroker
from core.bus import EventBus
from core.clock import NyseCalendar, SimClock
from core.messages import (
    ExitWithheld,
    OrderApproved,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    SignalGenerated,
    SizedOrder,
    StopCancelRequested,
    StopPlaced,
)
from core.order_ids import client_order_id, protective_stop_id, signal_correlation_id
from core.portfolio import PortfolioView
from core.reasons import ExitWithheldReason, RejectionReason, StopReason
from core.store import StateStore
from core.types import BarFrame, BrokerOrder, Fill, OrderSide, OrderStatus, OrderType, OrderUpdate, Tier, TimeInForce
from tests.fakes.clock import FakeClock
from tests.fakes.stop_broker import StopBroker

BAR_TS = datetime(2016, 3, 1, 5, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _all_levels() -> None:
    """capture_logs replaces the processors, not the level filter an earlier CLI test may have left at WARNING."""
    structlog.reset_defaults()


def approved(symbol: str = "AAPL", notional: str | None = "1000", qty: str | None = None) -> OrderApproved:
    now = datetime(2016, 3, 1, 21, tzinfo=UTC)
    sig = SignalGenerated(
        ts_event=now,
        ts_init=now,
        correlation_id=signal_correlation_id("zscore_mr", symbol, OrderSide.BUY, BAR_TS),
        strategy="zscore_mr",
        symbol=symbol,
        side=OrderSide.BUY,
        is_exit=False,
        price=Decimal(100),
        score=2.1,
        volatility=0.01,
        bar_ts=BAR_TS,
        reason="test",
    )
    order = SizedOrder(
        symbol=symbol,
        side=OrderSide.BUY,
        tier=Tier.TIER3,
        qty=Decimal(qty) if qty else None,
        notional=Decimal(notional) if notional else None,
        est_price=Decimal(100),
        est_notional=Decimal(1000),
        fractional=notional is not None,
    )
    return OrderApproved(
        ts_event=now,
        ts_init=now,
        correlation_id=sig.correlation_id,
        signal=sig,
        order=order,
        client_order_id=client_order_id("zscore_mr", symbol, OrderSide.BUY, BAR_TS),
    )


@pytest.fixture
def world(small_history: BarFrame, calendar: NyseCalendar, tmp_path: Path):  # type: ignore[no-untyped-def]
    clock = SimClock(calendar.session_close(date(2016, 3, 1)))
    broker = SimBroker(small_history, clock, Decimal(100_000), Decimal(5), non_fractionable=frozenset({"XOM"}))
    store = StateStore(tmp_path / "state.db")
    bus = EventBus()
    agent = ExecutionAgent(bus, broker, store, PortfolioView(broker), clock)
    events: list[object] = []
    for kind in (OrderSubmitted, OrderRejected, OrderFilled):
        bus.subscribe(kind, events.append)
    yield clock, broker, store, bus, agent, events
    store.close()


async def test_approved_order_is_submitted_recorded_and_filled_next_open(world, calendar, small_history) -> None:  # type: ignore[no-untyped-def]
    clock, _broker, store, _bus, agent, events = world
    placed = await agent.submit([approved()])
    agent.record_placed(placed)
    assert len(placed) == 1
    coid = placed[0].order.client_order_id
    assert store.get_order(coid) is not None
    assert isinstance(events[0], OrderSubmitted)
    assert events[0].notional == Decimal(1000)
    clock.set(calendar.session_close(date(2016, 3, 2)))
    [fill] = await agent.sync_updates()
    assert [e.fill for e in events if isinstance(e, OrderFilled)] == [fill]  # returned and published alike
    col = small_history.symbols.index("AAPL")
    row = int((small_history.timestamps_ns < int(datetime(2016, 3, 2, 6, tzinfo=UTC).timestamp() * 1e9)).sum()) - 1
    assert float(fill.price) == pytest.approx(small_history.open[row, col] * (1 + 5 / 1e4), rel=1e-9)
    assert store.fills()[0].execution_id == fill.execution_id


async def test_the_same_approval_twice_places_one_order(world) -> None:  # type: ignore[no-untyped-def]
    _, broker, store, _bus, agent, _ = world
    assert len(await agent.submit([approved(), approved()])) == 1  # twice in one batch
    assert await agent.submit([approved()]) == []  # e.g. the iteration re-ran after a crash
    assert len(store.order_records()) == 1
    assert len(await broker.get_open_orders()) == 1


async def test_a_batch_places_its_new_approvals_and_skips_the_ones_already_stored(world) -> None:  # type: ignore[no-untyped-def]
    _, broker, store, _bus, agent, _ = world
    [first] = await agent.submit([approved("AAPL")])
    with capture_logs() as logs:
        placed = await agent.submit([approved("MSFT"), approved("AAPL"), approved("MSFT")])
    assert [p.order.symbol for p in placed] == ["MSFT"]  # the stored one and the repeat are skipped, in one batch
    known = [e for e in logs if e["event"] == "order_already_known"]
    assert sorted(e["client_order_id"] for e in known) == [first.order.client_order_id, placed[0].order.client_order_id]
    assert len(store.order_records()) == 2
    assert len(await broker.get_open_orders()) == 2


async def test_broker_rejection_becomes_an_event_with_the_reason(world) -> None:  # type: ignore[no-untyped-def]
    _, _, store, _bus, agent, events = world
    assert await agent.submit([approved("XOM", notional="500")]) == []  # XOM is not fractionable in this world
    rejected = [e for e in events if isinstance(e, OrderRejected)]
    assert [r.reason for r in rejected] == [RejectionReason.NOT_FRACTIONABLE]
    assert rejected[0].correlation_id == "zscore_mr:XOM:buy:20160301T0500"
    assert store.order_records() == []


async def test_each_new_fill_is_logged_once(world, calendar) -> None:  # type: ignore[no-untyped-def]
    clock, _broker, _store, _bus, agent, _ = world
    placed = await agent.submit([approved()])
    agent.record_placed(placed)
    clock.set(calendar.session_close(date(2016, 3, 2)))
    updates = await agent.fetch_updates()
    with capture_logs() as logs:
        assert len(agent.apply_updates(updates)) == 1
        assert agent.apply_updates(updates) == []  # the same fill reported again is not a new fill
    filled = [e for e in logs if e["event"] == "order_filled"]
    assert len(filled) == 1
    assert filled[0]["client_order_id"] == placed[0].order.client_order_id
    assert filled[0]["symbol"] == "AAPL"
    assert filled[0]["side"] == "buy"
    assert float(filled[0]["price"]) > 0


async def test_the_users_own_orders_reported_by_the_broker_are_not_recorded(world) -> None:  # type: ignore[no-untyped-def]
    """The account's update stream reports every order, the user's own too: a fill of theirs recorded as ours would
    make their shares the daemon's to sell."""
    clock, broker, store, _bus, agent, events = world
    now = clock.now()
    manual = BrokerOrder(
        client_order_id="my-manual-order-1",
        broker_order_id="b-1",
        symbol="AAPL",
        side=OrderSide.BUY,
        status=OrderStatus.FILLED,
        qty=Decimal(50),
        notional=None,
        filled_qty=Decimal(50),
        filled_avg_price=Decimal(100),
    )
    fill = Fill("b-1:50", manual.client_order_id, "AAPL", OrderSide.BUY, Decimal(50), Decimal(100), now)

    async def poll_updates() -> list[OrderUpdate]:
        return [OrderUpdate(order=manual, ts=now, fill=fill)]

    broker.poll_updates = poll_updates
    assert await agent.sync_updates() == []
    assert store.get_order("my-manual-order-1") is None
    assert store.fills() == []
    assert not any(isinstance(e, OrderFilled) for e in events)


async def test_the_approved_client_order_id_is_the_one_placed(world) -> None:  # type: ignore[no-untyped-def]
    _, broker, store, _bus, agent, _ = world
    approval = approved()
    [placed] = await agent.submit([approval])
    assert placed.order.client_order_id == approval.client_order_id
    assert store.get_order(approval.client_order_id) is not None
    assert await broker.get_order(approval.client_order_id) is not None


async def test_every_event_from_approval_to_fill_carries_the_signals_correlation_id(world, calendar) -> None:  # type: ignore[no-untyped-def]
    clock, _broker, _store, _bus, agent, events = world
    approval = approved()
    agent.record_placed(await agent.submit([approval]))
    clock.set(calendar.session_close(date(2016, 3, 2)))
    await agent.sync_updates()
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["OrderSubmitted", "OrderFilled"]
    assert {e.correlation_id for e in events} == {approval.signal.correlation_id}  # type: ignore[attr-defined]


async def test_a_fill_after_a_restart_still_names_its_signal(world, calendar, tmp_path) -> None:  # type: ignore[no-untyped-def]
    clock, broker, store, _bus, agent, _ = world
    approval = approved()
    agent.record_placed(await agent.submit([approval]))
    # A new process: nothing in memory but the store and the broker.
    fresh_bus = EventBus()
    fills: list[OrderFilled] = []
    fresh_bus.subscribe(OrderFilled, fills.append)
    restarted = ExecutionAgent(fresh_bus, broker, store, PortfolioView(broker), clock)
    clock.set(calendar.session_close(date(2016, 3, 2)))
    assert len(await restarted.sync_updates()) == 1
    assert [f.correlation_id for f in fills] == [approval.signal.correlation_id]


# ----------------------------------------------------------------------------------------------------------------------
# Protective stops and cancel-before-exit (against the stop-contract double)
# ----------------------------------------------------------------------------------------------------------------------

D = Decimal
T_OPEN = datetime(2017, 8, 2, 14, tzinfo=UTC)
SESSION = date(2017, 8, 2)


class StopWorld:
    """An execution agent over the `StopBroker` double, holding `qty` AAPL bought by one entry."""

    def __init__(self, tmp_path: Path, qty: str = "10.5") -> None:
        self.clock = FakeClock(T_OPEN)
        self.broker = StopBroker(self.clock, prices={"AAPL": D(100), "MSFT": D(100)})
        self.store = StateStore(tmp_path / "state.db")
        self.bus = EventBus()
        self.portfolio = PortfolioView(self.broker)
        self.agent = ExecutionAgent(self.bus, self.broker, self.store, self.portfolio, self.clock)
        self.events: list[object] = []
        self.bus.tap(self.events.append)
        self.entry = client_order_id("zscore_mr", "AAPL", OrderSide.BUY, BAR_TS)
        self.qty = D(qty)

    async def buy(self) -> None:
        await self.agent.submit([approved(qty=str(self.qty), notional=None)])
        await self.agent.sync_updates()

    def stop(self, part: str, qty: str, seq: int = 1) -> StopPlacement:
        return StopPlacement(
            client_order_id=protective_stop_id("AAPL", self.entry, SESSION, part, seq),
            symbol="AAPL",
            qty=D(qty),
            order_type=OrderType.STOP,
            time_in_force=TimeInForce.GTC if part == "g" else TimeInForce.DAY,
            stop_price=D(95),
            trail_percent=None,
            reason=StopReason.UNCOVERED,
        )

    async def protected(self) -> list[str]:
        """Bought, and covered by a GTC stop for the whole shares and a DAY stop for the fraction."""
        await self.buy()
        whole = self.qty.to_integral_value(rounding="ROUND_FLOOR")
        placements = [self.stop("g", str(whole))] + (
            [self.stop("d", str(self.qty - whole))] if whole != self.qty else []
        )
        outcome = await self.agent.protect(StopPlan((), tuple(placements)))
        self.agent.record_stops(outcome.placed)
        await self.portfolio.refresh()
        return [p.order.client_order_id for p in outcome.placed]

    def exit(self) -> OrderApproved:
        sized = SizedOrder("AAPL", OrderSide.SELL, Tier.TIER3, self.qty, None, D(100), self.qty * 100, True)
        sig = replace(approved().signal, side=OrderSide.SELL, is_exit=True)
        return OrderApproved(
            ts_event=T_OPEN,
            ts_init=T_OPEN,
            correlation_id="exit",
            signal=sig,
            order=sized,
            client_order_id=client_order_id("zscore_mr", "AAPL", OrderSide.SELL, BAR_TS),
        )

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def stops(tmp_path: Path) -> Iterator[StopWorld]:
    w = StopWorld(tmp_path)
    yield w
    w.store.close()


async def test_stops_are_written_ahead_as_ps_orders_and_announced(stops: StopWorld) -> None:
    placed = await stops.protected()
    assert [o.qty for o in stops.broker.resting_stops("AAPL")] == [D(10), D("0.5")]
    records = [stops.store.order_record(coid) for coid in placed]
    assert [(r.strategy, r.order.status) for r in records if r is not None] == [("ps", OrderStatus.ACCEPTED)] * 2
    announced = stops.of(StopPlaced)
    assert [(e.client_order_id, e.qty, e.time_in_force) for e in announced] == [
        (placed[0], D(10), TimeInForce.GTC),
        (placed[1], D("0.5"), TimeInForce.DAY),
    ]


async def test_an_exit_cancels_the_stops_first_and_sells_exactly_the_owned_quantity_once(stops: StopWorld) -> None:
    await stops.protected()
    [placed] = await stops.agent.submit([stops.exit()])
    assert placed.order.qty == D("10.5")
    assert [e.reason for e in stops.of(StopCancelRequested)] == [StopReason.EXIT, StopReason.EXIT]
    assert len(stops.of(OrderCanceled)) == 2  # both confirmed (and recorded) before the exit went
    await stops.agent.sync_updates()
    assert stops.broker.sold("AAPL") == D("10.5")
    assert stops.broker.refused == []
    assert stops.portfolio.ledger.qty("AAPL") == 0


async def test_a_stop_that_fills_before_its_cancel_drops_the_exit(stops: StopWorld) -> None:
    gtc, day = await stops.protected()
    stops.broker.fill_before_cancel = {gtc, day}
    assert await stops.agent.submit([stops.exit()]) == []
    assert [(e.reason, e.symbol) for e in stops.of(ExitWithheld)] == [(ExitWithheldReason.STOP_FILLED, "AAPL")]
    assert stops.broker.sold("AAPL") == D("10.5")  # by the stops, once
    assert len(stops.store.fills()) == 3  # the entry and the two stop fills, each recorded once
    assert stops.agent.take_deferred_exits() == []


async def test_a_partial_stop_fill_leaves_the_exit_only_what_is_still_owned(stops: StopWorld) -> None:
    gtc, _ = await stops.protected()
    stops.broker.trigger(gtc, qty=D(4))  # triggered and partly filled, not yet reported to the daemon
    [placed] = await stops.agent.submit([stops.exit()])
    assert placed.order.qty == D("6.5")
    await stops.agent.sync_updates()
    assert stops.broker.sold("AAPL") == D("10.5")
    assert stops.broker.refused == []


async def test_an_unconfirmed_cancel_holds_the_exit_for_the_next_iteration_without_a_real_wait(
    stops: StopWorld,
) -> None:
    await stops.protected()
    stops.broker.cancel_lag = 10  # the broker is slow to confirm
    before = stops.clock.now()
    assert await stops.agent.submit([stops.exit()]) == []
    assert stops.clock.now() - before == timedelta(seconds=CANCEL_WAIT_SECONDS * (CANCEL_TRIES - 1))  # virtual
    assert [e.reason for e in stops.of(ExitWithheld)] == [ExitWithheldReason.CANCEL_UNCONFIRMED]
    assert stops.broker.sold("AAPL") == 0  # the position is left to its stops meanwhile
    [deferred] = stops.agent.take_deferred_exits()
    assert deferred.symbol == "AAPL"
    assert deferred.is_exit
    assert stops.agent.take_deferred_exits() == []

    stops.agent.defer_exits([deferred])  # turned down for now (halted): kept for the next iteration again
    assert stops.agent.take_deferred_exits() == [deferred]

    # Next iteration: the cancels were confirmed meanwhile, and the same exit goes.
    await stops.agent.sync_updates()
    await stops.portfolio.refresh()
    [placed] = await stops.agent.submit([stops.exit()])
    assert placed.order.qty == D("10.5")


async def test_a_cancel_that_fails_at_the_broker_holds_that_exit_and_lets_the_rest_of_the_batch_go(
    stops: StopWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    await stops.protected()

    async def unavailable(client_order_id: str) -> None:
        raise BrokerError("503 after the adapter's retries")

    monkeypatch.setattr(stops.broker, "cancel_order", unavailable)
    entry = approved("MSFT")
    placed = await stops.agent.submit([stops.exit(), entry])
    assert [p.order.symbol for p in placed] == ["MSFT"]  # the entry still went
    assert [e.reason for e in stops.of(ExitWithheld)] == [ExitWithheldReason.CANCEL_UNCONFIRMED]
    assert [s.symbol for s in stops.agent.take_deferred_exits()] == ["AAPL"]
    assert len(stops.broker.resting_stops("AAPL")) == 2  # never canceled: the position keeps its stops


async def test_an_exit_whose_id_was_used_already_cancels_no_stop(stops: StopWorld) -> None:
    await stops.protected()
    used = stops.exit()
    stops.store.upsert_order(
        BrokerOrder(used.client_order_id, "b-old", "AAPL", OrderSide.SELL, OrderStatus.CANCELED, D(1), None),
        strategy="stop", tier=None, signal_bar_ts=None,
    )  # fmt: skip
    assert await stops.agent.submit([used]) == []
    assert stops.of(StopCancelRequested) == []
    assert len(stops.broker.resting_stops("AAPL")) == 2


async def test_a_resized_stop_is_placed_only_once_the_old_ones_cancel_is_confirmed(stops: StopWorld) -> None:
    gtc, day = await stops.protected()
    old = {o.client_order_id: o for o in stops.broker.resting_stops("AAPL")}
    plan = StopPlan(
        (StopCancel(old[gtc], StopReason.RESIZED), StopCancel(old[day], StopReason.RESIZED)),
        (stops.stop("g", "10", seq=2), stops.stop("d", "0.5", seq=2)),
    )
    stops.broker.cancel_lag = 10
    outcome = await stops.agent.protect(plan)
    assert outcome.placed == ()
    assert outcome.canceled == frozenset()
    stops.broker.cancel_lag = 0
    await stops.agent.sync_updates()
    outcome = await stops.agent.protect(plan)
    assert outcome.canceled == {gtc, day}
    assert [p.order.qty for p in outcome.placed] == [D(10), D("0.5")]
    assert stops.broker.refused == []
