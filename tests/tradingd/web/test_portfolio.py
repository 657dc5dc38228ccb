"""`/api/status`'s portfolio risk: `tradingd status`'s figures, computed again only when the positions or the mark
move."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from core.store import StateStore
from tradingd import cli_state
from tradingd.app import build_sim, load_assets
from tradingd.web import portfolio
from tradingd.web.portfolio import PortfolioRiskCache


def test_the_dashboards_portfolio_risk_is_the_status_one_and_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path, symbols=("AAPL", "MSFT", "JPM", "XOM", "JNJ"), log_level="ERROR")
    built = build_sim(settings, start=date(2016, 1, 4), end=date(2016, 6, 30))

    async def run() -> None:
        await load_assets(built)
        await built.orchestrator.run()

    try:
        asyncio.run(run())
    finally:
        built.close()
    calls: list[int] = []

    def counted(*args: Any) -> dict[str, Any]:
        calls.append(1)
        return cli_state.portfolio_risk_json(*args)

    monkeypatch.setattr(portfolio, "portfolio_risk_json", counted)
    cache = PortfolioRiskCache(settings)
    with StateStore(tmp_path / "sim" / "state.db", read_only=True) as store:
        values = {s: p.market_value for s, p in store.load_positions().items()}
        first = cache.get(store)
        again = cache.get(store)
        expected = cli_state.portfolio_risk_json(settings, store, values)
    assert values, "the window should end with positions held"
    assert first == again == expected
    assert first["volatility_pct"] > 0
    assert first["diversification_ratio"] >= 1
    assert calls == [1]  # the second poll of the same state is answered from the cache
