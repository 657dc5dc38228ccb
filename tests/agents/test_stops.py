from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from agents.stops import StopAgent, StopConfig, StopMode
from core.broker.base import Snapshot
from core.bus import EventBus
from core.messages import SignalGenerated
from core.order_ids import STOP_EXIT_TAG, client_order_id, protective_stop_id
from core.portfolio import OwnedLedger
from core.store import StateStore
from core.types import Asset, BarFrame, Fill, OrderSide, OrderType, Position
from tests.fakes.clock import FakeClock

D = Decimal
DAY = timedelta(days=1)
ENTRY_AT = datetime(2017, 8, 1, 13, 30, tzinfo=UTC)  # the open of Tuesday 2017-08-01
ENTRY = client_order_id("zscore_mr", "AAPL", OrderSide.BUY, datetime(2017, 7, 31, 4, tzinfo=UTC))


class Snapshots:
    """MarketData's snapshot half: the latest trade of each symbol, as the test sets it."""

    def __init__(self) -> None:
        self.prices: dict[str, float] = {}
        self.calls = 0

    async def get_snapshots(self, symbols: Sequence[str]) -> dict[str, Snapshot]:
        self.calls += 1
        at = datetime(2017, 8, 2, 15, tzinfo=UTC)
        return {s: Snapshot(s, self.prices[s], self.prices[s], 1000.0, at) for s in symbols if s in self.prices}


def config(mode: StopMode = StopMode.FIXED, *, intraday: bool = False) -> StopConfig:
    return StopConfig(
        mode=mode,
        stop_loss_pct=D("0.05"),
        trailing_stop_pct=D("0.10"),
        fractional_enabled=True,
        bar_interval=DAY,
        intraday_check=intraday,
    )


def entry_fill(coid: str = ENTRY, qty: str = "10.5", price: str = "100", at: datetime = ENTRY_AT) -> Fill:
    return Fill(f"x-{coid}", coid, "AAPL", OrderSide.BUY, D(qty), D(price), at)


def daily_frame(highs: list[float], first: date = date(2017, 7, 28)) -> BarFrame:
    """Daily bars of AAPL stamped like Alpaca's (04:00 UTC in summer), one per calendar day from `first`."""
    n = len(highs)
    stamps = np.array(
        [np.datetime64(datetime(first.year, first.month, first.day, 4)) + np.timedelta64(i, "D") for i in range(n)]
    )
    high = np.array(highs, dtype=float).reshape(n, 1)
    return BarFrame(("AAPL",), stamps.astype("datetime64[ns]"), high, high, high, high, np.ones((n, 1)))


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    with StateStore(tmp_path / "state.db") as s:
        yield s


def agent(
    store: StateStore, ledger: OwnedLedger, cfg: StopConfig, snapshots: Snapshots | None = None
) -> tuple[StopAgent, list[SignalGenerated]]:
    bus = EventBus()
    published: list[SignalGenerated] = []
    bus.subscribe(SignalGenerated, published.append)
    stops = StopAgent(
        bus,
        FakeClock(datetime(2017, 8, 2, 15, tzinfo=UTC)),
        cfg,
        marks=store,
        ledger=ledger,
        is_used=lambda coid: store.get_order(coid) is not None,
        market_data=snapshots,  # type: ignore[arg-type]
    )
    return stops, published


def position(qty: str = "10.5", avg: str = "100") -> Position:
    return Position("AAPL", D(qty), D(avg), D(avg))


def test_the_fixed_level_is_below_the_average_entry_on_the_tick(store: StateStore) -> None:
    stops, _ = agent(store, OwnedLedger([entry_fill()]), config())
    assert stops.level(position(avg="100")) == D("95.00")
    assert stops.level(position(avg="33.3333")) == D("31.67")  # 31.666635, rounded up: never below the level
    assert stops.level(position(avg="0.9")) == D("0.8550")  # $0.0001 below $1
    assert stops.level(position(avg="0")) == 0  # nothing to protect at no cost


def test_the_trailing_mark_rises_with_the_highs_of_bars_after_the_entry_only(store: StateStore) -> None:
    stops, _ = agent(store, OwnedLedger([entry_fill()]), config(StopMode.TRAILING))
    held = {"AAPL": position()}
    assert stops.level(held["AAPL"]) == D("90.00")  # starts at the entry: 100 × 0.9
    # Bars of 07-27 .. 08-01: the highs up to 07-31 (130 on 07-30) came before the entry (08-01 open) and do not count.
    stops.observe_bars(daily_frame([120, 125, 125, 130, 110, 112], first=date(2017, 7, 27)), held)
    assert stops.high_water("AAPL") == D(112)
    assert stops.level(held["AAPL"]) == D("100.80")


