"""`tradingd`: the daemon's command line.

Exit codes: 0 success, 2 bad input or configuration, 1 any other failure. With `--json`, one JSON object is printed
on stdout at the end and logs stay on stderr.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypeVar

import structlog
import typer
from rich.table import Table

from agents.focus_scoring import persisted_scores
from agents.risk import halt_trading, read_trading_state, resume_trading
from agents.sizing import TierExposureTracker, effective_positions, herfindahl
from config.settings import ConfigError, Settings, load_settings
from core.broker.base import AuthenticationError, BrokerError
from core.clock import LiveClock
from core.close_requests import CloseRequest, CloseRequests
from core.console import (
    ReplayProgress,
    backups_table,
    fills_table,
    orders_table,
    print_status,
    print_summary,
    print_table,
    replay_header,
)
from core.daemon_lock import DaemonLock, StateInUseError, acquire_daemon_lock
from core.flags import FLAG_DRAWDOWN, FLAG_HALTED, FLAG_RECOVERY, FLAG_REDUCE_ONLY
from core.logging import close_logging, configure_logging, log_file_path
from core.reasons import Breaker
from core.redact import redact
from core.run_stats import RunStats
from core.state_backup import BackupFile, backup_dir, list_backups
from core.state_guard import GuardedFlags, KillSwitchFile, kill_switch_path
from core.state_restore import Restored, RestoreError, resolve_backup, restore_state
from core.store import OrderRecord, StateStore, StateStoreError
from core.timeconv import ny_instant
from core.types import Fill, OrderStatus, TradingMode
from tradingd import __version__
from tradingd.app import App, SetupError, build_live, build_sim, configured_tiers, run_app, state_db_path
from tradingd.cli_options import DATE_FORMATS, JsonOpt, ModeOpt, as_date
from tradingd.cli_scan import register as register_scan_commands
from tradingd.cli_strategies import register as register_strategy_commands
from tradingd.configs import tier_config
from tradingd.manual_close import Closed, NotHeldError, close_positions, request_close
from tradingd.orchestrator import SimSchedule

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Multi-agent trading daemon for US equities.",
    rich_markup_mode=None,
)
log = structlog.get_logger("tradingd")
register_scan_commands(app)  # scan, validate, cache refresh
register_strategy_commands(app)  # strategies

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tradingd {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit", is_eager=True, callback=_version, metavar=""),
    ] = False,
) -> None:
    """Multi-agent trading daemon for US equities."""


def _settings(*, broker: bool = True, **overrides: Any) -> Settings:
    """Settings or exit 2; `broker=False` for commands that only touch the local state (no keys needed)."""
    try:
        given = {k: v for k, v in overrides.items() if v is not None}
        # `replay` forces sim itself; only a user's `--mode` is reported as `--mode`.
        source = "--mode {}" if overrides.get("trading_mode") is not None else "TRADING_MODE={}"
        settings = load_settings(broker=broker, mode_source=source, **given)
    except ConfigError as error:
        typer.echo(redact(str(error)), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    configure_logging(settings.log_format, settings.log_level)
    return settings


def run_summary(app_: App, stats: RunStats, elapsed: float) -> dict[str, Any]:
    orch = app_.orchestrator
    start = stats.start_equity or Decimal(0)
    ret = (stats.equity / start - 1) * 100 if start else Decimal(0)
    return {
        "mode": app_.settings.mode.value,
        "strategy": app_.strategy.name,
        "symbols": len(app_.symbols),
        "focus": {
            "source": orch.focus.source if orch.focus else "settings",
            "daily_scans": orch.focus.scans if orch.focus else 0,
            "symbols": list(orch.data.symbols),
        },
        "iterations": stats.iterations,
        "bars": stats.bars,
        "signals": stats.signals,
        "validated": stats.validated,
        "rejected": dict(stats.rejected),
        "orders_approved": stats.approved,
        "denied": dict(stats.denied),
        "orders": stats.orders,
        "orders_rejected": dict(stats.orders_rejected),
        "orders_canceled": dict(stats.orders_canceled),
        "fills": stats.fills,
        "stops": {
            "mode": app_.settings.stop_mode,
            "placed": stats.stops_placed,
            "triggered": len(stats.stops_triggered),
            "cancels": dict(stats.stop_cancels),
            "denied": dict(stats.stops_denied),
            "exits_withheld": dict(stats.exits_withheld),
            "oversells": stats.oversells,
        },
        "bad_bars": dict(stats.bad_bars),
        "errors": dict(stats.errors),
        "start_equity": str(start.quantize(Decimal("0.01"))),
        "final_equity": str(stats.equity.quantize(Decimal("0.01"))),
        "return_pct": float(round(ret, 3)),
        "max_drawdown_pct": float(round(stats.max_drawdown * 100, 3)),
        "exposure_by_tier": orch.risk.exposure().get("tiers", {}),
        "elapsed_s": round(elapsed, 3),
        "bars_per_s": round(stats.bars / elapsed, 1) if elapsed > 0 else 0.0,
    }


class _IterationSink:
    """The orchestrator's per-iteration callback: the `iteration` log event (file; console in real time only) and
    the replay's progress display."""

    def __init__(self) -> None:
        self.progress: ReplayProgress | None = None

    def __call__(self, stats: dict[str, Any]) -> None:
        log.info("iteration", **stats)
        if self.progress is not None:
            self.progress.update(stats["iteration"], stats["session"], stats["equity"])


