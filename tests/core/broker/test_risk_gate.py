"""Risk is the one gate: the decisions the Alpaca adapter used to take are taken by the risk agent, before any broker
call. The real adapter (translating only) and the execution agent run against the fake Alpaca server; what the
server receives is exactly what risk approved, and what risk denied never leaves the process."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agents.execution import ExecutionAgent
from agents.risk import RiskAgent, RiskLimits
from agents.sizing import TierConfig, TieredPositionSizer, TierExposureTracker
from core.broker.alpaca import AlpacaBroker
from core.bus import EventBus
from core.messages import Message, OrderApproved, OrderDenied, OrderRejected, SignalGenerated
from core.order_ids import signal_correlation_id
from core.portfolio import OwnedLedger, PortfolioView
from core.store import StateStore
from core.types import Fill, OrderSide, Tier
from tests.core.broker.conftest import START_DAY, ServerClock
from tests.fakes.alpaca_server import FakeAlpacaServer
from tests.fakes.flags import MemoryFlagStore

SYMBOLS = ("AAPL", "MSFT", "BRK.B", "GOOGL", "XOM")
BAR_TS = datetime(2018, 1, 9, 5, tzinfo=UTC)  # the complete bar the fake serves at the start of START_DAY
ORDERS = "/v2/orders"


@pytest.fixture
def server(fake_alpaca: FakeAlpacaServer) -> FakeAlpacaServer:
    fake_alpaca.set_asset("BRK.B", fractionable=False)
    fake_alpaca.set_asset("GOOGL", fractionable=False)
    return fake_alpaca


class Gate:
    """Risk → execution → the real AlpacaBroker (risk's approvals handed to execution), with the positions the
    daemon's own fills bought."""

    def __init__(
        self, server: FakeAlpacaServer, broker: AlpacaBroker, db: Path, owned: dict[str, str], **sizing: Any
    ) -> None:
        self.server = server
        clock = ServerClock(server)
        self.broker = broker
        self.store = StateStore(db)
        fills = [
            Fill(f"own-{s}", f"own-{s}", s, OrderSide.BUY, Decimal(q), Decimal(100), BAR_TS) for s, q in owned.items()
        ]
        self.portfolio = PortfolioView(self.broker, OwnedLedger(fills))
        self.bus = EventBus()
        config = TierConfig(
            allocations={Tier.TIER1: Decimal("0.4"), Tier.TIER2: Decimal("0.3"), Tier.TIER3: Decimal("0.3")},
            symbol_tiers={},
            **sizing,
        )
        self.risk = RiskAgent(
            self.bus, TieredPositionSizer(config), TierExposureTracker(config), RiskLimits(), MemoryFlagStore(), clock
        )
        self.execution = ExecutionAgent(self.bus, self.broker, self.store, self.portfolio, clock)  # type: ignore[arg-type]
        self.out: list[Message] = []
        for kind in (OrderApproved, OrderDenied, OrderRejected):
            self.bus.subscribe(kind, self.out.append)

    async def run(self, signals: list[SignalGenerated]) -> dict[str, str]:
        """One iteration's decision and submission; returns symbol → 'approved' or the denial reason."""
        snapshot = await self.portfolio.refresh()
        assets = {s: a for s in SYMBOLS if (a := await self.broker.get_asset(s)) is not None}
        equity = snapshot.account.equity
        self.risk.begin_iteration(
            snapshot, session=START_DAY, start_of_day_equity=equity, peak_equity=equity, assets=assets
        )
        decisions = self.risk.decide(signals)
        await self.execution.submit(decisions.approved)
        return {
            m.signal.symbol: "approved" if isinstance(m, OrderApproved) else m.reason
            for m in self.out
            if isinstance(m, OrderApproved | OrderDenied)
        }

    def sent(self) -> list[tuple[str, str, object, object]]:
        """What reached the broker: (symbol, side, qty, notional) of every order POSTed."""
        bodies = [r.body for r in self.server.requests("POST", ORDERS)]
        return [(b["symbol"], b["side"], b.get("qty"), b.get("notional")) for b in bodies]

    def close(self) -> None:
        self.store.close()


def signal(symbol: str, side: OrderSide, *, is_exit: bool, price: str = "100") -> SignalGenerated:
    now = datetime(2018, 1, 10, 5, tzinfo=UTC)
    return SignalGenerated(
        ts_event=now,
        ts_init=now,
        correlation_id=signal_correlation_id("zscore_mr", symbol, side, BAR_TS),
        strategy="zscore_mr",
        symbol=symbol,
        side=side,
        is_exit=is_exit,
        price=Decimal(price),
        score=1.0,
        volatility=0.1,
        bar_ts=BAR_TS,
        reason="test",
    )


MakeBroker = Callable[..., AlpacaBroker]


async def test_shorts_and_sells_beyond_what_the_daemon_owns_never_reach_the_broker(
    server: FakeAlpacaServer, make_broker: MakeBroker, tmp_path: Path
) -> None:
    server.seed_position("AAPL", Decimal(10), Decimal(150))  # 6 of them bought by hand: not the daemon's to sell
    server.seed_position("BRK.B", Decimal("2.5"), Decimal(200))
    gate = Gate(server, make_broker(), tmp_path / "state.db", owned={"AAPL": "4", "BRK.B": "2.5"})
    try:
        answers = await gate.run(
            [
                signal("AAPL", OrderSide.SELL, is_exit=True),
                signal("BRK.B", OrderSide.SELL, is_exit=True),  # not fractionable: the whole shares only
                signal("MSFT", OrderSide.SELL, is_exit=False),  # a short entry
                signal("XOM", OrderSide.SELL, is_exit=True),  # nothing held
            ]
        )
        assert answers == {
            "AAPL": "approved",
            "BRK.B": "approved",
            "MSFT": "short_not_supported",
            "XOM": "no_position",
        }
        assert gate.sent() == [("AAPL", "sell", 4.0, None), ("BRK.B", "sell", 2.0, None)]
        assert not [m for m in gate.out if isinstance(m, OrderRejected)]
    finally:
        gate.close()


async def test_whole_shares_and_the_minimum_notional_are_decided_before_the_broker(
    server: FakeAlpacaServer, make_broker: MakeBroker, tmp_path: Path
) -> None:
    googl, brk = server._price("GOOGL"), server._price("BRK.B")
    # A $100,000 account, positions capped at 1% ($1,000): one GOOGL share costs more, BRK.B fits a few whole shares.
    gate = Gate(
        server,
        make_broker(),
        tmp_path / "state.db",
        owned={},
        max_position_pct=Decimal("0.01"),
        tier_max_position_pct=Decimal(1),
    )
    try:
        answers = await gate.run(
            [
                signal("AAPL", OrderSide.BUY, is_exit=False, price=str(server._price("AAPL"))),
                signal("BRK.B", OrderSide.BUY, is_exit=False, price=str(brk)),
                signal("GOOGL", OrderSide.BUY, is_exit=False, price=str(googl)),
            ]
        )
        assert answers == {"AAPL": "approved", "BRK.B": "approved", "GOOGL": "zero_shares"}
        whole = float((Decimal(1000) / brk).to_integral_value(rounding="ROUND_FLOOR"))
        assert gate.sent() == [("AAPL", "buy", None, 1000.0), ("BRK.B", "buy", whole, None)]
    finally:
        gate.close()


async def test_an_order_below_the_minimum_notional_is_denied_before_the_broker(
    server: FakeAlpacaServer, make_broker: MakeBroker, tmp_path: Path
) -> None:
    # Positions capped at $1,000 while the minimum order is $2,000: nothing can be placed.
    small = Gate(
        server,
        make_broker(),
        tmp_path / "state.db",
        owned={},
        max_position_pct=Decimal("0.01"),
        min_order_notional=Decimal(2000),
    )
    try:
        answers = await small.run([signal("MSFT", OrderSide.BUY, is_exit=False)])
        assert answers == {"MSFT": "below_min_notional"}
        assert small.sent() == []
    finally:
        small.close()
