"""Wiring: builds the one pipeline from settings, choosing only the adapters and the clock by mode.

sim  → ReplayMarketData + SimBroker + SimClock over the bundled real bars
paper/live → AlpacaMarketData + AlpacaBroker + LiveClock
Everything else (agents, bus, store, risk) is the same object graph in every mode. The components' configurations
(risk limits, sizing tiers, the scan's gates) are built from the settings here, not by the components: an agent takes
its configuration ready-made and never sees `Settings`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from agents.daily_scan import DailyScanner
from agents.data import DataAgent
from agents.execution import ExecutionAgent
from agents.exit_requests import ExitRequestAgent
from agents.focus_scoring import FocusScorer
from agents.risk import RiskAgent
from agents.scanner import ScannerAgent
from agents.signal_validator import SignalValidator
from agents.sizing import TieredPositionSizer, TierExposureTracker
from agents.stops import StopAgent
from agents.strategies.registry import SelectedStrategy
from agents.win_probability import MlGate
from config.settings import BAR_INTERVALS, PAPER_TIERS, Settings
from core.broker.base import Broker, MarketData
from core.broker.reconcile import ClosedNet, reconcile_orders
from core.bus import EventBus
from core.clock import Clock, LiveClock, NyseCalendar, SimClock
from core.close_requests import CloseRequests
from core.errors import SetupError as SetupError  # noqa: PLC0414 - re-exported (mypy strict): callers import it from here
from core.failpoints import broker_clock_requested
from core.flags import FLAG_HALTED, FLAG_REDUCE_ONLY
from core.order_ids import is_our_client_order_id
from core.portfolio import OwnedLedger, PortfolioView
from core.private_files import SQLITE_SIDECARS
from core.rolling_volumes import RollingVolumes
from core.state_backup import BackupWhen, StateBackups
from core.state_guard import open_guarded_state
from core.store import StateStore
from core.timeconv import ns_to_datetime
from core.types import Asset, BarFrame, OrderStatus, Tier, TradingMode
from core.universe import AssetDirectory, DirectoryUniverse, FileUniverse, UniverseSource
from core.volume_cache import VolumeCache
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
from tradingd.focus import FocusManager
from tradingd.local_state import BARS_CACHE_DIR, REPORT_UNIVERSE_FILE, resolve_universe, state_db_path
from tradingd.ml_runtime import live_ml_gate, load_model, ml_gate
from tradingd.notify.service import check_notify_settings
from tradingd.orchestrator import MarketHoursSchedule, ModelRefresh, Orchestrator, Schedule, SimSchedule
from tradingd.protection import ProtectionStep
from tradingd.scan_runtime import ScanSetupError, check_scan_universe, volume_cache_path
from tradingd.scan_schedule import DailyScanJob, ScanSchedule

if TYPE_CHECKING:
    from intelligence.model_file import SavedModel

log = structlog.get_logger(__name__)

CARRIED_FLAGS = (FLAG_HALTED, FLAG_REDUCE_ONLY)  # the kill switch and reduce-only outlive a sim reset
SIM_CANDIDATES = "candidates.json"  # the replay's own scan output, beside its state DB


@dataclass
class App:
    settings: Settings
    orchestrator: Orchestrator
    store: StateStore
    broker: Broker
    market_data: MarketData
    tiers: dict[str, Tier]
    symbols: tuple[str, ...]
    strategy: SelectedStrategy
    startup: Callable[[App], Awaitable[None]] | None = None
    shutdown: Callable[[App], Awaitable[None]] | None = None

    def close(self) -> None:
        self.store.close()


REPLAY_VOLUME_CACHE = "volume_cache.db"


def daemon_volume_cache_path(settings: Settings) -> Path:
    """The volume cache the daemon's daily scan job refreshes.

    A sim replay gets its own file beside its state (reset with it), not the `volume_cache.sim.db` that
    `tradingd scan` and `validate` use: the replay moves the cache's as_of through history session by session, so
    sharing the file would leave it describing whatever session a (partial) replay stopped at, and a replay
    refreshes every symbol each session anyway, so sharing would save nothing. Paper/live share the one file:
    there the daemon and `scan` both target the last completed session.
    """
    if settings.mode is TradingMode.SIM:
        return state_db_path(settings).parent / REPLAY_VOLUME_CACHE
    return volume_cache_path(settings)


def reset_sim_state(path: Path) -> None:
    """A fresh sim state: the database files go (the kill switch is carried over), the logs under `logs/` stay.

    Only the live DB and its sidecars are deleted, by exact name: a `state.db.corrupt-*` file set aside by the
    store is evidence for a human and is never removed (nor is `kill_switch.json`, which keeps the halt).

    The previous replay's `candidates.json` and its own volume cache go too: they describe that replay's last
    session, which is in the future of the new replay's first one; so does its report's universe record.
    """
    carried: dict[str, str] = {}
    if path.exists():
        with StateStore(path) as old:
            for name in CARRIED_FLAGS:
                value = old.get_flag(name)
                if value is not None:
                    carried[name] = value
    replay_cache = path.parent / REPLAY_VOLUME_CACHE
    for stale in (
        path,
        *(path.with_name(path.name + suffix) for suffix in SQLITE_SIDECARS),
        replay_cache,
        *(replay_cache.with_name(replay_cache.name + suffix) for suffix in SQLITE_SIDECARS),
        path.parent / SIM_CANDIDATES,
        path.parent / REPORT_UNIVERSE_FILE,
    ):
        stale.unlink(missing_ok=True)
    with StateStore(path) as fresh:
        for name, value in carried.items():
            fresh.set_flag(name, value)


def check_sim_files(settings: Settings) -> None:
    """The sim data files exist, or a SetupError naming the variable (a wheel install does not ship `data/`)."""
    for name, path in (("SIM_DATA_FILE", settings.sim_data_file), ("SIM_UNIVERSE_FILE", settings.sim_universe_file)):
        if not path.is_file():
            raise SetupError(missing_file_message(settings, name, path))


@dataclass(frozen=True, slots=True)
class SimSetup:
    """What the sim set-up checks found, so `build_sim` does not load or resolve anything twice."""

    history: BarFrame
    tiers: dict[str, Tier]
    default_tiers: dict[str, Tier]
    sessions: list[date]
    strategy: SelectedStrategy


def _check_scan_universe(settings: Settings, available: Sequence[str] | None) -> None:
    # Checked once at build time: the daemon's scan job would otherwise fail every day and fall back silently.
    if not settings.scanner_enabled:
        return
    try:
        check_scan_universe(settings, available)
    except ScanSetupError as error:
        raise SetupError(str(error)) from None


def check_sim_setup(
    settings: Settings,
    *,
    start: date | None = None,
    end: date | None = None,
    range_names: tuple[str, str] = ("start", "end"),
    load: Callable[[Path], BarFrame] | None = None,
) -> SimSetup:
    """Every check `build_sim` makes before building anything, or a SetupError naming the setting.

    Every setting that would make the replay a silent no-op is a `SetupError` naming it: an unknown STRATEGY_NAME
    (or a plug-in that fails to load), intraday BAR_TIMEFRAME, a range without sessions, a universe without any
    symbol of the data, a scan universe the scan cannot use.
    `validate` calls this too, so it passes exactly the settings `run` accepts. `range_names` are the names the
    caller's user gave `start` and `end` (the CLI passes its option names); `load` reads the bar file (default: a
    fresh read; `validate` passes the scan's cached reader).
    """
    from core.bars import default_sim_tiers, load_daily_bars_cached  # noqa: PLC0415 - sim only

    strategy = select_strategy(settings)  # first: it needs no data, and a wrong name is the likeliest mistake
    check_notify_settings(settings)
    check_sim_files(settings)
    if settings.bar_timeframe != "1Day":
        # The replay serves daily bars only; a 15Min/1Min z-score over them would look at the wrong horizon.
        raise SetupError(
            f"BAR_TIMEFRAME={settings.bar_timeframe}: sim mode replays daily bars only; unset it or use 1Day"
        )
    calendar = NyseCalendar()
    # Name each bound as the user gave it: the caller's option (`--start`/`--end`) or SIM_START/SIM_END.
    start_name = range_names[0] if start is not None else "SIM_START"
    end_name = range_names[1] if end is not None else "SIM_END"
    start = start if start is not None else settings.sim_start
    end = end if end is not None else settings.sim_end
    if load is None:
        # The parsed bars are kept beside the replay's state (`core/bars.py`): a restart skips the CSV.
        history = load_daily_bars_cached(settings.sim_data_file, state_db_path(settings).parent / BARS_CACHE_DIR)
    else:
        history = load(settings.sim_data_file)
    default_tiers = default_sim_tiers(settings.sim_universe_file, set(history.symbols))
    tiers = resolve_universe(settings, history.symbols, default_tiers)
    if not tiers:
        raise SetupError(
            f"SIM_UNIVERSE_FILE: {settings.sim_universe_file} names no symbol (with a market cap) of the bar data;"
            " nothing to trade"
        )
    unknown = sorted(set(tiers) - set(history.symbols))
    if len(unknown) == len(tiers) and not settings.scanner_enabled:
        # With the scanner on, SYMBOLS is only the fallback and the scan's picks can still trade.
        raise SetupError(f"SYMBOLS: none of {', '.join(unknown)} is in the bundled data; nothing to trade")
    if unknown:
        log.warning("symbols_not_in_data", symbols=unknown, note="they will be rejected as unknown")
    _check_scan_universe(settings, history.symbols)
    bundled = [calendar.session_date(ns_to_datetime(int(ns))) for ns in history.timestamps_ns]
    if not bundled:
        raise SetupError(f"SIM_DATA_FILE: {settings.sim_data_file} holds no bars")
    available = f"the bundled data covers {bundled[0]} to {bundled[-1]}"
    if start is not None and end is not None and end < start:
        raise SetupError(f"{end_name} {end} is before {start_name} {start}; {available}")
    sessions = [s for s in bundled if (start is None or s >= start) and (end is None or s <= end)]
    if not sessions:
        bounds = [f"{name} {day}" for name, day in ((start_name, start), (end_name, end)) if day is not None]
        raise SetupError(f"{' '.join(bounds)}: no bundled session in that range; {available}")
    return SimSetup(history=history, tiers=tiers, default_tiers=default_tiers, sessions=sessions, strategy=strategy)


def check_live_setup(settings: Settings) -> SelectedStrategy:
    """The paper/live set-up checks `build_live` makes before contacting the broker (the keys are checked by
    `load_settings`): the strategy STRATEGY_NAME selects, the saved model with ML_ENABLED, and a SCAN_UNIVERSE that
    parses to a usable symbol."""
    return _live_setup(settings)[0]


def _live_setup(settings: Settings) -> tuple[SelectedStrategy, SavedModel | None]:
    strategy = select_strategy(settings)
    saved = load_model(settings, strategy)  # ML_ENABLED: its refusals are SetupErrors here, before any connection
    check_notify_settings(settings)
    _check_scan_universe(settings, None)
    return strategy, saved


def check_setup(settings: Settings, *, load: Callable[[Path], BarFrame] | None = None) -> None:
    """The set-up checks `run` makes for the settings' mode, without building anything (for `validate`)."""
    if settings.mode is TradingMode.SIM:
        check_sim_setup(settings, load=load)
    else:
        check_live_setup(settings)


