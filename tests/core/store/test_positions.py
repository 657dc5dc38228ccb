"""Positions: the last ones seen, replaced as a whole."""

from __future__ import annotations

from decimal import Decimal

from core.store import StateStore
from core.types import Position


def test_save_positions_replaces_the_table(store: StateStore) -> None:
    aapl = Position("AAPL", Decimal("8.851540744"), Decimal("159.54"), Decimal("156.49"))
    msft = Position("MSFT", Decimal("3"), Decimal("88.00"), Decimal("88.52"))
    store.save_positions({"AAPL": aapl, "MSFT": msft})
    assert store.load_positions() == {"AAPL": aapl, "MSFT": msft}

    store.save_positions({"MSFT": msft})
    assert store.load_positions() == {"MSFT": msft}

    store.save_positions({})
    assert store.load_positions() == {}