def test_the_trailing_mark_survives_a_restart_and_a_new_position_starts_afresh(store: StateStore) -> None:
    ledger = OwnedLedger([entry_fill()])
    stops, _ = agent(store, ledger, config(StopMode.TRAILING))
    stops.observe_bars(daily_frame([100, 111, 108], first=date(2017, 8, 1)), {"AAPL": position()})
    restarted, _ = agent(store, ledger, config(StopMode.TRAILING))
    assert restarted.high_water("AAPL") == D(111)

    # Sold, then bought again: another opening entry, another mark.
    again = client_order_id("zscore_mr", "AAPL", OrderSide.BUY, datetime(2017, 8, 9, 4, tzinfo=UTC))
    ledger.apply(Fill("x-sell", "td-sell", "AAPL", OrderSide.SELL, D("10.5"), D(105), ENTRY_AT + 3 * DAY))
    ledger.apply(entry_fill(again, qty="4", price="90", at=ENTRY_AT + 9 * DAY))
    assert restarted.level(position(qty="4", avg="90")) == D("81.00")
    assert store.high_water_marks()["AAPL"].opened_by == again


def test_the_plan_names_stops_after_the_latest_entry_and_forgets_the_marks_of_positions_gone(
    store: StateStore,
) -> None:
    added = client_order_id("zscore_mr", "AAPL", OrderSide.BUY, datetime(2017, 8, 2, 4, tzinfo=UTC))
    ledger = OwnedLedger([entry_fill(), entry_fill(added, qty="2", price="103", at=ENTRY_AT + DAY)])
    stops, _ = agent(store, ledger, config(StopMode.TRAILING))
    assets = {"AAPL": Asset("AAPL", tradable=True, fractionable=True)}
    plan = stops.plan({"AAPL": position("12.5")}, [], assets, session=date(2017, 8, 3))
    gtc, day = plan.placements
    assert gtc.client_order_id == protective_stop_id("AAPL", added, date(2017, 8, 3), "g", 1)
    assert (gtc.order_type, gtc.trail_percent, gtc.qty) == (OrderType.TRAILING_STOP, D("10.00"), D(12))
    assert (day.order_type, day.qty, day.stop_price) == (OrderType.STOP, D("0.5"), D("90.00"))
    assert "AAPL" in store.high_water_marks()

    assert not stops.plan({}, [], assets, session=date(2017, 8, 4))
    assert store.high_water_marks() == {}


def test_an_asset_not_looked_up_yet_gets_whole_share_stops_only(store: StateStore) -> None:
    stops, _ = agent(store, OwnedLedger([entry_fill()]), config())
    [gtc] = stops.plan({"AAPL": position("10.5")}, [], {}, session=date(2017, 8, 3)).placements
    assert gtc.qty == D(10)


async def test_the_intraday_check_exits_at_or_below_the_level_in_one_snapshot_request(store: StateStore) -> None:
    snapshots = Snapshots()
    stops, published = agent(store, OwnedLedger([entry_fill()]), config(intraday=True), snapshots)
    held = {"AAPL": position(), "MSFT": Position("MSFT", D(3), D(50), D(50))}
    snapshots.prices = {"AAPL": 96.0, "MSFT": 47.51}
    assert await stops.intraday_exits(held) == []
    snapshots.prices = {"AAPL": 94.99, "MSFT": 47.6}
    [signal] = await stops.intraday_exits(held)
    assert (signal.strategy, signal.symbol, signal.side, signal.is_exit) == (
        STOP_EXIT_TAG,
        "AAPL",
        OrderSide.SELL,
        True,
    )
    assert signal.price == D("94.99")
    assert "94.99" in signal.reason
    assert "95.00" in signal.reason
    assert published[-1] is signal
    snapshots.prices = {"AAPL": 96.0, "MSFT": 47.5}  # exactly at the level counts
    assert [s.symbol for s in await stops.intraday_exits(held)] == ["MSFT"]
    assert snapshots.calls == 3  # one batched request per check, whatever the number of held symbols


async def test_the_intraday_check_raises_the_trailing_mark_with_the_prices_it_sees(store: StateStore) -> None:
    snapshots = Snapshots()
    stops, _ = agent(store, OwnedLedger([entry_fill()]), config(StopMode.TRAILING, intraday=True), snapshots)
    held = {"AAPL": position()}
    snapshots.prices = {"AAPL": 120.0}
    assert await stops.intraday_exits(held) == []
    assert stops.level(held["AAPL"]) == D("108.00")
    snapshots.prices = {"AAPL": 107.99}
    assert [s.symbol for s in await stops.intraday_exits(held)] == ["AAPL"]


async def test_without_the_intraday_check_no_snapshot_is_asked_for(store: StateStore) -> None:
    snapshots = Snapshots()
    stops, _ = agent(store, OwnedLedger([entry_fill()]), config(), snapshots)
    snapshots.prices = {"AAPL": 1.0}
    assert await stops.intraday_exits({"AAPL": position()}) == []
    assert snapshots.calls == 0


def test_close_mode_builds_no_stop_agent() -> None:
    with pytest.raises(ValueError, match="close"):
        config(StopMode.CLOSE)
