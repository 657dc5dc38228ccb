"""What each component is built with, read from `Settings`: the one place the settings become small config values.

Agents and adapters take their own frozen configs (`ScanConfig`, `RiskLimits`, `TierConfig`, `StopConfig`, the
strategy's parameters, `AlpacaConnection`, `AlpacaDataOptions`), never the whole `Settings`: so neither `agents` nor
`core` imports the config package (docs/ARCHITECTURE.md §Layers and packages), and each config says exactly what its
component reads. The wiring (`tradingd/app.py`), the scan runtime and the CLI build them here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.risk import BreakerAction, RiskLimits
from agents.sizing import TierConfig
from config.settings import BAR_INTERVALS, Settings
from core.types import Tier, TradingMode

# Imported by the functions that build them: `tradingd status` needs `tier_config` only, and these bring numpy, the
# strategies, the stops and (for `ScanConfig`) pandas (docs/ARCHITECTURE.md §Performance, start-up).
if TYPE_CHECKING:
    from agents.daily_scan import ScanConfig
    from agents.stops import StopConfig
    from agents.strategies.registry import SelectedStrategy
    from core.broker.alpaca_options import AlpacaConnection, AlpacaDataOptions

BAR_CACHE_FILE = "bars.sqlite"  # under DATA_DIR, shared by paper and live


def scan_config(settings: Settings) -> ScanConfig:
    """The daily scan's filters and ranking knobs."""
    from agents.daily_scan import ScanConfig  # noqa: PLC0415

    return ScanConfig(
        min_price=settings.min_price,
        min_dollar_volume=settings.min_dollar_volume,
        min_market_cap=settings.min_market_cap,
        sector_min_market_cap=dict(settings.scan_sector_min_market_cap),
        max_price_to_dollar_volume=settings.max_price_to_dollar_volume,
        max_prescreen_volatility=settings.max_prescreen_volatility,
        prerank_keep=settings.prerank_keep,
        min_rvol=settings.min_rvol,
        top_n=settings.scanner_top_n,
        window=settings.zscore_window,
        baseline=tuple(settings.baseline_symbols),
    )


def risk_limits(settings: Settings) -> RiskLimits:
    """The risk engine's breakers (and what they do when they trip) and caps."""
    return RiskLimits(
        max_daily_loss_pct=settings.max_daily_loss_pct,
        max_drawdown_pct=settings.max_drawdown_pct,
        max_open_positions=settings.max_open_positions,
        max_position_pct=settings.max_position_pct,
        on_daily_loss=BreakerAction(settings.on_daily_loss),
        on_max_drawdown=BreakerAction(settings.on_max_drawdown),
    )


def stop_config(settings: Settings) -> StopConfig | None:
    """The protective stops' settings (STOP_MODE, STOP_LOSS_PCT, TRAILING_STOP_PCT); None with STOP_MODE=close,
    which places no stops. The intraday price check runs in paper/live only: sim has no prices within a day."""
    from agents.stops import StopConfig, StopMode  # noqa: PLC0415

    mode = StopMode(settings.stop_mode)
    if mode is StopMode.CLOSE:
        return None
    return StopConfig(
        mode=mode,
        stop_loss_pct=settings.stop_loss_pct,
        trailing_stop_pct=settings.trailing_stop_pct,
        fractional_enabled=settings.enable_fractional_shares,
        bar_interval=BAR_INTERVALS[settings.bar_timeframe],
        intraday_check=settings.mode is not TradingMode.SIM,
    )


def close_stop_loss_pct(settings: Settings) -> float | None:
    """The scanner's close-based stop-loss exit: STOP_MODE=close only (the other modes' stops sit at the broker)."""
    from agents.stops import StopMode  # noqa: PLC0415

    return float(settings.stop_loss_pct) if StopMode(settings.stop_mode) is StopMode.CLOSE else None


def tier_config(settings: Settings, tiers: Mapping[str, Tier]) -> TierConfig:
    """The sizer's tiers and caps, for the symbols in `tiers` (any other symbol is TIER3)."""
    return TierConfig(
        allocations=settings.tier_allocations,
        symbol_tiers=tiers,
        tier_max_position_pct=settings.tier_max_position_pct,
        max_position_pct=settings.max_position_pct,
        min_order_notional=settings.min_order_notional,
        fractional_enabled=settings.enable_fractional_shares,
        allocation_method=settings.allocation_method,
        enable_tiered_allocation=settings.enable_tiered_allocation,
        max_open_positions=settings.max_open_positions,
    )


def select_strategy(settings: Settings) -> SelectedStrategy:
    """The strategy STRATEGY_NAME names, its parameters from their settings and STRATEGY_PARAMS (or a StrategyError)."""
    from agents.strategies.registry import select  # noqa: PLC0415

    def setting(variable: str) -> Any:
        name = variable.lower()
        if name not in Settings.model_fields:
            raise KeyError(variable)
        return getattr(settings, name)

    return select(settings.strategy_name, settings.strategy_params, setting)


def alpaca_connection(settings: Settings) -> AlpacaConnection:
    """The Alpaca account the settings name: paper unless TRADING_MODE=live. The keys stay `SecretStr`."""
    from core.broker.alpaca_options import AlpacaConnection  # noqa: PLC0415

    return AlpacaConnection(
        api_key=settings.alpaca_api_key,
        secret_key=settings.alpaca_secret_key,
        paper=settings.mode is not TradingMode.LIVE,
        trading_url=settings.alpaca_trading_url,
        data_url=settings.alpaca_data_url,
        stream_url=settings.alpaca_stream_url,
        http_timeout_seconds=settings.http_timeout_seconds,
        trading_rate_limit_per_min=settings.trading_rate_limit_per_min,
        data_rate_limit_per_min=settings.data_rate_limit_per_min,
    )


def alpaca_data_options(settings: Settings) -> AlpacaDataOptions:
    """BAR_TIMEFRAME, ALPACA_DATA_FEED, DATA_CHUNK_SIZE and the bar cache under DATA_DIR."""
    from core.broker.alpaca_options import AlpacaDataOptions  # noqa: PLC0415

    return AlpacaDataOptions(
        timeframe=settings.bar_timeframe,
        feed=settings.alpaca_data_feed,
        chunk_size=settings.data_chunk_size,
        bar_cache_path=settings.data_dir / BAR_CACHE_FILE,
    )


def missing_file_message(settings: Settings, name: str, path: Path) -> str:
    """Why a sim data file is unusable, worded by who chose it: advice to set the variable only if the user did not."""
    reason = "not a regular file" if path.exists() else "no such file"
    if name.lower() in settings.model_fields_set:
        return f"{name}={path}: {reason}"
    return f"{name}: {path} (the default): {reason}; set {name} (a wheel install has no data/)"
