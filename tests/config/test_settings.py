from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from config.settings import ConfigError, Settings, load_settings
from core.types import Tier, TradingMode


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("TRADING_MODE", "ALPACA_API_KEY", "ALPACA_SECRET_KEY", "LIVE_TRADING_CONFIRM", "SYMBOLS"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_match_the_design() -> None:
    s = load_settings()
    assert s.mode is TradingMode.SIM
    assert s.tier_allocations == {Tier.TIER1: Decimal("0.40"), Tier.TIER2: Decimal("0.30"), Tier.TIER3: Decimal("0.30")}
    assert s.max_daily_loss_pct == Decimal("0.02")
    assert s.max_drawdown_pct == Decimal("0.10")
    assert s.max_position_pct == Decimal("0.10")
    assert s.max_open_positions == 20
    assert s.stop_loss_pct == Decimal("0.05")
    assert s.tier_max_position_pct == Decimal("0.20")
    assert s.min_order_notional == Decimal("10.0")
    assert s.baseline_symbols == ("SPY", "QQQ")
    assert s.alpaca_data_feed == "iex"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"TIER1_ALLOCATION": "abc"}, "TIER1_ALLOCATION"),
        ({"TIER1_ALLOCATION": "0.6"}, "exceeds 1.0"),
        ({"SYMBOL_TIERS": "SPY-TIER1"}, "SYMBOL_TIERS"),
        ({"SYMBOL_TIERS": "SPY:TIER7"}, "SYMBOL_TIERS"),
        ({"MAX_OPEN_POSITIONS": "0"}, "MAX_OPEN_POSITIONS"),
        ({"MIN_ORDER_NOTIONAL": "0.5"}, "MIN_ORDER_NOTIONAL"),
        ({"BAR_TIMEFRAME": "2Day"}, "BAR_TIMEFRAME"),
        ({"SCAN_SECTOR_MIN_MARKET_CAP": "Energy=5e9"}, "SCAN_SECTOR_MIN_MARKET_CAP"),
        ({"TRADING_MODE": "paper"}, "ALPACA_API_KEY"),
        ({"TRADING_MODE": "live", "ALPACA_API_KEY": "k", "ALPACA_SECRET_KEY": "s"}, "LIVE_TRADING_CONFIRM"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], needle: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=needle):
        load_settings()


def test_keys_make_paper_the_default_and_secrets_are_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", "PKTESTKEY123")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "supersecretvalue")
    s = load_settings()
    assert s.mode is TradingMode.PAPER
    assert "supersecretvalue" not in repr(s)
    assert "PKTESTKEY123" not in str(s)


def test_live_needs_explicit_confirmation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", "k")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "s")
    monkeypatch.setenv("TRADING_MODE", "live")
    monkeypatch.setenv("LIVE_TRADING_CONFIRM", "yes")
    assert load_settings().mode is TradingMode.LIVE


def test_lists_and_tiers_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBOLS", "aapl, msft ,")
    monkeypatch.setenv("SYMBOL_TIERS", "SPY:TIER1,aapl:tier3")
    s = load_settings()
    assert s.symbols == ("AAPL", "MSFT")
    assert s.symbol_tiers == {"SPY": Tier.TIER1, "AAPL": Tier.TIER3}


def test_sector_floors_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCAN_SECTOR_MIN_MARKET_CAP", "Information Technology:1e10, Energy:5e9")
    assert load_settings().scan_sector_min_market_cap == {"Information Technology": 1e10, "Energy": 5e9}


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValueError, match="frozen"):
        s.max_open_positions = 3  # type: ignore[misc]


def test_dotenv_with_every_example_variable_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / ".env.example"
    (tmp_path / ".env").write_text(example.read_text())
    assert load_settings().mode is TradingMode.SIM


def test_unknown_dotenv_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MAX_OPEN_POSITONS=5\n")
    with pytest.raises(ConfigError, match="MAX_OPEN_POSITONS"):
        load_settings()


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_local_only_commands_load_without_keys(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setenv("TRADING_MODE", mode)
    assert load_settings(broker=False).mode is TradingMode(mode)
    with pytest.raises(ConfigError, match="ALPACA_API_KEY"):
        load_settings()


def test_one_problem_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_OPEN_POSITIONS", "0")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert str(raised.value).startswith("invalid configuration: MAX_OPEN_POSITIONS: ")
    assert "\n" not in str(raised.value)


def test_sim_range_is_typed_as_dates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_START", "2016-01-04")
    assert load_settings().sim_start == date(2016, 1, 4)
    monkeypatch.setenv("SIM_END", "2016-02-30")
    with pytest.raises(ConfigError, match="SIM_END"):
        load_settings()
