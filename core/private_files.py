"""Owner-only permissions for everything the daemon writes under DATA_DIR.

A trading account's orders, fills, positions and logs are private: files are 0600 and the folders the daemon creates
0700, whatever the process umask (the modes are set explicitly, never through os.umask, which is process-wide and
would race with other threads).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")  # the files SQLite keeps beside a database, by suffix


def private_dir(path: Path, *, tighten: bool = True) -> None:
    """Create `path` (and missing parents) as 0700; `tighten`: also chmod it when it already existed.

    Only missing parents are created 0700: an existing parent may be the user's own folder (DATA_DIR=. ), not ours.
    """
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    path.mkdir(parents=True, exist_ok=True)
    for created in missing:
        os.chmod(created, DIR_MODE)  # mkdir's mode is filtered by the umask; chmod is not
    if tighten and not missing:
        os.chmod(path, DIR_MODE)


def private_file(path: Path) -> None:
    """Make sure `path` exists with mode 0600 (created empty if missing; an existing file is tightened)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def private_sqlite(path: Path) -> None:
    """A SQLite file as 0600 before it is opened: SQLite creates its -wal/-shm with the database file's mode.

    Existing sidecars (from a run before this rule) are tightened too.
    """
    private_file(path)
    for suffix in SQLITE_SIDECARS:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", FILE_MODE)
