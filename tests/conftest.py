"""Shared fixtures: real bundled bars (loaded once per session), calendars, clocks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from hypothesis import HealthCheck, settings

from core.bars import load_daily_bars
from core.clock import NyseCalendar
from core.logging import close_logging
from core.types import BarFrame

# Hypothesis' per-example deadline and its "too slow" health check are wall-clock assertions: a loaded machine
# fails them for no fault of the code. Tests never depend on the machine's speed, so both are off everywhere.
settings.register_profile("tradingd", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("tradingd")

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "sp500_daily_2013_2018.csv.xz"
SMALL_SYMBOLS = ("AAPL", "MSFT", "DHR", "O", "XOM", "JPM", "FTV")


@pytest.fixture(scope="session")
def small_history() -> BarFrame:
    """Seven real symbols over the whole bundled period (DHR and O carry real bad rows, FTV starts in 2016)."""
    return load_daily_bars(DATA_FILE, symbols=SMALL_SYMBOLS)


@pytest.fixture(scope="session")
def calendar() -> NyseCalendar:
    return NyseCalendar()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A `tradingd` command's environment of its own: in `tmp_path`, state under it, none of the caller's choices."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    monkeypatch.setenv("LOG_FORMAT", "json")
    for name in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "TRADING_MODE", "SIM_START", "SIM_END", "BAR_TIMEFRAME",
                 "STRATEGY_NAME", "STRATEGY_PARAMS", "RECOVERY_AUTO_RESUME", "DASHBOARD_ENABLED", "DASHBOARD_HOST",
                 "DASHBOARD_PORT", "DASHBOARD_TOKEN"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Logging is process-wide: a command that configured LOG_LEVEL=ERROR must not silence the next test's logs."""
    yield
    close_logging()
    structlog.reset_defaults()
