"""Where a mode's state DB is and which symbols and tiers it trades: what `status`, `halt` and `resume` need.

Kept apart from `tradingd/app.py` (the wiring, which imports every agent and adapter) so those commands start without
loading the daemon: in sim the default tiers come from the constituents file read with the `csv` module
(`core/constituents.py`), pandas only for a file that module declines.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from config.settings import PAPER_TIERS, Settings
from core.constituents import largest_caps, read_plain_constituents, sim_tier_total, tiers_by_rank
from core.errors import SetupError
from core.types import Tier, TradingMode
from tradingd.configs import missing_file_message

# Beside a sim state DB: the symbols the last run could trade (its report's benchmark), written at the run's end and
# deleted with the state when the next replay starts (`tradingd/app.py::reset_sim_state`).
REPORT_UNIVERSE_FILE = "report_universe.json"
BARS_CACHE_DIR = "bars-cache"  # the parsed bundled bars (`load_daily_bars_cached`), beside the replay's state


def state_db_path(settings: Settings) -> Path:
    """Sim keeps its own DB, replaced at the start of every replay, so it never mixes with paper/live state."""
    mode = settings.mode
    return settings.data_dir / ("sim" if mode is TradingMode.SIM else mode.value) / "state.db"


def resolve_universe(settings: Settings, available: Sequence[str], default_tiers: dict[str, Tier]) -> dict[str, Tier]:
    """Focus symbols with their tiers: SYMBOLS (or the mode's default), tiers from SYMBOL_TIERS, else the default."""
    if settings.symbols == ("*",):
        symbols: tuple[str, ...] = tuple(available)
    elif settings.symbols:
        symbols = settings.symbols
    else:
        symbols = tuple(default_tiers)
    return {s: settings.symbol_tiers.get(s, default_tiers.get(s, Tier.TIER3)) for s in symbols}


def configured_tiers(settings: Settings) -> dict[str, Tier]:
    """The focus symbols and tiers the daemon would use, without loading any bars (for `tradingd status`)."""
    if settings.mode is not TradingMode.SIM:
        return resolve_universe(settings, list(PAPER_TIERS), PAPER_TIERS)
    path = settings.sim_universe_file
    if not path.is_file():
        raise SetupError(missing_file_message(settings, "SIM_UNIVERSE_FILE", path))
    rows = read_plain_constituents(path)
    if rows is None:  # not a plain CSV the csv module reads exactly as pandas would: pandas reads it (or says why not)
        from core.bars import default_sim_tiers, load_universe  # noqa: PLC0415 - pandas, for this file only

        available = [str(s) for s in load_universe(path)["symbol"]]
        return resolve_universe(settings, available, default_sim_tiers(path, set(available)))
    available = [row.symbol for row in rows]
    ranked = largest_caps(rows, sim_tier_total(), set(available))
    return resolve_universe(settings, available, tiers_by_rank(ranked))
