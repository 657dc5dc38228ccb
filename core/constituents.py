"""The sim default tiers from the constituents file, read with the `csv` module when it is a plain CSV.

`tradingd status` needs the sim's default tiers (the 29 largest caps) but nothing else pandas does, and importing
pandas costs more than the rest of the command. A plain `.csv` whose every field reads unambiguously is read here;
anything else (a compressed file, a missing column, a ragged row, a field pandas would read as missing or parse
differently) goes to `core/bars.py`'s pandas loader, which gives the same answer or the same `SetupError` as before.
So the fast path never guesses: it either reads exactly what pandas would, or declines.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from core.types import Tier

# Default sim universe shape (docs/ARCHITECTURE.md §Modes and universes): 4 / 5 / 20, largest market caps first.
SIM_TIER_SHAPE: tuple[tuple[Tier, int], ...] = ((Tier.TIER1, 4), (Tier.TIER2, 5), (Tier.TIER3, 20))

_SYMBOL, _MARKET_CAP = "Symbol", "Market Cap"
_LOADER_COLUMNS: Final = (_SYMBOL, "Name", "Sector", _MARKET_CAP)
# pandas' default missing-value strings (`read_csv(na_values=...)` left at its default).
_PANDAS_NA: Final = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)
# Plain decimals of up to 15 digits: both parsers read these as the nearest double (15 digits fit a double's mantissa
# exactly, so one correctly rounded scaling by a power of ten gives the answer); longer ones, exponents and the like
# are left to pandas, whose own float parser may round them differently from Python's `float`.
_PLAIN_NUMBER: Final = re.compile(r"-?([0-9]+)(?:\.([0-9]*))?")
_MAX_DIGITS: Final = 15


@dataclass(frozen=True, slots=True)
class Constituent:
    symbol: str
    market_cap: float  # NaN when the file does not say


def read_plain_constituents(path: Path) -> list[Constituent] | None:
    """The file's rows as `load_universe` would read them (symbol stripped and upper-cased), or None to let pandas
    read it: not a plain `.csv`, not UTF-8, a missing column, a row of another width, a value read differently."""
    if path.suffix.lower() != ".csv":
        return None
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row]  # pandas skips blank lines
    except (UnicodeDecodeError, csv.Error):
        return None
    if not rows:
        return None
    header, body = rows[0], rows[1:]
    if header and header[0].startswith("\ufeff"):
        return None  # a byte-order mark: pandas strips it from the first name, left to it
    # Every column `core/bars.py::load_universe` asks pandas for: a file it refuses must be refused here too.
    if any(header.count(name) != 1 for name in _LOADER_COLUMNS):
        return None
    at_symbol, at_cap = header.index(_SYMBOL), header.index(_MARKET_CAP)
    found: list[Constituent] = []
    for row in body:
        if len(row) != len(header):
            return None
        symbol, cap = row[at_symbol], row[at_cap]
        if symbol in _PANDAS_NA:
            return None  # pandas makes it "NAN"; not worth copying
        if cap in _PANDAS_NA:
            value = math.nan
        else:
            number = _PLAIN_NUMBER.fullmatch(cap)
            if number is None or len(number[1]) + len(number[2] or "") > _MAX_DIGITS:
                return None
            value = float(cap)
        found.append(Constituent(symbol.strip().upper(), value))
    return found


def largest_caps(rows: Sequence[Constituent], n: int, available: set[str]) -> list[str]:
    """The `n` largest symbols by market cap among `available`, largest first (ties broken by symbol): the same
    ranking as `core/bars.py::largest_by_market_cap`."""
    known = [row for row in rows if row.symbol in available and not math.isnan(row.market_cap)]
    known.sort(key=lambda row: (-row.market_cap, row.symbol))
    return [row.symbol for row in known[:n]]


def tiers_by_rank(ranked: Sequence[str]) -> dict[str, Tier]:
    """The ranked symbols cut into the sim tier shape: TIER1 ×4, TIER2 ×5, TIER3 ×20."""
    tiers: dict[str, Tier] = {}
    position = 0
    for tier, count in SIM_TIER_SHAPE:
        for symbol in ranked[position : position + count]:
            tiers[symbol] = tier
        position += count
    return tiers


def sim_tier_total() -> int:
    return sum(count for _, count in SIM_TIER_SHAPE)
