"""`tradingd close`: sell positions by hand (paper/live), by request to a running daemon or in this process.

Imported by the `close` command only: with no daemon running it starts up like `run` (the broker, alpaca-py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC

import typer

from agents.risk import read_trading_state
from config.settings import ConfigError, Settings
from core.broker.base import AuthenticationError, BrokerError
from core.clock import LiveClock
from core.close_requests import CloseRequest
from core.daemon_lock import StateInUseError, acquire_daemon_lock
from core.logging import close_logging
from core.redact import redact
from core.types import TradingMode
from tradingd.app import SetupError, build_live
from tradingd.cli_common import guarded, load_cli_settings, open_store, quiet_logging
from tradingd.cli_options import EXIT_BAD_INPUT, EXIT_FAILURE
from tradingd.local_state import state_db_path
from tradingd.manual_close import Closed, NotHeldError, close_positions, request_close


def close(symbols: list[str] | None, all_: bool, mode: TradingMode | None) -> None:
    settings = load_cli_settings(broker=False, trading_mode=mode)
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
    quiet_logging(settings)
    try:
        with open_store(settings) as store:
            requested = request_close(store, wanted, LiveClock().now())
            view = read_trading_state(guarded(store))
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
    settings = load_cli_settings(trading_mode=mode)  # this process talks to the broker: the keys are needed now
    quiet_logging(settings)
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
