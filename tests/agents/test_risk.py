import dataclasses
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.risk import (
    BreakerAction,
    Decisions,
    RiskAgent,
    RiskEngine,
    RiskLimits,
    halt_trading,
    pending_buys,
    resume_trading,
    sellable_qty,
)
from agents.sizing import TierConfig, TieredPositionSizer, TierExposureTracker
from agents.stop_plan import StopCancel, StopPlacement, StopPlan
from core.bus import EventBus
from core.close_requests import ALL, CloseRequests
from core.flags import FLAG_DAILY_LOSS, FLAG_DRAWDOWN, FLAG_DRAWDOWN_PEAK, FLAG_HALTED
from core.messages import (
    CircuitBreakerTripped,
    FlattenRequested,
    Message,
    OrderApproved,
    OrderDenied,
    SignalGenerated,
    StopDenied,
    TradingStateChanged,
)
from core.order_ids import client_order_id, protective_stop_id
from core.reasons import StopReason
from core.types import (
    Account,
    Asset,
    BarFrame,
    BrokerOrder,
    OrderSide,
    OrderStatus,
    OrderType,
    PortfolioSnapshot,
    Position,
    Tier,
    TimeInForce,
    TradingState,
    bar_price,
)
from tests.fakes.clock import FakeClock
from tests.fakes.flags import MemoryFlagStore

D = Decimal
# July 4th 2017 was a Tuesday: the NYSE session after Monday July 3rd is Wednesday July 5th.
MON = date(2017, 7, 3)
WED = date(2017, 7, 5)
TIERS = {"SPY": Tier.TIER1, "QQQ": Tier.TIER1, "XLK": Tier.TIER2}
ASSETS = {
    s: Asset(s, tradable=True, fractionable=s != "BRK.A")
    for s in ("SPY", "QQQ", "XLK", "AAPL", "MSFT", "NVDA", "BRK.A")
}


def signal(
    symbol: str, *, score: float = 1.0, price: float = 100.0, is_exit: bool = False, side: OrderSide = OrderSide.BUY
) -> SignalGenerated:
    ts = datetime(2017, 7, 3, 20, tzinfo=UTC)
    return SignalGenerated(
        ts_event=ts,
        ts_init=ts,
        correlation_id=f"corr-{symbol}-{'x' if is_exit else 'e'}",
        strategy="zscore_mr",
        symbol=symbol,
        side=OrderSide.SELL if is_exit else side,
        is_exit=is_exit,
        price=bar_price(price),
        score=score,
        volatility=0.2,
        bar_ts=ts,
        reason="test",
    )


def snapshot(
    equity: str = "10000",
    *,
    buying_power: str | None = None,
    positions: dict[str, Position] | None = None,
    open_orders: tuple[BrokerOrder, ...] = (),
) -> PortfolioSnapshot:
    eq = D(equity)
    bp = D(buying_power) if buying_power is not None else eq
    return PortfolioSnapshot(Account(eq, bp, bp), positions or {}, open_orders)


class Harness:
    """A RiskAgent on a real bus, with fakes for the store and the clock, recording what it publishes."""

    def __init__(
        self,
        flags: MemoryFlagStore | None = None,
        *,
        session: date = MON,
        limits: RiskLimits | None = None,
        **config: object,
    ) -> None:
        self.bus = EventBus()
        self.flags = flags or MemoryFlagStore()
        self.clock = FakeClock(datetime(2017, 7, 3, 20, tzinfo=UTC))
        self.config = TierConfig(
            allocations={Tier.TIER1: D("0.40"), Tier.TIER2: D("0.30"), Tier.TIER3: D("0.30")},
            symbol_tiers=TIERS,
            **config,  # type: ignore[arg-type]
        )
        self.tracker = TierExposureTracker(self.config)
        self.risk = RiskAgent(
            self.bus,
            TieredPositionSizer(self.config),
            self.tracker,
            limits or RiskLimits(),
            self.flags,
            self.clock,
            session=session,
        )
        self.decisions = Decisions()
        self.out: list[Message] = []
        for kind in (OrderApproved, OrderDenied, CircuitBreakerTripped, FlattenRequested, TradingStateChanged):
            self.bus.subscribe(kind, self.out.append)

    def iterate(
        self,
        snap: PortfolioSnapshot,
        signals: list[SignalGenerated],
        *,
        session: date = MON,
        sod: str = "10000",
        peak: str = "10000",
        assets: dict[str, Asset] = ASSETS,
        frame: BarFrame | None = None,
    ) -> list[Message]:
        start = len(self.out)
        self.risk.begin_iteration(snap, session=session, start_of_day_equity=D(sod), peak_equity=D(peak), assets=assets)
        self.decisions = self.risk.decide(signals, frame)
        published = self.out[start:]
        # What risk returns is what it published, in the same order.
        assert list(self.decisions.approved) == [m for m in published if isinstance(m, OrderApproved)]
        assert list(self.decisions.denied) == [m for m in published if isinstance(m, OrderDenied)]
        return published


