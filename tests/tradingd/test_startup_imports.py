"""The fast commands stay fast: which modules `--help`, `--version`, `status`, `halt`, `resume` and `report` load.

Start-up time is the import of what a command does not need (docs/ARCHITECTURE.md §Performance, start-up). These tests
never time anything: each runs the command in a fresh interpreter and asserts which heavy packages it left unloaded,
so a module-level import that drags pandas (or the calendar, or alpaca-py) back into these paths fails here by name.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import Settings
from core.bars import default_sim_tiers, load_universe
from core.constituents import read_plain_constituents
from core.errors import SetupError
from tradingd.local_state import configured_tiers

# What the daemon (run, replay, scan, close) needs and the local-only commands must not pay for: numpy too, since the
# state store, the flags and the tables need no arrays.
DAEMON_ONLY = ("numpy", "pandas", "exchange_calendars", "alpaca", "agents.daily_scan", "tradingd.app")
# `--help` and `--version` read no settings and open no store either. (Not pydantic itself: typer loads it to parse a
# command's options, `status --help` included.)
SETTINGS_AND_STORE = ("pydantic_settings", "config.settings", "core.store", "structlog")
PLOTTING = ("plotly", "matplotlib")  # only when `report` writes a file
LEARNING = ("sklearn", "skops", "intelligence.model")  # only `ml` commands and ML_ENABLED=true

# Runs one command in this interpreter and reports, on the last line of stderr, the heavy modules it loaded.
PROBE = """
import json, sys
watched = json.loads(sys.argv[1])
sys.argv = ["tradingd", *sys.argv[2:]]
from tradingd.cli import main
try:
    main()
except SystemExit as exit_:
    code = exit_.code or 0
else:
    code = 0
loaded = sorted(name for name in watched if name in sys.modules)
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def _loaded(tmp_path: Path, *args: str) -> list[str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "TRADING_MODE", "SIM_", "SYMBOLS"))}
    env = {**keep, "DATA_DIR": str(tmp_path / "var"), "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([*DAEMON_ONLY, *SETTINGS_AND_STORE, *PLOTTING, *LEARNING]), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, result.stderr
    return list(report["loaded"])


@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["status", "--help"], ["report", "--help"], ["ml", "--help"]]
)
def test_help_and_version_load_only_typer_and_the_option_types(tmp_path: Path, args: list[str]) -> None:
    assert _loaded(tmp_path, *args) == []


def test_the_local_state_commands_load_no_numpy_pandas_calendar_or_alpaca(tmp_path: Path) -> None:
    # halt first: status then reads a state DB holding a flag, resume lifts it (each a fresh process)
    for args in (
        ["halt", "--reason", "test"],
        ["status"],
        ["status", "--json"],
        ["resume"],
        ["orders"],
        ["fills", "--since", "2026-01-02"],
    ):
        loaded = _loaded(tmp_path, *args)
        assert not set(loaded) & set(DAEMON_ONLY), (args, loaded)
        assert "core.store" in loaded  # the probe sees the modules the command did load


def test_report_loads_no_daemon_and_no_plotting_until_it_writes_a_file(tmp_path: Path) -> None:
    # No state DB here: the command answers "nothing to report" (exit 0) having loaded its own module only; the
    # analytics builder may need numpy, but never the daemon, the calendar, alpaca-py, plotly or matplotlib.
    for args in (["report"], ["report", "--json"]):
        loaded = _loaded(tmp_path, *args)
        assert not set(loaded) & {*DAEMON_ONLY, *PLOTTING}, (args, loaded)
        assert "config.settings" in loaded


# ---- the sim tiers `status` reads without pandas are the ones the daemon reads with it -----------------------------

BUNDLED = Path(__file__).resolve().parents[2] / "data"


@pytest.mark.parametrize("name", ["sp500_constituents_2018-02.csv", "sp500_constituents_2013-02.csv"])
def test_the_csv_reader_reads_the_bundled_constituents_as_pandas_does(name: str) -> None:
    path = BUNDLED / name
    rows = read_plain_constituents(path)
    assert rows is not None
    frame = load_universe(path)
    assert [row.symbol for row in rows] == [str(s) for s in frame["symbol"]]
    for row, cap in zip(rows, frame["market_cap"], strict=True):
        assert (math.isnan(row.market_cap) and math.isnan(cap)) or row.market_cap == cap


@pytest.mark.parametrize("name", ["sp500_constituents_2018-02.csv", "sp500_constituents_2013-02.csv"])
def test_status_tiers_equal_the_daemons(name: str) -> None:
    path = BUNDLED / name
    settings = Settings(sim_universe_file=path)
    available = [str(s) for s in load_universe(path)["symbol"]]
    assert configured_tiers(settings) == default_sim_tiers(path, set(available))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Symbol,Name,Sector\nAAA,A,Tech\n", "no Market Cap column"),
        ("Symbol,Name,Sector,Market Cap\nAAA,A,Tech,1.5e9\n", "a number pandas' parser may round differently"),
        ("Symbol,Name,Sector,Market Cap\nNA,A,Tech,100\n", "a symbol pandas reads as missing"),
        ("Symbol,Name,Sector,Market Cap\nAAA,A,Tech\n", "a short row"),
        ("Symbol,Name,Sector,Market Cap\nAAA,A,Tech,lots\n", "not a number: pandas says why"),
        ("\ufeffSymbol,Name,Sector,Market Cap\nAAA,A,Tech,100\n", "a byte-order mark"),
        ("Symbol,Sector,Market Cap\nAAA,Tech,100\n", "no Name column: the daemon's loader refuses the file"),
    ],
)
def test_the_csv_reader_declines_what_it_cannot_read_exactly(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "constituents.csv"
    path.write_text(text, encoding="utf-8")
    assert read_plain_constituents(path) is None, why


def test_a_file_the_csv_reader_declines_gets_the_pandas_answer_or_error(tmp_path: Path) -> None:
    path = tmp_path / "constituents.csv"
    path.write_text("Symbol,Name,Sector,Market Cap\nAAA,A,Tech,2.5e9\nBBB,B,Tech,3e9\nCCC,C,Tech,\n", encoding="utf-8")
    tiers = configured_tiers(Settings(sim_universe_file=path))
    assert list(tiers) == ["BBB", "AAA"]  # largest first; CCC has no market cap
    path.write_text("Symbol,Name,Sector,Market Cap\nAAA,A,Tech,lots\n", encoding="utf-8")
    with pytest.raises(SetupError, match="SIM_UNIVERSE_FILE"):
        configured_tiers(Settings(sim_universe_file=path))
