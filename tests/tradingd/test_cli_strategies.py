import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.strategies.registry import known_names
from tests.fakes.plugins import install_plugin
from tradingd.cli import app

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("cli_env")


def test_strategies_lists_each_strategy_with_its_parameters_defaults_and_descriptions() -> None:
    result = runner.invoke(app, ["strategies"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ("zscore_mean_reversion", "rvol_breakout", "zscore_mr", "rvol_bo", "built-in",
                 "ZSCORE_WINDOW", "ZSCORE_ENTRY", "ZSCORE_EXIT", "BREAKOUT_HIGH_DAYS", "BREAKOUT_MIN_RVOL",
                 "BREAKOUT_VOLUME_DAYS", "BREAKOUT_LOW_DAYS", "enter at or below this z-score"):  # fmt: skip
        assert text in out, text
    rows = [line for line in out.splitlines() if "zscore_mean_reversion" in line and "built-in" in line]
    assert len(rows) == 1
    assert "*" in rows[0]
    assert out.rstrip().endswith("STRATEGY_NAME=zscore_mean_reversion")


def test_strategies_json_names_the_selection_and_every_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATEGY_NAME", "rvol_breakout")
    result = runner.invoke(app, ["strategies", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["strategy_name"] == "rvol_breakout"
    by_name = {item["name"]: item for item in document["strategies"]}
    assert [name for name, item in by_name.items() if item["selected"]] == ["rvol_breakout"]
    assert by_name["rvol_breakout"]["params"][0] == {
        "name": "high_days",
        "type": "int",
        "default": 20,
        "setting": "BREAKOUT_HIGH_DAYS",
        "description": "enter on a close above the highest high of this many previous bars",
    }
    assert {p["name"]: p["default"] for p in by_name["zscore_mean_reversion"]["params"]} == {
        "window": 20, "entry": -2.0, "exit": 0.0
    }  # fmt: skip
    assert by_name["zscore_mean_reversion"]["order_tag"] == "zscore_mr"


def test_strategies_marks_the_old_default_name_as_a_deprecated_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATEGY_NAME", "zscore_mr")
    result = runner.invoke(app, ["strategies"])
    assert result.exit_code == 0
    assert result.stdout.rstrip().endswith("STRATEGY_NAME=zscore_mr (deprecated alias of zscore_mean_reversion)")


@pytest.mark.parametrize("command", [["replay", "--end", "2013-03-29"], ["run", "--once"], ["scan"]])
def test_an_unknown_strategy_exits_2_with_one_line_listing_the_known_ones(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("STRATEGY_NAME", "momentum")
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    assert result.stderr == f"error: STRATEGY_NAME: unknown strategy 'momentum'; known: {', '.join(known_names())}\n"
    listing = runner.invoke(app, ["strategies"])  # the command that helps: still lists them, and says so
    assert listing.exit_code == 0
    assert "STRATEGY_NAME=momentum: not one of these" in listing.stdout


def test_validate_fails_its_settings_check_on_an_unknown_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATEGY_NAME", "momentum")
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 2
    assert result.stdout.startswith("FAIL  settings  STRATEGY_NAME: unknown strategy 'momentum'")


def test_a_broken_plug_in_exits_2_naming_it_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install_plugin(
        tmp_path / "site",
        monkeypatch,
        dist="tradingd-typo",
        entry_points={"typo": "typo_strategy:Typo"},
        modules={"typo_strategy.py": "from numpy import not_a_name\n"},
    )
    expected = (
        "strategy 'typo' (plug-in from tradingd-typo 0.1 (typo = typo_strategy:Typo)) cannot be loaded: "
        "ImportError: cannot import name 'not_a_name' from 'numpy'"
    )
    listing = runner.invoke(app, ["strategies"])
    assert listing.exit_code == 2
    assert listing.stderr.startswith(f"error: {expected}")
    assert len(listing.stderr.splitlines()) == 1
    monkeypatch.setenv("STRATEGY_NAME", "typo")
    result = runner.invoke(app, ["replay", "--end", "2013-03-29"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: STRATEGY_NAME: {expected}")
    assert "Traceback" not in result.output
    assert len(result.stderr.splitlines()) == 1
