"""The 20-day average volume of every symbol, cached in SQLite (DATA_DIR) so the daily scan makes no history calls.

An entry is the average over the 20 sessions ending at its `as_of` session. RVOL compares a session's volume with the
20 sessions *before* it, so the scan of session D uses exactly the entries whose `as_of` is the session before D:
older entries are stale, newer ones include D itself (or, in sim, the future) and are never used. A symbol without a
complete 20-session window gets no entry at all: the scan skips and counts it instead of guessing.

`refresh_volume_cache` recomputes entries from batched daily bars (`tradingd scan` before it scans, the daemon's
daily job, `tradingd cache refresh`); with `stale_only` it touches only the symbols whose entry is missing or not
for the target session.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.broker.base import MarketData, Progress
from core.clock import NyseCalendar
from core.daily_window import fetch_daily_window, last_sessions
from core.sqlite_db import SqliteDb, SqliteOwner
from core.types import FloatArray

AVERAGE_SESSIONS: Final = 20
_SCHEMA: Final = """CREATE TABLE IF NOT EXISTS volume_averages (
    symbol TEXT PRIMARY KEY,
    as_of TEXT NOT NULL,
    sessions INTEGER NOT NULL,
    avg_volume REAL NOT NULL,
    avg_dollar_volume REAL NOT NULL,
    last_close REAL NOT NULL,
    updated_at TEXT NOT NULL
)"""

DateArray = npt.NDArray[np.datetime64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class CachedVolumes:
    """Cache entries aligned with `symbols` (NaN / NaT where a symbol has no entry)."""

    symbols: tuple[str, ...]
    as_of: DateArray  # datetime64[D]
    avg_volume: FloatArray
    avg_dollar_volume: FloatArray
    last_close: FloatArray

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


def _create_schema(conn: sqlite3.Connection) -> None:
    conn.execute(_SCHEMA)


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
        """Entries for `symbols`, in their order: one query, aligned with pandas (no per-symbol Python)."""
        rows = self._conn.execute(
            "SELECT symbol, as_of, avg_volume, avg_dollar_volume, last_close FROM volume_averages"
        ).fetchall()
        table = pd.DataFrame(rows, columns=["symbol", "as_of", "avg_volume", "avg_dollar_volume", "last_close"])
        table = table.set_index("symbol").reindex(pd.Index(list(symbols), dtype=object))
        as_of = pd.to_datetime(table["as_of"], format="%Y-%m-%d").to_numpy(dtype="datetime64[D]")
        return CachedVolumes(
            symbols=tuple(symbols),
            as_of=as_of,
            avg_volume=table["avg_volume"].to_numpy(dtype=np.float64, na_value=np.nan),
            avg_dollar_volume=table["avg_dollar_volume"].to_numpy(dtype=np.float64, na_value=np.nan),
            last_close=table["last_close"].to_numpy(dtype=np.float64, na_value=np.nan),
        )

    def put(
        self,
        symbols: Sequence[str],
        as_of: date,
        avg_volume: FloatArray,
        avg_dollar_volume: FloatArray,
        last_close: FloatArray,
        *,
        now: datetime,
        sessions: int = AVERAGE_SESSIONS,
    ) -> int:
        stamp = now.isoformat()
        day = as_of.isoformat()
        rows = [
            (symbol, day, sessions, float(v), float(dv), float(c), stamp)
            for symbol, v, dv, c in zip(symbols, avg_volume, avg_dollar_volume, last_close, strict=True)
        ]
        with self._db.transaction():
            self._conn.executemany(
                "INSERT OR REPLACE INTO volume_averages VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

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
            last_sessions(calendar, through, AVERAGE_SESSIONS),
            on_progress=on_progress,
        )
        volume, close = frame.volume, frame.close
        complete = (
            np.isfinite(volume).all(axis=0)
            & (volume >= 0).all(axis=0)
            & np.isfinite(close).all(axis=0)
            & (close > 0).all(axis=0)
        )
        avg_volume = np.where(complete, volume.mean(axis=0), np.nan)
        complete &= avg_volume > 0
        keep_idx = np.flatnonzero(complete)
        drop_idx = np.flatnonzero(~complete)
        names = np.asarray(targets, dtype=object)
        kept = names[keep_idx].tolist()
        written = cache.put(
            kept,
            through,
            avg_volume[keep_idx],
            (close * volume).mean(axis=0)[keep_idx],
            close[-1, keep_idx],
            now=now,
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