def answers(messages: list[Message]) -> list[tuple[str, str]]:
    """(symbol, 'approved' or the denial reason) for each order answer, in publication order."""
    result = []
    for m in messages:
        if isinstance(m, OrderApproved):
            result.append((m.signal.symbol, "approved"))
        elif isinstance(m, OrderDenied):
            result.append((m.signal.symbol, m.reason))
    return result


def trips(messages: list[Message]) -> list[str]:
    return [m.breaker for m in messages if isinstance(m, CircuitBreakerTripped)]


def state_changes(messages: list[Message]) -> list[tuple[str, str, str]]:
    return [(m.previous, m.current, m.reason) for m in messages if isinstance(m, TradingStateChanged)]


# ----------------------------------------------------------------------------------------------------------------------
# RiskLimits and RiskEngine (pure)
# ----------------------------------------------------------------------------------------------------------------------


def test_limits_are_fractions_of_at_most_one() -> None:
    with pytest.raises(ValueError, match="max_drawdown_pct"):
        RiskLimits(max_drawdown_pct=D("1.5"))


def test_daily_loss_boundary_is_inclusive_and_needs_a_real_loss() -> None:
    engine = RiskEngine(RiskLimits())
    assert engine.daily_loss_breached(equity=D(9800), start_of_day_equity=D(10_000))
    assert not engine.daily_loss_breached(equity=D("9800.01"), start_of_day_equity=D(10_000))
    assert not engine.daily_loss_breached(equity=D(9800), start_of_day_equity=D(0))
    flat = RiskEngine(RiskLimits(max_daily_loss_pct=D(0)))
    assert not flat.daily_loss_breached(equity=D(10_000), start_of_day_equity=D(10_000))


def test_drawdown_is_measured_from_the_peak() -> None:
    engine = RiskEngine(RiskLimits())
    assert engine.drawdown(equity=D(9000), peak_equity=D(10_000)) == D("0.1")
    assert engine.drawdown_breached(equity=D(9000), peak_equity=D(10_000))
    assert not engine.drawdown_breached(equity=D("9000.01"), peak_equity=D(10_000))
    assert engine.drawdown(equity=D(11_000), peak_equity=D(10_000)) == 0


@settings(max_examples=200, deadline=None)
@given(
    equity=st.decimals(min_value=D(0), max_value=D(10_000_000), places=2),
    reference=st.decimals(min_value=D("0.01"), max_value=D(10_000_000), places=2),
    pct=st.decimals(min_value=D(0), max_value=D(1), places=3),
)
def test_breakers_trip_exactly_at_their_threshold(equity: Decimal, reference: Decimal, pct: Decimal) -> None:
    engine = RiskEngine(RiskLimits(max_daily_loss_pct=pct, max_drawdown_pct=pct))
    loss = reference - equity
    assert engine.daily_loss_breached(equity=equity, start_of_day_equity=reference) == (
        loss > 0 and equity <= reference * (1 - pct)
    )
    assert engine.drawdown_breached(equity=equity, peak_equity=reference) == (loss > 0 and loss / reference >= pct)


def test_pending_buys_counts_unfilled_notional_and_prices_qty_orders() -> None:
    orders = (
        BrokerOrder("a", "1", "AAPL", OrderSide.BUY, OrderStatus.ACCEPTED, None, D(500)),
        BrokerOrder("b", "2", "BRK.A", OrderSide.BUY, OrderStatus.PARTIALLY_FILLED, D(3), None, D(1), D(100)),
        BrokerOrder("c", "3", "MSFT", OrderSide.SELL, OrderStatus.NEW, D(5), None),
        BrokerOrder("d", "4", "NVDA", OrderSide.BUY, OrderStatus.FILLED, D(5), None, D(5), D(150)),
        BrokerOrder("e", "5", "XYZ", OrderSide.BUY, OrderStatus.NEW, D(5), None),
    )
    pending, unpriced = pending_buys(orders, {"BRK.A": D(101)}.get)
    assert pending == {"a": D(500), "b": D(202)}
    assert unpriced == ["e"]


# ----------------------------------------------------------------------------------------------------------------------
# The agent: sizing through the bus
# ----------------------------------------------------------------------------------------------------------------------


def test_expensive_stock_fractional_on_is_a_notional_order() -> None:
    h = Harness()
    [approved] = h.iterate(snapshot("10000"), [signal("NVDA", price=900.0)])
    assert isinstance(approved, OrderApproved)
    assert approved.order.notional == D("600.00")
    assert approved.order.qty is None
    assert approved.correlation_id == "corr-NVDA-e"
    assert approved.ts_event == h.clock.now()


