"""What the `tradingd` command bodies share: the settings (or exit 2), logging, the state DB and its guarded flags.

Imported inside the command functions of `tradingd/cli.py`, never at its top: `--help` and `--version` load no
settings and open no store (docs/ARCHITECTURE.md §Performance, start-up).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog
import typer

from config.settings import ConfigError, Settings, load_settings
from core.daemon_lock import DaemonLock, StateInUseError, acquire_daemon_lock
from core.logging import close_logging, configure_logging, log_file_path
from core.redact import redact
from core.state_guard import GuardedFlags, KillSwitchFile, kill_switch_path
from core.store import StateStore
from tradingd.cli_options import EXIT_BAD_INPUT
from tradingd.local_state import state_db_path

log = structlog.get_logger("tradingd")


def load_cli_settings(*, broker: bool = True, **overrides: Any) -> Settings:
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


def quiet_logging(settings: Settings) -> None:
    """The daemon's log file records the command's events; the console shows only the command's own result line."""
    configure_logging(
        settings.log_format,
        settings.log_level,
        log_file=log_file_path(settings.data_dir, settings.mode.value),
        quiet=True,
    )


def open_store(settings: Settings) -> StateStore:
    return StateStore(state_db_path(settings))


def guarded(store: StateStore) -> GuardedFlags:
    """The store's flags with the kill-switch file: a halt survives the loss of the DB (core/state_guard.py)."""
    flags = GuardedFlags(store, KillSwitchFile(kill_switch_path(store.path)))
    flags.sync()
    return flags


def state_note(settings: Settings, existed: bool) -> str:
    """Where the flag was written, so a halt from the wrong directory or DATA_DIR cannot pass unnoticed."""
    db = state_db_path(settings)
    if existed:
        return f"state DB {db}"
    return f"state DB {db} did not exist and was created: no daemon has run with this DATA_DIR yet"


def daemon_lock_or_exit(settings: Settings, command: str, log_file: Path) -> DaemonLock:
    """The state's daemon lock, or exit 2 naming the process that holds it."""
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
