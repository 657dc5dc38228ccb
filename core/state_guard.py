"""The kill switch outside the state DB, and recovery after the DB was lost, set aside or restored.

`DATA_DIR/<mode>/kill_switch.json` holds the halted and reduce-only flags (and the run token below) beside
`state.db`. It is written atomically with every change of those flags, and read together with the DB flag: halted if
either says halted. So deleting, corrupting or restoring `state.db` can never lift a halt.

The run token: every daemon start writes a fresh token into both the DB and the file. At the next start, a DB that is
missing while the file holds a token (a previous run existed), that was quarantined as corrupt, or whose token differs
from the file's (an older copy restored) means the daemon's memory of orders, fills and breakers is gone or stale: it
starts in `reducing` (flag `recovery`) until `tradingd resume`, unless RECOVERY_AUTO_RESUME=true.

`tradingd restore` does not rely on the token alone (a backup taken during the last run carries that run's token):
it writes the `restored_from` flag into the DB it installs, which the next start turns into recovery and clears.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from core.flags import FLAG_HALTED, FLAG_RECOVERY, FLAG_REDUCE_ONLY
from core.store import StateStore

log = structlog.get_logger(__name__)

KILL_SWITCH_FILE = "kill_switch.json"
FILE_FLAGS = (FLAG_HALTED, FLAG_REDUCE_ONLY)
FLAG_RUN_ID = "run_id"
FLAG_RESTORED = "restored_from"  # set by `tradingd restore`, consumed by the next daemon start
_UNREADABLE = "kill_switch.json unreadable"  # fail closed: a garbled file may have said halted


def kill_switch_path(db: Path) -> Path:
    return db.parent / KILL_SWITCH_FILE


class KillSwitchFile:
    """The small JSON twin of the safety flags. Missing means nothing set; unreadable means halted."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # The file is consulted every iteration (twice); re-parse it only when it changed. A stat is ~1 µs, a read
        # and parse ~30 µs: on a 1,259-session replay that difference was 15 % of the whole run.
        self._cached: tuple[tuple[int, int, int], dict[str, str]] | None = None

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> dict[str, str]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._cached = None
            return {}
        except OSError:
            stat = None
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino) if stat is not None else None
        if key is not None and self._cached is not None and self._cached[0] == key:
            return dict(self._cached[1])
        values = self._read()
        self._cached = (key, values) if key is not None else None
        return dict(values)

    def _read(self) -> dict[str, str]:
        try:
            raw: Any = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            log.warning("kill_switch_file_unreadable", path=str(self.path), treated_as="halted")
            return {FLAG_HALTED: _UNREADABLE}
        if not isinstance(raw, dict):
            return {FLAG_HALTED: _UNREADABLE}
        return {str(k): str(v) for k, v in raw.items() if v is not None}

    def write(self, values: dict[str, str]) -> None:
        """Atomic: a temp file in the same directory, fsynced, then renamed over the old one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({name: values.get(name) for name in (*FILE_FLAGS, FLAG_RUN_ID)}, indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{KILL_SWITCH_FILE}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp).replace(self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class GuardedFlags:
    """A `FlagStore` over the state DB whose halted / reduce-only flags are mirrored in the kill-switch file."""

    def __init__(self, store: StateStore, file: KillSwitchFile) -> None:
        self._store = store
        self._file = file

    @property
    def file(self) -> KillSwitchFile:
        return self._file

    def get_flag(self, name: str) -> str | None:
        value = self._store.get_flag(name)
        if value is None and name in FILE_FLAGS:
            # Read at every call (every iteration): a halt from another process, or a DB that lost it, still counts.
            return self._file.read().get(name)
        return value

    def set_flag(self, name: str, value: str) -> None:
        self._store.set_flag(name, value)
        if name in FILE_FLAGS:
            self._write_file()

    def clear_flag(self, name: str) -> None:
        # Cleared in both: the file alone would otherwise keep the flag alive.
        self._store.clear_flag(name)
        if name in FILE_FLAGS:
            self._write_file()

    def flags_with_prefix(self, prefix: str) -> dict[str, str]:
        return self._store.flags_with_prefix(prefix)  # none of the file's flags: those are read by name

    def sync(self) -> None:
        """Make the DB and the file agree: a flag either holds is set in both (a lost DB regains its halt)."""
        on_file = self._file.read()
        for name in FILE_FLAGS:
            if self._store.get_flag(name) is None and name in on_file:
                self._store.set_flag(name, on_file[name])
        self._write_file()

    def _write_file(self, token: str | None = None) -> None:
        """The file mirrors the DB's safety flags (after `sync`, the DB holds everything either had)."""
        values = {name: value for name in FILE_FLAGS if (value := self._store.get_flag(name)) is not None}
        token = token or self._store.get_flag(FLAG_RUN_ID) or self._file.read().get(FLAG_RUN_ID)
        if token is not None:
            values[FLAG_RUN_ID] = token
        self._file.write(values)

    def write_run_token(self, token: str) -> None:
        self._store.set_flag(FLAG_RUN_ID, token)
        self._write_file(token)


@dataclass(frozen=True, slots=True)
class GuardedState:
    store: StateStore
    flags: GuardedFlags
    recovery: str | None  # why the DB's state was lost, when it was


def open_guarded_state(db: Path, *, detect_loss: bool, auto_resume: bool) -> GuardedState:
    """Open the daemon's state DB with its kill-switch file; with `detect_loss` (paper/live), enter recovery when the
    DB was lost, quarantined or restored. Every call starts a new run (a fresh run token)."""
    file = KillSwitchFile(kill_switch_path(db))
    before = set(db.parent.glob(f"{db.name}.corrupt-*"))
    existed = db.exists() and db.stat().st_size > 0
    previous_token = file.read().get(FLAG_RUN_ID)
    store = StateStore(db)
    flags = GuardedFlags(store, file)
    flags.sync()
    new = set(db.parent.glob(f"{db.name}.corrupt-*")) - before
    quarantined = sorted(p for p in new if not p.name.endswith(("-wal", "-shm")))
    restored = store.get_flag(FLAG_RESTORED)
    cause: str | None = None
    if quarantined:
        cause = f"state DB was corrupt and set aside as {quarantined[0].name}"
    elif restored is not None:
        cause = restored
    elif previous_token is not None and not existed:
        cause = f"state DB missing though a previous run left {KILL_SWITCH_FILE}"
    elif previous_token is not None and store.get_flag(FLAG_RUN_ID) != previous_token:
        cause = "state DB restored or replaced (its run token is not the last run's)"
    if cause is not None and detect_loss:
        if auto_resume:
            if restored is not None and store.get_flag(FLAG_RECOVERY) == restored:
                # `restore` showed recovery in `status` ahead of this start; the setting now says start normally.
                store.clear_flag(FLAG_RECOVERY)
            log.warning("state_recovery_auto_resumed", cause=cause, note="RECOVERY_AUTO_RESUME=true")
        else:
            flags.set_flag(FLAG_RECOVERY, cause)
            log.warning("state_recovery", cause=cause, trading_state="reducing", lifted_by="tradingd resume")
    if restored is not None:
        store.clear_flag(FLAG_RESTORED)
    flags.write_run_token(uuid.uuid4().hex)
    return GuardedState(store, flags, cause if detect_loss else None)
