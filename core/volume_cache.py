"""The 20-day average volume of every symbol, cached in SQLite (DATA_DIR) so the daily scan makes no history calls.

An entry is the average over the 20 sessions ending at its `as_of` session. RVOL compares a session's volume with the
20 sessions *before* it, so the scan of session D uses exactly the entries whose `as_of` is the session before D:
older entries are stale, newer ones include D itself (or, in sim, the future) and are never used. A symbol without a
complete 20-session window gets no entry at all: the scan skips and counts it instead of guessing.

`refresh_volume_cache` recomputes entries from batched daily bars (`tradingd scan` before it scans, the paper/live
daemon's daily job, `tradingd cache refresh`); with `stale_only` it touches only the symbols whose entry is missing or
not for the target session. A sim replay keeps the same numbers in memory instead (`core/rolling_volumes.py`), both
computed by `window_averages`.

An entry also holds the 20-day volatility (the pre-screen's `MAX_PRESCREEN_VOLATILITY`): the sample standard deviation
of the 20 daily close-to-close returns ending at `as_of`, so it needs 21 closes; NULL when the 21st is missing (a
symbol's first scannable session), and the scan then skips that filter for the symbol and counts it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from core.broker.base import MarketData, Progress
from core.clock import NyseCalendar
from core.daily_window import fetch_daily_window, last_sessions
from core.sqlite_db import SqliteDb, SqliteOwner
from core.types import FloatArray

AVERAGE_SESSIONS: Final = 20
# The volatility needs one close more than the averages: 20 returns ending at as_of.
WINDOW_SESSIONS: Final = AVERAGE_SESSIONS + 1
_SCHEMA: Final = """CREATE TABLE IF NOT EXISTS volume_averages (
    symbol TEXT PRIMARY KEY,
    as_of TEXT NOT NULL,
    sessions INTEGER NOT NULL,
    avg_volume REAL NOT NULL,
    avg_dollar_volume REAL NOT NULL,
    last_close REAL NOT NULL,
    updated_at TEXT NOT NULL,
    volatility REAL
)"""
_INSERT: Final = (
    "INSERT OR REPLACE INTO volume_averages"
    " (symbol, as_of, sessions, avg_volume, avg_dollar_volume, last_close, updated_at, volatility)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

DateArray = npt.NDArray[np.datetime64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class CachedVolumes:
    """Cache entries aligned with `symbols` (NaN / NaT where a symbol has no entry)."""

    symbols: tuple[str, ...]
    as_of: DateArray  # datetime64[D]
    avg_volume: FloatArray
    avg_dollar_volume: FloatArray
    last_close: FloatArray
    volatility: FloatArray  # NaN where unknown (fewer than 21 closes): the volatility filter skips the symbol

    @property
    def found(self) -> BoolArray:
        return ~np.isnat(self.as_of)

    def classify(self, expected: date) -> dict[str, BoolArray]:
        """Masks `fresh` (as_of == expected), `stale` (older), `ahead` (newer) and `missing`."""
        target = np.datetime64(expected, "D")
        found = self.found
        return {
            "fresh": found & (self.as_of == target),
            "stale": found & (self.as_of < target),
            "ahead": found & (self.as_of > target),
            "missing": ~found,
        }


@dataclass(frozen=True, slots=True)
class RefreshStats:
    through: date
    requested: int  # symbols asked to refresh
    skipped_fresh: int  # already current (stale_only)
    written: int  # entries (re)computed
    incomplete: int  # no complete 20-session window: entry removed, never defaulted
    api_calls: int
    elapsed_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "through": self.through.isoformat(),
            "requested": self.requested,
            "skipped_fresh": self.skipped_fresh,
            "written": self.written,
            "incomplete": self.incomplete,
            "api_calls": self.api_calls,
            "elapsed_ms": round(self.elapsed_ms, 3),
        }


class VolumeLookup(Protocol):
    """Where the scan reads the averages: the SQLite cache (paper/live, `tradingd scan`) or a sim replay's in-memory
    rolling window (`core/rolling_volumes.py`)."""

    def lookup(self, symbols: Sequence[str]) -> CachedVolumes: ...


@dataclass(frozen=True, slots=True)
class WindowAverages:
    """What an entry holds, for the symbols (columns) of a window of daily bars; `complete` marks those with one."""

    complete: BoolArray
    avg_volume: FloatArray
    avg_dollar_volume: FloatArray
    last_close: FloatArray
    volatility: FloatArray


def window_averages(close: FloatArray, volume: FloatArray) -> WindowAverages:
    """Averages over the last 20 rows of (sessions, symbols) arrays, oldest first; the volatility over the last 21.

    A symbol is complete when its last 20 sessions all have a positive close and a non-negative volume, with a
    positive average volume; the others get NaN, never a default. The reductions run over exactly the last 20 rows,
    so a rolling window and a fresh download give the same floats.
    """
    close20, volume20 = close[-AVERAGE_SESSIONS:], volume[-AVERAGE_SESSIONS:]
    with np.errstate(invalid="ignore", divide="ignore"):
        complete = (
            np.isfinite(volume20).all(axis=0)
            & (volume20 >= 0).all(axis=0)
            & np.isfinite(close20).all(axis=0)
            & (close20 > 0).all(axis=0)
        )
        avg_volume = np.where(complete, volume20.mean(axis=0), np.nan)
        complete &= avg_volume > 0
        if close.shape[0] > AVERAGE_SESSIONS:
            closes = close[-WINDOW_SESSIONS:]
            returns = closes[1:] / closes[:-1] - 1.0
            volatility = returns.std(axis=0, ddof=1)
            volatility = np.where(complete & np.isfinite(volatility), volatility, np.nan)
        else:
            volatility = np.full(close.shape[1], np.nan)
        return WindowAverages(
            complete=complete,
            avg_volume=np.where(complete, avg_volume, np.nan),
            avg_dollar_volume=np.where(complete, (close20 * volume20).mean(axis=0), np.nan),
            last_close=np.where(complete, close20[-1], np.nan),
            volatility=volatility,
        )


def _create_schema(conn: sqlite3.Connection) -> None:
    conn.execute(_SCHEMA)
    columns = {row[0] for row in conn.execute("SELECT name FROM pragma_table_info('volume_averages')")}
    if "volatility" not in columns:  # a cache written before the volatility pre-filter: its entries get NULL
        conn.execute("ALTER TABLE volume_averages ADD COLUMN volatility REAL")


class VolumeCache(SqliteOwner):
    """One SQLite file, one table. Own it, use it, `close()` it (or use it as a context manager).

    A corrupt or foreign file is set aside (`volume_cache_corrupt`, `core/sqlite_db.py`) and the cache starts empty:
    it holds nothing that cannot be fetched again.
    """

    def __init__(self, path: Path) -> None:
        # DATA_DIR (or DATA_DIR/sim): the folder is tightened only if we create it.
        self._db = SqliteDb(
            path, schema=_create_schema, kind="volume_cache", what="a tradingd volume cache", tighten_dir=False
        )
        self._conn = self._db.conn

    def lookup(self, symbols: Sequence[str]) -> CachedVolumes:
        """Entries for `symbols`, in their order: one query into numpy columns, aligned by one gather."""
        rows = self._conn.execute(
            "SELECT symbol, as_of, avg_volume, avg_dollar_volume, last_close, volatility FROM volume_averages"
        ).fetchall()
        return align_entries(rows, symbols)

    def replace_all(self, symbols: Sequence[str], as_of: date, averages: WindowAverages, *, now: datetime) -> int:
        """Make the file hold exactly the complete entries of `averages` (columns = `symbols`): one transaction."""
        keep = np.flatnonzero(averages.complete)
        names = np.asarray(symbols, dtype=object)[keep].tolist()
        with self._db.transaction():
            self._conn.execute("DELETE FROM volume_averages")
            return self._insert(names, as_of, averages, keep, now)

    def _insert(self, names: list[str], as_of: date, averages: WindowAverages, keep: IntArray, now: datetime) -> int:
        stamp, day = now.isoformat(), as_of.isoformat()
        volatility = [None if np.isnan(v) else v for v in averages.volatility[keep].tolist()]
        rows = zip(
            names,
            [day] * len(names),
            [AVERAGE_SESSIONS] * len(names),
            averages.avg_volume[keep].tolist(),
            averages.avg_dollar_volume[keep].tolist(),
            averages.last_close[keep].tolist(),
            [stamp] * len(names),
            volatility,
            strict=True,
        )
        self._conn.executemany(_INSERT, rows)
        return len(names)

    def put(
        self,
        symbols: Sequence[str],
        as_of: date,
        avg_volume: FloatArray,
        avg_dollar_volume: FloatArray,
        last_close: FloatArray,
        *,
        now: datetime,
        volatility: FloatArray | None = None,
    ) -> int:
        n = len(symbols)
        averages = WindowAverages(
            complete=np.ones(n, dtype=bool),
            avg_volume=np.asarray(avg_volume, dtype=np.float64),
            avg_dollar_volume=np.asarray(avg_dollar_volume, dtype=np.float64),
            last_close=np.asarray(last_close, dtype=np.float64),
            volatility=np.full(n, np.nan) if volatility is None else np.asarray(volatility, dtype=np.float64),
        )
        with self._db.transaction():
            return self._insert(list(symbols), as_of, averages, np.arange(n), now)

    def delete(self, symbols: Sequence[str]) -> None:
        with self._db.transaction():
            self._conn.executemany("DELETE FROM volume_averages WHERE symbol = ?", [(s,) for s in symbols])

    def summary(self, expected: date | None = None) -> dict[str, Any]:
        """Entry count, oldest/newest `as_of`, and (given the session scans expect) fresh/stale/ahead counts."""
        count, oldest, newest = self._conn.execute(
            "SELECT COUNT(*), MIN(as_of), MAX(as_of) FROM volume_averages"
        ).fetchone()
        result: dict[str, Any] = {"path": str(self.path), "entries": int(count), "oldest": oldest, "newest": newest}
        if expected is not None:
            day = expected.isoformat()
            fresh, stale, ahead = self._conn.execute(
                "SELECT COALESCE(SUM(as_of = ?), 0), COALESCE(SUM(as_of < ?), 0), COALESCE(SUM(as_of > ?), 0) "
                "FROM volume_averages",
                (day, day, day),
            ).fetchone()
            result.update(expected=day, fresh=int(fresh), stale=int(stale), ahead=int(ahead))
        return result


def align_entries(rows: Sequence[tuple[Any, ...]], symbols: Sequence[str]) -> CachedVolumes:
    """Rows `(symbol, as_of, avg_volume, avg_dollar_volume, last_close, volatility)` aligned with `symbols` (NaN/NaT
    where a symbol has no row): numpy columns and one gather, no per-call pandas."""
    n = len(symbols)
    position = {symbol: i for i, symbol in enumerate(symbols)}
    where = np.fromiter((position.get(row[0], -1) for row in rows), dtype=np.intp, count=len(rows))
    hit = where >= 0
    target = where[hit]
    as_of = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    columns = [np.full(n, np.nan) for _ in range(4)]
    if rows:
        table = list(zip(*rows, strict=True))
        as_of[target] = np.array(table[1], dtype="datetime64[D]")[hit]
        for column, values in zip(columns, table[2:], strict=True):
            column[target] = np.array(values, dtype=np.float64)[hit]  # None (no volatility) becomes NaN
    return CachedVolumes(
        symbols=tuple(symbols),
        as_of=as_of,
        avg_volume=columns[0],
        avg_dollar_volume=columns[1],
        last_close=columns[2],
        volatility=columns[3],
    )


def cache_target(calendar: NyseCalendar, scan_session: date) -> date:
    """The `as_of` the cache must have for the scan of `scan_session`: the session before it."""
    return calendar.previous_session(scan_session)


async def refresh_volume_cache(
    cache: VolumeCache,
    market_data: MarketData,
    calendar: NyseCalendar,
    symbols: Sequence[str],
    *,
    through: date,
    now: datetime,
    stale_only: bool = False,
    on_progress: Progress | None = None,
) -> RefreshStats:
    """Recompute the 20-session averages ending at `through` from batched daily bars; drop incomplete symbols."""
    t0 = time.perf_counter()
    calls0 = market_data.api_calls
    requested = list(dict.fromkeys(symbols))
    targets = requested
    if stale_only:
        fresh = cache.lookup(requested).classify(through)["fresh"]
        targets = np.asarray(requested, dtype=object)[~fresh].tolist()
    written = incomplete = 0
    if targets:
        frame = await fetch_daily_window(
            market_data,
            calendar,
            targets,
            last_sessions(calendar, through, WINDOW_SESSIONS),
            on_progress=on_progress,
        )
        averages = window_averages(frame.close, frame.volume)
        keep_idx = np.flatnonzero(averages.complete)
        drop_idx = np.flatnonzero(~averages.complete)
        names = np.asarray(targets, dtype=object)
        kept = names[keep_idx].tolist()
        written = cache.put(
            kept,
            through,
            averages.avg_volume[keep_idx],
            averages.avg_dollar_volume[keep_idx],
            averages.last_close[keep_idx],
            now=now,
            volatility=averages.volatility[keep_idx],
        )
        dropped = names[drop_idx].tolist()
        cache.delete(dropped)
        incomplete = len(dropped)
    return RefreshStats(
        through=through,
        requested=len(requested),
        skipped_fresh=len(requested) - len(targets),
        written=written,
        incomplete=incomplete,
        api_calls=market_data.api_calls - calls0,
        elapsed_ms=(time.perf_counter() - t0) * 1000,
    )
