"""The orchestrator owns timing and the order of stages; the agents own the decisions.

One iteration reads like a script of direct calls, each stage given its input and returning its output: settle
broker updates → refresh the portfolio → mark equity → fetch bars → scan → validate → (with the exits of pending close
requests and the intraday stop check) risk decides → execution submits → the stop step (`tradingd/protection.py`) →
one store transaction → stats. The stages publish what they did on the bus; only observers subscribe (the journal,
which this module taps, and the run statistics). Between iterations the protect-only ticks run the stop step alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import signal
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import structlog

from agents.data import Bars, DataAgent
from agents.execution import ExecutionAgent, StopOutcome
from agents.exit_requests import ExitRequestAgent
from agents.risk import RiskAgent, daily_loss_reference
from agents.scanner import ScannerAgent
from agents.signal_validator import SignalValidator
from core.broker.base import AuthenticationError, Broker, BrokerError
from core.bus import EventBus
from core.clock import Clock, NyseCalendar, SimClock
from core.failpoints import failpoint
from core.messages import (
    IterationCompleted,
    IterationFailed,
    IterationStarted,
    IterationStats,
    Message,
    SessionClosed,
    SignalGenerated,
)
from core.portfolio import PortfolioView
from core.reasons import DenialReason
from core.redact import redact
from core.run_stats import RunStats
from core.state_backup import StateBackups
from core.store import StateStore
from core.types import CENT, Asset, BarFrame, BrokerOrder, Fill, Position
from tradingd.focus import FocusManager
from tradingd.protection import ProtectionStep

log = structlog.get_logger(__name__)


class Tick(enum.Enum):
    ITERATE = "iterate"  # run one pipeline iteration
    SCAN = "scan"  # the market is closed: a chance to run the daily scan if it is due
    PROTECT = "protect"  # sim, at a session's open: the stop step alone (entries filled at the open get their stops)


class Schedule(Protocol):
    """Yields what is due; it moves the clock in sim and waits for it in paper/live."""

    def __aiter__(self) -> AsyncIterator[Tick]: ...


class ModelRefresh(Protocol):
    """Paper/live with ML_ENABLED (`tradingd/ml_live.py`): keeps the model's history covering the DataAgent's window.
    It handles a failed fetch itself (the risk agent then denies entries): exits and stops never wait on it."""

    async def refresh(self, window: BarFrame) -> None: ...


class SimSchedule:
    """One iteration per replayed session at its close (the daily bar is complete then), then the 16:05 scan tick;
    with `protect`, a protect-only tick at each session's open first."""

    def __init__(
        self,
        clock: SimClock,
        calendar: NyseCalendar,
        sessions: list[date],
        *,
        scan: bool = False,
        protect: bool = False,
        pace_seconds: float = 0.0,
    ) -> None:
        """`pace_seconds`: real (wall-clock) time slept after each iteration (`tradingd replay --pace`, for demos
        and the dashboard's browser test); 0 replays as fast as it goes."""
        self._clock = clock
        self._calendar = calendar
        self._scan = scan
        self._protect = protect
        self._pace = pace_seconds
        self.sessions = sessions

    async def __aiter__(self) -> AsyncIterator[Tick]:
        for session in self.sessions:
            if self._protect:
                self._clock.set(self._calendar.session_open(session))
                yield Tick.PROTECT
            self._clock.set(self._calendar.session_close(session))
            yield Tick.ITERATE
            if self._pace > 0:
                await asyncio.sleep(self._pace)  # the wall clock, on purpose: the sim clock only moves when set
            if self._scan:
                self._clock.set(self._calendar.scan_time(session))
                yield Tick.SCAN


