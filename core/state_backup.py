"""Daily online backups of the state DB: `DATA_DIR/<mode>/backups/state-YYYY-MM-DD.db`, the newest N kept.

Why SQLite's online backup API and never a file copy: the state DB runs in WAL mode, so its latest commits may live
only in `state.db-wal`, and a copy of the files taken while the daemon writes can be torn. `Connection.backup` reads
one consistent snapshot through SQLite (on a read-only connection, so the source cannot change) while the daemon
goes on writing. The copy is switched out of WAL mode, so a backup is one self-contained file.

A backup is written under a `.partial-` name, fsynced, and only then renamed to its `state-<date>.db` name: a kill -9
mid-backup leaves at most a `.partial-*` file, which is never listed or restored and is deleted by the next backup.
The date is the daemon clock's New York date. A failure (disk full, permissions) is a warning, never an error: the
backup is not on the order path, and trading goes on without it.
"""

from __future__ import annotations

import asyncio
import enum
import re
import sqlite3
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

import structlog

from core.fsync import fsync_directory, fsync_file
from core.private_files import private_dir, private_sqlite
from core.sqlite_db import connect_read_only

log = structlog.get_logger(__name__)

BACKUP_DIR: Final = "backups"
PARTIAL_PREFIX: Final = ".partial-"
_NAME: Final = re.compile(r"state-(\d{4}-\d{2}-\d{2})\.db")


class BackupWhen(enum.Enum):
    """When the daemon takes its backup."""

    # Paper/live: at the first iteration of each New York day; a restart later that day keeps the morning's file
    # (the state before whatever made someone restart).
    DAILY = "daily"
    # Sim: once, when the replay ends, replacing a previous replay's file of the same date. A backup per simulated
    # session would copy a DB that grows to ~30 MB 1,259 times (minutes added to a seconds-long replay).
    REPLAY_END = "replay_end"


@dataclass(frozen=True, slots=True)
class BackupFile:
    day: date
    path: Path
    size: int


def backup_dir(db: Path) -> Path:
    return db.parent / BACKUP_DIR


def backup_path(directory: Path, day: date) -> Path:
    return directory / f"state-{day.isoformat()}.db"


def list_backups(directory: Path) -> list[BackupFile]:
    """Complete backups, oldest first. Partial files and anything else in the folder are not backups."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _NAME.fullmatch(path.name)
        if match is None or not path.is_file():
            continue
        try:
            day = date.fromisoformat(match.group(1))
        except ValueError:  # state-2024-13-45.db: not one of ours
            continue
        found.append(BackupFile(day=day, path=path, size=path.stat().st_size))
    return sorted(found, key=lambda backup: backup.day)


def write_backup(db: Path, target: Path) -> None:
    """A consistent copy of `db` at `target`: complete (fsynced, 0600) or not there at all.

    An existing `target` is replaced atomically. Raises on failure, after removing the partial file.
    """
    partial = target.with_name(PARTIAL_PREFIX + target.name)
    remove_partials(target.parent)
    private_sqlite(partial)  # 0600 before SQLite opens it, so its rollback journal gets the same mode
    try:
        source = connect_read_only(db)
        try:
            copy = sqlite3.connect(partial, isolation_level=None)
            try:
                source.backup(copy)
                # The copy inherits WAL mode from the header; one self-contained file is what a backup should be.
                copy.execute("PRAGMA journal_mode = DELETE")
            finally:
                copy.close()
        finally:
            source.close()
        fsync_file(partial)
        partial.replace(target)
    except BaseException:
        remove_partials(target.parent)
        raise
    fsync_directory(target.parent)


def remove_partials(directory: Path) -> None:
    """Delete what an interrupted backup left (the partial file and its journal)."""
    for leftover in directory.glob(PARTIAL_PREFIX + "*"):
        leftover.unlink(missing_ok=True)


def prune_backups(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups (by the date in their name); returns the deleted paths."""
    stale = [backup.path for backup in list_backups(directory)[:-keep]] if keep > 0 else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


class StateBackups:
    """The daemon's backups of its own state DB: the orchestrator reports new days and its stop; this decides."""

    def __init__(self, db: Path, *, keep: int, when: BackupWhen) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep} (STATE_BACKUP_DAYS=0 means no StateBackups)")
        self.db = db
        self.directory = backup_dir(db)
        self.keep = keep
        self.when = when

    async def on_new_day(self, day: date) -> None:
        if self.when is BackupWhen.DAILY:
            await asyncio.to_thread(self.take, day, replace=False)

    async def on_stop(self, day: date) -> None:
        if self.when is BackupWhen.REPLAY_END:
            await asyncio.to_thread(self.take, day, replace=True)

    def take(self, day: date, *, replace: bool) -> Path | None:
        """Back up the DB as `day`'s file and prune; None when `day` already has one (and not `replace`) or on
        failure. Never raises: a failed backup is logged and trading goes on."""
        target = backup_path(self.directory, day)
        try:
            private_dir(self.directory)
            if target.exists() and not replace:
                remove_partials(self.directory)
                return None
            write_backup(self.db, target)
            size = target.stat().st_size
            pruned = prune_backups(self.directory, self.keep)
        except Exception as error:  # disk full, permissions, a locked or vanished file: none may stop trading
            log.warning("state_backup_failed", path=str(target), error=str(error), kind=type(error).__name__)
            return None
        log.info(
            "state_backup_taken",
            path=str(target),
            size=size,
            pruned=[path.name for path in pruned],
            keep=self.keep,
        )
        return target
