"""Tests for tradingd/configs.py: every component config carries exactly its settings, and secrets stay wrapped."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr

from agents.daily_scan import ScanConfig
from agents.risk import BreakerAction, RiskLimits
from agents.stops import StopConfig, StopMode
from agents.strategies.rvol_breakout import RvolBreakout
from config.settings import Settings
from core.types import Tier
from tradingd.configs import (
    alpaca_connection,
    alpaca_data_options,
    close_stop_loss_pct,
    missing_file_message,
    risk_limits,
    scan_config,
    select_strategy,
    stop_config,
    tier_config,
)

KEY, SECRET = "PKTESTKEY123", "test-secret-value-456"
D = Decimal


def test_scan_config_maps_the_scanner_variables() -> None:
    settings = Settings(min_price=7.0, prerank_keep=50, min_rvol=2.0, scanner_top_n=5, baseline_symbols="SPY")
    assert replace(scan_config(settings), sector_min_market_cap={}) == ScanConfig(
        min_price=7.0,
        min_market_cap=150e6,
        max_price_to_dollar_volume=0.0001,
        max_prescreen_volatility=0.15,
        prerank_keep=50,
        min_rvol=2.0,
        top_n=5,
        baseline=("SPY",),
    )


def test_sector_floors_come_from_settings() -> None:
    settings = Settings(scan_sector_min_market_cap="Energy:5e9,Utilities:2e9")
    assert dict(scan_config(settings).sector_min_market_cap) == {"Energy": 5e9, "Utilities": 2e9}


def test_risk_limits_come_from_settings() -> None:
    limits = risk_limits(Settings(max_daily_loss_pct=D("0.03"), max_open_positions=5))
    assert limits == RiskLimits(D("0.03"), D("0.10"), 5, D("0.10"))
    assert (limits.on_daily_loss, limits.on_max_drawdown) == (BreakerAction.REDUCE, BreakerAction.REDUCE)
    flattening = risk_limits(Settings(on_max_drawdown="Flatten", on_daily_loss="flatten"))
    assert (flattening.on_daily_loss, flattening.on_max_drawdown) == (BreakerAction.FLATTEN, BreakerAction.FLATTEN)


def test_stop_config_comes_from_settings_and_close_mode_builds_none() -> None:
    trailing = Settings(stop_mode="trailing", trailing_stop_pct=D("0.08"), enable_fractional_shares=False)
    assert stop_config(trailing) == StopConfig(
        mode=StopMode.TRAILING,
        stop_loss_pct=D("0.05"),
        trailing_stop_pct=D("0.08"),
        fractional_enabled=False,
        bar_interval=timedelta(days=1),
        intraday_check=False,  # sim: no prices within a day
    )
    paper = Settings(alpaca_api_key=KEY, alpaca_secret_key=SECRET, bar_timeframe="15Min")
    assert stop_config(paper) == StopConfig(
        mode=StopMode.FIXED,
        stop_loss_pct=D("0.05"),
        trailing_stop_pct=D("0.05"),
        fractional_enabled=True,
        bar_interval=timedelta(minutes=15),
        intraday_check=True,
    )
    assert close_stop_loss_pct(paper) is None  # the broker's stops protect: no close-based exit on top
    close = Settings(stop_mode="close", stop_loss_pct=D("0.07"))
    assert stop_config(close) is None
    assert close_stop_loss_pct(close) == 0.07


def test_tier_config_copies_every_knob() -> None:
    s = Settings(
        tier1_allocation=D("0.5"), tier2_allocation=D("0.2"), min_order_notional=D(25), allocation_method="score_vol"
    )
    cfg = tier_config(s, {"SPY": Tier.TIER1})
    assert dict(cfg.allocations) == {Tier.TIER1: D("0.5"), Tier.TIER2: D("0.2"), Tier.TIER3: D("0.30")}
    assert cfg.min_order_notional == D(25)
    assert cfg.allocation_method == "score_vol"
    assert cfg.tier_max_position_pct == D("0.20")
    assert cfg.max_position_pct == D("0.10")
    assert cfg.max_open_positions == 20
    assert cfg.fractional_enabled
    assert cfg.enable_tiered_allocation
    assert cfg.tier_of("SPY") is Tier.TIER1
    assert cfg.tier_of("NVDA") is Tier.TIER3  # an untiered symbol is a single stock


def test_the_strategy_is_the_one_strategy_name_selects_with_its_settings() -> None:
    chosen = select_strategy(Settings(strategy_name="rvol_breakout", breakout_high_days=55))
    assert isinstance(chosen.strategy, RvolBreakout)
    assert chosen.params.high_days == 55


def test_the_alpaca_connection_is_paper_unless_live_and_never_shows_its_keys() -> None:
    keys = {"alpaca_api_key": KEY, "alpaca_secret_key": SECRET}
    paper = alpaca_connection(
        Settings(trading_mode="paper", alpaca_trading_url="http://127.0.0.1:1", http_timeout_seconds=3.0, **keys)
    )
    assert paper.paper
    assert (paper.trading_url, paper.data_url, paper.stream_url) == ("http://127.0.0.1:1", None, None)
    assert (paper.http_timeout_seconds, paper.trading_rate_limit_per_min, paper.data_rate_limit_per_min) == (
        3.0,
        200,
        200,
    )
    assert isinstance(paper.api_key, SecretStr)
    assert paper.api_key.get_secret_value() == KEY
    live = alpaca_connection(Settings(trading_mode="live", live_trading_confirm="yes", **keys))
    assert not live.paper
    for shown in (repr(paper), str(live)):
        assert KEY not in shown
        assert SECRET not in shown


def test_the_data_options_read_the_bar_settings_and_cache_under_data_dir(tmp_path: Path) -> None:
    options = alpaca_data_options(
        Settings(data_dir=tmp_path, bar_timeframe="15Min", alpaca_data_feed="sip", data_chunk_size=50)
    )
    assert (options.timeframe, options.feed, options.chunk_size) == ("15Min", "sip", 50)
    assert options.bar_cache_path == tmp_path / "bars.sqlite"


def test_a_file_the_user_set_is_named_as_set_without_advice_to_set_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    settings = Settings(trading_mode="sim", sim_data_file=path)
    assert missing_file_message(settings, "SIM_DATA_FILE", path) == f"SIM_DATA_FILE={path}: no such file"
    assert missing_file_message(settings, "SIM_DATA_FILE", tmp_path) == f"SIM_DATA_FILE={tmp_path}: not a regular file"


def test_the_default_file_missing_advises_setting_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SIM_UNIVERSE_FILE", raising=False)
    settings = Settings(trading_mode="sim")
    path = tmp_path / "gone.csv"
    message = missing_file_message(settings, "SIM_UNIVERSE_FILE", path)
    assert message == (
        f"SIM_UNIVERSE_FILE: {path} (the default): no such file; set SIM_UNIVERSE_FILE (a wheel install has no data/)"
    )
