"""End to end in sim over the whole bundled market (505 symbols, 2018-02-07): `cache refresh`, then the scan (as a
CLI command, as `python -m scripts.scan_opportunities` and as `python scripts/scan_opportunities.py`, which builds
its own cache on a fresh DATA_DIR), then `validate`. The candidates file must validate against the schema
in docs/ARCHITECTURE.md §File formats. How `scan` sets up its cache: tests/core/test_cli_scan.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from core.candidates import read_candidates, validate_candidates
from tradingd.cli_scan import register

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "TRADING_MODE": "sim",
        "DATA_DIR": str(tmp_path / "var"),
        "CANDIDATES_FILE": str(tmp_path / "candidates.json"),
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return values


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def invoke(app: typer.Typer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


def test_refresh_scan_validate_in_sim(env: dict[str, str], cli: typer.Typer) -> None:
    code, out = invoke(cli, "cache", "refresh", "--json")
    assert code == 0, out
    refreshed = json.loads(out)
    assert refreshed["through"] == "2018-02-06"
    assert refreshed["written"] == 495  # 505 constituents minus 10 single-letter symbols

    code, out = invoke(cli, "scan", "--json")
    assert code == 0, out
    printed = json.loads(out)
    document = json.loads(Path(env["CANDIDATES_FILE"]).read_text())
    assert validate_candidates(document) == []
    assert printed["candidates"] == document["candidates"]
    assert document["as_of"] == "2018-02-07"
    assert len(document["candidates"]) == 10
    assert document["symbols"][-2:] == ["SPY", "QQQ"]
    stats = document["stats"]
    assert [s["name"] for s in stats["stages"]][0:3] == ["universe", "prescreen", "snapshot"]
    assert stats["cache"]["hit_rate"] == 1.0
    assert stats["universe"] == 505

    code, out = invoke(cli, "validate", "--json")
    report = json.loads(out)
    assert code == 0, report
    assert report["ok"] is True
    assert {c["name"] for c in report["checks"]} == {"settings", "market_data", "volume_cache", "rvol", "candidates"}

    code, out = invoke(cli, "scan")  # the human table
    assert code == 0
    assert "MCHP" in out
    assert "stages:" in out


def test_scan_as_of_an_earlier_session(env: dict[str, str], cli: typer.Typer) -> None:
    assert invoke(cli, "cache", "refresh", "--as-of", "2017-06-01")[0] == 0
    code, out = invoke(cli, "scan", "--json", "--as-of", "2017-06-01")
    assert code == 0, out
    document = read_candidates(Path(env["CANDIDATES_FILE"]))
    assert str(document.as_of) == "2017-06-01"
    assert document.stats["cache"]["expected_as_of"] == "2017-05-31"


@pytest.mark.parametrize("as_of", ["2018-02-10", "2020-01-02", "yesterday"])
def test_bad_as_of_is_a_usage_error(env: dict[str, str], cli: typer.Typer, as_of: str) -> None:
    assert invoke(cli, "scan", "--as-of", as_of)[0] == 2


def test_validate_fails_on_a_corrupt_candidates_file(env: dict[str, str], cli: typer.Typer) -> None:
    assert invoke(cli, "cache", "refresh")[0] == 0
    Path(env["CANDIDATES_FILE"]).write_text('{"schema": 1, "symbols": ')
    code, out = invoke(cli, "validate", "--json")
    assert code == 1
    failed = [c["name"] for c in json.loads(out)["checks"] if c["status"] == "FAIL"]
    assert failed == ["candidates"]


def test_bad_configuration_exits_2(env: dict[str, str], cli: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIN_RVOL", "-1")
    assert invoke(cli, "scan")[0] == 2
    code, out = invoke(cli, "validate", "--json")
    assert code == 2
    assert json.loads(out)["checks"][0]["name"] == "settings"


@pytest.mark.parametrize("command", [["-m", "scripts.scan_opportunities"], ["scripts/scan_opportunities.py"]])
def test_script_runs_as_a_module_and_as_a_file(env: dict[str, str], command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, *command, "--json"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["as_of"] == "2018-02-07"
    assert validate_candidates(json.loads(Path(env["CANDIDATES_FILE"]).read_text())) == []
