from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

import config.settings as settings_module
from config.settings import ConfigError, Settings, load_settings, misspelt_variables, osa_distance
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
    assert s.stop_mode == "fixed"
    assert s.trailing_stop_pct == Decimal("0.05")
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
        ({"ON_MAX_DRAWDOWN": "sell"}, "ON_MAX_DRAWDOWN: Input should be 'reduce' or 'flatten'"),
        ({"ON_DAILY_LOSS": "halt"}, "ON_DAILY_LOSS"),
        ({"STOP_MODE": "bracket"}, "STOP_MODE"),
        ({"TRAILING_STOP_PCT": "0"}, "TRAILING_STOP_PCT"),
        ({"TRAILING_STOP_PCT": "5"}, "TRAILING_STOP_PCT"),
        ({"SCAN_SECTOR_MIN_MARKET_CAP": "Energy=5e9"}, "SCAN_SECTOR_MIN_MARKET_CAP"),
        ({"SCAN_SECTOR_MIN_MARKET_CAP": "Enregy:5e9"}, "SCAN_SECTOR_MIN_MARKET_CAP: .*unknown sector 'Enregy'"),
        ({"SCAN_SECTOR_MIN_MARKET_CAP": "Technology:1e12,Information Technology:1"}, "'Technology' given twice"),
        ({"SCAN_SECTOR_MIN_MARKET_CAP": "Energy:inf"}, "^invalid configuration: SCAN_SECTOR_MIN_MARKET_CAP: "),
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
    # Keys in either naming, kept under the floors' own names.
    assert load_settings().scan_sector_min_market_cap == {"Technology": 1e10, "Energy": 5e9}
    monkeypatch.setenv("SCAN_SECTOR_MIN_MARKET_CAP", "none")
    assert load_settings().scan_sector_min_market_cap == {}


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


def test_strategy_params_are_split_into_names_and_texts(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only split: which names and types are valid is the selected strategy's to say (agents/strategies/params.py).
    monkeypatch.setenv("STRATEGY_PARAMS", " days=4, level = 2.5 ,")
    monkeypatch.setenv("STRATEGY_NAME", " rvol_breakout ")
    settings = load_settings()
    assert settings.strategy_params == {"days": "4", "level": "2.5"}
    assert settings.strategy_name == "rvol_breakout"


def test_sim_range_is_typed_as_dates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_START", "2016-01-04")
    assert load_settings().sim_start == date(2016, 1, 4)
    monkeypatch.setenv("SIM_END", "2016-02-30")
    with pytest.raises(ConfigError, match="SIM_END"):
        load_settings()


# ---- values that would make every order impossible ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"MAX_POSITION_PCT": "0"}, "MAX_POSITION_PCT"),
        ({"MAX_POSITION_PCT": "1.5"}, "MAX_POSITION_PCT"),
        ({"TIER_MAX_POSITION_PCT": "0"}, "TIER_MAX_POSITION_PCT"),
        ({"TIER1_ALLOCATION": "0", "TIER2_ALLOCATION": "0", "TIER3_ALLOCATION": "0"}, "TIER1_ALLOCATION"),
        ({"TIER1_ALLOCATION": "-0.1"}, "TIER1_ALLOCATION"),
        ({"SIM_INITIAL_CASH": "50"}, "MIN_ORDER_NOTIONAL"),  # 50 x 8% = $4 < $10
        ({"MIN_ORDER_NOTIONAL": "9000"}, "MIN_ORDER_NOTIONAL"),  # the largest first sim position is $8,000
        ({"ZSCORE_ENTRY": "-5"}, "ZSCORE_ENTRY"),  # a 20-bar z-score is never below -4.25
        ({"ZSCORE_ENTRY": "nan"}, "ZSCORE_ENTRY"),
        ({"MIN_PRICE": "inf"}, "MIN_PRICE"),
        ({"BREAKOUT_MIN_RVOL": "0"}, "BREAKOUT_MIN_RVOL"),
        ({"BREAKOUT_HIGH_DAYS": "0"}, "BREAKOUT_HIGH_DAYS"),
        ({"STRATEGY_PARAMS": "days"}, "STRATEGY_PARAMS"),
        ({"BAR_TIMEFRAME": "15Min", "SIGNAL_MAX_AGE_SECONDS": "600"}, "SIGNAL_MAX_AGE_SECONDS"),
    ],
)
def test_values_that_allow_no_order_are_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith(f"invalid configuration: {variable}")
    assert "\n" not in message