def build_sim(
    settings: Settings,
    *,
    start: date | None = None,
    end: date | None = None,
    fresh_state: bool = True,
    on_iteration: Callable[[dict[str, Any]], None] | None = None,
    range_names: tuple[str, str] = ("start", "end"),
    pace_seconds: float = 0.0,
) -> App:
    """The sim pipeline over the bundled bars; `start`/`end` (inclusive) override SIM_START/SIM_END.

    `check_sim_setup` runs first: a setting that would make the replay a silent no-op is a `SetupError`.
    """
    from core.broker.replay import ReplayMarketData  # noqa: PLC0415 - sim only
    from core.broker.sim import SimBroker  # noqa: PLC0415

    setup = check_sim_setup(settings, start=start, end=end, range_names=range_names)
    history, tiers, default_tiers, sessions = setup.history, setup.tiers, setup.default_tiers, setup.sessions
    calendar = NyseCalendar()
    clock = SimClock(calendar.session_open(sessions[0]))
    market_data = ReplayMarketData(history, clock, chunk_size=settings.data_chunk_size)
    broker = SimBroker(
        history,
        clock,
        initial_cash=settings.sim_initial_cash,
        slippage_bps=settings.sim_slippage_bps,
        non_fractionable=set(settings.sim_non_fractionable),
        bar_closes_ns=calendar.daily_bar_closes_ns(history.timestamps_ns),
        bar_opens_ns=calendar.daily_bar_opens_ns(history.timestamps_ns),
    )
    db = state_db_path(settings)
    if fresh_state:
        reset_sim_state(db)
    # A protect-only tick at each session's open: an entry that fills there gets its stop before that day's bar.
    protect = stop_config(settings) is not None
    schedule = SimSchedule(
        clock, calendar, sessions, scan=settings.scanner_enabled, protect=protect, pace_seconds=pace_seconds
    )
    # The replay writes its daily candidates beside its own state, never over the user's CANDIDATES_FILE.
    candidates = db.parent / SIM_CANDIDATES
    return _assemble(
        settings,
        setup.strategy,
        clock,
        calendar,
        schedule,
        market_data,
        broker,
        tiers,
        default_tiers,
        db,
        candidates,
        on_iteration,
        ml=ml_gate(settings, setup.strategy, setup.history, first_session=setup.sessions[0]),
    )


