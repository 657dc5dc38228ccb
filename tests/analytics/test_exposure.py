"""Positions rebuilt from the fills and valued at each session's close, by tier."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal

import numpy as np
import pytest

from analytics.exposure import exposure
from core.timeconv import ny_instant, ny_midnights
from core.types import BarFrame, Fill, OrderSide, Tier

D = Decimal
SESSIONS = [date(2016, 1, 4), date(2016, 1, 5), date(2016, 1, 6), date(2016, 1, 7)]


def bars() -> BarFrame:
    closes = np.array([[10.0, 20.0], [11.0, np.nan], [12.0, 22.0], [13.0, 23.0]])  # B has no bar on 01-05
    days = np.array(SESSIONS, dtype="datetime64[D]")
    return BarFrame(("A", "B"), ny_midnights(days), closes, closes, closes, closes, np.ones_like(closes))


def fill(n: int, symbol: str, side: OrderSide, qty: str, price: str, day: date) -> Fill:
    return Fill(f"f{n}", f"o{n}", symbol, side, D(qty), D(price), ny_instant(day, time(9, 30)))


def test_positions_valued_at_the_close_by_the_latest_buys_tier() -> None:
    fills = [
        fill(1, "A", OrderSide.BUY, "10", "10", SESSIONS[0]),
        fill(2, "B", OrderSide.BUY, "5", "20", SESSIONS[0]),
        fill(3, "A", OrderSide.BUY, "10", "12", SESSIONS[2]),  # scaling in under another tier
        fill(4, "B", OrderSide.SELL, "5", "22", SESSIONS[2]),
        fill(5, "A", OrderSide.SELL, "20", "13", SESSIONS[3]),
    ]
    tiers = [Tier.TIER1, Tier.TIER3, Tier.TIER2, Tier.TIER3, Tier.TIER2]
    equity = np.array([1000.0, 1010.0, 1020.0, 1030.0])

    result = exposure(SESSIONS, equity, fills, tiers, bars())

    held = [10 * 10 + 5 * 20, 10 * 11 + 5 * 20, 20 * 12, 0]  # B on 01-05: its last close carried forward
    assert result.held_value.tolist() == pytest.approx(held)
    assert result.invested_pct.tolist() == pytest.approx([h / e * 100 for h, e in zip(held, equity, strict=True)])
    assert result.by_tier_pct["TIER1"].tolist() == pytest.approx([10.0, 110 / 1010 * 100, 0.0, 0.0])
    assert result.by_tier_pct["TIER2"].tolist() == pytest.approx([0.0, 0.0, 240 / 1020 * 100, 0.0])
    assert result.by_tier_pct["TIER3"].tolist() == pytest.approx([10.0, 100 / 1010 * 100, 0.0, 0.0])


def test_no_fills_is_no_exposure() -> None:
    result = exposure(SESSIONS, np.ones(4), [], [], bars())
    assert result.invested_pct.tolist() == [0.0] * 4
    assert result.by_tier_pct == {}
