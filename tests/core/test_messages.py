"""Messages never change once built, down to their fields."""

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from core.messages import BarsFetched, IterationStats, TradingStateChanged
from core.reasons import TradingStateReason
from core.types import BarFrame, TradingState

T0 = datetime(2018, 2, 5, 21, tzinfo=UTC)


def test_bar_rejection_counts_are_a_read_only_copy() -> None:
    counts = {"missing_price": 2}
    message = BarsFetched(
        ts_event=T0, ts_init=T0, iteration=1, frame=BarFrame.empty(("AAPL",)), new_rows=0, rejected=counts
    )
    counts["missing_price"] = 99
    assert message.rejected == {"missing_price": 2}
    with pytest.raises(TypeError):
        message.rejected["missing_price"] = 0  # type: ignore[index]


def test_iteration_stats_and_state_changes_are_frozen() -> None:
    stats = IterationStats(
        session=date(2018, 2, 5), bars=1, rejected_bars=0, orders=0, fills=0, equity=Decimal("1.00"), positions=0
    )
    assert stats.as_json()["equity"] == "1.00"
    changed = TradingStateChanged(
        ts_event=T0,
        ts_init=T0,
        previous=TradingState.ACTIVE,
        current=TradingState.HALTED,
        reason=TradingStateReason.HALTED,
    )
    for value, name in ((stats, "bars"), (changed, "current")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, name, None)
