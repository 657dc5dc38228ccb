"""Sector names: the keys of the pre-screen's market-cap floors, and other schemes' names mapped onto them.

No pandas here: the settings check `SCAN_SECTOR_MIN_MARKET_CAP`'s keys against these at start-up, `status` included.
"""

from __future__ import annotations

# The pre-screen's per-sector market-cap floors are keyed by these sector names (Yahoo/Morningstar style, as in the
# scanner optimisation plan this project follows). Universe files name sectors in other schemes: the bundled file uses
# GICS names, and a paper/live universe file may use either; each known name maps onto one of these. A sector not
# listed here has no floor (the scan counts it under `skipped_filters.sector_floor`, it never guesses one).
CANONICAL_SECTORS: tuple[str, ...] = (
    "Technology",
    "Healthcare",
    "Financial Services",
    "Consumer Cyclical",
    "Industrials",
    "Energy",
    "Real Estate",
    "Utilities",
    "Basic Materials",
    "Communication Services",
    "Consumer Defensive",
)
SECTOR_ALIASES: dict[str, str] = {
    **{name.lower(): name for name in CANONICAL_SECTORS},
    # GICS (the bundled S&P 500 constituents file)
    "information technology": "Technology",
    "health care": "Healthcare",
    "financials": "Financial Services",
    "consumer discretionary": "Consumer Cyclical",
    "materials": "Basic Materials",
    "telecommunication services": "Communication Services",
    "telecommunications": "Communication Services",
    "consumer staples": "Consumer Defensive",
    # other common spellings
    "financial": "Financial Services",
    "finance": "Financial Services",
    "health": "Healthcare",
    "tech": "Technology",
    "consumer services": "Consumer Cyclical",
}


def canonical_sector(name: object) -> str | None:
    """The floor key for a sector name of any scheme above (case and spaces ignored), or None if unknown."""
    if not isinstance(name, str):
        return None
    return SECTOR_ALIASES.get(" ".join(name.split()).lower())