async def _run_app(app_: App, iterations: int | None) -> RunStats:
    await run_app(app_, iterations)
    return app_.orchestrator.stats


def _replay_sessions(app_: App, iterations: int | None) -> list[date]:
    schedule = app_.orchestrator.schedule
    sessions = list(schedule.sessions) if isinstance(schedule, SimSchedule) else []
    return sessions[:iterations] if iterations is not None else sessions


def _run(
    settings: Settings,
    *,
    iterations: int | None,
    start: date | None,
    end: date | None,
    as_json: bool,
    trades_csv: Path | None,
    command: str,
) -> None:
    t0 = time.perf_counter()
    log_file = log_file_path(settings.data_dir, settings.mode.value)
    # Before anything touches the state (a sim build deletes the DB files): a second daemon on this state exits 2.
    lock = _daemon_lock(settings, command, log_file)
    try:
        _run_locked(
            settings,
            iterations=iterations,
            start=start,
            end=end,
            as_json=as_json,
            trades_csv=trades_csv,
            t0=t0,
            log_file=log_file,
        )
    finally:
        lock.release()


def _daemon_lock(settings: Settings, command: str, log_file: Path) -> DaemonLock:
    state_dir = state_db_path(settings).parent
    try:
        return acquire_daemon_lock(state_dir, command)
    except StateInUseError as error:
        # Recorded in the mode's log file too: the holder's operator sees that a second start was refused.
        configure_logging(settings.log_format, settings.log_level, log_file=log_file, quiet=True)
        log.error("state_in_use", state_dir=str(state_dir), holder=error.holder, command=command, file_only=True)
        close_logging()
        typer.echo(redact(f"error: {error}"), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def _run_locked(
    settings: Settings,
    *,
    iterations: int | None,
    start: date | None,
    end: date | None,
    as_json: bool,
    trades_csv: Path | None,
    t0: float,
    log_file: Path,
) -> None:
    replaying = settings.mode is TradingMode.SIM
    configure_logging(settings.log_format, settings.log_level, log_file=log_file, replay=replaying)
    sink = _IterationSink()
    try:
        if replaying:
            app_ = build_sim(settings, start=start, end=end, on_iteration=sink, range_names=("--start", "--end"))
        else:
            app_ = build_live(settings, on_iteration=sink)
    except (SetupError, ConfigError) as error:
        log.error("setup_failed", error=str(error), file_only=True)
        close_logging()
        typer.echo(redact(f"error: {error}"), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    try:
        log.info(
            "daemon_starting",
            mode=settings.mode.value,
            symbols=len(app_.symbols),
            db=str(app_.store.path),
            log_file=str(log_file),
        )
        if replaying:
            sessions = _replay_sessions(app_, iterations)
            sink.progress = ReplayProgress(len(sessions))
            scanning = app_.orchestrator.focus is not None
            sink.progress.announce(replay_header(sessions, len(app_.symbols), str(log_file), scanning=scanning))
        try:
            stats = asyncio.run(_run_app(app_, iterations))
        except (SetupError, AuthenticationError) as error:
            log.error("startup_failed", error=str(error), kind=type(error).__name__, file_only=True)
            typer.echo(redact(f"error: {error}"), err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except BrokerError as error:  # e.g. the broker unreachable at start-up, after the adapter's retries
            log.error("broker_unavailable", error=str(error), kind=type(error).__name__, file_only=True)
            typer.echo(redact(f"error: broker unavailable: {error}"), err=True)
            raise typer.Exit(EXIT_FAILURE) from None
        finally:
            if sink.progress is not None:
                sink.progress.close()
        summary = run_summary(app_, stats, time.perf_counter() - t0)
        summary["log_file"] = str(log_file)
        if trades_csv is not None:
            write_trades_csv(app_.store, trades_csv)
            summary["trades_csv"] = str(trades_csv)
        log.info("run_summary", **summary)
    finally:
        app_.close()
        close_logging()
    if as_json:
        typer.echo(json.dumps(summary, default=str))
    else:
        print_summary(summary)


def write_trades_csv(store: StateStore, path: Path) -> int:
    fills = store.fills()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ts", "symbol", "side", "qty", "price", "client_order_id"])
        for fill in fills:
            writer.writerow(
                [fill.ts.isoformat(), fill.symbol, fill.side.value, fill.qty, fill.price, fill.client_order_id]
            )
    return len(fills)


@app.command()
def run(
    mode: ModeOpt = None,
    iterations: Annotated[int | None, typer.Option(help="Stop after N iterations", min=1)] = None,
    once: Annotated[bool, typer.Option("--once", help="Run a single iteration", metavar="")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the daemon (sim mode by default when no Alpaca keys are set)."""
    settings = _settings(trading_mode=mode)
    _run(
        settings,
        iterations=1 if once else iterations,
        start=None,
        end=None,
        as_json=as_json,
        trades_csv=None,
        command="run",
    )


@app.command()
def replay(
    start: Annotated[
        datetime | None, typer.Option(formats=DATE_FORMATS, help="First session (default: the first bundled one)")
    ] = None,
    end: Annotated[
        datetime | None, typer.Option(formats=DATE_FORMATS, help="Last session (default: the last bundled one)")
    ] = None,
    trades_csv: Annotated[Path | None, typer.Option("--trades-csv", help="Write every fill to this CSV")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay the bundled real bars through the whole pipeline (sim mode), as fast as it goes."""
    settings = _settings(trading_mode=TradingMode.SIM)
    _run(
        settings,
        iterations=None,
        start=as_date(start),
        end=as_date(end),
        as_json=as_json,
        trades_csv=trades_csv,
        command="replay",
    )


def _open_store(settings: Settings) -> StateStore:
    return StateStore(state_db_path(settings))


def _guarded(store: StateStore) -> GuardedFlags:
    """The store's flags with the kill-switch file: a halt survives the loss of the DB (core/state_guard.py)."""
    flags = GuardedFlags(store, KillSwitchFile(kill_switch_path(store.path)))
    flags.sync()
    return flags


@app.command()
def status(mode: ModeOpt = None, as_json: JsonOpt = False) -> None:
    """Show the persisted state: orders, fills, positions, equity, kill switch and circuit breakers."""
    settings = _settings(broker=False, trading_mode=mode)
    try:
        tiers = configured_tiers(settings)
    except SetupError as error:
        typer.echo(redact(f"error: {error}"), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    with _open_store(settings) as store:
        trading_state = read_trading_state(_guarded(store)).as_json()
        summary = store.summary()
        summary["trading_state"] = trading_state
        summary["close_requests"] = [r.as_json() for r in CloseRequests(store).pending()]
        positions = store.load_positions()
        open_orders = store.open_orders()
        summary["focus_scores"] = persisted_scores(store, LiveClock().now(), settings.scoring_interval_minutes)
    tracker = TierExposureTracker(tier_config(settings, tiers))
    tracker.rebuild(positions)
    values = [p.market_value for p in positions.values()]
    summary["exposure"] = tracker.snapshot()
    summary["herfindahl"] = str(round(herfindahl(values), 4))
    summary["effective_positions"] = str(round(effective_positions(values), 2))
    summary["mode"] = settings.mode.value
    summary["db"] = str(state_db_path(settings))
    if as_json:
        typer.echo(json.dumps(summary, default=str))
    else:
        held_tiers = {symbol: item["tier"] for symbol, item in summary["exposure"]["symbols"].items()}
        print_status(summary, positions, open_orders, held_tiers)


def _state_note(settings: Settings, existed: bool) -> str:
    """Where the flag was written, so a halt from the wrong directory or DATA_DIR cannot pass unnoticed."""
    db = state_db_path(settings)
    if existed:
        return f"state DB {db}"
    return f"state DB {db} did not exist and was created: no daemon has run with this DATA_DIR yet"


def _quiet_logging(settings: Settings) -> None:
    """The daemon's log file records the command's events; the console shows only the command's own result line."""
    configure_logging(
        settings.log_format,
        settings.log_level,
        log_file=log_file_path(settings.data_dir, settings.mode.value),
        quiet=True,
    )


@app.command()
def halt(
    reason: Annotated[str, typer.Option(help="Why trading is halted")] = "manual",
    reduce_only: Annotated[
        bool, typer.Option("--reduce-only", help="Block entries only; exits and stops go on", metavar="")
    ] = False,
    mode: ModeOpt = None,
) -> None:
    """Kill switch: block every new order until `tradingd resume` (persists across restarts, and the loss of the
    state DB); with --reduce-only, block new entries only."""
    settings = _settings(broker=False, trading_mode=mode)
    existed = state_db_path(settings).exists()
    _quiet_logging(settings)
    try:
        with _open_store(settings) as store:
            halt_trading(_guarded(store), reason, reduce_only=reduce_only)
    finally:
        close_logging()
    what = "reducing" if reduce_only else "halted"
    typer.echo(f"{what} ({settings.mode.value}): {reason}; {_state_note(settings, existed)}")


@app.command()
def resume(mode: ModeOpt = None) -> None:
    """Lift the kill switch, reduce-only, recovery and the drawdown circuit breaker (and its flatten, if any)."""
    settings = _settings(broker=False, trading_mode=mode)
    existed = state_db_path(settings).exists()
    _quiet_logging(settings)
    try:
        with _open_store(settings) as store:
            flags = _guarded(store)
            if all(flags.get_flag(f) is None for f in (FLAG_HALTED, FLAG_DRAWDOWN, FLAG_REDUCE_ONLY, FLAG_RECOVERY)):
                # Not an error (exit 0), but say so: "resumed" would suggest something had been stopped.
                typer.echo(f"nothing to resume ({settings.mode.value}): not halted; {_state_note(settings, existed)}")
                return
            flattening = any(r.breaker == Breaker.MAX_DRAWDOWN for r in CloseRequests(store).pending())
            mark = store.latest_equity_mark()
            lifted = resume_trading(flags, equity=mark.last_equity if mark is not None else None)
    finally:
        close_logging()
    lifted_note = ", drawdown breaker lifted" if lifted else ""
    lifted_note += " and its flatten withdrawn" if lifted and flattening else ""
    typer.echo(f"resumed ({settings.mode.value}){lifted_note}; {_state_note(settings, existed)}")


# ---- close: sell positions by hand ----------------------------------------------------------------------------------


@app.command()
def close(
    symbols: Annotated[
        list[str] | None,
        typer.Argument(help="Symbols to sell (the quantity the daemon owns)", metavar="SYMBOL", show_default=False),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Sell every position the daemon owns", metavar="")] = False,
    mode: ModeOpt = None,
) -> None:
    """Sell positions by hand (paper/live), exit reason `manual`: the quantity the daemon's own fills bought, never
    your own shares. With a daemon running on this state it sells at its next iteration; with none, this command
    starts up like `run`, sells, and waits a little for the fills."""
    if all_ == bool(symbols):
        raise typer.BadParameter("give one or more symbols, or --all", param_hint="SYMBOL")
    settings = _settings(broker=False, trading_mode=mode)
    if settings.mode is TradingMode.SIM:
        typer.echo("error: close acts on a paper/live account; this is sim (use --mode paper or live)", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    wanted = None if all_ else list(dict.fromkeys(s.strip().upper() for s in symbols or ()))
    try:
        lock = acquire_daemon_lock(state_db_path(settings).parent, "close")
    except StateInUseError as error:
        _request_close(settings, wanted, error.holder)
        return
    try:
        _close_here(mode, wanted)
    finally:
        lock.release()


def _close_failed(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    typer.echo(redact(f"error: {message}"), err=True)
    return typer.Exit(code)


def _request_close(settings: Settings, wanted: list[str] | None, holder: str) -> None:
    """A daemon holds the state: write the requests for it to carry out at its next iteration."""
    _quiet_logging(settings)
    try:
        with _open_store(settings) as store:
            requested = request_close(store, wanted, LiveClock().now())
            view = read_trading_state(_guarded(store))
    except NotHeldError as error:
        raise _close_failed(f"close: {error}") from None
    finally:
        close_logging()
    where = f"({settings.mode.value})"
    if not requested:
        typer.echo(f"nothing to close {where}: the daemon owns no position; state DB {state_db_path(settings)}")
        return
    selling = ", ".join(f"{r.position.symbol} {r.position.qty.normalize():f}" for r in requested)
    typer.echo(f"close requested {where}: {holder} holds this state and sells at its next iteration: {selling}")
    for item in requested:
        if not item.new:
            refused = f"; last refused: {item.request.refused}" if item.request.refused else ""
            typer.echo(f"note: {item.position.symbol} was already requested at {_when(item.request)}{refused}")
    if not view.state.allows_exits:
        typer.echo(f"note: trading is {view.state.value}: {view.cause[1]}; the daemon sells once exits are allowed")


def _when(request: CloseRequest) -> str:
    return f"{request.requested_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _close_here(mode: TradingMode | None, wanted: list[str] | None) -> None:
    """No daemon runs on the state, and this process holds its lock: start up, sell, wait for the fills."""
    settings = _settings(trading_mode=mode)  # this process talks to the broker: the keys are needed now
    _quiet_logging(settings)
    try:
        app_ = build_live(settings)
    except (SetupError, ConfigError) as error:
        close_logging()
        raise _close_failed(str(error)) from None
    try:
        closed = asyncio.run(close_positions(app_, wanted))
    except NotHeldError as error:
        raise _close_failed(f"close: {error}") from None
    except (SetupError, AuthenticationError) as error:
        raise _close_failed(str(error)) from None
    except BrokerError as error:
        raise _close_failed(f"broker unavailable: {error}", EXIT_FAILURE) from None
    finally:
        app_.close()
        close_logging()
    _print_closed(settings, closed)


def _print_closed(settings: Settings, closed: list[Closed]) -> None:
    where = f"({settings.mode.value})"
    if not closed:
        typer.echo(f"nothing to close {where}: the daemon owns no position; state DB {state_db_path(settings)}")
        return
    for item in closed:
        typer.echo(f"close {where}: {item.symbol}: {item.text}")
    if not all(item.done for item in closed):
        raise typer.Exit(EXIT_FAILURE)


# ---- orders / fills: what the store holds (local state only, never the broker, never the daemon lock) ---------------

OPEN_STATUS = "open"  # `--status open`: every status still working at the broker


def _status_filter(value: str | None) -> set[OrderStatus] | None:
    """The `--status` value as statuses, or a usage error (exit 2) listing the accepted values."""
    if value is None:
        return None
    wanted = value.strip().lower()
    if wanted == OPEN_STATUS:
        return {s for s in OrderStatus if s.is_open}
    try:
        return {OrderStatus(wanted)}
    except ValueError:
        accepted = ", ".join([OPEN_STATUS, *(s.value for s in OrderStatus)])
        raise typer.BadParameter(f"{value!r} is not one of {accepted}", param_hint="--status") from None


T = TypeVar("T")


def _list_stored(
    settings: Settings,
    *,
    key: str,
    read: Callable[[StateStore], Sequence[T]],
    as_json: bool,
    row_json: Callable[[T], dict[str, Any]],
    table: Callable[[Sequence[T]], Table],
) -> None:
    """`orders` and `fills`: read the local state DB, print rows as JSON or a table with the DB's path under it."""
    db = state_db_path(settings)
    # A listing is read-only: it does not create a state DB where no daemon has run (status/halt may, this need not).
    existed = db.exists()
    rows: Sequence[T] = []
    if existed:
        with StateStore(db) as store:
            rows = read(store)
    if as_json:
        typer.echo(json.dumps({"mode": settings.mode.value, "db": str(db), key: [row_json(r) for r in rows]}))
        return
    # Names the DB read, so a listing from the wrong directory or DATA_DIR cannot pass for "no orders".
    note = f"state DB {db}" if existed else f"state DB {db} does not exist: no daemon has run with this DATA_DIR yet"
    print_table(table(rows), note)


def _order_json(record: OrderRecord) -> dict[str, Any]:
    order = record.order
    return {
        "client_order_id": order.client_order_id,
        "broker_order_id": order.broker_order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "qty": _str_or_none(order.qty),
        "notional": _str_or_none(order.notional),
        "filled_qty": str(order.filled_qty),
        "filled_avg_price": _str_or_none(order.filled_avg_price),
        "status": order.status.value,
        "submitted_at": _iso_or_none(order.submitted_at),
        "updated_at": _iso_or_none(order.updated_at),
        "reason": order.reason,
        "order_type": order.order_type.value,
        "time_in_force": order.time_in_force.value,
        "stop_price": _str_or_none(order.stop_price),
        "trail_percent": _str_or_none(order.trail_percent),
        "strategy": record.strategy,
        "tier": None if record.tier is None else record.tier.value,
    }


def _fill_json(fill: Fill) -> dict[str, Any]:
    return {
        "ts": fill.ts.isoformat(),
        "symbol": fill.symbol,
        "side": fill.side.value,
        "qty": str(fill.qty),
        "price": str(fill.price),
        "client_order_id": fill.client_order_id,
        "execution_id": fill.execution_id,
    }


def _str_or_none(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@app.command()
def orders(
    status_: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only orders in this status: open (every working status) or "
            + " | ".join(s.value for s in OrderStatus),
        ),
    ] = None,
    mode: ModeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the stored orders (oldest first); reads the local state DB only."""
    statuses = _status_filter(status_)
    settings = _settings(broker=False, trading_mode=mode)
    title = f"orders ({settings.mode.value}{'' if status_ is None else ', ' + status_.strip().lower()})"
    _list_stored(
        settings,
        key="orders",
        read=lambda store: store.order_records(statuses),
        as_json=as_json,
        row_json=_order_json,
        table=lambda records: orders_table([r.order for r in records], title),
    )


@app.command()
def fills(
    since: Annotated[
        datetime | None,
        typer.Option(formats=DATE_FORMATS, help="Only fills on or after this day (New York date)"),
    ] = None,
    mode: ModeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the stored fills in time order; reads the local state DB only."""
    settings = _settings(broker=False, trading_mode=mode)
    day = as_date(since)
    # Trading days are New York days: a fill at 20:30 New York time on the 4th is the 4th's, though UTC says the 5th.
    start = None if day is None else ny_instant(day)
    title = f"fills ({settings.mode.value}{'' if day is None else f', since {day}'})"
    _list_stored(
        settings,
        key="fills",
        read=lambda store: store.fills(start),
        as_json=as_json,
        row_json=_fill_json,
        table=lambda found: fills_table(list(found), title),
    )


# ---- restore: a backup of the state DB in place of the current one ---------------------------------------------------


def _backup_json(backup: BackupFile) -> dict[str, Any]:
    return {"date": backup.day.isoformat(), "size": backup.size, "path": str(backup.path)}


def _list_backups(settings: Settings, as_json: bool) -> None:
    directory = backup_dir(state_db_path(settings))
    backups = list_backups(directory)
    if as_json:
        typer.echo(
            json.dumps(
                {"mode": settings.mode.value, "dir": str(directory), "backups": [_backup_json(b) for b in backups]}
            )
        )
        return
    kept = settings.state_backup_days
    policy = f"the newest {kept} are kept (STATE_BACKUP_DAYS)" if kept else "STATE_BACKUP_DAYS=0: no new backups"
    print_table(backups_table(backups, f"backups ({settings.mode.value})"), f"backups in {directory}; {policy}")


def _next_start(settings: Settings, restored: Restored) -> str:
    """What the next daemon start does with the restored DB, as the user will see it."""
    if settings.mode is TradingMode.SIM:
        return "a sim run starts from a fresh state; until then status, orders and fills read the restored DB"
    kept = ", ".join(f"{name} ({reason})" for name, reason in restored.kill_switch.items())
    kill_switch = f"; kill switch kept: {kept}" if kept else ""
    if settings.recovery_auto_resume:
        return f"reconciles with the broker and starts in its normal state (RECOVERY_AUTO_RESUME=true){kill_switch}"
    return f"reconciles with the broker and starts reducing until `tradingd resume`{kill_switch}"


@app.command()
def restore(
    target: Annotated[
        str | None,
        typer.Argument(help="The backup to install: its date (YYYY-MM-DD, see --list) or a file", show_default=False),
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the backups (date, size, path)", metavar="")] = False,
    mode: ModeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Install a backup as the state DB: the current DB is set aside (never deleted), the kill switch is kept, and
    the next start reconciles with the broker in reducing (unless RECOVERY_AUTO_RESUME=true). Refused while a
    daemon runs on this state."""
    if list_ == (target is not None):
        raise typer.BadParameter("give a backup date (YYYY-MM-DD) or file, or --list", param_hint="TARGET")
    settings = _settings(broker=False, trading_mode=mode)
    if target is None:
        _list_backups(settings, as_json)
        return
    db = state_db_path(settings)
    try:
        source = resolve_backup(db, target)
    except RestoreError as error:
        typer.echo(redact(f"error: {error}"), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    log_file = log_file_path(settings.data_dir, settings.mode.value)
    lock = _daemon_lock(settings, "restore", log_file)  # exit 2 naming the daemon that runs on this state
    try:
        _quiet_logging(settings)
        recovery = settings.mode is not TradingMode.SIM and not settings.recovery_auto_resume
        restored = restore_state(db, source, recovery=recovery, now=LiveClock().now())
    except (RestoreError, StateStoreError) as error:
        typer.echo(redact(f"error: {error}"), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    finally:
        close_logging()
        lock.release()
    next_start = _next_start(settings, restored)
    set_aside = None if restored.set_aside is None else str(restored.set_aside)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "mode": settings.mode.value,
                    "db": str(db),
                    "restored_from": str(source),
                    "set_aside": set_aside,
                    "kill_switch": restored.kill_switch,
                    "next_start": next_start,
                }
            )
        )
        return
    previous = f"the previous DB was set aside as {set_aside}" if set_aside else "there was no previous DB"
    typer.echo(f"restored ({settings.mode.value}): {source} is now {db}; {previous}")
    typer.echo(f"next start: {next_start}")


def describe_os_error(error: OSError) -> str:
    """One line naming the file and the reason, e.g. `var/sim/logs: File exists`."""
    # mkdir's EEXIST on a path that is a file reads as nonsense ("File exists") to someone who asked for a folder.
    reason = "exists and is not a directory" if isinstance(error, FileExistsError) else error.strerror
    reason = reason or type(error).__name__
    names = [str(name) for name in (error.filename, error.filename2) if name is not None]
    return f"{' -> '.join(names)}: {reason}" if names else f"{reason}: {error}"


def main() -> None:
    try:
        # An explicit name: under `python -m tradingd` click would otherwise show `python -m tradingd` in usage lines.
        app(prog_name="tradingd")
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as error:
        # A path the user's settings point at is not usable (DATA_DIR is a file, a folder is read-only, a log path
        # is a directory...): bad environment, exit 2 with one line. LOG_LEVEL=DEBUG keeps the traceback.
        if os.environ.get("LOG_LEVEL", "").upper() == "DEBUG":
            raise
        typer.echo(redact(f"error: {describe_os_error(error)}"), err=True)
        sys.exit(EXIT_BAD_INPUT)
