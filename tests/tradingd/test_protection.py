"""The stop step against the stop-contract double, and the over-sell property over random interleavings of fills,
cancels, exits, adds and restarts."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.execution import ExecutionAgent
from agents.oversell import oversells
from agents.risk import RiskAgent, RiskLimits, halt_trading, resume_trading
from agents.sizing import TierConfig, TieredPositionSizer, TierExposureTracker
from agents.stops import StopAgent, StopConfig, StopMode
from core.bus import EventBus
from core.clock import NyseCalendar
from core.messages import Message, OrderApproved, OversellDetected, SignalGenerated, SizedOrder
from core.order_ids import client_order_id, is_protective_stop_id, signal_correlation_id
from core.portfolio import OwnedLedger, PortfolioView
from core.reasons import RejectionReason
from core.store import StateStore
from core.types import Asset, BrokerOrder, OrderSide, OrderStatus, OrderType, Position, Tier, TimeInForce
from tests.fakes.clock import FakeClock
from tests.fakes.flags import MemoryFlagStore
from tests.fakes.stop_broker import StopBroker
from tradingd.protection import ProtectionStep

D = Decimal
OPEN_HOUR = datetime(2017, 8, 2, 15, tzinfo=UTC)  # 11:00 in New York, Wednesday 2017-08-02
SYMBOLS = ("AAPL", "XOM")  # XOM: whole shares only
ASSETS = {
    "AAPL": Asset("AAPL", tradable=True, fractionable=True),
    "XOM": Asset("XOM", tradable=True, fractionable=False),
}


@dataclass
class Daemon:
    """The agents one daemon process holds; rebuilt from the store and the broker on a restart."""

    world: World
    mode: StopMode
    bus: EventBus = field(init=False)
    portfolio: PortfolioView = field(init=False)
    execution: ExecutionAgent = field(init=False)
    risk: RiskAgent = field(init=False)
    step: ProtectionStep = field(init=False)

    def __post_init__(self) -> None:
        w = self.world
        self.bus = EventBus()
        self.bus.tap(w.events.append)
        self.portfolio = PortfolioView(w.broker, OwnedLedger(w.store.fills()))
        self.execution = ExecutionAgent(self.bus, w.broker, w.store, self.portfolio, w.clock)
        tiers = TierConfig(
            allocations={Tier.TIER1: D("0.4"), Tier.TIER2: D("0.3"), Tier.TIER3: D("0.3")}, symbol_tiers={}
        )
        self.risk = RiskAgent(
            self.bus,
            TieredPositionSizer(tiers),
            TierExposureTracker(tiers),
            RiskLimits(max_daily_loss_pct=D(1), max_drawdown_pct=D(1)),
            w.flags,
            w.clock,
        )
        config = StopConfig(
            mode=self.mode,
            stop_loss_pct=D("0.05"),
            trailing_stop_pct=D("0.05"),
            fractional_enabled=True,
            bar_interval=timedelta(days=1),
            intraday_check=False,
        )
        stops = StopAgent(
            self.bus,
            w.clock,
            config,
            marks=w.store,
            ledger=self.portfolio.ledger,
            is_used=lambda coid: w.store.get_order(coid) is not None,
        )
        self.step = ProtectionStep(
            bus=self.bus,
            clock=w.clock,
            calendar=w.calendar,
            store=w.store,
            portfolio=self.portfolio,
            execution=self.execution,
            risk=self.risk,
            stops=stops,
            assets=ASSETS,
            on_closed_ticks=True,
        )

    async def buy(self, symbol: str, qty: Decimal) -> None:
        w = self.world
        w.signals += 1
        bar_ts = OPEN_HOUR - timedelta(days=400) + timedelta(minutes=w.signals)
        signal = _signal(symbol, OrderSide.BUY, bar_ts)
        sized = SizedOrder(symbol, OrderSide.BUY, Tier.TIER3, qty, None, D(100), qty * 100, qty % 1 != 0)
        approval = OrderApproved(
            ts_event=w.clock.now(),
            ts_init=w.clock.now(),
            correlation_id=signal.correlation_id,
            signal=signal,
            order=sized,
            client_order_id=client_order_id(signal.strategy, symbol, OrderSide.BUY, bar_ts),
        )
        await self.execution.submit([approval])

    async def iterate(self, exits: tuple[str, ...] = ()) -> None:
        """One iteration's order path: settle, refresh, risk decides the exits, execution submits, the stop step."""
        w = self.world
        await self.execution.sync_updates()
        snapshot = await self.portfolio.refresh()
        self.step.check(snapshot.positions, snapshot.open_orders, checked="refresh")
        self.risk.begin_iteration(
            snapshot,
            session=w.clock.now().date(),
            start_of_day_equity=snapshot.account.equity,
            peak_equity=snapshot.account.equity,
            assets=ASSETS,
        )
        w.signals += 1
        bar_ts = OPEN_HOUR - timedelta(days=400) + timedelta(minutes=w.signals)
        signals = [*self.execution.take_deferred_exits(), *(_signal(s, OrderSide.SELL, bar_ts) for s in exits)]
        decisions = self.risk.decide(signals)
        await self.execution.submit(decisions.approved)
        outcome = await self.step.run()
        self.execution.record_stops(outcome.placed)


