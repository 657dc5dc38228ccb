import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from agents.signal_validator import SignalValidator
from core.bus import EventBus
from core.clock import NyseCalendar, SimClock
from core.messages import SignalGenerated, SignalRejected, SignalValidated
from core.portfolio import PortfolioView
from core.types import Account, Asset, BrokerOrder, OrderSide, OrderStatus, PortfolioSnapshot, Position, bar_price

NOW = datetime(2017, 6, 5, 20, 0, tzinfo=UTC)  # 16:00 ET
BAR = datetime(2017, 6, 5, 4, 0, tzinfo=UTC)  # that day's daily bar


class _Portfolio(PortfolioView):
    def __init__(self, positions: dict[str, Position], open_orders: tuple[BrokerOrder, ...] = ()) -> None:
        super().__init__(broker=None)  # type: ignore[arg-type]
        self._snapshot = PortfolioSnapshot(
            account=Account(Decimal(10_000), Decimal(10_000), Decimal(10_000)), positions=positions
        )
        for order in open_orders:
            self.note_submitted(order)


def signal(
    symbol: str = "AAPL", *, price: float = 150.0, bar_ts: datetime = BAR, exit_: bool = False
) -> SignalGenerated:
    return SignalGenerated(
        ts_event=NOW,
        ts_init=NOW,
        strategy="zscore_mr",
        symbol=symbol,
        side=OrderSide.SELL if exit_ else OrderSide.BUY,
        is_exit=exit_,
        price=bar_price(price),
        score=2.5,
        volatility=0.01,
        bar_ts=bar_ts,
        reason="test",
    )


ASSETS = {
    "AAPL": Asset("AAPL", tradable=True, fractionable=True),
    "MSFT": Asset("MSFT", tradable=True, fractionable=True),
    "HALT": Asset("HALT", tradable=False, fractionable=True),
}


def _validate(sig: SignalGenerated, portfolio: PortfolioView | None = None) -> tuple[list[str], int]:
    bus = EventBus()
    validator = SignalValidator(
        bus, portfolio or _Portfolio({}), SimClock(NOW), max_age=timedelta(days=1), assets=ASSETS
    )
    reasons: list[str] = []
    passed: list[SignalValidated] = []
    bus.subscribe(SignalRejected, lambda e: reasons.append(e.reason))
    bus.subscribe(SignalValidated, passed.append)
    returned = validator.validate([sig])
    assert returned == [e.signal for e in passed]  # what passes is returned and published alike
    return reasons, len(passed)


def test_fresh_valid_signal_passes() -> None:
    assert _validate(signal()) == ([], 1)


@pytest.mark.parametrize(
    ("sig", "reason"),
    [
        (signal(bar_ts=BAR - timedelta(days=3)), "stale_signal"),
        (signal(bar_ts=NOW + timedelta(hours=1)), "future_bar"),
        (signal(price=math.nan), "invalid_price"),
        (signal(price=0.0), "invalid_price"),
        (signal(price=-3.0), "invalid_price"),
        (signal(price=math.inf), "invalid_price"),
        (signal("ZZZZ"), "unknown_symbol"),
        (signal("HALT"), "not_tradable"),
        (signal("MSFT", exit_=True), "no_position"),
    ],
)
def test_rejections_carry_a_stable_reason(sig: SignalGenerated, reason: str) -> None:
    assert _validate(sig) == ([reason], 0)


def test_duplicate_of_a_held_position_is_rejected() -> None:
    held = _Portfolio({"AAPL": Position("AAPL", Decimal(1), Decimal(140), Decimal(150))})
    assert _validate(signal(), held) == (["duplicate_position"], 0)


def test_duplicate_of_an_open_order_is_rejected() -> None:
    order = BrokerOrder("c1", "b1", "AAPL", OrderSide.BUY, OrderStatus.NEW, None, Decimal(100))
    assert _validate(signal(), _Portfolio({}, (order,))) == (["duplicate_open_order"], 0)


def test_second_identical_signal_in_the_same_bar_is_rejected() -> None:
    bus = EventBus()
    validator = SignalValidator(bus, _Portfolio({}), SimClock(NOW), max_age=timedelta(days=1), assets=ASSETS)
    reasons: list[str] = []
    bus.subscribe(SignalRejected, lambda e: reasons.append(e.reason))
    first, msft = signal(), signal("MSFT")
    assert validator.validate([first, signal(), msft]) == [first, msft]  # in order, the duplicate left out
    assert validator.validate([signal()]) == []  # the next call of the same bar still knows it
    assert reasons == ["duplicate_signal", "duplicate_signal"]


def test_events_follow_the_order_of_the_signals() -> None:
    bus = EventBus()
    validator = SignalValidator(bus, _Portfolio({}), SimClock(NOW), max_age=timedelta(days=1), assets=ASSETS)
    seen: list[tuple[str, str]] = []
    bus.subscribe(SignalValidated, lambda e: seen.append((e.signal.symbol, "validated")))
    bus.subscribe(SignalRejected, lambda e: seen.append((e.signal.symbol, e.reason)))
    validator.validate([signal("HALT"), signal("AAPL"), signal("NOPE"), signal("MSFT")])
    assert seen == [("HALT", "not_tradable"), ("AAPL", "validated"), ("NOPE", "unknown_symbol"), ("MSFT", "validated")]


def _daily_reasons(now: datetime, bar_day: datetime) -> list[str]:
    bus = EventBus()
    validator = SignalValidator(
        bus, _Portfolio({}), SimClock(now), max_age=timedelta(days=1), assets=ASSETS, calendar=NyseCalendar()
    )
    reasons: list[str] = []
    bus.subscribe(SignalRejected, lambda e: reasons.append(e.reason))
    validator.validate([signal(bar_ts=bar_day)])
    return reasons


def test_daily_freshness_follows_the_exchange_calendar() -> None:
    friday_bar = datetime(2017, 6, 2, 4, tzinfo=UTC)
    thursday_bar = datetime(2017, 6, 1, 4, tzinfo=UTC)
    monday_morning = datetime(2017, 6, 5, 13, tzinfo=UTC)  # 9:00 ET, before the open
    friday_close = datetime(2017, 6, 2, 20, tzinfo=UTC)
    assert _daily_reasons(monday_morning, friday_bar) == []  # the last closed session is Friday's
    assert _daily_reasons(friday_close, friday_bar) == []
    assert _daily_reasons(friday_close, thursday_bar) == ["stale_signal"]  # Friday has closed: Thursday is old
    assert _daily_reasons(monday_morning, thursday_bar) == ["stale_signal"]
    after_july_4th = datetime(2017, 7, 5, 13, tzinfo=UTC)
    assert _daily_reasons(after_july_4th, datetime(2017, 7, 3, 4, tzinfo=UTC)) == []  # across the holiday