def test_expensive_stock_fractional_off_is_denied_zero_shares() -> None:
    h = Harness(fractional_enabled=False)
    [denied] = h.iterate(snapshot("10000"), [signal("NVDA", price=900.0)])
    assert isinstance(denied, OrderDenied)
    assert denied.reason == "zero_shares"
    assert h.decisions == Decisions(denied=(denied,))


def test_entries_are_answered_best_score_first_after_exits() -> None:
    h = Harness()
    held = {"MSFT": Position("MSFT", D(5), D(80), D(85))}
    out = h.iterate(
        snapshot("10000", positions=held),
        [signal("AAPL", score=1.0), signal("MSFT", is_exit=True, price=85.0), signal("SPY", score=3.0)],
    )
    assert answers(out) == [("MSFT", "approved"), ("SPY", "approved"), ("AAPL", "approved")]
    assert isinstance(out[0], OrderApproved)
    exit_order = out[0].order
    assert (exit_order.side, exit_order.qty, exit_order.notional) == (OrderSide.SELL, D(5), None)


def test_pre_checks_deny_with_stable_reasons() -> None:
    h = Harness()
    open_buy = BrokerOrder("o1", "b1", "QQQ", OrderSide.BUY, OrderStatus.ACCEPTED, None, D(300))
    out = h.iterate(
        snapshot("10000", open_orders=(open_buy,)),
        [
            signal("TSLA"),  # no asset information: never traded on a guess
            signal("AAPL", price=float("nan")),
            signal("MSFT", side=OrderSide.SELL),  # a short entry
            signal("QQQ"),  # a buy is already open
            signal("XLK", is_exit=True),  # nothing held to sell
        ],
    )
    assert sorted(answers(out)) == [
        ("AAPL", "invalid_price"),
        ("MSFT", "short_not_supported"),
        ("QQQ", "order_pending"),
        ("TSLA", "not_tradable"),
        ("XLK", "no_position"),
    ]


def test_open_buy_orders_count_against_the_tier_and_buying_power_once() -> None:
    h = Harness()
    # Tier 1 ($4,000) has a $3,500 buy open for SPY: QQQ may only use the $500 left.
    open_buy = BrokerOrder("o1", "b1", "SPY", OrderSide.BUY, OrderStatus.ACCEPTED, None, D(3500))
    [answer] = h.iterate(snapshot("10000", open_orders=(open_buy,)), [signal("QQQ", price=150.0)])
    assert isinstance(answer, OrderApproved)
    assert answer.order.notional == D(500)
    # And buying power: the broker reports it net of open orders ($4,000 cash, $3,500 promised to the open order),
    # so it is used as reported and not reduced a second time.
    h2 = Harness()
    [answer] = h2.iterate(snapshot("10000", buying_power="500", open_orders=(open_buy,)), [signal("AAPL", price=150.0)])
    assert isinstance(answer, OrderApproved)
    assert answer.order.notional == D(500)


def test_a_partly_filled_buy_counts_its_fill_as_held_and_the_rest_as_pending() -> None:
    # Fills reach risk through the snapshot (settled before it is taken): $3,500 of SPY ordered, $1,500 of it filled
    # and held, the $2,000 left still promised. Tier 1 ($4,000) has $500 left for QQQ, not counted twice.
    h = Harness()
    open_buy = BrokerOrder("o1", "b1", "SPY", OrderSide.BUY, OrderStatus.PARTIALLY_FILLED, None, D(3500), D(6), D(250))
    held = {"SPY": Position("SPY", D(6), D(250), D(250))}
    [answer] = h.iterate(snapshot("10000", positions=held, open_orders=(open_buy,)), [signal("QQQ", price=150.0)])
    assert isinstance(answer, OrderApproved)
    assert answer.order.notional == D(500)
    assert h.tracker.tier_exposure(Tier.TIER1) == D(1500)


def test_unpriceable_open_order_blocks_entries_until_a_price_is_seen() -> None:
    h = Harness()
    open_buy = BrokerOrder("o1", "b1", "BRK.A", OrderSide.BUY, OrderStatus.NEW, D(1), None)
    [answer] = h.iterate(snapshot("10000", open_orders=(open_buy,)), [signal("AAPL")])
    assert isinstance(answer, OrderDenied)
    assert answer.reason == "insufficient_buying_power"

    close = np.array([[271_000.0], [np.nan]])
    frame = BarFrame(
        ("BRK.A",), np.array(["2017-06-30", "2017-07-03"], dtype="datetime64[ns]"), close, close, close, close, close
    )
    # Priced at the last valid close of the iteration's bars, the $271,000 order fills Tier 3 on its own...
    [answer] = h.iterate(snapshot("10000", open_orders=(open_buy,)), [signal("AAPL")], frame=frame)
    assert isinstance(answer, OrderDenied)
    assert answer.reason == "tier_budget_exhausted"
    # ...and leaves $29,000 of a $300,000 account's buying power: enough for a full Tier-1 position ($24,000).
    [answer] = h.iterate(snapshot("300000", open_orders=(open_buy,)), [signal("SPY", price=243.0)], frame=frame)
    assert isinstance(answer, OrderApproved)
    assert answer.order.notional == D(24_000)