@pytest.mark.parametrize(
    "env",
    [
        # Tiering off: the tier shares and the per-tier cap are not used.
        {
            "ENABLE_TIERED_ALLOCATION": "false",
            "TIER1_ALLOCATION": "0",
            "TIER2_ALLOCATION": "0",
            "TIER3_ALLOCATION": "0",
        },
        {"ENABLE_TIERED_ALLOCATION": "false", "TIER_MAX_POSITION_PCT": "0"},
        {"TIER1_ALLOCATION": "1", "TIER2_ALLOCATION": "0", "TIER3_ALLOCATION": "0"},  # one tier may take it all
        {"MAX_POSITION_PCT": "1"},
        {"ZSCORE_ENTRY": "-4.2"},
        {"BAR_TIMEFRAME": "15Min", "SIGNAL_MAX_AGE_SECONDS": "900"},
        {"MIN_ORDER_NOTIONAL": "8000"},
        # Paper/live equity is unknown at start-up: a small SIM_INITIAL_CASH there is not a reason to refuse.
        {"TRADING_MODE": "paper", "ALPACA_API_KEY": "k", "ALPACA_SECRET_KEY": "s", "SIM_INITIAL_CASH": "50"},
    ],
)
def test_legitimate_edge_values_load(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    load_settings()


@pytest.mark.parametrize("variable", ["ALPACA_API_KEY", "ALPACA_SECRET_KEY"])
@pytest.mark.parametrize("secret", [" PKCANARY4242", "PKCANARY4242\n", "PK\tCANARY4242", "PKCANARY\x004242"])
def test_a_key_with_whitespace_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, secret: str
) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", "PKGOODKEY")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "goodsecret")
    if "\x00" in secret:  # an environment variable cannot hold NUL: pass it the way a .env loader would
        with pytest.raises(ConfigError) as raised:
            load_settings(**{variable.lower(): secret})
    else:
        monkeypatch.setenv(variable, secret)
        with pytest.raises(ConfigError) as raised:
            load_settings()
    message = str(raised.value)
    assert message.startswith(f"invalid configuration: {variable}: must not contain whitespace")
    assert "CANARY" not in message


@pytest.fixture
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    # The once-per-process memory of warned names must not leak between tests.
    monkeypatch.setattr(settings_module, "_WARNED", set())


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("", "", 0),
        ("abc", "", 3),
        ("", "abc", 3),
        ("MAX_OPEN_POSITIONS", "MAX_OPEN_POSITIONS", 0),
        ("MAX_OPEN_POSITION", "MAX_OPEN_POSITIONS", 1),  # deletion
        ("TRADING_MOD", "TRADING_MODE", 1),
        ("TRADNIG_MODE", "TRADING_MODE", 1),  # one adjacent transposition
        ("SYMBLOS", "SYMBOLS", 1),
        ("CA", "ABC", 3),  # OSA, not unrestricted Damerau-Levenshtein (which gives 2)
        ("kitten", "sitting", 3),
        ("MIN_PRICE", "MAX_PRICE", 2),
    ],
)
def test_osa_distance(a: str, b: str, distance: int) -> None:
    assert osa_distance(a, b) == distance
    assert osa_distance(b, a) == distance


def test_misspelt_variables_name_the_closest_setting_and_skip_other_names() -> None:
    names = ["MAX_OPEN_POSITION", "TRADING_MOD", "PATH", "HOME", "LC_ALL", "TRADING_MODE", "max_open_positon",
             "SOMETHING_ELSE", "MAX_OPEN_POSITIONS_X_Y"]  # fmt: skip
    assert misspelt_variables(names) == [
        ("MAX_OPEN_POSITION", "MAX_OPEN_POSITIONS"),
        ("TRADING_MOD", "TRADING_MODE"),
    ]


@pytest.mark.usefixtures("_fresh_warnings")
def test_misspelt_variable_warns_once_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAX_OPEN_POSITION", "1")
    assert load_settings().max_open_positions == 20  # still ignored: the warning is what tells the user
    load_settings()
    err = capsys.readouterr().err
    assert err == "warning: MAX_OPEN_POSITION is not a setting; did you mean MAX_OPEN_POSITIONS?\n"


@pytest.mark.usefixtures("_fresh_warnings")
def test_misspelt_variable_refuses_live_trading(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {"TRADING_MODE": "live", "ALPACA_API_KEY": "k", "ALPACA_SECRET_KEY": "s"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LIVE_TRADING_CONFIRM", "yes")
    monkeypatch.setenv("MAX_OPEN_POSITION", "1")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == (
        "invalid configuration: MAX_OPEN_POSITION is not a setting; did you mean MAX_OPEN_POSITIONS?"
    )
    # halt/status (no broker) stay usable in live: only a warning there.
    assert load_settings(broker=False).mode is TradingMode.LIVE
    assert "did you mean MAX_OPEN_POSITIONS?" in capsys.readouterr().err


def test_non_utf8_dotenv_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"LOG_LEVEL=\xff\xfe\n")
    with pytest.raises(
        ConfigError, match=r"^invalid configuration: \.env: not valid UTF-8 \(byte 0xff at position 10\)$"
    ):
        load_settings()
