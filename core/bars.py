"""Loading the bundled daily bars and constituents file into wide arrays, once, for sim mode.

The CSV is long (one row per symbol and date); the pipeline wants wide float64 arrays of shape (dates, symbols) so
every agent can vectorise over symbols. Bad rows are *not* repaired here: an empty open/high/low stays NaN and the data
agent rejects it with a reason, so the loader can never invent a price.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import structlog

from core.constituents import sim_tier_total, tiers_by_rank
from core.errors import SetupError
from core.timeconv import ny_midnights
from core.types import BarFrame, FloatArray, Tier

IntArray = npt.NDArray[np.int64]
_T = TypeVar("_T")

log = structlog.get_logger(__name__)

_BAR_FIELDS = ("open", "high", "low", "close", "volume")


def last_valid_row(values: FloatArray) -> IntArray:
    """For each (t, n): the last row <= t where `values` is not NaN, or -1 when there is none yet."""
    rows = np.arange(values.shape[0], dtype=np.int64)[:, None]
    marked = np.where(np.isnan(values), -1, rows)
    return np.maximum.accumulate(marked, axis=0) if values.shape[0] else marked


# What a file that is not what it claims raises while it is read: pandas' parser and dtype errors (ValueError, with
# UnicodeDecodeError), a bad or truncated archive (LZMAError, EOFError, BadZipFile), a column that is missing later on
# (KeyError). A gzip/bz2 decoding error is an OSError *without* a filename: caught here too, while a real file-system
# error (which names its file) is left to the CLI's one-line OSError handler.
_BAD_FILE_ERRORS = (ValueError, KeyError, EOFError, lzma.LZMAError, zipfile.BadZipFile, OSError)


def _reason(error: BaseException) -> str:
    # One line, bounded: pandas messages can list every expected column or quote a long line of the file.
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _read_or_setup_error(read: Callable[[], _T], name: str, path: Path, kind: str) -> _T:
    try:
        return read()
    except _BAD_FILE_ERRORS as error:
        if isinstance(error, OSError) and error.filename is not None:
            raise  # the file system's own error (missing, unreadable): tradingd.cli.main prints it as one line
        raise SetupError(f"{name}: {path}: not a valid {kind} ({_reason(error)})") from error


def load_daily_bars(
    path: Path,
    symbols: Sequence[str] | None = None,
    start: date | None = None,
    end: date | None = None,
    *,
    name: str = "SIM_DATA_FILE",
) -> BarFrame:
    """Read the long CSV (plain or .xz) once and pivot it to one read-only `BarFrame`, or a SetupError naming `name`.

    `symbols` keeps those columns in the given order; a symbol absent from the file is left out (callers compare
    `history.symbols` with what they asked for). `start` and `end` are inclusive trading dates. A file that cannot be
    parsed (random bytes, truncated archive, wrong columns) is `SetupError("SIM_DATA_FILE: <path>: not a valid bar
    file (<reason>)")`, not a traceback.
    """
    return _read_or_setup_error(lambda: _load_daily_bars(path, symbols, start, end), name, path, "bar file")


def _load_daily_bars(
    path: Path,
    symbols: Sequence[str] | None,
    start: date | None,
    end: date | None,
) -> BarFrame:
    frame = pd.read_csv(
        path,
        usecols=["date", "symbol", *_BAR_FIELDS],
        dtype={"date": "category", "symbol": "category", **dict.fromkeys(_BAR_FIELDS, "float64")},
        engine="c",
    )
    # Work on category codes: a few thousand distinct dates/symbols instead of 619k strings.
    date_codes = frame["date"].cat.codes.to_numpy()
    symbol_codes = frame["symbol"].cat.codes.to_numpy()
    category_days = pd.to_datetime(frame["date"].cat.categories, format="%Y-%m-%d").to_numpy(dtype="datetime64[ns]")

    wanted_day = np.zeros(len(category_days), dtype=bool)
    wanted_day[date_codes] = True
    if start is not None:
        wanted_day &= category_days >= np.datetime64(start, "ns")
    if end is not None:
        wanted_day &= category_days <= np.datetime64(end, "ns")
    chosen_days = np.flatnonzero(wanted_day)
    chosen_days = chosen_days[np.argsort(category_days[chosen_days], kind="stable")]
    row_of_day = np.full(len(category_days), -1, dtype=np.int64)
    row_of_day[chosen_days] = np.arange(len(chosen_days))

    symbol_categories = [str(s) for s in frame["symbol"].cat.categories]
    symbol_rows = np.bincount(symbol_codes, minlength=len(symbol_categories))
    present = {symbol for symbol, count in zip(symbol_categories, symbol_rows, strict=True) if count}
    columns = tuple(sorted(present)) if symbols is None else tuple(dict.fromkeys(s for s in symbols if s in present))
    column_of = {symbol: i for i, symbol in enumerate(columns)}
    column_of_symbol = np.array([column_of.get(s, -1) for s in symbol_categories], dtype=np.int64)

    row_index = row_of_day[date_codes]
    col_index = column_of_symbol[symbol_codes]
    keep = (row_index >= 0) & (col_index >= 0)
    row_index, col_index = row_index[keep], col_index[keep]
    shape = (len(chosen_days), len(columns))
    if row_index.size and np.bincount(row_index * shape[1] + col_index).max() > 1:
        raise ValueError("more than one row for the same symbol and date")

    arrays: dict[str, FloatArray] = {}
    for name in _BAR_FIELDS:
        wide = np.full(shape, np.nan)
        wide[row_index, col_index] = frame[name].to_numpy(dtype=np.float64)[keep]
        wide.setflags(write=False)
        arrays[name] = wide

    # Stamped like Alpaca's daily bars: midnight New York of the trading date, in UTC.
    stamps = ny_midnights(category_days[chosen_days])
    stamps.setflags(write=False)
    return BarFrame(symbols=columns, timestamps=stamps, **arrays)


# Bumped whenever the parse or the cache's layout changes: an old cache then no longer matches and is rebuilt.
_CACHE_FORMAT = "tradingd-bars-1"
_HASH_CHUNK = 1 << 20


def load_daily_bars_cached(path: Path, cache_dir: Path, *, name: str = "SIM_DATA_FILE") -> BarFrame:
    """`load_daily_bars(path)` (the whole file), answered from a parsed copy in `cache_dir` when it is one of this
    very file: a replay's start-up then reads five arrays instead of decompressing and parsing the CSV.

    The copy is keyed by the source's SHA-256 (hashed on every call, so a file whose content changed is parsed again,
    whatever its size or mtime say),
    written to a temporary file and renamed into place (a crash never leaves half a cache), and only ever a cache:
    one that is missing, unreadable or stale is rebuilt, one that cannot be written is skipped with a warning.
    """
    key = _source_key(path)
    cache = cache_dir / f"{path.name}.npz"
    cached = _read_cache(cache, key)
    if cached is not None:
        return cached
    history = load_daily_bars(path, name=name)
    _write_cache(cache, key, history)
    return history


def _source_key(path: Path) -> str:
    digest = hashlib.sha256()  # a missing file raises its own OSError, which the CLI prints as one line
    with path.open("rb") as source:
        while chunk := source.read(_HASH_CHUNK):
            digest.update(chunk)
    return f"{_CACHE_FORMAT} sha256={digest.hexdigest()}"


def _read_cache(cache: Path, key: str) -> BarFrame | None:
    try:
        with np.load(cache, allow_pickle=False) as stored:
            if str(stored["key"]) != key:
                return None
            arrays = {name: stored[name] for name in ("timestamps", *_BAR_FIELDS)}
            symbols = tuple(str(symbol) for symbol in stored["symbols"])
    except FileNotFoundError:
        return None
    except _BAD_FILE_ERRORS as error:
        log.warning("bars_cache_unreadable", path=str(cache), error=_reason(error))
        return None
    for array in arrays.values():
        array.setflags(write=False)
    return BarFrame(symbols=symbols, **arrays)


def _write_cache(cache: Path, key: str, history: BarFrame) -> None:
    arrays = {name: getattr(history, name) for name in ("timestamps", *_BAR_FIELDS)}
    tmp_name = ""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache.parent, prefix=cache.name, suffix=".tmp", delete=False) as tmp:
            tmp_name = tmp.name
            np.savez(tmp, key=np.array(key), symbols=np.array(history.symbols, dtype=str), **arrays)
        os.replace(tmp_name, cache)
        tmp_name = ""
    except OSError as error:
        log.warning("bars_cache_not_written", path=str(cache), error=_reason(error))
    finally:
        if tmp_name:
            Path(tmp_name).unlink(missing_ok=True)


def load_universe(path: Path, *, name: str = "SIM_UNIVERSE_FILE") -> pd.DataFrame:
    """The constituents file as `symbol, name, sector, market_cap` (market cap in dollars, float; NaN if unknown).

    A file that cannot be parsed is a SetupError naming `name` and the path, like `load_daily_bars`.
    """
    return _read_or_setup_error(lambda: _load_universe(path), name, path, "constituents file")


def _load_universe(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, usecols=["Symbol", "Name", "Sector", "Market Cap"], dtype={"Market Cap": "float64"})
    universe = raw.rename(columns={"Symbol": "symbol", "Name": "name", "Sector": "sector", "Market Cap": "market_cap"})
    universe["symbol"] = universe["symbol"].astype(str).str.strip().str.upper()
    return universe.reset_index(drop=True)


def largest_by_market_cap(universe: pd.DataFrame, n: int, available: set[str]) -> list[str]:
    """The `n` largest symbols by market cap among `available`, largest first (ties broken by symbol)."""
    candidates = universe[universe["symbol"].isin(available) & universe["market_cap"].notna()]
    ranked = candidates.sort_values(["market_cap", "symbol"], ascending=[False, True], kind="stable")
    return [str(symbol) for symbol in ranked["symbol"].head(n)]


def default_sim_tiers(universe_path: Path, available_symbols: set[str] | Sequence[str]) -> dict[str, Tier]:
    """The sim default universe: the 29 largest caps the data has, as TIER1 ×4, TIER2 ×5, TIER3 ×20 (largest first)."""
    ranked = largest_by_market_cap(load_universe(universe_path), sim_tier_total(), set(available_symbols))
    return tiers_by_rank(ranked)