def test_max_open_positions_gate() -> None:
    h = Harness()
    held = {f"S{i}": Position(f"S{i}", D(1), D(10), D(10)) for i in range(20)}
    [answer] = h.iterate(snapshot("10000", positions=held), [signal("AAPL")])
    assert isinstance(answer, OrderDenied)
    assert answer.reason == "max_open_positions"


def test_a_decision_needs_a_fresh_snapshot() -> None:
    h = Harness()
    h.iterate(snapshot(), [signal("AAPL")])
    with pytest.raises(RuntimeError, match="begin_iteration"):
        h.risk.decide([signal("MSFT")])
    assert h.risk.decide([]) == Decisions()  # no signal: nothing to decide, no snapshot needed


# ----------------------------------------------------------------------------------------------------------------------
# Circuit breakers and the kill switch
# ----------------------------------------------------------------------------------------------------------------------


def test_daily_loss_trips_once_allows_exits_and_resets_next_session() -> None:
    h = Harness()
    held = {"AAPL": Position("AAPL", D(10), D(150), D(140))}
    down = snapshot("9800", positions=held)

    out = h.iterate(down, [signal("MSFT"), signal("AAPL", is_exit=True, price=140.0)])
    assert trips(out) == ["daily_loss_limit"]
    assert answers(out) == [("AAPL", "approved"), ("MSFT", "daily_loss_limit")]
    assert h.flags.get_flag(FLAG_DAILY_LOSS) == "2017-07-03"

    h.clock.advance(timedelta(minutes=1))
    out = h.iterate(snapshot("9900", positions=held), [signal("MSFT")])
    assert trips(out) == []  # tripped once per session, not every iteration
    assert answers(out) == [("MSFT", "daily_loss_limit")]  # recovering intraday does not lift it

    out = h.iterate(snapshot("9800", positions=held), [signal("MSFT")], session=WED, sod="9800", peak="10000")
    assert trips(out) == []
    assert answers(out) == [("MSFT", "approved")]
    assert h.flags.get_flag(FLAG_DAILY_LOSS) is None


def test_daily_loss_flag_survives_a_restart_without_tripping_again() -> None:
    flags = MemoryFlagStore()
    Harness(flags).iterate(snapshot("9700"), [])
    assert flags.get_flag(FLAG_DAILY_LOSS) == "2017-07-03"
    restarted = Harness(flags)
    out = restarted.iterate(snapshot("9700"), [signal("MSFT")])
    assert trips(out) == []
    assert answers(out) == [("MSFT", "daily_loss_limit")]


def test_drawdown_trips_until_resume_then_measures_from_the_new_peak() -> None:
    h = Harness()
    out = h.iterate(snapshot("9000"), [signal("MSFT")], sod="9000", peak="10000")
    assert trips(out) == ["max_drawdown"]
    assert answers(out) == [("MSFT", "max_drawdown")]

    out = h.iterate(snapshot("9100"), [signal("MSFT")], session=WED, sod="9100", peak="10000")
    assert trips(out) == []
    assert answers(out) == [("MSFT", "max_drawdown")]  # a new day does not lift it
    assert h.flags.get_flag(FLAG_DRAWDOWN) is not None

    resume_trading(h.flags, equity=D(9100))  # `tradingd resume`: the last equity recorded is the new peak
    assert h.flags.get_flag(FLAG_DRAWDOWN_PEAK) == "9100"
    out = h.iterate(snapshot("9100"), [signal("MSFT")], session=WED, sod="9100", peak="10000")
    assert trips(out) == []  # still 9% below the all-time peak, but measured from the resume now
    assert answers(out) == [("MSFT", "approved")]
    assert state_changes(out) == [("reducing", "active", "cleared")]

    h.iterate(snapshot("9500"), [], session=WED, sod="9100", peak="10000")  # a new high since the resume
    out = h.iterate(snapshot("8550"), [signal("AAPL")], session=WED, sod="8550", peak="10000")
    assert trips(out) == ["max_drawdown"]  # 10% below the post-resume peak of 9,500
    assert answers(out) == [("AAPL", "max_drawdown")]


def test_drawdown_allows_exits() -> None:
    h = Harness()
    held = {"AAPL": Position("AAPL", D("1.5"), D(150), D(140))}
    out = h.iterate(snapshot("8000", positions=held), [signal("AAPL", is_exit=True, price=140.0)], sod="8000")
    assert answers(out) == [("AAPL", "approved")]
    assert isinstance(out[-1], OrderApproved)
    order = out[-1].order
    assert (order.qty, order.fractional) == (D("1.5"), True)