def build_live(
    settings: Settings,
    *,
    clock: Clock | None = None,
    schedule: Schedule | None = None,
    adapter_options: dict[str, Any] | None = None,
    on_iteration: Callable[[dict[str, Any]], None] | None = None,
) -> App:
    """Paper or live: Alpaca adapters and the wall clock (tests inject a clock and schedule that follow a fake)."""
    from core.broker.alpaca import AlpacaBroker  # noqa: PLC0415 - the only importer of alpaca.trading
    from core.broker.alpaca_data import AlpacaMarketData  # noqa: PLC0415

    strategy, saved_model = _live_setup(settings)
    clock = clock or _test_clock(settings) or LiveClock()
    calendar = NyseCalendar()
    tiers = resolve_universe(settings, list(PAPER_TIERS), PAPER_TIERS)
    options = adapter_options or {}
    connection = alpaca_connection(settings)
    market_data = AlpacaMarketData(connection, alpaca_data_options(settings), clock, **options.get("market_data", {}))
    broker = AlpacaBroker(connection, clock, **options.get("broker", {}))
    schedule = schedule or MarketHoursSchedule(clock, calendar, settings.loop_interval_seconds)
    # ML_ENABLED: the model's year of daily bars comes through the same port, fetched at the first iteration.
    live_ml = live_ml_gate(settings, strategy, saved_model, market_data)
    app = _assemble(
        settings,
        strategy,
        clock,
        calendar,
        schedule,
        market_data,
        broker,
        tiers,
        PAPER_TIERS,
        state_db_path(settings),
        settings.candidates_file,
        on_iteration,
        ml=live_ml[0] if live_ml else None,
        model_refresh=live_ml[1] if live_ml else None,
    )
    app.startup = _start_alpaca
    app.shutdown = _stop_alpaca
    return app


