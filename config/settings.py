"""Every environment variable the daemon reads, in one frozen, validated settings object.

A bad value fails at start-up with the variable's name and the reason (`ConfigError`), before anything else runs.
Secrets are `SecretStr` and never printed. `.env.example` documents each variable with its default.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.notify_kinds import ALL_KINDS, NotifyKind
from core.redact import register_settings
from core.sectors import CANONICAL_SECTORS, canonical_sector
from core.types import Tier, TradingMode

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_DATA_DIR = PROJECT_ROOT / "data"

# Paper/live default universe (docs/ARCHITECTURE.md §Modes and universes): 4 index ETFs, 5 sector ETFs, 20 large caps.
PAPER_TIERS: dict[str, Tier] = {
    **dict.fromkeys(("SPY", "QQQ", "DIA", "IWM"), Tier.TIER1),
    **dict.fromkeys(("XLK", "XLF", "XLV", "XLE", "XLY"), Tier.TIER2),
    **dict.fromkeys(
        (
            "AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA", "BRK.B", "JPM", "V",
            "UNH", "XOM", "JNJ", "PG", "MA", "HD", "AVGO", "LLY", "COST", "ABBV",
        ),
        Tier.TIER3,
    ),
}  # fmt: skip

CsvList = Annotated[tuple[str, ...], NoDecode]
TierMap = Annotated[dict[str, Tier], NoDecode]
Fraction = Annotated[Decimal, Field(ge=0, le=1)]
SectorFloors = Annotated[dict[str, float], NoDecode]
# Per-sector market-cap floors of the scanner optimisation plan (dollars), keyed by core/sectors.py CANONICAL_SECTORS.
DEFAULT_SECTOR_FLOORS: dict[str, float] = {
    "Technology": 200e6,
    "Healthcare": 200e6,
    "Financial Services": 300e6,
    "Consumer Cyclical": 150e6,
    "Industrials": 150e6,
    "Energy": 200e6,
    "Real Estate": 100e6,
    "Utilities": 500e6,
    "Basic Materials": 150e6,
    "Communication Services": 200e6,
    "Consumer Defensive": 200e6,
}
StrategyParams = Annotated[dict[str, str], NoDecode]
NotifyKinds = Annotated[tuple[NotifyKind, ...], NoDecode]
BreakerActionName = Literal["reduce", "flatten"]  # agents/risk.py::BreakerAction (config sits below agents)

# Length of one bar per BAR_TIMEFRAME (the intraday signal-age check needs it; tradingd.app builds the loop from it).
BAR_INTERVALS = {"1Day": timedelta(days=1), "15Min": timedelta(minutes=15), "1Min": timedelta(minutes=1)}


class ConfigError(Exception):
    """Bad configuration: the message names each offending variable and why."""


def _entries(value: str) -> Iterator[str]:
    """The non-empty entries of a comma-separated variable, stripped."""
    return (entry for entry in (part.strip() for part in value.split(",")) if entry)


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(entry.upper() for entry in _entries(value))
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=None,
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
        case_sensitive=False,
        validate_default=True,
        # NaN or infinity in a float setting passes every `ge`/`gt` bound and then silently disables what it
        # sets (ZSCORE_ENTRY=nan never enters, MIN_PRICE=inf screens out everything): refuse them at start-up.
        allow_inf_nan=False,
    )

    # --- mode and credentials ------------------------------------------------------------------------------------
    trading_mode: TradingMode | None = None
    live_trading_confirm: str = ""
    alpaca_api_key: SecretStr | None = None
    alpaca_secret_key: SecretStr | None = None
    alpaca_trading_url: str | None = None
    alpaca_data_url: str | None = None
    alpaca_stream_url: str | None = None
    alpaca_data_feed: Literal["iex", "sip"] = "iex"

    # --- universe ------------------------------------------------------------------------------------------------
    symbols: CsvList = ()
    baseline_symbols: CsvList = ("SPY", "QQQ")
    symbol_tiers: TierMap = Field(default_factory=dict)
    use_scanner: bool | None = None
    candidates_file: Path = Path("candidates.json")

    # --- tiered sizing -------------------------------------------------------------------------------------------
    enable_tiered_allocation: bool = True
    tier1_allocation: Fraction = Decimal("0.40")
    tier2_allocation: Fraction = Decimal("0.30")
    tier3_allocation: Fraction = Decimal("0.30")
    tier_max_position_pct: Fraction = Decimal("0.20")
    allocation_method: Literal["equal", "score_vol", "ml"] = "equal"  # ml: needs ML_ENABLED
    enable_fractional_shares: bool = True
    min_order_notional: Decimal = Field(default=Decimal("10.0"), ge=1)

    # --- risk limits ---------------------------------------------------------------------------------------------
    max_daily_loss_pct: Fraction = Decimal("0.02")
    max_drawdown_pct: Fraction = Decimal("0.10")
    max_position_pct: Fraction = Decimal("0.10")
    max_open_positions: int = Field(default=20, ge=1)
    stop_loss_pct: Fraction = Decimal("0.05")
    # What a tripped breaker does beyond stopping entries: reduce keeps the positions, flatten sells every one the
    # daemon owns (README "Trading states").
    on_daily_loss: BreakerActionName = "reduce"
    on_max_drawdown: BreakerActionName = "reduce"
    # fixed | trailing: protective stop orders at the broker plus the intraday check; close: only the scanner's
    # close-based stop-loss exit at the next open (the behaviour before broker stops, kept for comparison).
    stop_mode: Literal["fixed", "trailing", "close"] = "fixed"
    trailing_stop_pct: Decimal = Field(default=Decimal("0.05"), gt=0, lt=1)

    # --- strategy (agents/strategies; `tradingd strategies` lists them) ---------------------------------------------
    strategy_name: str = "zscore_mean_reversion"
    strategy_params: StrategyParams = Field(default_factory=dict)  # a plug-in's parameters: name=value,...
    # zscore_mean_reversion
    zscore_window: int = Field(default=20, ge=2)
    zscore_entry: float = -2.0
    zscore_exit: float = 0.0
    # rvol_breakout
    breakout_high_days: int = Field(default=20, ge=1)
    breakout_min_rvol: float = Field(default=1.5, gt=0)
    breakout_volume_days: int = Field(default=20, ge=1)
    breakout_low_days: int = Field(default=10, ge=1)
    signal_max_age_seconds: int = Field(default=86_400, gt=0)

    # --- machine learning (README "Machine learning (win probability)") -------------------------------------------
    ml_enabled: bool = False
    ml_min_win_prob: Fraction = Decimal("0.5")
    ml_model_path: Path | None = None  # default DATA_DIR/models/win_probability.skops

    # --- data and loop -------------------------------------------------------------------------------------------
    data_dir: Path = Path("var")
    # After the state DB was lost, set aside as corrupt or restored, start active instead of reducing (README
    # "Trading states"): only for operators who reconcile by other means.
    recovery_auto_resume: bool = False
    bar_timeframe: Literal["1Day", "15Min", "1Min"] = "1Day"
    loop_interval_seconds: float = Field(default=60.0, gt=0)
    data_chunk_size: int = Field(default=500, ge=1, le=2000)
    http_timeout_seconds: float = Field(default=10.0, gt=0)
    trading_rate_limit_per_min: int = Field(default=200, ge=1)
    data_rate_limit_per_min: int = Field(default=200, ge=1)

    # --- sim mode ------------------------------------------------------------------------------------------------
    sim_data_file: Path = BUNDLED_DATA_DIR / "sp500_daily_2013_2018.csv.xz"
    sim_universe_file: Path = BUNDLED_DATA_DIR / "sp500_constituents_2018-02.csv"
    sim_initial_cash: Decimal = Field(default=Decimal("100000"), gt=0)
    sim_slippage_bps: Decimal = Field(default=Decimal("5"), ge=0, le=1000)
    sim_start: date | None = None
    sim_end: date | None = None
    sim_non_fractionable: CsvList = ()

    # --- scanner -------------------------------------------------------------------------------------------------
    scan_universe: Path | None = None
    min_price: float = Field(default=5.0, ge=0)
    min_dollar_volume: float = Field(default=1_000_000.0, ge=0)
    # The pre-screen defaults of the scanner optimisation plan (README §The scanner); each also removes work.
    min_market_cap: float = Field(default=150_000_000.0, ge=0)
    # Floors by sector (keys: core/sectors.py CANONICAL_SECTORS; a universe file's GICS names are mapped onto them).
    # Setting the variable replaces the whole table (known sector names only); empty keeps the defaults, `none` sets
    # no floor.
    scan_sector_min_market_cap: SectorFloors = Field(default_factory=lambda: dict(DEFAULT_SECTOR_FLOORS))
    # Reject price / 20-day average dollar volume above this (0.0001: fewer than 10,000 shares a day); 0 = off.
    max_price_to_dollar_volume: float = Field(default=0.0001, ge=0)
    # Reject a 20-day daily volatility (sample std of 20 close-to-close returns) above this; 0 = off.
    max_prescreen_volatility: float = Field(default=0.15, ge=0)
    prerank_keep: int = Field(default=1000, ge=1)
    min_rvol: float = Field(default=1.5, ge=0)
    scanner_top_n: int = Field(default=10, ge=1)
    scoring_interval_minutes: int = Field(default=15, ge=1)

    # --- logging -------------------------------------------------------------------------------------------------
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # --- retention -----------------------------------------------------------------------------------------------
    journal_retention_days: int = Field(default=90, ge=0)  # 0 keeps the journal forever
    # Daily online backups of the state DB kept in DATA_DIR/<mode>/backups (core/state_backup.py); 0 takes none and
    # leaves existing backup files alone.
    state_backup_days: int = Field(default=7, ge=0)

    # --- dashboard and API (tradingd/web, README "Dashboard and API") -----------------------------------------------
    # Started with `run`/`replay` when true; `tradingd serve` starts it on its own whatever this says.
    dashboard_enabled: bool = False
    # Loopback by default; any other address needs DASHBOARD_TOKEN (tradingd/web/token.py, where the server starts),
    # and there reads need it too.
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = Field(default=8765, ge=0, le=65535)  # 0: any free port (tests)
    # The bearer token of the mutating endpoints; unset on loopback: generated once, DATA_DIR/<mode>/dashboard_token.
    dashboard_token: SecretStr | None = None
    # --- notifications (tradingd/notify, README "Notifications") ---------------------------------------------------
    # Comma-separated apprise URLs; they hold tokens and passwords, so the value is a secret (never logged or echoed).
    # Checked by apprise when a daemon starts (apprise is imported only then, never by `status` or `--help`).
    notify_urls: SecretStr | None = None
    notify_events: NotifyKinds = ALL_KINDS  # the kinds to send (core/notify_kinds.py)
    notify_in_sim: bool = False  # a 5-year replay has thousands of fills: off in sim unless asked for
    notify_broker_down_minutes: float = Field(default=5.0, gt=0)
    # At most this many messages a minute (all channels together: one message to three channels counts once).
    notify_rate_limit_per_minute: int = Field(default=20, ge=1)

    # --- validators ----------------------------------------------------------------------------------------------
    @field_validator("symbols", "baseline_symbols", "sim_non_fractionable", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("symbol_tiers", mode="before")
    @classmethod
    def _tiers(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        tiers: dict[str, Tier] = {}
        for entry in _entries(value):
            symbol, sep, tier = entry.partition(":")
            if not sep or not symbol.strip():
                raise ValueError(f"entry {entry!r} is not SYMBOL:TIER (e.g. SPY:TIER1)")
            try:
                tiers[symbol.strip().upper()] = Tier(tier.strip().upper())
            except ValueError:
                raise ValueError(f"entry {entry!r}: tier must be TIER1, TIER2 or TIER3") from None
        return tiers

    @field_validator("scan_sector_min_market_cap", mode="before")
    @classmethod
    def _sector_floors(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        floors: dict[str, float] = {}
        if value.strip().lower() == "none":  # an empty value means the defaults (env_ignore_empty)
            return floors
        for entry in _entries(value):
            sector, sep, floor = entry.rpartition(":")
            try:
                amount = float(floor)
            except ValueError:
                amount = -1.0
            if not sep or not sector.strip() or not (amount >= 0 and math.isfinite(amount)):
                raise ValueError(f"entry {entry!r} is not SECTOR:MIN_MARKET_CAP (e.g. Energy:5e9)")
            # Setting the variable replaces the default table: a misspelt sector would silently drop every floor.
            key = canonical_sector(sector)
            if key is None:
                raise ValueError(
                    f"entry {entry!r}: unknown sector {sector.strip()!r} (known: {', '.join(CANONICAL_SECTORS)})"
                )
            if key in floors:
                raise ValueError(f"entry {entry!r}: sector {key!r} given twice")
            floors[key] = amount
        return floors

    @field_validator("strategy_params", mode="before")
    @classmethod
    def _strategy_params(cls, value: Any) -> Any:
        # Only split here: which names and types are valid depends on the strategy, checked when it is selected.
        if not isinstance(value, str):
            return value
        params: dict[str, str] = {}
        for entry in _entries(value):
            name, sep, text = entry.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"entry {entry!r} is not NAME=VALUE (e.g. days=3)")
            params[name.strip()] = text.strip()
        return params

    @field_validator("notify_events", mode="before")
    @classmethod
    def _notify_events(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        kinds: list[NotifyKind] = []
        for entry in _entries(value):
            name = entry.lower()
            if name == "all":
                return ALL_KINDS
            try:
                kinds.append(NotifyKind(name))
            except ValueError:
                known = ", ".join(kind.value for kind in NotifyKind)
                raise ValueError(f"unknown kind {entry!r} (known: {known}, or all)") from None
        return tuple(dict.fromkeys(kinds))

    @field_validator("strategy_name", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("alpaca_api_key", "alpaca_secret_key")
    @classmethod
    def _clean_key(cls, value: SecretStr | None) -> SecretStr | None:
        # A pasted key with a stray space or newline is rejected by the HTTP layer with an error that quotes the
        # header, i.e. the secret; refuse it here, where the message names only the variable (see _describe).
        if value is not None and any(ch.isspace() or not ch.isprintable() for ch in value.get_secret_value()):
            raise ValueError("must not contain whitespace or control characters (check for a stray space or newline)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("on_daily_loss", "on_max_drawdown", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        total = self.tier1_allocation + self.tier2_allocation + self.tier3_allocation
        if total > 1:
            raise ValueError(f"TIER1_ALLOCATION + TIER2_ALLOCATION + TIER3_ALLOCATION = {total} exceeds 1.0")
        if self.allocation_method == "ml" and not self.ml_enabled:
            raise ValueError(
                "ALLOCATION_METHOD=ml: needs ML_ENABLED=true (its weights are the model's expected returns)"
            )
        if self.zscore_exit <= self.zscore_entry:
            raise ValueError("ZSCORE_EXIT must be above ZSCORE_ENTRY")
        problem = self._no_order_possible()
        if problem:
            raise ValueError(problem)
        return self

    def _no_order_possible(self) -> str | None:
        """Why no entry order could ever be placed with these values, or None.

        Each of these used to start a run that denied every entry (`below_min_notional`, stale signals, no signal
        at all) and exited 0, which reads as "no opportunity" rather than "misconfigured".
        """
        if self.max_position_pct <= 0:
            return "MAX_POSITION_PCT: must be above 0 (0 caps every position at $0, so no order could be placed)"
        if self.enable_tiered_allocation:
            if self.tier_max_position_pct <= 0:
                return (
                    "TIER_MAX_POSITION_PCT: must be above 0 with ENABLE_TIERED_ALLOCATION on"
                    " (0 caps every position at $0, so no order could be placed)"
                )
            if not any(self.tier_allocations.values()):
                return (
                    "TIER1_ALLOCATION, TIER2_ALLOCATION, TIER3_ALLOCATION: all are 0, so no tier has money to trade"
                    " (give at least one tier a share, or set ENABLE_TIERED_ALLOCATION=false)"
                )
        # z of the latest close over a window that includes it is at least -(n-1)/sqrt(n) (sample std): -4.25 for 20.
        lowest_z = -(self.zscore_window - 1) / math.sqrt(self.zscore_window)
        if self.zscore_entry < lowest_z:
            return (
                f"ZSCORE_ENTRY: {self.zscore_entry} is below {lowest_z:.2f}, the lowest z-score a "
                f"{self.zscore_window}-bar window (ZSCORE_WINDOW) can produce, so no entry signal is possible"
            )
        bar = BAR_INTERVALS[self.bar_timeframe]
        if self.bar_timeframe != "1Day" and self.signal_max_age_seconds < bar.total_seconds():
            # Intraday bars are stamped at their start and only seen once complete: they are at least a bar old.
            return (
                f"SIGNAL_MAX_AGE_SECONDS: {self.signal_max_age_seconds} is shorter than one {self.bar_timeframe} bar"
                f" ({int(bar.total_seconds())} s), so every signal would be rejected as stale"
            )
        if self.mode is TradingMode.SIM:
            # The sim account's size is known up front: the largest first position must reach the minimum order.
            largest = self.sim_initial_cash * self._largest_position_share()
            if largest < self.min_order_notional:
                return (
                    f"MIN_ORDER_NOTIONAL: ${self.min_order_notional} is above the largest position sim can open "
                    f"(${largest:.2f} of SIM_INITIAL_CASH ${self.sim_initial_cash} under the position caps),"
                    " so every order would be below the minimum"
                )
        return None

    def _largest_position_share(self) -> Decimal:
        """The largest fraction of equity one new position may cost (mirrors agents.sizing.TierConfig.position_cap)."""
        if not self.enable_tiered_allocation:
            return self.max_position_pct
        return min(self.max_position_pct, self.tier_max_position_pct * max(self.tier_allocations.values()))

    # --- derived -------------------------------------------------------------------------------------------------
    @property
    def mode(self) -> TradingMode:
        """Explicit TRADING_MODE wins; otherwise paper with keys, sim without."""
        if self.trading_mode is not None:
            return self.trading_mode
        if self.alpaca_api_key is not None and self.alpaca_secret_key is not None:
            return TradingMode.PAPER
        return TradingMode.SIM

    @property
    def scanner_enabled(self) -> bool:
        """USE_SCANNER; unset: on in sim without SYMBOLS (the embedded default shows the whole system), else off."""
        if self.use_scanner is not None:
            return self.use_scanner
        return self.mode is TradingMode.SIM and not self.symbols

    @property
    def tier_allocations(self) -> dict[Tier, Decimal]:
        return {
            Tier.TIER1: self.tier1_allocation,
            Tier.TIER2: self.tier2_allocation,
            Tier.TIER3: self.tier3_allocation,
        }


def is_loopback_host(host: str) -> bool:
    """Whether binding `host` keeps the dashboard on this machine (127.0.0.0/8, ::1, `localhost`)."""
    import ipaddress  # noqa: PLC0415 - only the settings check needs it

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip()).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def broker_problems(settings: Settings, mode_source: str = "TRADING_MODE={}") -> list[str]:
    """What stops `settings` from talking to the broker: missing keys, live without its confirmation.

    Kept out of the model validator on purpose: `halt`, `resume` and `status` only touch the local state DB, so an
    operator must be able to halt a paper or live daemon from a shell that has no keys. `mode_source` formats the
    mode as the user chose it (the CLI passes `--mode {}`), so the message names what they typed.
    """
    problems = []
    mode = mode_source.format(settings.trading_mode.value if settings.trading_mode else "")
    has_keys = settings.alpaca_api_key is not None and settings.alpaca_secret_key is not None
    if settings.trading_mode in (TradingMode.PAPER, TradingMode.LIVE) and not has_keys:
        problems.append(f"{mode} needs ALPACA_API_KEY and ALPACA_SECRET_KEY")
    if settings.trading_mode is TradingMode.LIVE and settings.live_trading_confirm != "yes":
        problems.append(f"{mode} refuses to start unless LIVE_TRADING_CONFIRM=yes")
    return problems


# Fields whose value is never shown in an error, whatever the error (a malformed key is still a key).
_SECRET_FIELDS = frozenset(
    name.upper()
    for name, field in Settings.model_fields.items()
    if SecretStr in (field.annotation, *get_args(field.annotation))
)


def _describe(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        # The variable is the field: deeper parts of `loc` are a dict's keys or a list's positions, not names.
        name = str(item["loc"][0]).upper() if item["loc"] else "settings"
        message = item["msg"].removeprefix("Value error, ")
        value = item.get("input")
        # Also any unknown ALPACA_*KEY* variable (a typo of a key name still holds a key).
        secret = name in _SECRET_FIELDS or (name.startswith("ALPACA_") and "KEY" in name)
        shown = "" if secret else f" (got {value!r})"
        if not item["loc"]:
            lines.append(message)
        else:
            lines.append(f"{name}: {message}{shown}")
    return lines


def _config_error(problems: list[str]) -> ConfigError:
    # One line per problem, each naming its variable, so a single mistake is a single line on stderr.
    return ConfigError("\n".join(f"invalid configuration: {problem}" for problem in problems))


def load_settings(*, broker: bool = True, mode_source: str = "TRADING_MODE={}", **overrides: Any) -> Settings:
    """Read the environment (and `.env` if present) into a frozen Settings, or raise ConfigError.

    `broker=False` is for commands that never contact the broker (halt, resume, status): they skip the key checks.
    """
    env_file = Path(".env")
    try:
        settings = Settings(_env_file=env_file if env_file.exists() else None, **overrides)
    except ValidationError as error:
        raise _config_error(_describe(error)) from None
    except UnicodeDecodeError as error:
        # python-dotenv reads .env as UTF-8; a file saved in another encoding (or a binary) is the user's input.
        bad = error.object[error.start : error.start + 1].hex()
        where = f"byte 0x{bad} at position {error.start}"
        raise ConfigError(f"invalid configuration: {env_file}: not valid UTF-8 ({where})") from None
    # Every command loads its settings here: from now on every error text is scrubbed of the keys, before any
    # broker call can fail with a message quoting one.
    register_settings(settings)
    problems = broker_problems(settings, mode_source) if broker else []
    if problems:
        raise _config_error(problems)
    check_misspelt_variables(settings, os.environ, strict=broker)
    return settings


# --- misspelt variables ----------------------------------------------------------------------------------------------

# Only names shaped like ours are compared: upper case and digits with an underscore (PATH, HOME, TERM skipped at once).
_OUR_SHAPE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
SETTING_NAMES = frozenset(name.upper() for name in Settings.model_fields)
MAX_TYPO_DISTANCE = 2
# Names already reported by this process: a command that loads its settings twice warns once.
_WARNED: set[str] = set()


def osa_distance(a: str, b: str, cutoff: int | None = None) -> int:
    """Damerau-Levenshtein distance, optimal string alignment variant: insertions, deletions, substitutions and
    transpositions of adjacent characters, each costing 1 (no substring edited twice). O(len(a) * len(b)).

    With `cutoff`, a distance above it may come back as `cutoff + 1` without being computed to the end: every entry
    of a row is at least the smaller of the last row's minimum and the row before's minimum plus one, so once two
    rows in a row are above the cutoff, the distance is too. Every command's settings load compares each variable of
    the environment with the settings' names this way (`misspelt_variables`): most pairs stop after a few rows."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if cutoff is not None and min(current) > cutoff and min(previous) > cutoff:
            return cutoff + 1
        previous2, previous = previous, current
    return previous[len(b)]