FLATTEN = BreakerAction.FLATTEN


@pytest.mark.parametrize(
    ("limits", "equity", "sod", "breaker"),
    [
        (RiskLimits(on_max_drawdown=FLATTEN), "9000", "9000", "max_drawdown"),
        (RiskLimits(on_daily_loss=FLATTEN), "9800", "10000", "daily_loss_limit"),
    ],
)
def test_a_breaker_set_to_flatten_requests_every_owned_position_sold_and_stays_reducing(
    limits: RiskLimits, equity: str, sod: str, breaker: str
) -> None:
    h = Harness(limits=limits)
    held = {"AAPL": Position("AAPL", D(10), D(150), D(140)), "XLK": Position("XLK", D("2.5"), D(60), D(55))}
    out = h.iterate(snapshot(equity, positions=held), [signal("MSFT")], sod=sod, peak="10000")
    tripped, flatten = (m for m in out if isinstance(m, CircuitBreakerTripped | FlattenRequested))
    assert isinstance(flatten, FlattenRequested)
    assert (flatten.breaker.value, flatten.symbols) == (breaker, ("AAPL", "XLK"))
    assert flatten.detail == tripped.detail
    [request] = CloseRequests(h.flags).pending()
    assert (request.target, request.tag, request.breaker) == (ALL, "flatten", breaker)
    assert request.reason == f"flatten: {breaker}: {tripped.detail}"
    assert h.risk.state is TradingState.REDUCING
    assert answers(out) == [("MSFT", breaker)]


def test_a_breaker_set_to_reduce_requests_nothing() -> None:
    h = Harness()
    held = {"AAPL": Position("AAPL", D(10), D(150), D(140))}
    out = h.iterate(snapshot("9000", positions=held), [], sod="9000", peak="10000")
    assert trips(out) == ["max_drawdown"]
    assert not any(isinstance(m, FlattenRequested) for m in out)
    assert CloseRequests(h.flags).pending() == []


def test_a_daily_loss_flatten_lapses_with_its_breaker_at_the_next_session() -> None:
    h = Harness(limits=RiskLimits(on_daily_loss=FLATTEN))
    requests = CloseRequests(h.flags)
    h.iterate(snapshot("9800"), [], sod="10000", peak="10000")
    requests.request("AAPL", tag="manual", reason="manual", now=h.clock.now())
    assert [r.target for r in requests.pending()] == ["AAPL", ALL]
    # Left over, it would sell the new session's entries too.
    h.iterate(snapshot("9800"), [], session=WED, sod="9800", peak="10000")
    assert [r.target for r in requests.pending()] == ["AAPL"]  # a manual close is the operator's own: kept


def test_resume_withdraws_the_drawdown_flatten_with_the_breaker() -> None:
    h = Harness(limits=RiskLimits(on_max_drawdown=FLATTEN))
    h.iterate(snapshot("9000"), [], sod="9000", peak="10000")
    assert [r.target for r in CloseRequests(h.flags).pending()] == [ALL]
    resume_trading(h.flags, equity=D(9000))
    assert CloseRequests(h.flags).pending() == []


def test_halt_blocks_everything_and_survives_a_restart_until_resume() -> None:
    flags = MemoryFlagStore()
    h = Harness(flags)
    halt_trading(flags, "operator: broker outage")
    held = {"AAPL": Position("AAPL", D(10), D(150), D(150))}
    out = h.iterate(snapshot(positions=held), [signal("MSFT")])
    assert state_changes(out) == [("active", "halted", "halted")]
    assert h.risk.state is TradingState.HALTED

    restarted = Harness(flags)
    assert restarted.risk.state is TradingState.HALTED  # read at start: no change to announce
    out = restarted.iterate(snapshot(positions=held), [signal("MSFT"), signal("AAPL", is_exit=True)])
    assert answers(out) == [("AAPL", "halted"), ("MSFT", "halted")]
    assert state_changes(out) == []
    assert trips(out) == []  # the kill switch is an operator's act, not a breaker

    resume_trading(flags, equity=D(10_000))
    out = restarted.iterate(snapshot(positions=held), [signal("MSFT"), signal("AAPL", is_exit=True)])
    assert restarted.risk.state is TradingState.ACTIVE
    assert answers(out) == [("AAPL", "approved"), ("MSFT", "approved")]
    assert state_changes(out) == [("halted", "active", "cleared")]


def test_a_halt_set_by_another_process_is_seen_at_the_next_decision() -> None:
    h = Harness()
    h.risk.begin_iteration(snapshot(), session=MON, start_of_day_equity=D(10_000), peak_equity=D(10_000), assets=ASSETS)
    h.flags.set_flag(FLAG_HALTED, "tradingd halt")  # the CLI writes the store while the daemon iterates
    h.risk.decide([signal("MSFT")])
    assert answers(h.out) == [("MSFT", "halted")]


