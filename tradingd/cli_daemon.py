"""`tradingd run` and `tradingd replay`: build the daemon for the mode, run it under the state's lock, summarise.

Imported by those two commands only (it loads the whole daemon: pandas, the calendar, the agents, alpaca-py).
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
import typer

from config.settings import ConfigError, Settings
from core.broker.base import AuthenticationError, BrokerError
from core.console import ReplayProgress, print_summary, replay_header
from core.logging import close_logging, configure_logging, log_file_path
from core.redact import redact
from core.run_stats import RunStats
from core.store import StateStore
from core.types import TradingMode
from tradingd.app import App, SetupError, build_live, build_sim, run_app
from tradingd.cli_common import daemon_lock_or_exit
from tradingd.cli_options import EXIT_BAD_INPUT, EXIT_FAILURE
from tradingd.cli_report import add_report_to_summary, run_report_path, write_run_report
from tradingd.daemon_life import daemon_life
from tradingd.orchestrator import SimSchedule

if TYPE_CHECKING:
    from tradingd.web.server import DaemonDashboard

log = structlog.get_logger("tradingd")


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


def run_daemon(
    settings: Settings,
    *,
    iterations: int | None,
    start: date | None,
    end: date | None,
    as_json: bool,
    trades_csv: Path | None,
    command: str,
    report_html: Path | None = None,
    pace_seconds: float = 0.0,
) -> None:
    t0 = time.perf_counter()
    log_file = log_file_path(settings.data_dir, settings.mode.value)
    # Before anything touches the state (a sim build deletes the DB files): a second daemon on this state exits 2.
    lock = daemon_lock_or_exit(settings, command, log_file)
    try:
        _run_locked(
            settings,
            iterations=iterations,
            start=start,
            end=end,
            as_json=as_json,
            trades_csv=trades_csv,
            report_html=run_report_path(settings) if command == "run" else report_html,
            pace_seconds=pace_seconds,
            t0=t0,
            log_file=log_file,
            command=command,
        )
    finally:
        lock.release()


def _run_locked(
    settings: Settings,
    *,
    iterations: int | None,
    start: date | None,
    end: date | None,
    as_json: bool,
    trades_csv: Path | None,
    report_html: Path | None,
    t0: float,
    log_file: Path,
    command: str,
    pace_seconds: float = 0.0,
) -> None:
    replaying = settings.mode is TradingMode.SIM
    configure_logging(settings.log_format, settings.log_level, log_file=log_file, replay=replaying)
    sink = _IterationSink()
    try:
        if settings.dashboard_enabled:  # an open host without a token is bad input (exit 2), not a dashboard failure
            from tradingd.web.token import check_bind

            check_bind(settings)
        if replaying:
            app_ = build_sim(
                settings,
                start=start,
                end=end,
                on_iteration=sink,
                range_names=("--start", "--end"),
                pace_seconds=pace_seconds,
            )
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
        dashboard = _start_dashboard(app_)  # issue 15: None unless DASHBOARD_ENABLED; never stops trading
        if replaying:
            sessions = _replay_sessions(app_, iterations)
            sink.progress = ReplayProgress(len(sessions))
            scanning = app_.orchestrator.focus is not None
            sink.progress.announce(replay_header(sessions, len(app_.symbols), str(log_file), scanning=scanning))
        try:
            # DaemonStarted/DaemonStopped, the unclean-stop marker, notifications (tradingd/daemon_life.py)
            with daemon_life(settings, app_, command):
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
            if dashboard is not None:
                dashboard.server.stop()
            if sink.progress is not None:
                sink.progress.close()
        summary = run_summary(app_, stats, time.perf_counter() - t0)
        summary["log_file"] = str(log_file)
        if trades_csv is not None:
            write_trades_csv(app_.store, trades_csv)
            summary["trades_csv"] = str(trades_csv)
        try:
            report = write_run_report(app_.store, settings, report_html)
        except (SetupError, OSError, BrokerError) as error:  # the run is done: its summary is never lost to a report
            log.warning("run_report_failed", error=str(error), kind=type(error).__name__)
            summary["report_error"] = redact(str(error))
        else:
            add_report_to_summary(summary, report, report_html)
        log.info("run_summary", **summary)
    finally:
        app_.close()
        close_logging()
    if as_json:
        typer.echo(json.dumps(summary, default=str))
    else:
        print_summary(summary)


def _start_dashboard(app_: App) -> DaemonDashboard | None:
    """The dashboard beside the daemon (tradingd/web/server.py): its observers on the bus, the stream probe where
    the broker has a trade-updates stream (paper/live). FastAPI and uvicorn are imported only when it is on. Any
    failure here (an import, the metrics, the bind) is logged `dashboard_failed` and trading goes on without it."""
    if not app_.settings.dashboard_enabled:
        return None
    dashboard: DaemonDashboard | None = None
    try:
        from tradingd.metrics import DaemonMetrics, attach_metrics, metrics_text
        from tradingd.web.selection import CandidatePredictor
        from tradingd.web.server import start_dashboard, stop_dashboard

        broker = app_.broker
        has_stream = hasattr(broker, "stream_connected")
        probe = (lambda: bool(getattr(broker, "stream_connected", False))) if has_stream else None
        # With ML_ENABLED, the candidates' win probabilities come from the very model the risk agent asks.
        gate = app_.orchestrator.risk.ml_gate
        predictor = gate.predictor if gate is not None and isinstance(gate.predictor, CandidatePredictor) else None
        # The metrics' only reader is the dashboard's GET /metrics: attached only once it runs (the bus has no
        # unsubscribe), so a dashboard that fails to start leaves no observer behind.
        live: list[DaemonMetrics] = []
        db_path = app_.store.path
        dashboard = start_dashboard(
            app_.settings,
            app_.orchestrator.bus,
            tiers=dict(app_.tiers),
            stream=probe,
            predictor=predictor,
            metrics=lambda: metrics_text(db_path, live[0] if live else None),
        )
        if dashboard is not None:
            live.append(attach_metrics(app_))
        return dashboard
    except Exception as error:
        log.error("dashboard_failed", error=redact(str(error)), kind=type(error).__name__)
        if dashboard is not None:
            stop_dashboard(dashboard)
        return None


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