def _test_clock(settings: Settings) -> Clock | None:
    """The fake broker's clock for a crash test's subprocess (paper only: a live daemon always reads the wall)."""
    if settings.mode is not TradingMode.PAPER or not broker_clock_requested():
        return None
    from core.broker.alpaca_clock import BrokerClock  # noqa: PLC0415 - alpaca.trading stays in core/broker

    if settings.alpaca_api_key is None or settings.alpaca_secret_key is None:  # check_live_setup refused this already
        return None
    return BrokerClock(alpaca_connection(settings))


async def _start_alpaca(app: App) -> None:
    """Before the first iteration: the live banner, reconciliation with the broker, then the trade-update stream."""
    from core.broker.alpaca import AlpacaBroker  # noqa: PLC0415

    broker = app.broker
    assert isinstance(broker, AlpacaBroker)
    summary = await broker.get_account_summary()
    if app.settings.mode is TradingMode.LIVE:
        log.warning(
            "LIVE_TRADING_REAL_MONEY",
            account=summary.masked_number,
            equity=str(summary.equity),
            status=summary.status,
            note="orders placed by this process use real money",
        )
    else:
        log.info("paper_trading", account=summary.masked_number, equity=str(summary.equity))
    if summary.trading_blocked:
        raise SetupError(f"account {summary.masked_number} is blocked from trading")
    await recover_orders(app)
    await broker.start_stream()


async def recover_orders(app: App) -> None:
    """Every non-final stored order (write-ahead `pending_submit` included) against the broker, over the port:
    states and recovered fills committed together, so a crash here leaves the orders to be looked up again. Then the
    second net: ours closed at the broker that the store has no row for (see `core/broker/reconcile.py`)."""
    net = ClosedNet(
        last_fill_at=app.store.last_fill_ts(),
        is_known=app.store.has_order,
        is_ours=is_our_client_order_id,
    )
    report = await reconcile_orders(app.broker, app.store.open_orders(), app.orchestrator.clock.now(), net)
    with app.store.transaction():
        app.orchestrator.execution.apply_updates(report.updates)
        app.store.save_positions(report.positions)


