"""Strategies end to end: both built-ins over the same replay, and the README's plug-in example installed and run."""

from __future__ import annotations

import asyncio
import json
import re
import tomllib
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config.settings import Settings
from core.order_ids import is_protective_stop_id
from tests.fakes.plugins import install_plugin
from tradingd.app import build_sim, run_app
from tradingd.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"
SYMBOLS = ("AAPL", "MSFT", "XOM", "JPM", "JNJ", "GE", "T", "WMT", "INTC", "PFE")
START, END = date(2016, 1, 4), date(2016, 6, 30)


def _replay(tmp_path: Path, strategy: str) -> dict[str, object]:
    settings = Settings(data_dir=tmp_path / strategy, use_scanner=False, symbols=SYMBOLS, strategy_name=strategy)
    built = build_sim(settings, start=START, end=END)
    try:
        asyncio.run(run_app(built))
        fills = built.store.fills()
        return {
            "trades": {(f.ts, f.symbol, f.side.value) for f in fills},
            # The strategy's own orders (protective stops, `td-ps-…`, are the daemon's, whatever the strategy).
            "coids": {f.client_order_id for f in fills if not is_protective_stop_id(f.client_order_id)},
            "signals": built.orchestrator.stats.signals,
        }
    finally:
        built.close()


def test_the_two_built_ins_trade_differently_on_the_same_replay(tmp_path: Path) -> None:
    reversion = _replay(tmp_path, "zscore_mean_reversion")
    breakout = _replay(tmp_path, "rvol_breakout")
    assert reversion["trades"]
    assert breakout["trades"]
    assert reversion["trades"] != breakout["trades"]
    assert all(str(coid).startswith("td-zscore_mr-") for coid in reversion["coids"])  # type: ignore[attr-defined]
    assert all(str(coid).startswith("td-rvol_bo-") for coid in breakout["coids"])  # type: ignore[attr-defined]


def readme_example() -> tuple[str, dict[str, object]]:
    """The Python module and the pyproject.toml shown in README's "Add your own strategy", verbatim."""
    section = README.read_text().split("## Add your own strategy", 1)[1].split("\n## ", 1)[0]
    python = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    toml = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert python is not None, "README lost its plug-in module"
    assert toml is not None, "README lost its plug-in pyproject.toml"
    return python.group(1), tomllib.loads(toml.group(1))


@pytest.mark.usefixtures("cli_env")
def test_the_readme_plug_in_installs_without_pip_and_places_orders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, pyproject = readme_example()
    project = pyproject["project"]
    assert isinstance(project, dict)
    entry_points = project["entry-points"]["tradingd.strategies"]
    ((name, reference),) = entry_points.items()
    module = reference.split(":")[0]
    files = {f"{module}.py": source}
    install_plugin(tmp_path / "site", monkeypatch, dist=project["name"], entry_points=entry_points, modules=files)
    env = {"STRATEGY_NAME": name, "STRATEGY_PARAMS": "days=4", "USE_SCANNER": "false"}
    result = CliRunner().invoke(app, ["replay", "--start", "2016-01-04", "--end", "2016-03-31", "--json"], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["strategy"] == name
    assert summary["orders"] > 0
    assert summary["fills"] > 0
    fills = CliRunner().invoke(app, ["fills", "--json"], env=env)
    coids = [
        fill["client_order_id"]
        for fill in json.loads(fills.stdout)["fills"]
        if not is_protective_stop_id(fill["client_order_id"])
    ]
    assert coids
    assert all(coid.startswith(f"td-{name[:10]}-") for coid in coids)
