"""The portfolio risk `tradingd status` shows: `analytics/portfolio_risk.py` on the positions the state DB holds.

Imported by `status` only when positions are held (numpy and the bars are not needed otherwise, so an empty status
stays fast). In sim the closes are the bundled bars' (their parsed cache beside the replay's state), up to the last
session the store marked; paper/live `status` reads no market data (it never contacts the broker), so the figures are
undefined there with that reason: `tradingd report` computes them from the bars it fetches.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from analytics.model import PortfolioRisk
from analytics.portfolio_risk import portfolio_risk_at
from config.settings import Settings
from core.bars import load_daily_bars_cached
from core.errors import SetupError
from core.redact import redact
from core.store import StateStore
from core.types import TradingMode
from tradingd.local_state import BARS_CACHE_DIR, state_db_path


def status_portfolio_risk(settings: Settings, store: StateStore, values: Mapping[str, Decimal]) -> dict[str, Any]:
    """`status --json`'s `"portfolio"`: the risk of the held positions (`values`: market value by symbol)."""
    mark = store.latest_equity_mark()
    held = len([v for v in values.values() if v != 0])
    if mark is None:
        return PortfolioRisk(None, None, held, 0, None, "no equity mark yet").as_json()
    if settings.mode is not TradingMode.SIM:
        note = "status reads no market data in paper/live (tradingd report computes it from fetched bars)"
        return PortfolioRisk(None, None, held, 0, mark.session, note).as_json()
    try:
        bars = load_daily_bars_cached(settings.sim_data_file, state_db_path(settings).parent / BARS_CACHE_DIR)
    except (OSError, ValueError, SetupError) as error:  # a malformed file is a SetupError: figures n/a, status goes on
        note = redact(f"SIM_DATA_FILE unreadable: {error}")
        return PortfolioRisk(None, None, held, 0, mark.session, note).as_json()
    floats = {symbol: float(value) for symbol, value in values.items()}
    return portfolio_risk_at(floats, float(mark.last_equity), bars, mark.session).as_json()
