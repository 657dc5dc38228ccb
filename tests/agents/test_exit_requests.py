"""The exit-request agent: pending close requests become exit signals for risk, and are cleared once carried out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from agents.exit_requests import ExitRequestAgent
from agents.risk import RiskAgent, RiskLimits, halt_trading
from agents.sizing import TierConfig, TieredPositionSizer, TierExposureTracker
from core.bus import EventBus
from core.close_requests import ALL, CloseRequests
from core.messages import SignalGenerated
from core.order_ids import FLATTEN_EXIT_TAG, MANUAL_EXIT_TAG
from core.types import Account, Asset, OrderStatus, PortfolioSnapshot, Position, Tier
from tests.fakes.clock import FakeClock
from tests.fakes.flags import MemoryFlagStore

D = Decimal
ASKED = datetime(2017, 8, 2, 14, 30, tzinfo=UTC)
NOW = ASKED + timedelta(minutes=1)


def position(symbol: str, qty: str, price: str = "100") -> Position:
    return Position(symbol, D(qty), D(price), D(price))


def snapshot(*positions: Position) -> PortfolioSnapshot:
    return PortfolioSnapshot(Account(D(10_000), D(5_000), D(5_000)), {p.symbol: p for p in positions})


class Harness:
    def __init__(self) -> None:
        self.bus = EventBus()
        self.flags = MemoryFlagStore()
        self.requests = CloseRequests(self.flags)
        self.statuses: dict[str, OrderStatus] = {}  # the store's orders, by client order id
        self.published: list[SignalGenerated] = []
        self.bus.subscribe(SignalGenerated, self.published.append)
        self.clock = FakeClock(NOW)
        self.agent = ExitRequestAgent(self.bus, self.requests, self.statuses.get, self.clock)

    def ask(self, target: str, tag: str = MANUAL_EXIT_TAG, reason: str = "manual") -> None:
        self.requests.request(target, tag=tag, reason=reason, now=ASKED)

    def place(self, target: str, symbol: str, status: OrderStatus = OrderStatus.ACCEPTED) -> None:
        request = self.requests.get(target)
        assert request is not None
        self.statuses[request.order_id(symbol)] = status


def test_a_manual_request_becomes_one_exit_of_the_owned_position() -> None:
    h = Harness()
    h.ask("AAPL")
    signals = h.agent.signals(snapshot(position("AAPL", "10", "171.20"), position("MSFT", "3")))
    assert h.published == signals
    [exit_] = signals
    assert (exit_.strategy, exit_.symbol, exit_.side.value, exit_.is_exit) == (MANUAL_EXIT_TAG, "AAPL", "sell", True)
    assert exit_.price == D("171.20")
    assert exit_.bar_ts == ASKED  # the request time: a retry after a crash carries the same client order id
    assert exit_.reason == "manual"
    assert exit_.correlation_id.startswith("manual:AAPL:sell:")


def test_a_request_for_all_exits_every_owned_position_once() -> None:
    h = Harness()
    h.ask(ALL, FLATTEN_EXIT_TAG, "flatten: max_drawdown: equity fell")
    h.ask("AAPL")
    signals = h.agent.signals(snapshot(position("AAPL", "10"), position("MSFT", "3"), position("XOM", "0")))
    # AAPL's own request wins; nothing for XOM, of which nothing is owned.
    assert [(s.symbol, s.strategy) for s in signals] == [("AAPL", MANUAL_EXIT_TAG), ("MSFT", FLATTEN_EXIT_TAG)]
    assert signals[1].reason == "flatten: max_drawdown: equity fell"


def test_a_request_is_cleared_once_its_orders_are_placed_or_its_positions_gone() -> None:
    h = Harness()
    h.ask(ALL)
    h.ask("XOM")
    held = snapshot(position("AAPL", "10"), position("MSFT", "3"))
    assert len(h.agent.signals(held)) == 2
    h.place(ALL, "AAPL")
    h.place(ALL, "MSFT", OrderStatus.PENDING_SUBMIT)  # written ahead, its answer unknown: in flight, not placed
    assert h.agent.signals(held) == []
    assert [r.target for r in h.requests.pending()] == [ALL]  # XOM is not held: nothing to do, cleared
    h.place(ALL, "MSFT", OrderStatus.REJECTED)  # placed, then refused at the broker: carried out all the same
    assert h.agent.signals(held) == []
    assert h.requests.pending() == []


def test_no_second_exit_for_a_symbol_another_request_is_selling() -> None:
    h = Harness()
    h.ask("AAPL")
    h.place("AAPL", "AAPL")
    h.ask(ALL, FLATTEN_EXIT_TAG, "flatten: x")
    held = snapshot(position("AAPL", "10"))
    assert h.agent.signals(held) == []
    assert [r.target for r in h.requests.pending()] == [ALL]  # stays until AAPL is sold
    assert h.agent.signals(snapshot()) == []
    assert h.requests.pending() == []


def test_only_the_targets_asked_for() -> None:
    h = Harness()
    h.ask("AAPL")
    h.ask("MSFT")
    held = snapshot(position("AAPL", "10"), position("MSFT", "3"))
    assert [s.symbol for s in h.agent.signals(held, targets=["MSFT"])] == ["MSFT"]
    h.place("MSFT", "MSFT")
    assert [r.target for r in h.agent.settle(held, targets=["MSFT"])] == []
    assert [r.target for r in h.requests.pending()] == ["AAPL"]


def test_risk_approves_the_owned_quantity_under_the_requests_id_and_a_refusal_is_kept_for_status() -> None:
    h = Harness()
    config = TierConfig(allocations={Tier.TIER1: D("0.4"), Tier.TIER2: D("0.3"), Tier.TIER3: D("0.3")}, symbol_tiers={})
    risk = RiskAgent(h.bus, TieredPositionSizer(config), TierExposureTracker(config), RiskLimits(), h.flags, h.clock)
    assets = {"AAPL": Asset("AAPL", tradable=True, fractionable=True)}
    held = snapshot(position("AAPL", "10.5"))
    h.ask("AAPL")

    halt_trading(h.flags, "ops")
    risk.begin_iteration(
        held, session=ASKED.date(), start_of_day_equity=D(10_000), peak_equity=D(10_000), assets=assets
    )
    decisions = risk.decide(h.agent.signals(held))
    h.agent.note_refusals(decisions.denied)
    request = h.requests.get("AAPL")
    assert request is not None
    assert request.refused == "halted: kill switch engaged"

    h.flags.clear_flag("halted")
    risk.begin_iteration(
        held, session=ASKED.date(), start_of_day_equity=D(10_000), peak_equity=D(10_000), assets=assets
    )
    [approved] = risk.decide(h.agent.signals(held)).approved
    assert approved.client_order_id == request.order_id("AAPL")
    assert approved.order.qty == D("10.5")