class MarketHoursSchedule:
    """Every `interval` seconds while the NYSE regular session is open; asleep (in bounded naps) otherwise."""

    MAX_NAP_SECONDS = 900.0  # wake up now and then while closed, so a stop request or a clock jump is noticed

    def __init__(self, clock: Clock, calendar: NyseCalendar, interval: float) -> None:
        self._clock = clock
        self._calendar = calendar
        self._interval = interval

    async def __aiter__(self) -> AsyncIterator[Tick]:
        announced = None
        while True:
            now = self._clock.now()
            if self._calendar.is_open(now):
                yield Tick.ITERATE
                await self._clock.sleep(self._interval)
                continue
            yield Tick.SCAN  # the daily scan job decides whether one is due (16:05 ET, once per session)
            now = self._clock.now()
            next_open = self._calendar.next_open(now)
            if announced != next_open:
                log.info("market_closed_waiting", next_open=next_open.isoformat())
                announced = next_open
            wait = (next_open - now).total_seconds()
            await self._clock.sleep(min(max(wait, 1.0), self.MAX_NAP_SECONDS, self._interval))


class Orchestrator:
    def __init__(
        self,
        *,
        bus: EventBus,
        clock: Clock,
        calendar: NyseCalendar,
        schedule: Schedule,
        portfolio: PortfolioView,
        data: DataAgent,
        scanner: ScannerAgent,
        validator: SignalValidator,
        risk: RiskAgent,
        execution: ExecutionAgent,
        exit_requests: ExitRequestAgent,
        store: StateStore,
        assets: dict[str, Asset],
        broker: Broker,
        focus: FocusManager | None = None,
        on_iteration: Callable[[dict[str, Any]], None] | None = None,
        journal_retention_days: int = 0,
        backups: StateBackups | None = None,
        protection: ProtectionStep | None = None,
        model_refresh: ModelRefresh | None = None,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.calendar = calendar
        self.schedule = schedule
        self.portfolio = portfolio
        self.data = data
        self.scanner = scanner
        self.validator = validator
        self.risk = risk
        self.execution = execution
        self.exit_requests = exit_requests
        self.store = store
        self.assets = assets
        self.broker = broker
        self.focus = focus
        self.stats = RunStats.observing(bus)
        self._completed = 0  # iterations run to the end (a broker error cuts one short and its number is reused)
        self._journal: list[Message] = []
        self._stop = asyncio.Event()
        self._reference: tuple[date | None, Decimal] = (None, Decimal(0))
        self._iteration_sinks: list[Callable[[dict[str, Any]], None]] = [] if on_iteration is None else [on_iteration]
        self._journal_retention = timedelta(days=journal_retention_days) if journal_retention_days > 0 else None
        self.backups = backups
        self.protection = protection  # None with STOP_MODE=close
        self.model_refresh = model_refresh  # paper/live with ML_ENABLED only
        self._day: date | None = None  # the session whose once-a-day housekeeping has run
        self._closed: date | None = None  # the last session announced by `SessionClosed`
        self._close_due: tuple[date, datetime] | None = None  # (session, when its SessionClosed is due)
        bus.tap(self._record)

    def _record(self, message: Message) -> None:
        """The journal's buffer: every message since the last iteration's store transaction."""
        self._journal.append(message)

    def add_iteration_sink(self, sink: Callable[[dict[str, Any]], None]) -> None:
        """Also hand each iteration's figures (the `iteration` log line's) to `sink` (the metrics' latency)."""
        self._iteration_sinks.append(sink)

    @property
    def stop_requested(self) -> bool:
        """A signal (or a caller) asked the loop to stop."""
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Finish the current iteration, flush the store, then leave the loop."""
        if not self._stop.is_set():
            log.info("shutdown_requested")
        self._stop.set()

    async def run(self, max_iterations: int | None = None) -> RunStats:
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or no signals here
                loop.add_signal_handler(sig, self.request_stop)
                installed.append(sig)
        # What start-up built (the bars, the assets, the imported modules) lives for the whole run: frozen, the
        # cyclic GC's full collections stop re-scanning it (a 505-symbol replay's two full collections were ~110 ms
        # each, inside one iteration each: its slowest ones). Unfrozen at the end, so it is collectable again.
        gc.freeze()
        try:
            async for tick in self.schedule:
                if self._stop.is_set():
                    break
                try:
                    if tick is Tick.SCAN:
                        await self._scan_tick()
                        if self.protection is not None and self.protection.on_closed_ticks:
                            await self._protect_tick()
                        self._announce_close()
                        continue
                    if tick is Tick.PROTECT:
                        await self._protect_tick()
                        continue
                    await self.run_iteration(self._completed + 1)
                    self._announce_close()
                except AuthenticationError:
                    raise  # bad keys do not heal: stop with the clear message
                except BrokerError as error:
                    # Temporary (the adapter's bounded retries ran out) or operational: stop trading this tick, stay
                    # alive, try again at the next one. Broker updates already fetched were stored first.
                    self.stats.error(type(error).__name__)
                    log.error("iteration_failed", tick=tick.value, error=str(error), kind=type(error).__name__)
                    now = self.clock.now()
                    self.bus.publish(
                        IterationFailed(
                            ts_event=now,
                            ts_init=now,
                            tick=tick.value,
                            kind=type(error).__name__,
                            detail=redact(str(error)),
                        )
                    )
                    self.write_journal()
                finally:
                    # Right after the tick, before waiting for the next one: the WAL copy never delays an order.
                    self.store.checkpoint_if_due()
                # Sim adapters never suspend; yielding once per iteration lets the loop deliver signals (SIGTERM).
                await asyncio.sleep(0)
                if max_iterations is not None and self._completed >= max_iterations:
                    break
                if self._stop.is_set():
                    break
        finally:
            gc.unfreeze()
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self._final_sync()
        if self.backups is not None:
            await self.backups.on_stop(self.calendar.session_date(self.clock.now()))
        return self.stats

    def write_journal(self) -> None:
        """The journal buffer written now, in a transaction of its own: after a failed tick, so its `IterationFailed`
        is in the journal at once (`tradingd serve`'s health reads it) rather than at the next successful commit;
        after the run, so `DaemonStopped` is too."""
        with self.store.transaction():
            journal, self._journal = self._journal, []
            self.store.journal(journal)

    async def _final_sync(self) -> None:
        """Store whatever the broker reported since the last iteration, so a restart starts from it."""
        try:
            updates = await self.execution.fetch_updates()
        except BrokerError as error:
            log.warning("final_sync_failed", error=str(error))
            return
        if updates:
            with self.store.transaction():
                self.execution.apply_updates(updates)

    def _announce_close(self) -> None:
        """`SessionClosed` once per iterated session, at the first tick at or after its close (with the scanner on,
        its scan time, so the day's scan is done): the daily digest's cue, in sim and in paper/live alike."""
        day = self._day
        if day is None or day == self._closed:
            return
        if self._close_due is None or self._close_due[0] != day:
            due = self.calendar.scan_time(day) if self.focus is not None else self.calendar.session_close(day)
            self._close_due = (day, due)
        now = self.clock.now()
        if now >= self._close_due[1]:
            self._closed = day
            self.bus.publish(SessionClosed(ts_event=now, ts_init=now, session=day))

    def _start_of_day_equity(self, session: date, first_mark_today: Decimal) -> Decimal:
        """The daily-loss reference: equity at the previous session's last mark (its close, like Alpaca's
        `last_equity`), so an overnight gap and a once-a-day daily-bar iteration count; else today's first mark."""
        if self._reference[0] != session:
            self._reference = (session, daily_loss_reference(self.store, self.calendar, session, first_mark_today))
        return self._reference[1]

    async def _start_day(self, session: date, now: datetime) -> None:
        """Once per session, at its first iteration: journal retention, then the day's state backup."""
        self._day = session
        self._prune_journal(now)
        if self.backups is not None:
            await self.backups.on_new_day(session)

    def _prune_journal(self, now: datetime) -> None:
        """Drop journal rows older than JOURNAL_RETENTION_DAYS."""
        if self._journal_retention is None:
            return
        deleted = self.store.prune_journal(now - self._journal_retention)
        if deleted:
            log.info("journal_pruned", deleted=deleted, retention_days=self._journal_retention.days)

    def _held_symbols(self) -> set[str]:
        snapshot = self.portfolio.snapshot
        return set(snapshot.positions) | {order.symbol for order in snapshot.open_orders}

    async def _watch_holdings(self, positions: Mapping[str, Any], open_orders: Sequence[BrokerOrder]) -> None:
        """Held positions and open orders are always watched (exits, stop-losses), whatever the focus list says."""
        needed = set(positions) | {order.symbol for order in open_orders}
        missing = sorted(needed - set(self.data.symbols))
        if missing:
            await self.set_focus((*self.data.symbols, *missing))

    async def _scan_tick(self) -> None:
        """Run the daily scan when due; either way, re-read the focus so a stale file falls back to SYMBOLS."""
        if self.focus is None:
            return
        symbols = await self.focus.on_scan_tick(self.clock.now(), held=self._held_symbols())
        if symbols != self.data.symbols:
            await self.set_focus(symbols)

    async def _protect_tick(self) -> None:
        """The stop step alone (no bars, no equity mark, no strategy), then its own store transaction."""
        if self.protection is None:
            return
        outcome = await self.protection.run()
        with self.store.transaction():
            self.execution.record_stops(outcome.placed)
            journal, self._journal = self._journal, []
            self.store.journal(journal)
            self.store.save_positions(self.portfolio.snapshot.positions)

    async def _stop_exits(
        self, validated: list[SignalGenerated], positions: Mapping[str, Position]
    ) -> list[SignalGenerated]:
        """The exits risk decides on besides the validated signals: the intraday stop check's (while the market is
        open: outside a session the latest trade is an old price), and those an unconfirmed stop cancel held back
        last time (unless a fresh exit of the same symbol replaces them)."""
        intraday: list[SignalGenerated] = []
        if self.protection is not None and self.calendar.is_open(self.clock.now()):
            intraday = await self.protection.stops.intraday_exits(positions)
        fresh = {signal.symbol for signal in (*intraday, *validated) if signal.is_exit}
        deferred = [s for s in self.execution.take_deferred_exits() if s.symbol not in fresh]
        return [*deferred, *intraday]

    async def set_focus(self, symbols: tuple[str, ...]) -> None:
        """Watch a new list of symbols from the next iteration on (assets looked up for newcomers).

        A failed asset lookup leaves that symbol without an asset (its signals are rejected as unknown) instead of
        keeping yesterday's focus.
        """
        for symbol in symbols:
            if symbol not in self.assets:
                try:
                    asset = await self.broker.get_asset(symbol)
                except BrokerError as error:
                    log.warning("asset_lookup_failed", symbol=symbol, error=str(error))
                    continue
                if asset is not None:
                    self.assets[symbol] = asset
        log.info("focus_changed", symbols=list(symbols), source=self.focus.source if self.focus else "settings")
        self.data.set_symbols(symbols)

    def _signals(self, bars: Bars, iteration: int) -> list[SignalGenerated]:
        """The strategy's signals; a strategy that raises (a plug-in's bug) costs this iteration its signals, not the
        daemon its life: the rest of the iteration (fills, equity, the journal) still runs."""
        try:
            return self.scanner.on_bars(bars.frame, new_rows=bars.new_rows)
        except Exception:
            log.exception("strategy_failed", strategy=self.scanner.strategy, iteration=iteration)
            return []

    async def run_iteration(self, iteration: int) -> dict[str, Any]:
        timings: dict[str, float] = {}
        t0 = t = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal t
            now = time.perf_counter()
            timings[stage] = round((now - t) * 1000, 3)
            t = now

        now = self.clock.now()
        session = self.calendar.session_date(now)
        if session != self._day:
            await self._start_day(session, now)
        self.bus.publish(
            IterationStarted(ts_event=now, ts_init=now, iteration=iteration, n_symbols=len(self.data.symbols))
        )

        # Broker updates are stored before anything else can fail, and the store's write lock is never held across
        # a broker call. New fills feed the owned-positions ledger, so they are applied before the portfolio refresh
        # (whose snapshot risk rebuilds its exposure from).
        updates = await self.execution.fetch_updates()
        fills: list[Fill] = []
        if updates:
            with self.store.transaction():
                fills = self.execution.apply_updates(updates)
        snapshot = await self.portfolio.refresh()
        if self.protection is not None:
            self.protection.check(snapshot.positions, snapshot.open_orders, checked="refresh")
        await self._watch_holdings(snapshot.positions, snapshot.open_orders)
        equity = snapshot.account.equity
        mark = self.store.mark_equity(session, equity)
        self.stats.mark(equity)
        self.risk.begin_iteration(
            snapshot,
            session=session,
            start_of_day_equity=self._start_of_day_equity(session, mark.start_equity),
            peak_equity=mark.peak_equity,
            assets=self.assets,
        )
        lap("portfolio_ms")

        if self.focus is not None:
            try:
                await self.focus.rescore(self.data.symbols, now)
            except Exception as error:  # display-only scores must never cost a trading iteration
                log.warning("rescore_failed", error=str(error), kind=type(error).__name__)
        bars = await self.data.fetch(iteration)
        if self.model_refresh is not None:
            # Before the strategy runs: every bar a signal can be on is then in the model's history (or, after a
            # failed fetch, the risk agent denies entries `ml_unavailable` and the next iteration tries again).
            await self.model_refresh.refresh(bars.frame)
        if self.protection is not None:
            self.protection.stops.observe_bars(bars.frame, snapshot.positions)
        signals = self._signals(bars, iteration)
        validated = self.validator.validate(signals)
        lap("data_scan_validate_ms")
        # Exits the daemon makes itself go straight to risk, ahead of the strategy's: no strategy made them to
        # validate. The exits `tradingd close` and a breaker's flatten asked for come first, then the intraday stops.
        requested = self.exit_requests.signals(snapshot)
        stop_exits = await self._stop_exits([*requested, *validated], snapshot.positions)
        decisions = self.risk.decide([*requested, *stop_exits, *validated], bars.frame)
        self.exit_requests.note_refusals(decisions.denied)
        # A held-back exit turned down while halted is kept: its stop may be canceled already.
        self.execution.defer_exits(
            [d.signal for d in decisions.denied if d.reason is DenialReason.HALTED and d.signal in stop_exits]
        )
        lap("risk_ms")
        placed = await self.execution.submit(decisions.approved)
        lap("execution_ms")
        stops = await self.protection.run() if self.protection is not None else StopOutcome()
        lap("stops_ms")

        self._completed = iteration
        stats = IterationStats(
            session=session,
            bars=bars.accepted,
            rejected_bars=sum(bars.rejected.values()),
            orders=len(placed),
            fills=len(fills),
            equity=equity.quantize(CENT),
            positions=len(snapshot.positions),
        )
        with self.store.transaction():
            self.execution.record_placed(placed)
            self.execution.record_stops(stops.placed)
            self.bus.publish(
                IterationCompleted(ts_event=now, ts_init=self.clock.now(), iteration=iteration, stats=stats)
            )
            journal, self._journal = self._journal, []
            self.store.journal(journal)
            self.store.save_positions(self.portfolio.snapshot.positions)
        failpoint("iteration.committed")
        lap("store_ms")
        total_ms = round((time.perf_counter() - t0) * 1000, 3)
        result = {"iteration": iteration, **stats.as_json(), "timings_ms": timings, "total_ms": total_ms}
        for sink in self._iteration_sinks:
            sink(result)
        return result
