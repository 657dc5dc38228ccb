"""`tradingd restore`: install a backup as the state DB, keep the kill switch, and make the next start recover.

The order of the steps means an interruption never loses a database: the backup is checked (integrity_check and our
schema), copied with SQLite's backup API to `.restoring-state.db` beside `state.db`, its flags are set (the kill
switch as it is now, the `restored_from` marker, the recovery flag), the copy is checked again, and only then is the
current DB (with its WAL) set aside as `state.db.pre-restore-<UTC time>`, like a corrupt one (never deleted), and the
copy renamed into place. Killed before that rename, the folder holds the set-aside DB and no `state.db`: the next
start enters recovery as for a lost DB.

The kill switch is the operator's current decision, not the backup's: the installed DB gets the halted and
reduce-only flags the state has now (DB and `kill_switch.json`), whatever the backup held. The caller holds the
daemon lock, so no daemon runs meanwhile.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

import structlog

from core.flags import FLAG_RECOVERY
from core.fsync import fsync_directory
from core.sqlite_db import quarantine
from core.state_backup import backup_dir, backup_path, list_backups, write_backup
from core.state_guard import (
    FILE_FLAGS,
    FLAG_RESTORED,
    FLAG_RUN_ID,
    GuardedFlags,
    KillSwitchFile,
    kill_switch_path,
)
from core.store import StateStore, StateStoreError, check_state_db

log = structlog.get_logger(__name__)

STAGED_PREFIX: Final = ".restoring-"
SET_ASIDE_LABEL: Final = "pre-restore"
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


class RestoreError(Exception):
    """The backup cannot be restored: a bad argument, a missing file, or not a sound state DB (exit 2)."""


@dataclass(frozen=True, slots=True)
class Restored:
    source: Path
    db: Path
    set_aside: Path | None  # where the replaced DB went; None when there was none
    cause: str  # the recovery cause the next start reports
    kill_switch: dict[str, str]  # the halted / reduce-only flags kept from the current state


def resolve_backup(db: Path, target: str) -> Path:
    """The file `target` names: a date (YYYY-MM-DD) is that day's backup of `db`, anything else a path."""
    if _DATE.fullmatch(target):
        try:
            day = date.fromisoformat(target)
        except ValueError:
            raise RestoreError(f"{target}: not a date (YYYY-MM-DD)") from None
        directory = backup_dir(db)
        path = backup_path(directory, day)
        if not path.is_file():
            have = list_backups(directory)
            held = f"{len(have)} there, {have[0].day} to {have[-1].day}" if have else "there are none"
            raise RestoreError(f"no backup for {day} in {directory} ({held}; `tradingd restore --list`)")
        return path
    path = Path(target).expanduser()
    if not path.exists():
        raise RestoreError(f"{path}: no such file (give a backup date YYYY-MM-DD or a backup file)")
    if path.resolve() == db.resolve():
        raise RestoreError(f"{path}: that is the current state DB, not a backup")
    return path


def check_backup(source: Path) -> None:
    try:
        check_state_db(source)
    except StateStoreError as error:
        raise RestoreError(f"{source}: not a sound tradingd state DB: {error}") from None


def restore_state(db: Path, source: Path, *, recovery: bool, now: datetime) -> Restored:
    """Install `source` as `db` (see the module docstring); `recovery`: the DB starts in recovery (paper/live
    without RECOVERY_AUTO_RESUME), which `status` shows at once and the next start keeps."""
    check_backup(source)
    kill_switch = _current_kill_switch(db)
    cause = f"state DB restored from {source.name} at {now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
    staged = db.with_name(STAGED_PREFIX + db.name)
    write_backup(source, staged)
    try:
        _mark(staged, kill_switch, cause, recovery=recovery)
        check_backup(staged)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    set_aside = quarantine(db, now, label=SET_ASIDE_LABEL) if db.exists() else None
    staged.replace(db)
    fsync_directory(db.parent)
    log.warning(
        "state_restored",
        source=str(source),
        db=str(db),
        set_aside=None if set_aside is None else str(set_aside),
        cause=cause,
        recovery_at_next_start=recovery,
        kill_switch=kill_switch,
    )
    return Restored(source=source, db=db, set_aside=set_aside, cause=cause, kill_switch=kill_switch)


def _current_kill_switch(db: Path) -> dict[str, str]:
    """The halted / reduce-only flags the state holds now: in the DB or its kill-switch file (halted if either)."""
    file = KillSwitchFile(kill_switch_path(db))
    if not db.exists():
        return {name: value for name, value in file.read().items() if name in FILE_FLAGS}
    with StateStore(db) as store:
        flags = GuardedFlags(store, file)
        flags.sync()
        return {name: value for name in FILE_FLAGS if (value := flags.get_flag(name)) is not None}


def _mark(staged: Path, kill_switch: dict[str, str], cause: str, *, recovery: bool) -> None:
    """The flags of the DB about to be installed, in one transaction."""
    values = {**kill_switch, FLAG_RESTORED: cause}
    if recovery:
        values[FLAG_RECOVERY] = cause
    conn = sqlite3.connect(staged, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        # The backup's own kill switch goes (the current one replaces it), and so does its run token: the token of
        # the run that took it may still be the last run's, which would hide the restore from a token comparison.
        removed = (*FILE_FLAGS, FLAG_RUN_ID)
        conn.execute(f"DELETE FROM flags WHERE name IN ({', '.join('?' * len(removed))})", removed)  # noqa: S608
        conn.executemany("INSERT OR REPLACE INTO flags (name, value) VALUES (?, ?)", values.items())
        conn.execute("COMMIT")
    finally:
        conn.close()
