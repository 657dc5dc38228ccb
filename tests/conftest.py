"""Shared fixtures: real bundled bars (loaded once per session), calendars, clocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.bars import BarHistory, load_daily_bars
from core.clock import NyseCalendar

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "sp500_daily_2013_2018.csv.xz"
SMALL_SYMBOLS = ("AAPL", "MSFT", "DHR", "O", "XOM", "JPM", "FTV")


@pytest.fixture(scope="session")
def small_history() -> BarHistory:
    """Seven real symbols over the whole bundled period (DHR and O carry real bad rows, FTV starts in 2016)."""
    return load_daily_bars(DATA_FILE, symbols=SMALL_SYMBOLS)


@pytest.fixture(scope="session")
def calendar() -> NyseCalendar:
    return NyseCalendar()
