"""`tradingd report`, and the report `run` and `replay` write at their end: what a run did, from the state store.

The command reads the mode's state DB (never writing to it, never taking the daemon lock: a report of a running
daemon's state is a read); in paper/live it fetches the traded symbols' daily bars and SPY from the market-data API.
plotly and matplotlib are imported when a file is written, not when the command starts.

The analytics builder (`analytics/build.py`) is called by `_build` (the command) and `_build_run` (the end of
`run`/`replay`); everything else here is the presentation (tables, JSON, HTML, CSVs).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import typer

from analytics.model import Report, report_json
from config.settings import Settings
from core.errors import SetupError
from core.redact import redact
from core.store import StateStore
from core.types import TradingMode
from tradingd.cli_common import load_cli_settings, open_store
from tradingd.cli_options import EXIT_BAD_INPUT
from tradingd.local_state import REPORT_UNIVERSE_FILE, state_db_path

RUN_REPORT_NAME = "report.html"  # `run` writes DATA_DIR/<mode>/report.html, beside the mode's state DB


# ---- the analytics builder (analytics/build.py) ---------------------------------------------------------------------


def _build(settings: Settings, mode: TradingMode, from_: date | None, to: date | None) -> Report | None:
    """The report of the mode's state DB between `from_` and `to` (inclusive, either open), or None when the store
    holds no end-of-day equity in that window. A SetupError is printed as one line and exits 2."""
    with open_store(settings) as store:
        return report_of(store, settings, mode, from_, to)


def report_of(
    store: StateStore, settings: Settings, mode: TradingMode, from_: date | None = None, to: date | None = None
) -> Report | None:
    """The report of an open store (the command's, or the dashboard's read-only one); None: nothing to report."""
    if mode is TradingMode.SIM:
        return _sim_report(store, settings, from_, to)
    return _live_report(store, settings, from_, to)


def _build_run(store: StateStore, settings: Settings) -> Report | None:
    """The report of the run that just ended, from its still-open store; None when there is nothing to report."""
    if settings.mode is TradingMode.SIM:
        return _sim_report(store, settings, None, None, run_ended=True)
    return _live_report(store, settings, None, None)


def _sim_report(
    store: StateStore, settings: Settings, from_: date | None, to: date | None, *, run_ended: bool = False
) -> Report | None:
    from dataclasses import replace

    from analytics.build import ReportDataError, build_report, sim_report_inputs
    from core.bars import load_daily_bars_cached
    from tradingd.local_state import BARS_CACHE_DIR

    try:
        history = load_daily_bars_cached(settings.sim_data_file, state_db_path(settings).parent / BARS_CACHE_DIR)
    except (OSError, ValueError) as error:
        raise SetupError(f"SIM_DATA_FILE: {settings.sim_data_file}: {error}") from None
    record = state_db_path(settings).parent / REPORT_UNIVERSE_FILE
    note = None
    if run_ended:  # the run's own settings say what it could trade: kept for a later `tradingd report`
        symbols = sim_tradable_symbols(settings, history.symbols)
        _write_universe_record(record, symbols)
    elif (recorded := _read_universe_record(record)) is not None:
        symbols = recorded
    else:
        symbols = sim_tradable_symbols(settings, history.symbols)
        note = (
            "The benchmark's symbols follow this command's settings (SYMBOLS, USE_SCANNER): the run left no record of "
            "its own (it did not reach its end)."
        )
    bars, benchmark = sim_report_inputs(history, symbols)
    try:
        report = build_report(
            store, mode=settings.mode.value, bars=bars, benchmark=benchmark, from_date=from_, to_date=to
        )
    except ReportDataError:
        return None
    return report if note is None else replace(report, notes=(*report.notes, note))


def _write_universe_record(path: Path, symbols: Sequence[str]) -> None:
    try:
        path.write_text(json.dumps({"symbols": list(symbols)}))
    except OSError as error:  # a report can still be built from the settings next time; say so in the log only
        import structlog

        structlog.get_logger(__name__).warning("report_universe_not_recorded", path=str(path), error=str(error))


def _read_universe_record(path: Path) -> tuple[str, ...] | None:
    """The symbols the last run recorded, or None when there is no readable record (then the settings decide)."""
    try:
        symbols = json.loads(path.read_text())["symbols"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(symbols, list) or not all(isinstance(symbol, str) for symbol in symbols):
        return None
    return tuple(symbols)


def sim_tradable_symbols(settings: Settings, available: Sequence[str]) -> tuple[str, ...]:
    """The symbols a sim run could trade (the benchmark's universe): with the scanner the whole scanned universe
    (its file's symbols the bundled bars have), else SYMBOLS as the run resolves it."""
    from core.bars import default_sim_tiers
    from core.universe import UniverseError, read_universe_file
    from tradingd.local_state import resolve_universe

    have = set(available)
    if settings.scanner_enabled:
        path = settings.scan_universe or settings.sim_universe_file
        try:
            listed = read_universe_file(path).symbols
        except UniverseError as error:
            raise SetupError(str(error)) from None
        return tuple(symbol for symbol in listed if symbol in have)
    tiers = resolve_universe(settings, list(available), default_sim_tiers(settings.sim_universe_file, have))
    return tuple(symbol for symbol in tiers if symbol in have)


def _live_report(store: StateStore, settings: Settings, from_: date | None, to: date | None) -> Report | None:
    """Paper/live: the traded symbols' daily bars and SPY through the Alpaca market-data adapter (keys needed)."""
    import asyncio
    import importlib

    from analytics.build import ReportDataError, build_report, live_report_inputs
    from core.broker.base import BrokerError
    from core.clock import LiveClock
    from tradingd.configs import alpaca_connection, alpaca_data_options

    if store.equity_marks(from_, to) == []:
        return None
    if settings.alpaca_api_key is None or settings.alpaca_secret_key is None:
        raise SetupError(
            f"report --mode {settings.mode.value}: ALPACA_API_KEY and ALPACA_SECRET_KEY are needed to fetch the traded "
            "symbols' daily bars and SPY from the market-data API"
        )
    adapter = importlib.import_module("core.broker.alpaca_data")
    market_data = adapter.AlpacaMarketData(alpaca_connection(settings), alpaca_data_options(settings), LiveClock())
    try:
        bars, benchmark = asyncio.run(live_report_inputs(store, market_data, from_date=from_, to_date=to))
        return build_report(
            store, mode=settings.mode.value, bars=bars, benchmark=benchmark, from_date=from_, to_date=to
        )
    except ReportDataError:
        return None
    except BrokerError as error:
        raise SetupError(f"report --mode {settings.mode.value}: the daily bars could not be fetched: {error}") from None


NO_BARS_NOTE = (
    "dashboard: no daily bars (it never fetches): positions valued at their last fill price, no price charts and no "
    "portfolio volatility; `tradingd report` fetches the bars"
)


def stored_report_of(store: StateStore, settings: Settings) -> Report | None:
    """The report from what is on disk only, never contacting the broker: the dashboard's. Sim: `report_of` (the
    bundled bars are local). Paper/live: no bars (the exposure falls back to the fills' prices; `NO_BARS_NOTE`), and
    SPY from the `benchmark_spy.json` that `tradingd report` (or the end of `run`) wrote, read only, else none with
    the reason."""
    if settings.mode is TradingMode.SIM:
        return report_of(store, settings, settings.mode)
    from dataclasses import replace

    from analytics.benchmark import SPY, BenchmarkSource, ClosesBenchmark, UnavailableBenchmark, read_closes_cache
    from analytics.build import SPY_CACHE_NAME, ReportDataError, build_report
    from core.types import BarFrame

    cache_path = store.path.parent / SPY_CACHE_NAME
    cached = read_closes_cache(cache_path).closes
    benchmark: BenchmarkSource
    if cached:
        days = tuple(sorted(cached))
        note = f"{SPY} closes cached in {cache_path.name} up to {days[-1]} (the dashboard never fetches)."
        benchmark = ClosesBenchmark(SPY, days, tuple(cached[d] for d in days), note)
    else:
        benchmark = UnavailableBenchmark(
            f"no {SPY} closes cached in {cache_path.name} (the dashboard never fetches; "
            f"`tradingd report --mode {settings.mode.value}` fetches and caches them)"
        )
    bars = BarFrame.empty(tuple(sorted({fill.symbol for fill in store.fills()})))
    try:
        report = build_report(store, mode=settings.mode.value, bars=bars, benchmark=benchmark)
    except ReportDataError:
        return None
    return replace(report, notes=(*report.notes, NO_BARS_NOTE))


# ---- the command ----------------------------------------------------------------------------------------------------


def _fail(message: str) -> typer.Exit:
    typer.echo(redact(f"error: {message}"), err=True)
    return typer.Exit(EXIT_BAD_INPUT)


def check_writable(option: str, path: Path) -> None:
    """Exit 2 naming `option` when `path` cannot be written, before any work is done.

    The probe (an empty file, and any folders on the way) is removed again: a report that then has nothing to write,
    or fails, leaves nothing behind; `_write` creates the folders when it writes."""
    existed = path.exists()
    created = [parent for parent in reversed(path.parents) if not parent.exists()]
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "is a directory", str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.open("a").close()  # created if missing, never truncated
    except FileExistsError as error:  # mkdir's EEXIST: a folder on the way is a file
        raise _fail(f"{option} {path}: {error.filename} exists and is not a directory") from None
    except OSError as error:
        raise _fail(f"{option} {path}: {error.strerror or error}") from None
    finally:
        if not existed:
            with contextlib.suppress(OSError):  # e.g. a file where a folder should be: nothing was created
                path.unlink(missing_ok=True)
        for folder in reversed(created):  # deepest first; only the ones the probe made, and only if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()


def _write(option: str, path: Path, write: Callable[[Report, Path], object], report: Report) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(report, path)
    except OSError as error:  # e.g. the disk filled up after the check
        raise _fail(f"{option} {path}: {error.strerror or error}") from None


def _outputs(html: Path | None, ledger_csv: Path | None, equity_csv: Path | None) -> list[tuple[str, Path, str]]:
    """(option, path, what it holds) of each file asked for."""
    asked = (
        ("--html", html, "HTML report"),
        ("--ledger-csv", ledger_csv, "round-trip ledger CSV"),
        ("--equity-csv", equity_csv, "equity CSV"),
    )
    return [(option, path, what) for option, path, what in asked if path is not None]


def _writer(option: str) -> Callable[[Report, Path], object]:
    if option == "--html":
        from analytics.html_report import write_html  # plotly, only when a page is written

        return write_html
    from analytics import csv_export

    return csv_export.write_ledger_csv if option == "--ledger-csv" else csv_export.write_equity_csv


def _window(from_: date | None, to: date | None) -> str:
    return f"{from_ or 'the first session'} to {to or 'the last'}"


def show_report(
    mode: TradingMode | None,
    from_: date | None,
    to: date | None,
    as_json: bool,
    html: Path | None,
    ledger_csv: Path | None,
    equity_csv: Path | None,
) -> None:
    if from_ is not None and to is not None and from_ > to:
        raise _fail(f"--from {from_} is after --to {to}")
    settings = load_cli_settings(broker=False, trading_mode=mode)
    outputs = _outputs(html, ledger_csv, equity_csv)
    for option, path, _ in outputs:
        check_writable(option, path)
    db = state_db_path(settings)
    report = None
    if db.exists():  # never create an empty DB just to say it is empty
        try:
            report = _build(settings, settings.mode, from_, to)
        except SetupError as error:
            raise _fail(str(error)) from None
    if report is None:
        _nothing_to_report(settings, db, _window(from_, to), as_json)
        return
    for option, path, _ in outputs:
        _write(option, path, _writer(option), report)
    if as_json:
        typer.echo(json.dumps(report_json(report)))
        return
    from analytics.console_tables import report_tables
    from core.console import print_table

    tables = report_tables(report)
    notes = [*_report_notes(report), *(f"{what}: {path}" for _, path, what in outputs)]
    for table in tables[:-1]:
        print_table(table)
    print_table(tables[-1], "\n".join(notes))


def _report_notes(report: Report) -> list[str]:
    notes = [] if report.benchmark is None else [f"benchmark: {report.benchmark.name}. {report.benchmark.note}"]
    return [*notes, *report.notes, f"conventions: {report.conventions}"]


def _nothing_to_report(settings: Settings, db: Path, window: str, as_json: bool) -> None:
    """No session to report is an answer, not an error (exit 0): a fresh install, or a window before the first run,
    like `status` before any run. Scripts read `"sessions": 0` in the JSON."""
    message = f"nothing to report: no session in the {settings.mode.value} state DB {db} from {window}"
    if not db.exists():
        message += " (it does not exist: no daemon has run with this DATA_DIR and mode yet)"
    if as_json:
        typer.echo(json.dumps({"mode": settings.mode.value, "sessions": 0, "db": str(db), "message": message}))
    else:
        typer.echo(message)


# ---- the report at the end of `run` and `replay` --------------------------------------------------------------------


def run_report_path(settings: Settings) -> Path:
    """Where `run` writes its HTML report: DATA_DIR/sim/report.html in sim (what `make run` prints)."""
    return state_db_path(settings).parent / RUN_REPORT_NAME


def write_run_report(store: StateStore, settings: Settings, path: Path | None) -> Report | None:
    """The run's report, its HTML written to `path` when one is given; None when no report could be built."""
    report = _build_run(store, settings)
    if report is not None and path is not None:
        from analytics.html_report import write_html  # plotly, only at the end of a run

        path.parent.mkdir(parents=True, exist_ok=True)
        write_html(report, path)
    return report


def add_report_to_summary(summary: dict[str, Any], report: Report | None, html: Path | None) -> None:
    """The run summary's `report` (the JSON contract, also `replay --json`'s) and `report_html`, when there is one."""
    if report is None:
        return
    summary["report"] = report_json(report)
    if html is not None:
        summary["report_html"] = str(html)
