"""`tradingd`: the daemon's command line.

Exit codes: 0 success, 2 bad input or configuration, 1 any other failure. With `--json`, one JSON object is printed
on stdout at the end and logs stay on stderr.

This module declares the commands and their options only; each command imports its implementation when it runs
(`cli_daemon`, `cli_state`, `cli_report`, `cli_close`, `cli_restore`, `cli_scan`, `cli_strategies`,
`cli_optimize`). So `--help` and `--version` load typer and the option types and nothing else, and `status`, `halt`
and `resume` load the settings and the state store but not the daemon (numpy, pandas, exchange-calendars,
alpaca-py): docs/ARCHITECTURE.md §Performance, start-up.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from core.types import OrderStatus, TradingMode, order_statuses_named
from tradingd.cli_ml import register as register_ml_commands
from tradingd.cli_optimize import register as register_optimize_command
from tradingd.cli_options import DATE_FORMATS, EXIT_BAD_INPUT, JsonOpt, ModeOpt, as_date
from tradingd.cli_scan import register as register_scan_commands
from tradingd.cli_strategies import register as register_strategy_commands

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Multi-agent trading daemon for US equities.",
    rich_markup_mode=None,
)
register_scan_commands(app)  # scan, validate, cache refresh
register_strategy_commands(app)  # strategies
register_optimize_command(app)  # optimize
register_ml_commands(app)  # ml train, ml evaluate, ml show


def _version(value: bool) -> None:
    if value:
        from tradingd import __version__

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


@app.command()
def run(
    mode: ModeOpt = None,
    iterations: Annotated[int | None, typer.Option(help="Stop after N iterations", min=1)] = None,
    once: Annotated[bool, typer.Option("--once", help="Run a single iteration", metavar="")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the daemon (sim mode by default when no Alpaca keys are set)."""
    from tradingd.cli_common import load_cli_settings
    from tradingd.cli_daemon import run_daemon

    settings = load_cli_settings(trading_mode=mode)
    run_daemon(
        settings,
        iterations=1 if once else iterations,
        start=None,
        end=None,
        as_json=as_json,
        trades_csv=None,
        command="run",
        report_html=None,  # run writes DATA_DIR/<mode>/report.html (tradingd.cli_report.run_report_path)
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
    report: Annotated[
        Path | None, typer.Option("--report", help="Write the HTML report (tradingd report --html) here at the end")
    ] = None,
    pace: Annotated[
        float,
        typer.Option(
            "--pace", min=0.0, max=3600.0, metavar="SECONDS", help="Sleep this long (wall clock) after each session"
        ),
    ] = 0.0,
    ml: Annotated[
        bool, typer.Option("--ml", help="ML_ENABLED=true for this replay (the saved win-probability model)", metavar="")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Replay the bundled real bars through the whole pipeline (sim mode), as fast as it goes (or paced, --pace)."""
    from tradingd.cli_common import load_cli_settings
    from tradingd.cli_daemon import run_daemon
    from tradingd.cli_report import check_writable

    settings = load_cli_settings(trading_mode=TradingMode.SIM, ml_enabled=True if ml else None)
    if report is not None:
        check_writable("--report", report)  # exit 2 now, not after the replay
    run_daemon(
        settings,
        iterations=None,
        start=as_date(start),
        end=as_date(end),
        as_json=as_json,
        trades_csv=trades_csv,
        command="replay",
        report_html=report,
        pace_seconds=pace,
    )


@app.command()
def status(mode: ModeOpt = None, as_json: JsonOpt = False) -> None:
    """Show the persisted state: orders, fills, positions, equity, kill switch and circuit breakers."""
    from tradingd.cli_state import show_status

    show_status(mode, as_json)


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
    from tradingd.cli_state import halt as halt_trading

    halt_trading(reason, reduce_only, mode)


@app.command()
def resume(mode: ModeOpt = None) -> None:
    """Lift the kill switch, reduce-only, recovery and the drawdown circuit breaker (and its flatten, if any)."""
    from tradingd.cli_state import resume as resume_trading

    resume_trading(mode)


@app.command()
def report(
    mode: ModeOpt = None,
    from_: Annotated[
        datetime | None, typer.Option("--from", formats=DATE_FORMATS, help="First session (default: the first one)")
    ] = None,
    to: Annotated[
        datetime | None, typer.Option("--to", formats=DATE_FORMATS, help="Last session (default: the last one)")
    ] = None,
    as_json: JsonOpt = False,
    html: Annotated[Path | None, typer.Option("--html", help="Write the HTML report (opens offline) here")] = None,
    ledger_csv: Annotated[
        Path | None, typer.Option("--ledger-csv", help="Write the round trips here, one row each")
    ] = None,
    equity_csv: Annotated[
        Path | None,
        typer.Option("--equity-csv", help="Write session,equity,benchmark_equity here, one row per session"),
    ] = None,
) -> None:
    """How the strategy did, from the mode's state DB: statistics against a benchmark, round trips, by tier and
    symbol; --json, an HTML tearsheet and CSVs. Reads the local state DB (paper/live also fetch bars and SPY)."""
    from tradingd.cli_report import show_report

    show_report(mode, as_date(from_), as_date(to), as_json, html, ledger_csv, equity_csv)


@app.command()
def serve(
    mode: ModeOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind this address (default: DASHBOARD_HOST, 127.0.0.1)")] = None,
    port: Annotated[
        int | None, typer.Option(help="Bind this port (default: DASHBOARD_PORT, 8765)", min=0, max=65535)
    ] = None,
) -> None:
    """The dashboard and API alone, over the mode's state DB (a running daemon's, or a stopped one's last state)."""
    from tradingd.cli_serve import serve as serve_dashboard

    serve_dashboard(mode, host, port)


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
    from tradingd.cli_close import close as close_positions

    close_positions(symbols, all_, mode)


# ---- orders / fills: what the store holds (local state only, never the broker, never the daemon lock) ---------------


def _status_filter(value: str | None) -> set[OrderStatus] | None:
    """The `--status` value as statuses, or a usage error (exit 2) listing the accepted values."""
    if value is None:
        return None
    try:
        return order_statuses_named(value)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--status") from None


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
    statuses = _status_filter(status_)  # a usage error (exit 2) before any settings are read
    from tradingd.cli_state import list_orders

    list_orders(statuses, status_, mode, as_json)


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
    from tradingd.cli_state import list_fills

    list_fills(since, mode, as_json)


# ---- restore: a backup of the state DB in place of the current one ---------------------------------------------------


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
    from tradingd.cli_restore import restore as restore_state

    restore_state(target, mode, as_json)


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
        from core.redact import redact

        typer.echo(redact(f"error: {describe_os_error(error)}"), err=True)
        sys.exit(EXIT_BAD_INPUT)
