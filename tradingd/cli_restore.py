"""`tradingd restore`: list the state DB's backups, or install one in place of the current DB."""

from __future__ import annotations

import json
from typing import Any

import typer

from config.settings import Settings
from core.clock import LiveClock
from core.console import backups_table, print_table
from core.logging import close_logging, log_file_path
from core.redact import redact
from core.state_backup import BackupFile, backup_dir, list_backups
from core.state_restore import Restored, RestoreError, resolve_backup, restore_state
from core.store import StateStoreError
from core.types import TradingMode
from tradingd.cli_common import daemon_lock_or_exit, load_cli_settings, quiet_logging
from tradingd.cli_options import EXIT_BAD_INPUT
from tradingd.local_state import state_db_path


def restore(target: str | None, mode: TradingMode | None, as_json: bool) -> None:
    settings = load_cli_settings(broker=False, trading_mode=mode)
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
    lock = daemon_lock_or_exit(settings, "restore", log_file)  # exit 2 naming the daemon that runs on this state
    try:
        quiet_logging(settings)
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