def test_exposure_is_json_ready_for_the_run_summary() -> None:
    h = Harness()
    held = {"SPY": Position("SPY", D(10), D(250), D(250)), "AAPL": Position("AAPL", D(10), D(150), D(250))}
    h.iterate(snapshot("9000", positions=held), [signal("MSFT")], sod="9000", peak="10000")
    exposure = json.loads(json.dumps(h.risk.exposure()))
    assert exposure["tiers"]["TIER1"] == "2500.00"
    assert exposure["tiers"]["TIER3"] == "2500.00"


# ----------------------------------------------------------------------------------------------------------------------
# The trading state: one value, announced when it moves
# ----------------------------------------------------------------------------------------------------------------------


def test_each_move_of_the_trading_state_is_published_once_with_its_cause() -> None:
    h = Harness()
    assert h.risk.state is TradingState.ACTIVE
    out = h.iterate(snapshot("9800"), [signal("MSFT")])
    assert state_changes(out) == [("active", "reducing", "daily_loss_limit")]
    assert h.iterate(snapshot("9800"), [signal("MSFT")]) == [h.out[-1]]  # no new event: still reducing

    halt_trading(h.flags, "ops")
    out = h.iterate(snapshot("9800"), [])
    assert state_changes(out) == [("reducing", "halted", "halted")]
    halt_trading(h.flags, "ops", reduce_only=True)
    out = h.iterate(snapshot("9800"), [])
    assert state_changes(out) == [("halted", "reducing", "daily_loss_limit")]  # the most severe cause still holding
    resume_trading(h.flags, equity=D(9800))
    out = h.iterate(snapshot("9800"), [], session=WED, sod="9800")
    assert state_changes(out) == [("reducing", "active", "cleared")]
    [changed] = [m for m in h.out if isinstance(m, TradingStateChanged) and m.current is TradingState.ACTIVE]
    assert (changed.previous, changed.reason, changed.correlation_id) == (TradingState.REDUCING, "cleared", "")


def test_resume_rebases_the_drawdown_peak_on_the_equity_it_is_given() -> None:
    flags = MemoryFlagStore()
    flags.set_flag(FLAG_DRAWDOWN, "dd")
    assert resume_trading(flags, equity=D("9123.45"))
    assert flags.get_flag(FLAG_DRAWDOWN_PEAK) == "9123.45"
    flags.set_flag(FLAG_DRAWDOWN, "dd")
    assert resume_trading(flags, equity=None)  # nothing recorded yet: the next equity seen is the peak anyway
    assert flags.get_flag(FLAG_DRAWDOWN_PEAK) is None
    assert not resume_trading(flags, equity=D(1))
    assert flags.get_flag(FLAG_DRAWDOWN_PEAK) is None


def test_an_old_rebase_word_in_the_peak_flag_measures_from_the_next_equity() -> None:
    flags = MemoryFlagStore()
    flags.set_flag(FLAG_DRAWDOWN_PEAK, "rebase")  # what versions before the one-state agent wrote on resume
    h = Harness(flags)
    out = h.iterate(snapshot("9000"), [signal("MSFT")], sod="9000", peak="10000")
    assert trips(out) == []
    assert answers(out) == [("MSFT", "approved")]
    assert flags.get_flag(FLAG_DRAWDOWN_PEAK) == "9000"


# ----------------------------------------------------------------------------------------------------------------------
# Decisions the adapters used to take: whole shares, owned quantities, order identity
# ----------------------------------------------------------------------------------------------------------------------


def test_the_approval_carries_the_client_order_id_computed_once() -> None:
    h = Harness()
    [approved] = h.iterate(snapshot(), [signal("AAPL")])
    assert isinstance(approved, OrderApproved)
    s = approved.signal
    assert approved.client_order_id == client_order_id(s.strategy, "AAPL", OrderSide.BUY, s.bar_ts)


def test_an_exit_sells_whole_shares_where_fractions_are_not_allowed() -> None:
    held = {
        "BRK.A": Position("BRK.A", D("2.5"), D(100), D(100)),  # not fractionable
        "AAPL": Position("AAPL", D("1.25"), D(100), D(100)),
        "NVDA": Position("NVDA", D("0.5"), D(100), D(100)),
    }
    exits = [signal(s, is_exit=True) for s in held]
    out = Harness().iterate(snapshot(positions=held), exits)
    orders = {m.signal.symbol: m.order.qty for m in out if isinstance(m, OrderApproved)}
    assert orders == {"BRK.A": D(2), "AAPL": D("1.25"), "NVDA": D("0.5")}

    out = Harness(fractional_enabled=False).iterate(snapshot(positions=held), exits)
    assert sorted(answers(out)) == [("AAPL", "approved"), ("BRK.A", "approved"), ("NVDA", "zero_shares")]
    assert {m.order.qty for m in out if isinstance(m, OrderApproved)} == {D(1), D(2)}


