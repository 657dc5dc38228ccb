"""A small finished sim replay's state DB, and the real dashboard server over it on a free loopback port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import requests

from config.settings import Settings
from core.redact import clear_secrets, register_settings
from core.types import Tier, TradingMode
from tradingd.app import build_sim, run_app
from tradingd.web.app import SIM_CANDIDATES_NAME, MetricsSource, create_app
from tradingd.web.health import HealthMonitor
from tradingd.web.live_feed import LiveFeed
from tradingd.web.selection import CandidatePredictor
from tradingd.web.server import DashboardServer, bind
from tradingd.web.token import DashboardAccess

# Distinctive fake keys: any response, header or log line holding one of these is a leak.
FAKE_KEY = "PKLEAKCHECKKEY0123456789"
FAKE_SECRET = "SeCrEtLeAkChEcK/abcdefghijklmnopqrstuv"
TOKEN = "test-dashboard-token-0123456789abcdef"
HTTP_TIMEOUT_S = 60  # a ceiling on a loaded machine, never a measured duration
SYMBOLS = ("AAPL", "MSFT", "JPM", "XOM", "JNJ")

CANDIDATES = [
    {"symbol": "AAPL", "score": 0.9, "zscore": -2.5, "rvol": 2.0, "price": 110.0, "reason": "r", "rank": 1,
     "momentum": 5.0, "volatility": 0.02, "dollar_volume": 5e9},
    {"symbol": "MSFT", "score": 0.5, "zscore": -2.1, "rvol": 1.5, "price": 45.0, "reason": "r", "rank": 2,
     "momentum": 1.0, "volatility": 0.03, "dollar_volume": 2e9},
    # A file from before the scan wrote volatility and dollar volume: those percentiles are null, never guessed.
    {"symbol": "JPM", "score": 0.1, "zscore": -2.0, "rvol": 3.0, "price": 60.0, "reason": "r", "rank": 3},
]  # fmt: skip


def sim_settings(data_dir: Path, **extra: object) -> Settings:
    return Settings(
        data_dir=data_dir,
        trading_mode=TradingMode.SIM,
        alpaca_api_key=FAKE_KEY,
        alpaca_secret_key=FAKE_SECRET,
        symbols=SYMBOLS,
        sim_start=date(2015, 1, 2),
        sim_end=date(2015, 4, 30),
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="package")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DATA_DIR of a finished four-month replay of five symbols (fills, round trips, stops, equity marks)."""
    data_dir = tmp_path_factory.mktemp("web-state")
    settings = sim_settings(data_dir)
    app = build_sim(settings)
    try:
        asyncio.run(run_app(app))
    finally:
        app.close()
    as_of = "2015-04-30"
    document = {
        "schema": 1,
        "generated_at": "2015-04-30T20:05:00+00:00",
        "as_of": as_of,
        "symbols": [c["symbol"] for c in CANDIDATES] + ["SPY"],
        "baseline": ["SPY"],
        "candidates": CANDIDATES,
        "stats": {},
    }
    (data_dir / "sim" / SIM_CANDIDATES_NAME).write_text(json.dumps(document))
    return data_dir


@dataclass
class Running:
    url: str
    settings: Settings
    feed: LiveFeed | None
    server: DashboardServer

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return requests.get(self.url + path, timeout=HTTP_TIMEOUT_S, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return requests.post(self.url + path, timeout=HTTP_TIMEOUT_S, **kwargs)  # type: ignore[arg-type]


def start_server(
    settings: Settings,
    access: DashboardAccess,
    *,
    feed: LiveFeed | None = None,
    health: HealthMonitor | None = None,
    predictor: CandidatePredictor | None = None,
    metrics: MetricsSource | None = None,
) -> Running:
    tiers = {"AAPL": Tier.TIER1, "MSFT": Tier.TIER1, "XOM": Tier.TIER2}
    app = create_app(settings, access, tiers=tiers, feed=feed, health=health, predictor=predictor, metrics=metrics)
    server = DashboardServer(app, bind("127.0.0.1", 0))  # port 0: the kernel's free port, read back
    server.start()
    return Running(server.url.rstrip("/"), settings, feed, server)


@pytest.fixture
def running(state_dir: Path) -> Iterator[Running]:
    """The server over the replay's state, reads open (loopback), with a live feed and a health monitor."""
    settings = sim_settings(state_dir)
    register_settings(settings)
    server = start_server(
        settings,
        DashboardAccess(TOKEN, reads_need_token=False, token_file=None),
        feed=LiveFeed(),
        health=HealthMonitor(),
        metrics=lambda: (b"# HELP tradingd_up 1\ntradingd_up 1\n", "text/plain; version=0.0.4"),
    )
    try:
        yield server
    finally:
        server.server.stop()
        clear_secrets()
