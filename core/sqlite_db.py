"""`SqliteDb`: the one way this program opens a SQLite file (the state store, the volume cache, the bar cache).

- Private: the file and its `-wal`/`-shm` are 0600 and a folder it creates 0700 (`core/private_files.py`).
- WAL with `synchronous=NORMAL` (a commit survives a process crash; fsync happens at checkpoints), and a busy timeout
  so a second process (`tradingd status`, `halt`, another daemon sharing the bar cache) waits for the write lock
  instead of failing.
- A file that is not a sound database of ours is set aside, never deleted, as it was found (nothing is written to it
  first): random bytes, a truncated or damaged file (`PRAGMA quick_check`), a zero-byte file, or a sound SQLite file
  whose schema is someone else's (ours cannot be applied, or a table or column we use is missing). It is renamed
  `<name>.corrupt-<UTC time>` with its sidecars, the new name is logged (`<kind>_corrupt`, a warning) and a fresh,
  empty file takes its place. What the owner does
  next is its own business: the state store's recovery reconciles with the broker, the caches simply refill.
- `transaction()`: everything inside commits together or not at all; nested use is a savepoint.

Anything else (permissions, a full disk, a directory in the way, a file locked past the busy timeout) is an
operational problem a fresh file would not fix: it propagates.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import structlog

from core.private_files import SQLITE_SIDECARS, private_dir, private_sqlite

log = structlog.get_logger(__name__)

# Creates or migrates the schema on an open connection (idempotent); raises sqlite3.OperationalError when the file's
# own tables are in the way.
Schema = Callable[[sqlite3.Connection], None]

BUSY_TIMEOUT_S: Final = 5.0
_CORRUPTION_CODES: Final = frozenset({sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT})
# Another process holding the lock says nothing about the file: never a reason to set it aside.
_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def wall_clock_utc() -> datetime:
    # Only names set-aside files: that is about when a human finds the file, so it is wall time even in sim.
    return datetime.now(UTC)


class NotOurDatabaseError(sqlite3.DatabaseError):
    """The file is damaged, empty or someone else's: what `SqliteDb` sets aside (beside SQLite's own corruption
    errors)."""


class SqliteDb:
    """One SQLite file, opened the project's way. Its owner uses `conn` and `transaction()`, and `close()`s it."""

    def __init__(
        self,
        path: Path,
        *,
        schema: Schema,
        kind: str,
        what: str,
        tighten_dir: bool = True,
        utc_now: Callable[[], datetime] = wall_clock_utc,
        read_only: bool = False,
    ) -> None:
        """`kind` names the log event (`<kind>_corrupt`); `what` the file in messages ("a tradingd volume cache").
        `tighten_dir`: chmod the folder to 0700 even when it existed (the state's own folder, not DATA_DIR)."""
        self._path = Path(path)
        self._schema = schema
        self._kind = kind
        self._what = what
        self._utc_now = utc_now
        self._depth = 0
        self._closed = False
        self.set_aside: Path | None = None  # where a bad file found at open went
        if read_only:
            # A reader beside the owner (the dashboard's requests, in another thread or process): it creates,
            # migrates and sets aside nothing, and SQLite refuses every write through it. A missing file raises.
            if not self._path.is_file():
                raise FileNotFoundError(2, "no such file", str(self._path))
            self.conn = connect_read_only(self._path, check_same_thread=False)
            return
        private_dir(self._path.parent, tighten=tighten_dir)
        try:
            self.conn = self._open()
        except sqlite3.DatabaseError as error:
            if not is_corruption(error):
                raise
            self.set_aside = quarantine(self._path, self._utc_now())
            log.warning(f"{kind}_corrupt", path=str(self._path), moved_to=str(self.set_aside), error=str(error))
            self.conn = self._open()

    @property
    def path(self) -> Path:
        return self._path

    def _open(self) -> sqlite3.Connection:
        if self._path.is_file() and self._path.stat().st_size == 0:
            # SQLite would take it for a new database; but something truncated it, and a human may want to know.
            raise NotOurDatabaseError(f"{self._path.name} is empty (zero bytes)")
        if self._path.exists():
            _inspect(self._path, self._schema, self._what)  # read-only: a bad file is set aside as it was found
        private_sqlite(self._path)  # before connect: the -wal/-shm SQLite creates take the database file's mode
        # isolation_level=None: the module never opens transactions behind our back; transaction() owns them.
        # check_same_thread=False: the owner may call from a worker thread (asyncio.to_thread), one call at a time.
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode: a commit is durable against a process crash, fsync happens at checkpoints.
            conn.execute("PRAGMA synchronous = NORMAL")
            _apply(self._schema, conn, self._what)
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all. Nested use is a savepoint inside the outer transaction."""
        if self._depth > 0:
            with self._savepoint():
                yield
            return
        # IMMEDIATE takes the write lock now, so a read-then-write inside cannot fail half-way with SQLITE_BUSY when
        # another process wrote in between; the busy timeout covers the wait.
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        finally:
            self._depth = 0

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        name = f"sp{self._depth}"
        self.conn.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self.conn.execute(f"ROLLBACK TO {name}")
            self.conn.execute(f"RELEASE {name}")
            raise
        else:
            self.conn.execute(f"RELEASE {name}")
        finally:
            self._depth -= 1

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0


def quarantine(path: Path, now: datetime, *, label: str = "corrupt") -> Path:
    """Move a SQLite file (and its WAL sidecars) aside as `<name>.<label>-<UTC time>`, keeping it for a human to
    inspect: a bad one (`corrupt`), or the one a restore replaces (`pre-restore`); returns its new path. Sidecars
    without their database are moved too, so they can never be replayed into the file that takes the name next."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.{label}-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{label}-{stamp}-{n}")
    if path.exists():
        path.rename(target)
    # Sidecars keep SQLite's "<db>-wal" naming so the set-aside copy opens with its own WAL, and a stale WAL
    # is never replayed into the fresh database.
    for suffix in SQLITE_SIDECARS:
        sidecar = path.with_name(path.name + suffix)
        if sidecar.exists():
            sidecar.rename(target.with_name(target.name + suffix))
    return target