async def _stop_alpaca(app: App) -> None:
    from core.broker.alpaca import AlpacaBroker  # noqa: PLC0415
    from core.broker.alpaca_data import AlpacaMarketData  # noqa: PLC0415

    if isinstance(app.broker, AlpacaBroker):
        await app.broker.stop_stream()
    if isinstance(app.market_data, AlpacaMarketData):
        app.market_data.close()


def _assemble(
    settings: Settings,
    strategy: SelectedStrategy,
    clock: Clock,
    calendar: NyseCalendar,
    schedule: Schedule,
    market_data: MarketData,
    broker: Broker,
    tiers: dict[str, Tier],
    default_tiers: dict[str, Tier],
    db: Path,
    candidates: Path,
    on_iteration: Callable[[dict[str, Any]], None] | None,
    *,
    ml: MlGate | None = None,
    model_refresh: ModelRefresh | None = None,
) -> App:
    # Paper/live only: a sim replay deletes its own DB on purpose (reset_sim_state), which is no loss of state.
    guarded = open_guarded_state(
        db, detect_loss=settings.mode is not TradingMode.SIM, auto_resume=settings.recovery_auto_resume
    )
    store = guarded.store
    focus = (
        build_focus(
            settings,
            strategy,
            clock,
            calendar,
            market_data,
            broker,
            store,
            candidates,
            fallback=tuple(tiers),
            last_session=schedule.sessions[-1] if isinstance(schedule, SimSchedule) and schedule.sessions else None,
        )
        if settings.scanner_enabled
        else None
    )
    symbols = focus.load(clock.now(), held=store.load_positions()) if focus else tuple(tiers)
    bus = EventBus()
    portfolio = PortfolioView(broker, OwnedLedger(store.fills()))
    interval = BAR_INTERVALS[settings.bar_timeframe]
    data = DataAgent(
        bus,
        market_data,
        clock,
        symbols=symbols,
        # One row more than the strategy reads, as the window has always been (ZSCORE_WINDOW + 1): the risk agent
        # prices an open whole-share order at the last valid close anywhere in it.
        lookback=strategy.strategy.lookback + 1,
        bar_interval=interval,
    )
    scanner = ScannerAgent(
        bus, portfolio, clock, strategy.strategy, tag=strategy.order_tag, stop_loss_pct=close_stop_loss_pct(settings)
    )
    assets: dict[str, Asset] = {}
    validator = SignalValidator(
        bus,
        portfolio,
        clock,
        max_age=timedelta(seconds=settings.signal_max_age_seconds),
        assets=assets,
        calendar=calendar if settings.bar_timeframe == "1Day" else None,
    )
    # Tiers for any symbol the daemon may come to watch (scanner picks too); unlisted symbols are TIER3.
    config = tier_config(settings, {**default_tiers, **tiers, **settings.symbol_tiers})
    risk = RiskAgent(
        bus,
        TieredPositionSizer(config),
        TierExposureTracker(config),
        risk_limits(settings),
        guarded.flags,
        clock,
        session=calendar.session_date(clock.now()),
        ml=ml,
    )
    execution = ExecutionAgent(bus, broker, store, portfolio, clock)
    exit_requests = ExitRequestAgent(bus, CloseRequests(guarded.flags), _stored_status(store), clock)
    protection = _protection(settings, bus, clock, calendar, store, portfolio, execution, risk, assets, market_data)
    orchestrator = Orchestrator(
        bus=bus,
        clock=clock,
        calendar=calendar,
        schedule=schedule,
        portfolio=portfolio,
        data=data,
        scanner=scanner,
        validator=validator,
        risk=risk,
        execution=execution,
        exit_requests=exit_requests,
        store=store,
        assets=assets,
        broker=broker,
        focus=focus,
        on_iteration=on_iteration,
        # Not in sim: a replay starts from an empty journal every run, and pruning a replayed history session by
        # session would only cost replay speed.
        journal_retention_days=0 if settings.mode is TradingMode.SIM else settings.journal_retention_days,
        backups=state_backups(settings, db),
        protection=protection,
        model_refresh=model_refresh,
    )
    return App(settings, orchestrator, store, broker, market_data, tiers, symbols, strategy)