@dataclass
class World:
    """What outlives a daemon: the broker, the state DB, the flags, the clock."""

    root: Path
    clock: FakeClock = field(default_factory=lambda: FakeClock(OPEN_HOUR))
    calendar: NyseCalendar = field(default_factory=NyseCalendar)
    flags: MemoryFlagStore = field(default_factory=MemoryFlagStore)
    signals: int = 0
    events: list[Message] = field(default_factory=list)  # every daemon's, across restarts
    broker: StopBroker = field(init=False)
    store: StateStore = field(init=False)

    def __post_init__(self) -> None:
        self.broker = StopBroker(self.clock, prices={s: D(100) for s in SYMBOLS}, assets=ASSETS.values())
        self.store = StateStore(self.root / "state.db")


def _signal(symbol: str, side: OrderSide, bar_ts: datetime) -> SignalGenerated:
    return SignalGenerated(
        ts_event=bar_ts,
        ts_init=bar_ts,
        correlation_id=signal_correlation_id("zscore_mr", symbol, side, bar_ts),
        strategy="zscore_mr",
        symbol=symbol,
        side=side,
        is_exit=side is OrderSide.SELL,
        price=D(100),
        score=1.0,
        volatility=0.1,
        bar_ts=bar_ts,
        reason="test",
    )


def assert_never_oversold(world: World) -> None:
    broker = world.broker
    held = {s: Position(s, qty, avg, D(100)) for s, (qty, avg) in broker.held.items()}
    assert oversells(held, broker.open_orders()) == []
    assert not any(isinstance(e, OversellDetected) for e in world.events)
    assert [r for r in broker.refused if r[1] is RejectionReason.INSUFFICIENT_QTY] == []
    for symbol in SYMBOLS:
        assert broker.sold(symbol) <= broker.bought(symbol)  # no share sold twice


# ----------------------------------------------------------------------------------------------------------------------
# The stop step
# ----------------------------------------------------------------------------------------------------------------------


async def test_an_entry_gets_its_stops_which_then_stay_put_and_follow_an_add(tmp_path: Path) -> None:
    world = World(tmp_path)
    daemon = Daemon(world, StopMode.FIXED)
    await daemon.buy("AAPL", D("10.5"))
    await daemon.buy("XOM", D(7))
    await daemon.iterate()
    stops = {(o.symbol, o.qty, o.time_in_force) for o in world.broker.open_orders()}
    assert stops == {
        ("AAPL", D(10), TimeInForce.GTC),
        ("AAPL", D("0.5"), TimeInForce.DAY),
        ("XOM", D(7), TimeInForce.GTC),
    }
    assert {o.stop_price for o in world.broker.open_orders()} == {D("95.00")}
    placed = world.broker.open_orders()

    await daemon.iterate()
    assert world.broker.open_orders() == placed  # covered: nothing moves

    await daemon.buy("AAPL", D(2))
    await daemon.iterate()
    aapl = sorted((o.qty, o.time_in_force) for o in world.broker.open_orders() if o.symbol == "AAPL")
    assert aapl == [(D("0.5"), TimeInForce.DAY), (D(12), TimeInForce.GTC)]
    assert_never_oversold(world)
    world.store.close()


async def test_while_halted_resting_stops_stay_and_none_is_placed(tmp_path: Path) -> None:
    world = World(tmp_path)
    daemon = Daemon(world, StopMode.FIXED)
    await daemon.buy("XOM", D(5))
    await daemon.iterate()
    [stop] = world.broker.open_orders()
    halt_trading(world.flags, "operator")
    await daemon.buy("AAPL", D(3))
    await daemon.iterate()
    assert world.broker.open_orders() == [stop]  # XOM's stop stays, AAPL gets none
    resume_trading(world.flags, equity=None)
    await daemon.iterate()
    assert {o.symbol for o in world.broker.open_orders()} == {"XOM", "AAPL"}
    world.store.close()


async def test_a_day_stop_that_expired_is_replaced_before_the_next_open(tmp_path: Path) -> None:
    world = World(tmp_path)
    daemon = Daemon(world, StopMode.FIXED)
    await daemon.buy("AAPL", D("3.25"))
    await daemon.iterate()
    world.broker.expire_day_orders()
    world.clock.set(datetime(2017, 8, 2, 21, 30, tzinfo=UTC))  # after the close: the stop is for the next session
    outcome = await daemon.step.run()
    [day] = [p.placement for p in outcome.placed]
    assert (day.qty, day.time_in_force) == (D("0.25"), TimeInForce.DAY)
    assert "-d1-170803-" in day.client_order_id
    world.store.close()


