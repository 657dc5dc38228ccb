"""Fixtures of the daily-scan tests: the small real history as a replay source and its volume cache as of 2018-02-06."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from core.broker.replay import ReplayMarketData
from core.clock import NyseCalendar, SimClock
from core.types import BarFrame
from core.volume_cache import VolumeCache, refresh_volume_cache

AS_OF = date(2018, 2, 7)
THROUGH = date(2018, 2, 6)
SCANNABLE = ("AAPL", "MSFT", "DHR", "XOM", "JPM", "FTV")  # the small history minus "O" (single letter)


@pytest.fixture
def market(small_history: BarFrame, calendar: NyseCalendar) -> ReplayMarketData:
    return ReplayMarketData(small_history, SimClock(calendar.scan_time(AS_OF)))


@pytest.fixture
async def cache(tmp_path: Path, market: ReplayMarketData, calendar: NyseCalendar) -> VolumeCache:
    volume_cache = VolumeCache(tmp_path / "volume_cache.db")
    await refresh_volume_cache(
        volume_cache, market, calendar, SCANNABLE, through=THROUGH, now=calendar.scan_time(AS_OF)
    )
    return volume_cache
