import asyncio
import gc
import os
import signal
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from config.settings import Settings
from core.broker.base import TransientBrokerError
from core.broker.sim import _Holding
from core.clock import NyseCalendar, SimClock
from core.messages import BarsFetched, SignalGenerated
from core.order_ids import is_protective_stop_id
from core.run_stats import RunStats
from core.types import BarFrame, OrderSide
from tests.state_db import journal_count
from tradingd.app import App, build_sim, load_assets
from tradingd.orchestrator import MarketHoursSchedule, SimSchedule, Tick

SYMBOLS = ("AAPL", "MSFT", "XOM", "JPM", "JNJ")


def _app(tmp_path: Path, on_iteration: Any = None) -> App:
    settings = Settings(data_dir=tmp_path, use_scanner=False, symbols=SYMBOLS, log_level="ERROR")
    return build_sim(settings, start=date(2016, 1, 4), end=date(2016, 3, 31), on_iteration=on_iteration)


async def _run(app: App, iterations: int | None = None) -> int:
    await load_assets(app)
    stats = await app.orchestrator.run(max_iterations=iterations)
    return stats.iterations


def test_stop_request_finishes_the_iteration_and_flushes_the_store(tmp_path: Path) -> None:
    holder: dict[str, App] = {}

    def on_iteration(stats: dict[str, Any]) -> None:
        if stats["iteration"] == 5:
            holder["app"].orchestrator.request_stop()

    app = holder["app"] = _app(tmp_path, on_iteration)
    assert asyncio.run(_run(app)) == 5
    assert journal_count(app.store.path, "IterationCompleted") == 5
    app.close()


def test_the_run_freezes_start_up_objects_for_the_gc_and_unfreezes_them_at_the_end(tmp_path: Path) -> None:
    frozen: list[int] = []
    app = _app(tmp_path, lambda _stats: frozen.append(gc.get_freeze_count()))
    assert asyncio.run(_run(app, 3)) == 3
    assert len(frozen) == 3
    assert all(count > 0 for count in frozen)  # during the run, start-up's objects are out of the GC's scans
    assert gc.get_freeze_count() == 0  # collectable again afterwards
    app.close()


def test_the_store_is_asked_for_a_wal_checkpoint_after_every_tick_never_during_one(tmp_path: Path) -> None:
    app = _app(tmp_path)
    asked: list[bool] = []
    store = app.orchestrator.store
    original = store.checkpoint_if_due

    def checkpoint_if_due() -> bool:
        asked.append(store._db.in_transaction)  # the SQLite wrapper's own view of an open transaction
        return original()

    store.checkpoint_if_due = checkpoint_if_due  # type: ignore[method-assign]
    assert asyncio.run(_run(app, 4)) == 4
    assert len(asked) >= 4  # each iteration's tick (and any scan or stop tick between them)
    assert not any(asked)
    app.close()