def misspelt_variables(names: Iterable[str]) -> list[tuple[str, str]]:
    """(variable, setting) for each name that is not a setting but within MAX_TYPO_DISTANCE of one (the closest)."""
    found = []
    for name in sorted(names):
        if name in SETTING_NAMES or not _OUR_SHAPE.fullmatch(name):
            continue
        # The length gap is a lower bound on the distance: most names are ruled out without computing it.
        near = [s for s in SETTING_NAMES if abs(len(s) - len(name)) <= MAX_TYPO_DISTANCE]
        scored = sorted((osa_distance(name, setting, MAX_TYPO_DISTANCE), setting) for setting in near)
        if scored and scored[0][0] <= MAX_TYPO_DISTANCE:
            found.append((name, scored[0][1]))
    return found


def check_misspelt_variables(settings: Settings, environ: Mapping[str, str], *, strict: bool) -> None:
    """Warn (stderr, once per process) about a likely misspelt variable; live trading refuses to start on one.

    The warning goes straight to stderr: load_settings runs before logging is configured (its level comes from here).
    A silently ignored MAX_OPEN_POSITION=1 would trade with the default of 20. `strict` is False for the local-only
    commands (halt, resume, status), which stay usable whatever the environment holds.
    """
    lines = [f"{name} is not a setting; did you mean {setting}?" for name, setting in misspelt_variables(environ)]
    if not lines:
        return
    if strict and settings.trading_mode is TradingMode.LIVE:
        raise _config_error(lines)
    for line in lines:
        if line not in _WARNED:
            _WARNED.add(line)
            print(f"warning: {line}", file=sys.stderr)
