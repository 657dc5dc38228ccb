"""What the daily scan scans: a universe file (CSV or plain list) or a broker's list of tradable US equities.

A universe is a frame `symbol, sector, market_cap` (market cap in dollars, NaN when unknown). `has_market_cap` says
whether the source carries market caps at all: only then does the pre-screen apply `MIN_MARKET_CAP`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

_SYMBOL_HEADERS = ("symbol", "ticker")
_CAP_HEADERS = ("market cap", "market_cap", "marketcap")
_SECTOR_HEADERS = ("sector",)


class UniverseError(Exception):
    """The universe cannot be read (missing file, no symbol column, empty)."""


@dataclass(frozen=True, slots=True)
class Universe:
    frame: pd.DataFrame  # symbol (unique, upper case), sector (str or NA), market_cap (float64, NaN if unknown)
    has_market_cap: bool
    source: str

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.frame["symbol"])

    @property
    def has_sector(self) -> bool:
        """Whether the source names any sector (a plain list of symbols or the broker's list does not)."""
        return bool(self.frame["sector"].notna().any())

    def __len__(self) -> int:
        return len(self.frame)


class UniverseSource(Protocol):
    async def load(self) -> Universe: ...


@runtime_checkable
class AssetDirectory(Protocol):
    """Implemented by a broker/data adapter that can list every active, tradable US equity (Alpaca: GET /v2/assets)."""

    async def list_tradable_equities(self) -> Sequence[str]: ...


def _column(frame: pd.DataFrame, names: Sequence[str]) -> str | None:
    lowered = {str(c).strip().lower(): str(c) for c in frame.columns}
    return next((lowered[name] for name in names if name in lowered), None)


def _from_symbols(symbols: Sequence[str], source: str) -> Universe:
    frame = pd.DataFrame(
        {
            "symbol": pd.Series(symbols, dtype="object"),
            "sector": pd.Series([pd.NA] * len(symbols), dtype="object"),
            "market_cap": np.full(len(symbols), np.nan),
        }
    )
    return Universe(_normalise(frame, source), has_market_cap=False, source=source)


def _normalise(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    frame = frame.copy()
    frame["symbol"] = frame["symbol"].astype("string").str.strip().str.upper()
    frame = frame[frame["symbol"].notna() & (frame["symbol"] != "")]
    frame = frame.drop_duplicates("symbol", keep="first").reset_index(drop=True)
    frame["symbol"] = frame["symbol"].astype(object)
    if frame.empty:
        raise UniverseError(f"{source}: no symbols")
    return frame


def read_universe_file(path: Path) -> Universe:
    """A CSV with a `Symbol` column (and optionally `Market Cap`, `Sector`), or a list of symbols (lines/commas)."""
    try:
        text = path.read_text()
    except OSError as error:
        raise UniverseError(f"cannot read universe file {path}: {error}") from None
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    headers = [h.strip().lower() for h in first_line.split(",")]
    if not any(h in _SYMBOL_HEADERS for h in headers):
        lines = (line.split("#", 1)[0] for line in text.splitlines())
        symbols = [token.strip() for line in lines for token in line.split(",") if token.strip()]
        return _from_symbols(symbols, str(path))
    raw = pd.read_csv(io.StringIO(text), dtype=str)
    symbol_col = _column(raw, _SYMBOL_HEADERS)
    cap_col = _column(raw, _CAP_HEADERS)
    sector_col = _column(raw, _SECTOR_HEADERS)
    assert symbol_col is not None  # checked on the header line above
    frame = pd.DataFrame(
        {
            "symbol": raw[symbol_col],
            "sector": raw[sector_col].astype(object) if sector_col else pd.Series([pd.NA] * len(raw), dtype=object),
            "market_cap": pd.to_numeric(raw[cap_col], errors="coerce") if cap_col else np.nan,
        }
    )
    frame["market_cap"] = frame["market_cap"].astype("float64")
    return Universe(_normalise(frame, str(path)), has_market_cap=cap_col is not None, source=str(path))


class FileUniverse:
    """A universe file, re-read only when it changes (the daemon scans once a day, a sim replay once a session)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._loaded: tuple[tuple[int, int], Universe] | None = None

    async def load(self) -> Universe:
        try:
            stat = self.path.stat()
        except OSError as error:
            raise UniverseError(f"cannot read universe file {self.path}: {error}") from None
        version = (stat.st_mtime_ns, stat.st_size)
        if self._loaded is None or self._loaded[0] != version:
            self._loaded = (version, read_universe_file(self.path))
        return self._loaded[1]


class DirectoryUniverse:
    """Every active, tradable US equity the broker lists (no market caps: MIN_MARKET_CAP does not apply)."""

    def __init__(self, directory: AssetDirectory, source: str = "broker:tradable_us_equities") -> None:
        self._directory = directory
        self._source = source

    async def load(self) -> Universe:
        return _from_symbols(list(await self._directory.list_tradable_equities()), self._source)


class LoadedUniverse:
    """A universe already loaded, so a cache refresh and the scan that follows it read the source once."""

    def __init__(self, universe: Universe) -> None:
        self._universe = universe

    async def load(self) -> Universe:
        return self._universe