def test_a_breach_of_the_invariant_is_logged_and_published(tmp_path: Path) -> None:
    world = World(tmp_path)
    daemon = Daemon(world, StopMode.FIXED)
    coid = client_order_id("zscore_mr", "AAPL", OrderSide.SELL, OPEN_HOUR)
    too_much = BrokerOrder(coid, "b", "AAPL", OrderSide.SELL, OrderStatus.NEW, D(11), None, order_type=OrderType.MARKET)
    held = {"AAPL": Position("AAPL", D(10), D(100), D(100))}
    assert daemon.step.check(held, [too_much], checked="refresh") == 1
    [event] = [e for e in world.events if isinstance(e, OversellDetected)]
    assert (event.symbol, event.open_sell_qty, event.owned_qty) == ("AAPL", D(11), D(10))
    world.store.close()


# ----------------------------------------------------------------------------------------------------------------------
# The property: random interleavings never oversell, never sell a share twice
# ----------------------------------------------------------------------------------------------------------------------

quantities = st.decimals(min_value=D("0.25"), max_value=D(30), places=2)
pick = st.integers(min_value=0, max_value=1)  # which held symbol an exit or a trigger hits
buys = st.tuples(st.just("buy"), st.sampled_from(SYMBOLS), quantities)
exits = st.tuples(st.sampled_from(["exit", "exit", "exit_race"]), pick, st.sampled_from([D(0), D(0), D(3), D(9)]))
triggers = st.tuples(st.just("trigger"), pick, st.sampled_from([D("0.5"), D(1)]))
steps = st.one_of(
    buys,
    buys,
    exits,
    exits,
    triggers,
    st.tuples(st.just("iterate"), st.just(0), st.just(D(0))),
    st.tuples(st.just("next_session"), st.just(0), st.just(D(0))),
    st.tuples(st.just("halt"), st.just(0), st.sampled_from([D(0), D(1)])),
    st.tuples(st.just("restart"), st.just(0), st.just(D(0))),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mode=st.sampled_from([StopMode.FIXED, StopMode.TRAILING]), script=st.lists(steps, min_size=8, max_size=30))
async def test_no_interleaving_of_fills_cancels_exits_adds_and_restarts_ever_oversells(
    mode: StopMode, script: list[tuple[str, str | int, Decimal]]
) -> None:
    with tempfile.TemporaryDirectory() as root:
        world = World(Path(root))
        daemon = Daemon(world, mode)
        try:
            for action, symbol, amount in script:
                await _play(world, daemon, action, symbol, amount)
                if action == "restart":
                    daemon = Daemon(world, mode)
                assert_never_oversold(world)
            for _ in range(3):  # settle: slow cancels confirmed, held-back exits sent, stops re-placed
                await daemon.iterate()
            assert_never_oversold(world)
            # Every fill recorded once, and the daemon's ledger agrees with the broker.
            assert sorted(f.execution_id for f in world.store.fills()) == sorted(
                f.execution_id for f in world.broker.fills
            )
            for symbol in SYMBOLS:
                held = world.broker.held.get(symbol, (D(0), D(0)))[0]
                assert daemon.portfolio.ledger.qty(symbol) == held
                covered = sum((o.open_qty for o in world.broker.open_orders() if o.symbol == symbol), D(0))
                if world.flags.get_flag("halted") is None:
                    whole = held if ASSETS[symbol].fractionable else held.to_integral_value(rounding="ROUND_FLOOR")
                    assert covered == whole  # settled: every owned share covered exactly once
        finally:
            world.store.close()


async def _play(world: World, daemon: Daemon, action: str, which: str | int, amount: Decimal) -> None:
    """One step of a script. `which`: a symbol to buy, or which held symbol an exit or a trigger hits."""
    broker = world.broker
    world.clock.advance(timedelta(minutes=1))
    held = sorted(broker.held) or list(SYMBOLS)
    symbol = which if isinstance(which, str) else held[which % len(held)]
    if action == "buy":
        qty = amount if ASSETS[symbol].fractionable else amount.to_integral_value(rounding="ROUND_CEILING")
        await daemon.buy(symbol, qty)
        await daemon.iterate()  # filled, then protected
    elif action == "iterate":
        await daemon.iterate()
    elif action == "trigger":
        resting = [o for o in broker.resting_stops(symbol) if is_protective_stop_id(o.client_order_id)]
        if resting:
            stop = resting[0]
            part = stop.open_qty * amount
            if stop.time_in_force is TimeInForce.GTC or not ASSETS[symbol].fractionable:
                part = part.to_integral_value(rounding="ROUND_CEILING")
            broker.trigger(stop.client_order_id, qty=part)
    elif action in ("exit", "exit_race"):
        if action == "exit_race":
            broker.fill_before_cancel = {o.client_order_id for o in broker.resting_stops(symbol)}
        broker.cancel_lag = int(amount)  # polls before the broker confirms a cancel (more than the tries: unconfirmed)
        await daemon.iterate(exits=(symbol,))
        broker.fill_before_cancel, broker.cancel_lag = set(), 0
    elif action == "next_session":
        broker.expire_day_orders()
        world.clock.set(world.calendar.next_open(world.clock.now()) + timedelta(hours=1))
    elif action == "halt":
        if amount:
            halt_trading(world.flags, "test")
        else:
            resume_trading(world.flags, equity=None)