def test_sigterm_stops_the_loop_gracefully(tmp_path: Path) -> None:
    def on_iteration(stats: dict[str, Any]) -> None:
        if stats["iteration"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    app = _app(tmp_path, on_iteration)
    iterations = asyncio.run(_run(app))
    assert 3 <= iterations <= 5  # delivered within a loop cycle or two; the current iteration always completes
    assert journal_count(app.store.path, "IterationCompleted") == iterations
    app.close()


def test_a_failing_observer_does_not_stop_the_loop(tmp_path: Path) -> None:
    app = _app(tmp_path)

    def broken(_: BarsFetched) -> None:
        raise RuntimeError("strategy bug")

    app.orchestrator.bus.subscribe(BarsFetched, broken)
    assert asyncio.run(_run(app, iterations=20)) == 20
    assert sum(app.orchestrator.bus.handler_errors.values()) == 20
    app.close()


def test_a_strategy_that_raises_costs_its_signals_not_the_daemon(tmp_path: Path) -> None:
    app = _app(tmp_path)
    scanner = app.orchestrator.scanner

    def broken(frame: BarFrame, *, new_rows: int) -> list[SignalGenerated]:
        raise ValueError("plug-in bug")

    scanner.on_bars = broken  # type: ignore[method-assign]
    with capture_logs() as logs:
        assert asyncio.run(_run(app, iterations=20)) == 20
    assert [line["strategy"] for line in logs if line["event"] == "strategy_failed"] == ["zscore_mr"] * 20
    assert journal_count(app.store.path, "IterationCompleted") == 20  # every iteration still ran to its end
    assert journal_count(app.store.path, "SignalGenerated") == 0
    app.close()


def test_the_run_counts_are_the_journals(tmp_path: Path) -> None:
    app = _app(tmp_path)
    stats = asyncio.run(_run_stats(app))
    path = app.store.path

    def journal(type_name: str) -> int:
        return journal_count(path, type_name)

    assert stats.iterations == journal("IterationCompleted") == 61
    assert stats.signals == journal("SignalGenerated") > 0
    assert stats.validated == journal("SignalValidated")
    assert stats.approved == journal("OrderApproved") > 0
    assert sum(stats.denied.values()) == journal("OrderDenied")
    assert stats.orders == journal("OrderSubmitted")
    assert stats.fills == journal("OrderFilled") == len(app.store.fills())
    app.close()


async def _run_stats(app: App) -> RunStats:
    await load_assets(app)
    return await app.orchestrator.run()


async def test_market_hours_schedule_sleeps_through_the_weekend() -> None:
    calendar = NyseCalendar()
    clock = SimClock(datetime(2017, 6, 3, 15, tzinfo=UTC))  # a Saturday
    ticks: list[datetime] = []
    async for tick in MarketHoursSchedule(clock, calendar, interval=3600):
        if tick is Tick.SCAN:
            assert not calendar.is_open(clock.now())
            continue
        ticks.append(clock.now())
        if len(ticks) == 8:
            break
    assert ticks[0] == calendar.session_open(date(2017, 6, 5))  # Monday's open
    assert all(calendar.is_open(t) for t in ticks)
    assert ticks[-1].date() == date(2017, 6, 6)  # 7 hourly ticks on Monday (9:30..15:30), then Tuesday's open


@pytest.mark.parametrize("holiday", [date(2017, 7, 4), date(2017, 12, 25)])
async def test_market_hours_schedule_skips_holidays(holiday: date) -> None:
    calendar = NyseCalendar()
    clock = SimClock(datetime.combine(holiday, datetime.min.time(), tzinfo=UTC))
    async for tick in MarketHoursSchedule(clock, calendar, interval=60):
        if tick is Tick.ITERATE:
            assert clock.now().date() > holiday
            break


def test_a_broker_outage_skips_the_iteration_and_the_daemon_stays_up(tmp_path: Path) -> None:
    app = _app(tmp_path)
    real_get_account = app.broker.get_account
    calls = {"n": 0}

    async def flaky_get_account() -> Any:
        calls["n"] += 1
        if calls["n"] in (3, 4):
            raise TransientBrokerError("HTTP 503 after the adapter's retries")
        return await real_get_account()

    app.broker.get_account = flaky_get_account  # type: ignore[method-assign]
    asyncio.run(_run(app, iterations=10))
    assert app.orchestrator.stats.iterations == 10  # two ticks failed, the loop went on
    assert app.orchestrator.stats.errors == {"TransientBrokerError": 2}
    app.close()


def test_a_position_the_daemon_did_not_buy_is_never_sold(tmp_path: Path) -> None:
    app = _app(tmp_path)
    # The user's own long-term holding in the same account, bought long before the daemon ran.
    app.broker._holdings["AAPL"] = _Holding(qty=Decimal(500), avg_entry_price=Decimal(20))  # type: ignore[attr-defined]
    asyncio.run(_run(app))
    bought = sum(f.qty for f in app.store.fills() if f.symbol == "AAPL" and f.side is OrderSide.BUY)
    sold = sum(f.qty for f in app.store.fills() if f.symbol == "AAPL" and f.side is OrderSide.SELL)
    assert sold <= bought  # exits and stops only ever sell what the daemon's own fills bought
    app.close()


def test_scanner_focus_always_keeps_held_symbols_watched(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, use_scanner=True, log_level="ERROR")
    app = build_sim(settings, start=date(2014, 1, 2), end=date(2014, 4, 30))
    unwatched: list[tuple[str, set[str]]] = []
    changes: list[int] = []

    def check(event: BarsFetched) -> None:
        held = set(app.orchestrator.portfolio.positions)
        missing = held - set(event.frame.symbols)
        if missing:
            unwatched.append((str(event.ts_event.date()), missing))
        changes.append(len(event.frame.symbols))

    app.orchestrator.bus.subscribe(BarsFetched, check)
    asyncio.run(_run(app))
    assert app.orchestrator.focus is not None
    assert app.orchestrator.focus.scans > 50  # the focus really moved with the daily scan
    assert app.store.order_records()
    assert unwatched == []
    app.close()


async def test_the_sim_schedule_protects_at_each_open_before_the_close_iteration() -> None:
    calendar = NyseCalendar()
    sessions = [date(2017, 7, 3), date(2017, 7, 5)]
    clock = SimClock(calendar.session_open(sessions[0]))
    seen = [(tick, clock.now()) async for tick in SimSchedule(clock, calendar, sessions, protect=True)]
    assert seen == [
        (Tick.PROTECT, calendar.session_open(sessions[0])),
        (Tick.ITERATE, calendar.session_close(sessions[0])),
        (Tick.PROTECT, calendar.session_open(sessions[1])),
        (Tick.ITERATE, calendar.session_close(sessions[1])),
    ]


def test_stop_mode_close_places_no_stop(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, use_scanner=False, symbols=SYMBOLS, log_level="ERROR", stop_mode="close")
    app = build_sim(settings, start=date(2016, 1, 4), end=date(2016, 3, 31))
    assert app.orchestrator.protection is None
    stats = asyncio.run(_run_stats(app))
    assert stats.fills > 0
    assert stats.stops_placed == 0
    assert not any(is_protective_stop_id(r.order.client_order_id) for r in app.store.order_records())
    app.close()


def test_a_broker_error_ticks_failure_is_in_the_journal_at_once(tmp_path: Path) -> None:
    """`tradingd serve`'s health reads the journal: the failed tick's `IterationFailed` is written when it fails, not
    at the next successful commit, and it is the journal's newest iteration row until then."""
    app = _app(tmp_path)
    real_get_account = app.broker.get_account
    calls = {"n": 0}
    seen_at_next_call: list[int] = []

    async def failing_once() -> Any:
        calls["n"] += 1
        if calls["n"] == 4:  # the tick after the failed one has started, nothing committed since: what is journaled?
            seen_at_next_call.append(journal_count(app.store.path, "IterationFailed"))
        if calls["n"] == 3:
            raise TransientBrokerError("HTTP 503 after the adapter's retries")
        return await real_get_account()

    app.broker.get_account = failing_once  # type: ignore[method-assign]
    asyncio.run(_run(app, iterations=4))
    assert seen_at_next_call == [1]  # committed when the tick failed (before: buffered until the next commit)
    assert journal_count(app.store.path, "IterationFailed") == 1
    app.close()
