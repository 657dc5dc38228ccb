"""`/api/status`'s `portfolio`: the held positions' volatility and diversification ratio, as `tradingd status` shows
them (`tradingd/cli_state.py::portfolio_risk_json`, one code path), computed again only when the positions or the
equity mark moved: the page polls the status every few seconds, and a new figure needs the bars.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from config.settings import Settings
from core.store import StateStore
from tradingd.cli_state import portfolio_risk_json

_Key = tuple[object, ...]


class PortfolioRiskCache:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()  # requests run on the server's worker threads
        self._key: _Key | None = None
        self._value: dict[str, Any] = {}

    def get(self, store: StateStore) -> dict[str, Any]:
        mark = store.latest_equity_mark()
        values: dict[str, Decimal] = {s: p.market_value for s, p in store.load_positions().items()}
        key: _Key = (
            None if mark is None else (mark.session, mark.last_equity),
            tuple(sorted(values.items())),
        )
        with self._lock:
            if key != self._key:
                self._value = portfolio_risk_json(self._settings, store, values)
                self._key = key
            return self._value
