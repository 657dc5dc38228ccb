"""Local cache of fetched bars, so a bar is asked of Alpaca once: SQLite under DATA_DIR plus an in-memory mirror.

Per (symbol, timeframe, feed) it keeps the bars and the *coverage*: the span of bar start times for which every
complete, valid bar is in the cache. A request inside the coverage needs no API call; a request past it needs
only the bars after the coverage. SQLite is in the standard library (pyarrow/parquet is not assumed installed);
each process mirrors what it touched in memory, so steady-state reads never hit the disk.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from core.sqlite_db import SqliteDb

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bars (
    symbol TEXT NOT NULL, timeframe TEXT NOT NULL, feed TEXT NOT NULL, t INTEGER NOT NULL,
    o REAL NOT NULL, h REAL NOT NULL, l REAL NOT NULL, c REAL NOT NULL, v REAL NOT NULL,
    PRIMARY KEY (symbol, timeframe, feed, t)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS coverage (
    symbol TEXT NOT NULL, timeframe TEXT NOT NULL, feed TEXT NOT NULL,
    start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
    PRIMARY KEY (symbol, timeframe, feed)
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class CleanBars:
    """One symbol's bars that passed sanity (`core.bar_sanity`): what the cache holds."""

    t: npt.NDArray[np.int64]  # bar start, UTC ns, strictly increasing
    values: npt.NDArray[np.float64]  # shape (n, 5): open, high, low, close, volume

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @classmethod
    def empty(cls) -> CleanBars:
        return cls(np.empty(0, dtype=np.int64), np.empty((0, 5), dtype=np.float64))


class CacheKey(NamedTuple):
    symbol: str
    timeframe: str
    feed: str


@dataclass(frozen=True, slots=True)
class Coverage:
    start_ns: int
    end_ns: int  # exclusive

    def covers(self, start_ns: int, end_ns: int) -> bool:
        return self.start_ns <= start_ns and end_ns <= self.end_ns

    def joins(self, start_ns: int, end_ns: int) -> bool:
        """Whether [start, end) overlaps or touches this span, so the union is one span."""
        return start_ns <= self.end_ns and self.start_ns <= end_ns


@dataclass(slots=True)
class _Entry:
    bars: CleanBars
    coverage: Coverage | None


def _create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(_SCHEMA)


class BarCache:
    def __init__(self, path: Path | None) -> None:
        """`path=None` keeps the cache in memory only (tests, one-off scripts). A corrupt or foreign file is set aside
        (`bar_cache_corrupt`, `core/sqlite_db.py`) and the cache starts empty: every bar can be fetched again."""
        self._db: SqliteDb | None = None
        if path is not None:
            # DATA_DIR itself: the folder is tightened only when we create it.
            self._db = SqliteDb(
                path, schema=_create_schema, kind="bar_cache", what="a tradingd bar cache", tighten_dir=False
            )
        self._memory: dict[CacheKey, _Entry] = {}

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def load(self, keys: Iterable[CacheKey]) -> None:
        """Bring these keys into memory in one query per (timeframe, feed)."""
        missing = [k for k in keys if k not in self._memory]
        if not missing:
            return
        for key in missing:
            self._memory[key] = _Entry(CleanBars.empty(), None)
        if self._db is None:
            return
        by_kind: dict[tuple[str, str], list[str]] = {}
        for key in missing:
            by_kind.setdefault((key.timeframe, key.feed), []).append(key.symbol)
        for (timeframe, feed), symbols in by_kind.items():
            self._load_kind(timeframe, feed, symbols)

    def _load_kind(self, timeframe: str, feed: str, symbols: list[str]) -> None:
        assert self._db is not None
        marks = ",".join("?" * len(symbols))
        params = (timeframe, feed, *symbols)
        for symbol, start_ns, end_ns in self._db.conn.execute(
            f"SELECT symbol, start_ns, end_ns FROM coverage WHERE timeframe=? AND feed=? AND symbol IN ({marks})",  # noqa: S608 - only placeholders are interpolated
            params,
        ):
            self._memory[CacheKey(symbol, timeframe, feed)].coverage = Coverage(start_ns, end_ns)
        rows: dict[str, list[tuple[int, float, float, float, float, float]]] = {}
        for symbol, *row in self._db.conn.execute(
            f"SELECT symbol, t, o, h, l, c, v FROM bars WHERE timeframe=? AND feed=? AND symbol IN ({marks}) "  # noqa: S608 - only placeholders are interpolated
            "ORDER BY symbol, t",
            params,
        ):
            rows.setdefault(symbol, []).append(tuple(row))
        for symbol, symbol_rows in rows.items():
            data = np.array(symbol_rows, dtype=np.float64)
            self._memory[CacheKey(symbol, timeframe, feed)].bars = CleanBars(
                np.array([r[0] for r in symbol_rows], dtype=np.int64), data[:, 1:]
            )

    def coverage(self, key: CacheKey) -> Coverage | None:
        self.load([key])
        return self._memory[key].coverage

    def bars(self, key: CacheKey) -> CleanBars:
        self.load([key])
        return self._memory[key].bars

    def last_t_within(self, key: CacheKey, coverage: Coverage) -> int | None:
        """Start time of the newest cached bar inside the coverage."""
        t = self.bars(key).t
        index = int(np.searchsorted(t, coverage.end_ns, side="left"))
        if index == 0 or t[index - 1] < coverage.start_ns:
            return None
        return int(t[index - 1])

    def drop(self, key: CacheKey) -> None:
        self._memory[key] = _Entry(CleanBars.empty(), None)
        if self._db is not None:
            with self._db.transaction():
                self._db.conn.execute("DELETE FROM bars WHERE symbol=? AND timeframe=? AND feed=?", key)
                self._db.conn.execute("DELETE FROM coverage WHERE symbol=? AND timeframe=? AND feed=?", key)

    def store(self, fetched: Mapping[CacheKey, tuple[CleanBars, Coverage]]) -> None:
        """Merge freshly fetched bars (they win over cached ones at the same time) and extend the coverage."""
        self.load(fetched)
        for key, (bars, span) in fetched.items():
            entry = self._memory[key]
            entry.bars = _merge(entry.bars, bars)
            old = entry.coverage
            if old is not None and old.joins(span.start_ns, span.end_ns):
                entry.coverage = Coverage(min(old.start_ns, span.start_ns), max(old.end_ns, span.end_ns))
            else:
                entry.coverage = span
        if self._db is None:
            return
        with self._db.transaction():
            for key, (bars, _span) in fetched.items():
                self._db.conn.executemany(
                    "INSERT OR REPLACE INTO bars VALUES (?,?,?,?,?,?,?,?,?)",
                    [(*key, int(t), *map(float, row)) for t, row in zip(bars.t, bars.values, strict=True)],
                )
                coverage = self._memory[key].coverage
                assert coverage is not None
                self._db.conn.execute(
                    "INSERT OR REPLACE INTO coverage VALUES (?,?,?,?,?)", (*key, coverage.start_ns, coverage.end_ns)
                )


def _merge(old: CleanBars, new: CleanBars) -> CleanBars:
    if len(old) == 0:
        return new
    if len(new) == 0:
        return old
    t = np.concatenate((new.t, old.t))
    values = np.concatenate((new.values, old.values))
    # np.unique keeps the first occurrence of each time: the new bar when both have one.
    unique_t, first = np.unique(t, return_index=True)
    return CleanBars(unique_t.astype(np.int64), values[first])