def test_an_exit_of_an_unknown_asset_is_denied() -> None:
    held = {"TSLA": Position("TSLA", D(3), D(100), D(100))}
    out = Harness().iterate(snapshot(positions=held), [signal("TSLA", is_exit=True)])
    assert answers(out) == [("TSLA", "not_tradable")]


@pytest.mark.parametrize(
    ("held", "fractional", "expected"), [("2.5", False, "2"), ("2.5", True, "2.5"), ("3", False, "3")]
)
def test_sellable_qty(held: str, fractional: bool, expected: str) -> None:
    assert str(sellable_qty(D(held), fractional=fractional)) == expected
    assert sellable_qty(D("0.1234567891"), fractional=True) == D("0.123456789")


# ----------------------------------------------------------------------------------------------------------------------
# Properties: whatever the signals, positions and settings, no approved order is short, oversold or under the minimum
# ----------------------------------------------------------------------------------------------------------------------

POOL = tuple(ASSETS)
# Mostly prices an order can be sized at (a few dearer than any position cap), sometimes unusable ones.
prices = st.one_of(
    st.decimals(min_value=D("0.01"), max_value=D(2000), places=2),
    st.decimals(min_value=D("0.01"), max_value=D(2000), places=2),
    st.decimals(min_value=D("0.01"), max_value=D(400_000), places=2),
    st.sampled_from([D(0), D(-5), D("NaN"), D("Infinity")]),
)


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, object]:
    held_symbols = draw(st.lists(st.sampled_from(POOL), unique=True, max_size=4))
    positions = {
        s: Position(
            s,
            draw(st.decimals(min_value=D("0.000000001"), max_value=D(500), places=9)),
            D(100),
            draw(st.decimals(min_value=D("0.01"), max_value=D(5000), places=2)),
        )
        for s in held_symbols
    }
    signals = []
    for symbol in draw(st.lists(st.sampled_from(POOL), unique=True, max_size=len(POOL))):
        is_exit = draw(st.booleans() if symbol in positions else st.sampled_from([False, False, False, True]))
        side = OrderSide.SELL if is_exit else draw(st.sampled_from([OrderSide.BUY] * 3 + [OrderSide.SELL]))
        signals.append((symbol, side, is_exit, draw(prices), draw(st.floats(-3, 5))))
    open_sells = draw(st.lists(st.sampled_from(held_symbols), unique=True, max_size=1)) if held_symbols else []
    return {
        "equity": draw(st.decimals(min_value=D(100), max_value=D(2_000_000), places=2)),
        "positions": positions,
        "signals": signals,
        "open_sells": open_sells,
        "fractionable": {s: draw(st.booleans()) for s in POOL},
        "fractional_enabled": draw(st.booleans()),
        "min_order_notional": draw(st.decimals(min_value=D(1), max_value=D(500), places=2)),
    }


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_no_approved_order_is_short_oversold_or_below_the_minimum(world: dict[str, Any]) -> None:
    h = Harness(fractional_enabled=world["fractional_enabled"], min_order_notional=world["min_order_notional"])
    positions: dict[str, Position] = world["positions"]
    open_orders = tuple(
        BrokerOrder(f"s-{s}", f"b-{s}", s, OrderSide.SELL, OrderStatus.ACCEPTED, positions[s].qty, None)
        for s in world["open_sells"]
    )
    assets = {s: Asset(s, tradable=True, fractionable=f) for s, f in world["fractionable"].items()}
    sigs = []
    for symbol, side, is_exit, price, score in world["signals"]:
        sig = signal(symbol, score=score, is_exit=is_exit, side=side)
        sigs.append(dataclasses.replace(sig, price=price))
    equity = str(world["equity"])
    out = h.iterate(
        snapshot(equity, positions=positions, open_orders=open_orders), sigs, sod=equity, peak=equity, assets=assets
    )

    approved = [m for m in out if isinstance(m, OrderApproved)]
    assert len(approved) + len([m for m in out if isinstance(m, OrderDenied)]) == len(sigs)
    sold: set[str] = set()
    for event in approved:
        order, symbol = event.order, event.order.symbol
        whole_only = not (world["fractional_enabled"] and assets[symbol].fractionable)
        amount = order.qty if order.qty is not None else order.notional
        assert amount is not None
        assert amount > 0
        if order.qty is not None and whole_only:
            assert order.qty == order.qty.to_integral_value()
        if order.side is OrderSide.SELL:
            # Never short: a sell only closes a long position the daemon holds, by qty, at most what it holds,
            # once per symbol, and not while another sell for it is open.
            assert event.signal.is_exit
            assert symbol in positions
            assert order.qty is not None
            assert order.notional is None
            assert order.qty <= positions[symbol].qty
            assert symbol not in sold
            assert symbol not in world["open_sells"]
            sold.add(symbol)
        else:
            assert not event.signal.is_exit
            assert event.signal.side is OrderSide.BUY
            assert symbol not in positions
            assert order.est_notional >= world["min_order_notional"]
            if order.notional is not None:
                assert order.notional >= 1
                assert order.notional == order.notional.quantize(D("0.01"))