def connect_read_only(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A connection that cannot change the file (checks, backups): SQLite refuses every write through it."""
    return sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro",
        uri=True,
        isolation_level=None,
        timeout=BUSY_TIMEOUT_S,
        check_same_thread=check_same_thread,
    )


def is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """Whether a fresh file would fix it: "this is not (or no longer) a database of ours"."""
    return isinstance(exc, NotOurDatabaseError) or (_code(exc) & 0xFF) in _CORRUPTION_CODES


def _code(exc: sqlite3.Error) -> int:
    code = getattr(exc, "sqlite_errorcode", None)
    return -1 if code is None else int(code)


def _inspect(path: Path, schema: Schema, what: str) -> None:
    """Raise `NotOurDatabaseError` unless the file is a sound SQLite database our schema applies to, without writing.

    A damaged page inside a table opens fine and only fails when touched, maybe mid-run; `quick_check` finds it at
    open instead (O(size), about 0.25 s for 270 MB). Then the schema is tried on an empty copy of the file's own
    tables (`verify_migratable`). The file is read on a read-only connection because closing a read-write one that
    failed on a bad file deletes the file's WAL, which may hold the latest commits.
    """
    conn = connect_read_only(path)
    try:
        result = conn.execute("PRAGMA quick_check").fetchall()
        if result != [("ok",)]:
            raise NotOurDatabaseError("; ".join(str(r[0]) for r in result[:5]))
        verify_migratable(conn, schema, what)
    finally:
        conn.close()


def verify_migratable(conn: sqlite3.Connection, schema: Schema, what: str) -> None:
    """Raise `NotOurDatabaseError` unless `schema` (migrations included) applies to the tables of `conn`'s file and
    leaves every table and column it makes, without writing to the file.

    The schema is tried on an empty in-memory copy of the file's own tables at the file's version: a file that is
    someone else's is set aside exactly as it was found, not after our tables were added to it, and a file of an
    older version of ours passes when its migrations would bring it up to date.
    """
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    ddl = [
        sql
        for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")
        if not name.startswith("sqlite_")  # SQLite's own (sqlite_sequence) comes with the tables that need it
    ]
    copy = sqlite3.connect(":memory:", isolation_level=None)
    try:
        try:
            for statement in ddl:
                copy.execute(statement)
            copy.execute(f"PRAGMA user_version = {version:d}")
        except sqlite3.Error as exc:
            raise NotOurDatabaseError(f"not {what}: {exc}") from exc
        _apply(schema, copy, what)
    finally:
        copy.close()


def _apply(schema: Schema, conn: sqlite3.Connection, what: str) -> None:
    """Create or migrate the schema, then check every table and column it makes is there."""
    try:
        schema(conn)
    except sqlite3.OperationalError as exc:
        if _code(exc) in _BUSY_CODES:
            raise
        # A sound SQLite file whose tables are someone else's: our schema cannot apply to it.
        raise NotOurDatabaseError(f"not {what}: {exc}") from exc
    verify_schema(conn, schema, what)


_EXPECTED_COLUMNS: dict[Schema, dict[str, frozenset[str]]] = {}


def _columns(conn: sqlite3.Connection) -> dict[str, frozenset[str]]:
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    # A parameter, not string formatting: a foreign file's table names can hold anything.
    return {t: frozenset(r[0] for r in conn.execute("SELECT name FROM pragma_table_info(?)", (t,))) for t in tables}


def _expected_columns(schema: Schema) -> dict[str, frozenset[str]]:
    expected = _EXPECTED_COLUMNS.get(schema)
    if expected is None:
        reference = sqlite3.connect(":memory:", isolation_level=None)
        try:
            schema(reference)
            expected = _EXPECTED_COLUMNS[schema] = _columns(reference)
        finally:
            reference.close()
    return expected


def verify_schema(conn: sqlite3.Connection, schema: Schema, what: str) -> None:
    """Every table and column the schema makes is there, or the file is set aside like a corrupt one.

    A file at the right version that lost a table (or was never ours) would otherwise fail mid-run with "no such
    table"; at open it is set aside and a fresh one takes over.
    """
    present = _columns(conn)
    missing = [
        f"{table}({', '.join(sorted(columns - present.get(table, frozenset())))})" if table in present else table
        for table, columns in _expected_columns(schema).items()
        if not columns <= present.get(table, frozenset())
    ]
    if missing:
        raise NotOurDatabaseError(f"not {what}: missing {', '.join(sorted(missing))}")


class SqliteOwner:
    """A component that keeps its data in one `SqliteDb` (`self._db`): its path, closing, and `with` support."""

    _db: SqliteDb

    @property
    def path(self) -> Path:
        return self._db.path

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
