"""The state DB's WAL checkpoints, run from a thread of their own so their fsyncs never stall a commit.

In WAL mode with `synchronous=NORMAL` a commit only appends to the `-wal` file (durable against a crash of the
process, as before); copying the WAL back into the database file, a *checkpoint*, is where SQLite syncs to disk.
SQLite runs one inside whichever commit takes the WAL past `wal_autocheckpoint` pages, so on a busy disk an order's
write-ahead commit could wait tens of milliseconds on someone else's fsync. Here the daemon's connection leaves that
to a second connection on a worker thread: woken after commits, at most every `min_gap` seconds, it runs a PASSIVE
checkpoint, which never takes the write lock (the pipeline's writers never wait for it) and copies what no reader
still needs. The main connection keeps a higher `wal_autocheckpoint` as a backstop (below), should this thread fall
behind. Nothing about durability changes: a commit is as durable as before the moment it returns.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Final

import structlog

log = structlog.get_logger(__name__)

MIN_GAP_SECONDS: Final = 0.5  # between two checkpoints: each syncs the file, so not one per commit
# The main connection's own autocheckpoint (~40 MB of WAL). Under a steady stream of commits (a replay) a PASSIVE
# checkpoint rarely catches the WAL's very end, and SQLite restarts the WAL only once all of it is copied: then this
# backstop, with little left to copy, does it inside a commit, once per 10,000 pages instead of once per 1,000.
BACKSTOP_PAGES: Final = 10_000
WAL_SIZE_LIMIT_BYTES: Final = 32 * 1024 * 1024  # a restarted WAL file is cut back to this size, not left at its peak


class WalCheckpointer:
    def __init__(self, path: Path, *, min_gap: float = MIN_GAP_SECONDS) -> None:
        self._path = path
        self._min_gap = min_gap
        self._due = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="state-db-checkpoint", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """Something was committed: checkpoint soon (cheap; called after every transaction)."""
        self._due.set()

    def close(self) -> None:
        """Run a last checkpoint and stop the thread (before the main connection closes); a second call does nothing."""
        self._stopping.set()
        self._due.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as error:
            log.warning("wal_checkpointer_unavailable", error=str(error))
            return  # the main connection's backstop autocheckpoint does the work
        try:
            while True:
                self._due.wait()
                self._due.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as error:  # e.g. the file was replaced under us: the backstop takes over
                    log.warning("wal_checkpoint_failed", error=str(error))
                    return
                if self._stopping.is_set() or self._stopping.wait(self._min_gap):
                    if self._due.is_set():
                        try:
                            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                        except sqlite3.Error as error:  # the main connection's close checkpoints anyway
                            log.warning("wal_checkpoint_failed", error=str(error))
                    return
        finally:
            conn.close()
