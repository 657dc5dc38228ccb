"""Everything a scan needs, chosen by mode: market data, clock, universe, cache path and the session to scan.

sim        → `ReplayMarketData` over the bundled bars with a `SimClock` at the scan time (16:05 ET) of the session
             scanned: the last bundled session unless `--as-of` says otherwise; universe = SCAN_UNIVERSE or the
             bundled constituents file.
paper/live → `AlpacaMarketData` with the wall clock; universe = SCAN_UNIVERSE, else every active tradable US equity
             the adapter lists (`AssetDirectory`).
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from agents.daily_scan import DailyScanner, static_screen
from agents.strategies.registry import SelectedStrategy, StrategyError
from config.settings import Settings
from core.bars import load_daily_bars
from core.broker.base import MarketData
from core.clock import Clock, LiveClock, NyseCalendar, SimClock
from core.errors import SetupError
from core.timeconv import ns_to_datetime
from core.types import BarFrame, TradingMode
from core.universe import (
    AssetDirectory,
    DirectoryUniverse,
    FileUniverse,
    Universe,
    UniverseError,
    UniverseSource,
    read_universe_file,
)
from core.volume_cache import AVERAGE_SESSIONS, RefreshStats, VolumeCache, cache_target, refresh_volume_cache
from tradingd.configs import alpaca_connection, alpaca_data_options, missing_file_message, scan_config, select_strategy

# In paper/live the market-data check asks for the baseline (SPY, QQQ) and these large caps.
LIVE_MAJOR_SYMBOLS = ("AAPL", "MSFT")
SIM_MAJOR_COUNT = 5


class ScanSetupError(Exception):
    """The scan cannot be set up (bad --as-of, missing data file, no universe): exit code 2."""


@dataclass(frozen=True, slots=True)
class ScanRuntime:
    settings: Settings
    calendar: NyseCalendar
    clock: Clock
    market_data: MarketData
    as_of: date
    universe: UniverseSource
    cache_path: Path
    major_symbols: tuple[str, ...]
    strategy: SelectedStrategy  # its entry score ranks the candidates

    @property
    def cache_as_of(self) -> date:
        """The session the volume cache must be through for this scan."""
        return cache_target(self.calendar, self.as_of)

    def open_cache(self) -> VolumeCache:
        return VolumeCache(self.cache_path)

    def scanner(self, cache: VolumeCache) -> DailyScanner:
        return DailyScanner(self.market_data, cache, self.calendar, scan_config(self.settings), strategy=self.strategy)

    async def refresh_cache(
        self,
        cache: VolumeCache,
        universe: Universe,
        *,
        stale_only: bool,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> RefreshStats:
        """Bring the averages of the scannable symbols up to `cache_as_of`: batched bars through the mode's adapter
        (sim: the bundled bars), only the missing or out-of-date entries when `stale_only`."""
        config = scan_config(self.settings)
        return await refresh_volume_cache(
            cache,
            self.market_data,
            self.calendar,
            static_screen(universe, config),
            through=self.cache_as_of,
            now=self.clock.now(),
            stale_only=stale_only,
            on_progress=on_progress,
        )


def volume_cache_path(settings: Settings) -> Path:
    """One cache per mode: bundled 2018 volumes must never meet live ones."""
    return settings.data_dir / f"volume_cache.{settings.mode.value}.db"


def default_as_of(calendar: NyseCalendar, now: datetime) -> date:
    """The session a scan started at `now` describes: today once it has opened, else the last completed one."""
    today = calendar.session_date(now)
    if calendar.is_trading_day(today) and now >= calendar.session_open(today):
        return today
    return calendar.last_completed_session(now)


def open_runtime(settings: Settings, as_of: date | None = None) -> ScanRuntime:
    calendar = NyseCalendar()
    try:
        strategy = select_strategy(settings)
    except StrategyError as error:
        raise ScanSetupError(str(error)) from None
    if settings.mode is TradingMode.SIM:
        return _sim_runtime(settings, calendar, as_of, strategy)
    if as_of is not None:
        raise ScanSetupError("--as-of is only for sim mode: paper/live scan the latest session")
    return _live_runtime(settings, calendar, strategy)


@functools.lru_cache(maxsize=1)
def bundled_history(path: Path) -> BarFrame:
    # Decompressing five years of bars takes a second or two; a process that scans and validates reads them once.
    try:
        return load_daily_bars(path)
    except SetupError as error:  # the scan commands report ScanSetupError (exit 2) like their other set-up faults
        raise ScanSetupError(str(error)) from None


def check_scan_universe(settings: Settings, available: Collection[str] | None) -> None:
    """The scan's universe file names at least one symbol the scan can use, or a ScanSetupError naming its variable.

    `available`: the symbols of the bundled bars in sim (usable = in the data); None in paper/live, where the broker
    cannot be asked at settings time, so usable = looks like a symbol and passes the static screen. Without this, a
    universe of typos made the daemon fall back silently every day and `scan` blame the volume history.
    Paper/live without SCAN_UNIVERSE scan the broker's own list: nothing to check here.
    """
    if settings.scan_universe is not None:
        name, path = "SCAN_UNIVERSE", settings.scan_universe
    elif settings.mode is TradingMode.SIM:
        name, path = "SIM_UNIVERSE_FILE", settings.sim_universe_file
    else:
        return
    try:
        universe = read_universe_file(path)
    except UniverseError as error:
        raise ScanSetupError(f"{name}: {error}") from None
    symbols = universe.symbols
    known = set(available) if available is not None else None
    count = f"{len(symbols)} symbol{'s' if len(symbols) != 1 else ''}"
    if known is not None and not known.intersection(symbols):
        raise ScanSetupError(f"{name}: {path}: none of its {count} is in the bundled data")
    config = scan_config(settings)
    if not any(re.fullmatch(config.symbol_pattern, symbol) for symbol in symbols):
        raise ScanSetupError(
            f"{name}: {path}: none of its {count} is a symbol the scan takes ({config.symbol_pattern});"
            " is it a universe file?"
        )
    screened = static_screen(universe, config)
    if known is not None:
        screened = [symbol for symbol in screened if symbol in known]
    if not screened:
        raise ScanSetupError(
            f"{name}: {path}: none of its {count} passes MIN_MARKET_CAP / SCAN_SECTOR_MIN_MARKET_CAP"
            + (" among those in the bundled data" if known is not None else "")
        )


def _sim_runtime(
    settings: Settings, calendar: NyseCalendar, as_of: date | None, strategy: SelectedStrategy
) -> ScanRuntime:
    from core.bars import largest_by_market_cap, load_universe  # noqa: PLC0415 - sim only
    from core.broker.replay import ReplayMarketData  # noqa: PLC0415 - sim only

    if not settings.sim_data_file.is_file():
        raise ScanSetupError(missing_file_message(settings, "SIM_DATA_FILE", settings.sim_data_file))
    history = bundled_history(settings.sim_data_file)
    sessions = sorted({calendar.session_date(ns_to_datetime(int(ns))) for ns in history.timestamps_ns})
    if not sessions:
        raise ScanSetupError(f"SIM_DATA_FILE: {settings.sim_data_file} holds no bars")
    session = as_of or sessions[-1]
    if session not in set(sessions):
        raise ScanSetupError(f"--as-of {session}: not a session of the bundled data ({sessions[0]}..{sessions[-1]})")
    # RVOL needs the average over the AVERAGE_SESSIONS sessions before the scanned one: earlier sessions can only
    # ever scan nothing, which is bad input (exit 2), not a failure of the scan (exit 1).
    if sessions.index(session) < AVERAGE_SESSIONS:
        if len(sessions) <= AVERAGE_SESSIONS:
            raise ScanSetupError(
                f"SIM_DATA_FILE: {settings.sim_data_file} holds {len(sessions)} sessions; a scan needs "
                f"{AVERAGE_SESSIONS} complete sessions before the one it scans"
            )
        raise ScanSetupError(
            f"--as-of {session}: a scan needs the {AVERAGE_SESSIONS} complete sessions before it; the first bundled "
            f"session that can be scanned is {sessions[AVERAGE_SESSIONS]}"
        )
    check_scan_universe(settings, history.symbols)
    clock = SimClock(calendar.scan_time(session))
    universe_file = settings.scan_universe or settings.sim_universe_file
    try:
        constituents = load_universe(settings.sim_universe_file)
    except SetupError as error:
        raise ScanSetupError(str(error)) from None
    majors = largest_by_market_cap(constituents, SIM_MAJOR_COUNT, set(history.symbols))
    return ScanRuntime(
        settings=settings,
        calendar=calendar,
        clock=clock,
        market_data=ReplayMarketData(history, clock, chunk_size=settings.data_chunk_size),
        as_of=session,
        universe=FileUniverse(universe_file),
        cache_path=volume_cache_path(settings),
        major_symbols=tuple(majors),
        strategy=strategy,
    )


def _live_runtime(settings: Settings, calendar: NyseCalendar, strategy: SelectedStrategy) -> ScanRuntime:
    try:
        # Imported by name: the adapter is the only importer of alpaca.data and is not needed in sim.
        adapter = importlib.import_module("core.broker.alpaca_data")
    except ImportError as error:
        raise ScanSetupError(f"the Alpaca market-data adapter is unavailable: {error}") from None

    clock = LiveClock()
    connection = alpaca_connection(settings)
    market_data: MarketData = adapter.AlpacaMarketData(connection, alpaca_data_options(settings), clock)
    universe: UniverseSource
    if settings.scan_universe is not None:
        check_scan_universe(settings, None)
        universe = FileUniverse(settings.scan_universe)
    else:
        # The trading adapter lists assets (GET /v2/assets); it is the only importer of alpaca.trading.
        broker = importlib.import_module("core.broker.alpaca").AlpacaBroker(connection, clock)
        if not isinstance(broker, AssetDirectory):
            raise ScanSetupError("SCAN_UNIVERSE is required: the broker adapter cannot list tradable equities")
        universe = DirectoryUniverse(broker)
    return ScanRuntime(
        settings=settings,
        calendar=calendar,
        clock=clock,
        market_data=market_data,
        as_of=default_as_of(calendar, clock.now()),
        universe=universe,
        cache_path=volume_cache_path(settings),
        major_symbols=tuple(dict.fromkeys([*settings.baseline_symbols, *LIVE_MAJOR_SYMBOLS])),
        strategy=strategy,
    )