# ----------------------------------------------------------------------------------------------------------------------
# Protective stops
# ----------------------------------------------------------------------------------------------------------------------

STOP_DAY = date(2017, 7, 5)
AAPL_ENTRY = client_order_id("zscore_mr", "AAPL", OrderSide.BUY, datetime(2017, 6, 30, 4, tzinfo=UTC))


def resting_stop(qty: str, seq: int = 1, symbol: str = "AAPL") -> BrokerOrder:
    return BrokerOrder(
        protective_stop_id(symbol, AAPL_ENTRY, MON, "g", seq),
        f"b-{seq}",
        symbol,
        OrderSide.SELL,
        OrderStatus.ACCEPTED,
        D(qty),
        None,
        order_type=OrderType.STOP,
        time_in_force=TimeInForce.GTC,
        stop_price=D(95),
    )


def stop_placement(qty: str, seq: int = 2) -> StopPlacement:
    return StopPlacement(
        client_order_id=protective_stop_id("AAPL", AAPL_ENTRY, STOP_DAY, "g", seq),
        symbol="AAPL",
        qty=D(qty),
        order_type=OrderType.STOP,
        time_in_force=TimeInForce.GTC,
        stop_price=D(95),
        trail_percent=None,
        reason=StopReason.UNCOVERED,
    )


def test_a_resting_protective_stop_does_not_block_an_exit_but_another_open_sell_does() -> None:
    held = {s: Position(s, D(10), D(100), D(100)) for s in ("AAPL", "MSFT")}
    other_sell = BrokerOrder("o-msft", "b-2", "MSFT", OrderSide.SELL, OrderStatus.ACCEPTED, D(10), None)
    out = Harness().iterate(
        snapshot(positions=held, open_orders=(resting_stop("10"), other_sell)),
        [signal("AAPL", is_exit=True), signal("MSFT", is_exit=True)],
    )
    assert answers(out) == [("AAPL", "approved"), ("MSFT", "order_pending")]
    [approved] = [m for m in out if isinstance(m, OrderApproved)]
    assert approved.order.qty == D(10)  # the whole position: execution cancels the stop before it sells


@pytest.mark.parametrize("reduce_only", [False, True])
def test_stops_are_placed_and_canceled_while_active_or_reducing(reduce_only: bool) -> None:
    h = Harness()
    if reduce_only:
        halt_trading(h.flags, "risk off", reduce_only=True)
    held = {"AAPL": Position("AAPL", D(10), D(100), D(100))}
    plan = StopPlan((StopCancel(resting_stop("4"), StopReason.RESIZED),), (stop_placement("10"),))
    assert h.risk.decide_stops(plan, snapshot(positions=held, open_orders=(resting_stop("4"),)), session=MON) == plan
    assert h.risk.state is (TradingState.REDUCING if reduce_only else TradingState.ACTIVE)


def test_halted_places_and_cancels_no_stop_and_says_so_once() -> None:
    h = Harness()
    denied: list[StopDenied] = []
    h.bus.subscribe(StopDenied, denied.append)
    halt_trading(h.flags, "operator")
    held = {"AAPL": Position("AAPL", D(10), D(100), D(100))}
    plan = StopPlan((StopCancel(resting_stop("4"), StopReason.RESIZED),), (stop_placement("10"),))
    snap = snapshot(positions=held, open_orders=(resting_stop("4"),))
    assert not h.risk.decide_stops(plan, snap, session=MON)
    assert not h.risk.decide_stops(plan, snap, session=MON)  # planned again next iteration: not announced again
    assert [(d.action, d.reason) for d in denied] == [("cancel", "halted"), ("place", "halted")]


def test_no_stop_placement_may_oversell() -> None:
    h = Harness()
    denied: list[StopDenied] = []
    h.bus.subscribe(StopDenied, denied.append)
    held = {"AAPL": Position("AAPL", D(10), D(100), D(100))}
    # A 4-share stop rests and is not canceled by the plan: a 10-share one on top would offer 14 of 10.
    snap = snapshot(positions=held, open_orders=(resting_stop("4"),))
    assert h.risk.decide_stops(StopPlan((), (stop_placement("10"),)), snap, session=MON).placements == ()
    assert [(d.action, d.reason) for d in denied] == [("place", "oversell")]
    # With the 4-share stop canceled first, the same placement fits.
    plan = StopPlan((StopCancel(resting_stop("4"), StopReason.RESIZED),), (stop_placement("10"),))
    assert h.risk.decide_stops(plan, snap, session=MON).placements == plan.placements