def _stored_status(store: StateStore) -> Callable[[str], OrderStatus | None]:
    """A client order id's status as the store has it (None: not stored), for the exit-request agent."""

    def status(client_order_id: str) -> OrderStatus | None:
        order = store.get_order(client_order_id)
        return None if order is None else order.status

    return status


def _protection(
    settings: Settings,
    bus: EventBus,
    clock: Clock,
    calendar: NyseCalendar,
    store: StateStore,
    portfolio: PortfolioView,
    execution: ExecutionAgent,
    risk: RiskAgent,
    assets: dict[str, Asset],
    market_data: MarketData,
) -> ProtectionStep | None:
    """The stop step (README "Protective stops"); None with STOP_MODE=close."""
    config = stop_config(settings)
    if config is None:
        return None
    stops = StopAgent(
        bus,
        clock,
        config,
        marks=store,
        ledger=portfolio.ledger,
        is_used=store.has_order,
        used_among=store.known_order_ids,
        market_data=market_data if config.intraday_check else None,
    )
    return ProtectionStep(
        bus=bus,
        clock=clock,
        calendar=calendar,
        store=store,
        portfolio=portfolio,
        execution=execution,
        risk=risk,
        stops=stops,
        assets=assets,
        # Paper/live re-place DAY stops while the market is closed; the sim schedule has its own open ticks.
        on_closed_ticks=settings.mode is not TradingMode.SIM,
    )


def state_backups(settings: Settings, db: Path) -> StateBackups | None:
    """STATE_BACKUP_DAYS daily backups in paper/live; one per replay in sim (core/state_backup.py); 0: none."""
    if settings.state_backup_days == 0:
        return None
    when = BackupWhen.REPLAY_END if settings.mode is TradingMode.SIM else BackupWhen.DAILY
    return StateBackups(db, keep=settings.state_backup_days, when=when)


def build_focus(
    settings: Settings,
    strategy: SelectedStrategy,
    clock: Clock,
    calendar: NyseCalendar,
    market_data: MarketData,
    broker: Broker,
    store: StateStore,
    candidates: Path,
    *,
    fallback: tuple[str, ...],
    last_session: date | None = None,
) -> FocusManager:
    """The daily scan job (ranking by the strategy's entry score) and the intraday scorer, for USE_SCANNER=true."""
    cache = VolumeCache(daemon_volume_cache_path(settings))
    replay = settings.mode is TradingMode.SIM  # starts from an empty state: no history, no candidates yet
    # A replay keeps its averages in a rolling window (core/rolling_volumes.py); paper/live read the SQLite cache.
    rolling = RollingVolumes() if replay else None
    universe_file = settings.scan_universe or settings.sim_universe_file
    if settings.mode is not TradingMode.SIM and settings.scan_universe is None and isinstance(broker, AssetDirectory):
        universe: UniverseSource = DirectoryUniverse(broker)
    else:
        universe = FileUniverse(universe_file)
    job = DailyScanJob(
        schedule=ScanSchedule(calendar, store),
        scanner=DailyScanner(market_data, rolling or cache, calendar, scan_config(settings), strategy=strategy),
        universe=universe,
        cache=cache,
        market_data=market_data,
        calendar=calendar,
        candidates_path=candidates,
        warmup=replay,
        rolling=rolling,
        last_session=last_session,  # a replay's end: its rolling volume window is written to the cache file then
    )
    scorer = FocusScorer(
        market_data,
        calendar,
        interval_minutes=settings.scoring_interval_minutes,
        window=settings.zscore_window,
        store=store,
    )
    return FocusManager(
        job=job,
        scorer=scorer,
        calendar=calendar,
        candidates_path=candidates,
        fallback=fallback,
        baseline=settings.baseline_symbols,
        top_n=settings.scanner_top_n,
        warmup=replay,
    )


async def run_app(app: App, iterations: int | None = None) -> None:
    """Start the adapters, load assets, run the loop, and always stop the adapters."""
    if app.startup is not None:
        await app.startup(app)
    try:
        await load_assets(app)
        await app.orchestrator.run(max_iterations=iterations)
    finally:
        if app.shutdown is not None:
            await app.shutdown(app)


async def load_assets(app: App) -> None:
    """Fill the shared asset map once at start-up (tradable / fractionable per focus symbol)."""
    assets = app.orchestrator.assets
    for symbol in app.orchestrator.data.symbols:
        asset = await app.broker.get_asset(symbol)
        if asset is not None:
            assets[symbol] = asset
