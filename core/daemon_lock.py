"""One daemon per state: an exclusive OS lock on `DATA_DIR/<mode>/daemon.lock`, held for the daemon's whole life.

Two daemons on one state both trade (every order twice) and a second sim replay would delete the first one's
database mid-run, so `run` and `replay` take this lock before anything touches the state and keep it until exit
(`restore` holds it while it swaps the database).
It is `fcntl.flock` (Linux and macOS only): the kernel drops it when the holder's last descriptor closes, so a
crashed holder (kill -9, power loss of the process) never leaves a stale lock behind; the next daemon takes it and
overwrites the old holder's text. The file is never deleted: unlinking a lock file lets a second process lock the
old inode while a third creates and locks a new one, and then two daemons hold "the" lock.

`status`, `halt`, `resume`, `orders` and `fills` never take it: a kill switch that a running daemon could block
would be a safety bug. The file's content (pid, UTC start time, command) only names the holder in the refusal.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Self

from core.private_files import FILE_MODE, private_dir

LOCK_FILE: Final = "daemon.lock"


class StateInUseError(Exception):
    """Another process holds the daemon lock on this state directory."""

    def __init__(self, state_dir: Path, holder: str) -> None:
        super().__init__(f"{state_dir} is in use by {holder}; one daemon per state")
        self.state_dir = state_dir
        self.holder = holder


@dataclass(slots=True)
class DaemonLock:
    """A held lock; `release()` (or leaving the `with` block) gives it up. Releasing twice is harmless."""

    path: Path
    _fd: int | None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        # Closing the descriptor is what releases a flock; the explicit unlock only makes the moment obvious.
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def lock_path(state_dir: Path) -> Path:
    return state_dir / LOCK_FILE


def acquire_daemon_lock(state_dir: Path, command: str, *, now: datetime | None = None) -> DaemonLock:
    """Take the lock without waiting, or raise `StateInUseError` naming the holder.

    `state_dir` is created if missing (an unusable path raises the `OSError`, which the CLI reports as one line).
    """
    private_dir(state_dir)
    path = lock_path(state_dir)
    # O_CLOEXEC (Python's default): a child process the daemon starts must not inherit, and so keep, the lock.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _describe_holder(fd)
        os.close(fd)
        raise StateInUseError(state_dir, holder) from None
    except BaseException:
        os.close(fd)
        raise
    started = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = json.dumps({"pid": os.getpid(), "started": started, "command": command}) + "\n"
    try:
        # A crashed holder's text may still be there: replace it, never append to it.
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return DaemonLock(path=path, _fd=fd)


def _describe_holder(fd: int) -> str:
    """`tradingd pid 1234 (started …, run)`, or a plain phrase when the holder has not written its details yet."""
    try:
        raw = os.pread(fd, 4096, 0).decode(errors="replace")
        info = json.loads(raw)
        return f"tradingd pid {int(info['pid'])} (started {info['started']}, {info['command']})"
    except (OSError, ValueError, KeyError, TypeError):
        # The holder locks first and writes its details just after: between the two the file is empty.
        return "another tradingd process (its details are not written yet)"
