"""High-water marks: a trailing stop's highest price since the entry outlives the process, exactly."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from core.store import HighWaterMark, StateStore
from tests.core.store.records import T0


def test_a_mark_is_replaced_kept_across_a_reopen_and_deleted(store: StateStore, db_path: Path) -> None:
    store.save_high_water(HighWaterMark("AAPL", "td-entry-1", Decimal("101.50"), T0))
    store.save_high_water(HighWaterMark("AAPL", "td-entry-1", Decimal("103.2500"), T0 + timedelta(hours=1)))
    store.save_high_water(HighWaterMark("MSFT", "td-entry-2", Decimal("90"), T0))
    store.close()

    with StateStore(db_path) as reopened:
        marks = reopened.high_water_marks()
        assert marks["AAPL"] == HighWaterMark("AAPL", "td-entry-1", Decimal("103.2500"), T0 + timedelta(hours=1))
        assert str(marks["AAPL"].price) == "103.2500"  # exact, representation included
        reopened.delete_high_water(["AAPL", "NVDA"])
        assert list(reopened.high_water_marks()) == ["MSFT"]
