from pathlib import Path

import pytest
from structlog.testing import capture_logs

from agents.strategies import registry
from agents.strategies.registry import StrategyError, catalog, known_names, load, select
from agents.strategies.rvol_breakout import RvolBreakout
from agents.strategies.zscore_mean_reversion import ZScoreMeanReversion
from config.settings import Settings
from tests.fakes.plugins import install_plugin
from tradingd.configs import select_strategy

PLUGIN = '''
from dataclasses import dataclass

import numpy as np

from agents.strategies.base import Signals, param


@dataclass(frozen=True)
class Params:
    level: float = param(100.0, "enter above this close")


class AboveLevel:
    """Buy any close above a fixed level."""

    Params = Params

    def __init__(self, params):
        self.level = params.level
        self.lookback = 1

    def signals(self, frame, holdings):
        with np.errstate(invalid="ignore"):
            above = frame.close[-1] > self.level
        return Signals(entries=above & ~holdings.held, exits=~above & holdings.held, score=frame.close[-1])
'''


def test_the_built_ins_are_registered_with_their_order_tags() -> None:
    assert {"zscore_mean_reversion", "rvol_breakout"} <= set(known_names())
    zscore, breakout = load("zscore_mean_reversion"), load("rvol_breakout")
    assert (zscore.factory, zscore.order_tag, zscore.source) == (ZScoreMeanReversion, "zscore_mr", "built-in")
    assert (breakout.factory, breakout.order_tag) == (RvolBreakout, "rvol_bo")
    assert zscore.ranks_entries
    assert breakout.ranks_entries
    assert [spec.setting for spec in zscore.params] == ["ZSCORE_WINDOW", "ZSCORE_ENTRY", "ZSCORE_EXIT"]


def test_select_reads_the_parameters_settings_through_the_lookup_and_refuses_a_missing_one() -> None:
    values = {"ZSCORE_WINDOW": 30, "ZSCORE_ENTRY": -2.5, "ZSCORE_EXIT": 0.5}
    chosen = select("zscore_mean_reversion", {}, values.__getitem__)
    assert (chosen.params.window, chosen.params.entry, chosen.params.exit) == (30, -2.5, 0.5)
    del values["ZSCORE_EXIT"]
    with pytest.raises(StrategyError) as caught:
        select("zscore_mean_reversion", {}, values.__getitem__)
    assert str(caught.value) == (
        "STRATEGY_NAME: strategy 'zscore_mean_reversion': parameter exit names no setting (ZSCORE_EXIT)"
    )


def test_the_default_is_the_zscore_strategy_built_from_the_zscore_settings() -> None:
    chosen = select_strategy(Settings(zscore_window=30, zscore_entry=-2.5))
    assert chosen.name == "zscore_mean_reversion"
    assert (chosen.params.window, chosen.params.entry, chosen.params.exit) == (30, -2.5, 0.0)
    assert chosen.strategy.lookback == 30


def test_rvol_breakout_is_built_from_the_breakout_settings() -> None:
    chosen = select_strategy(Settings(strategy_name="rvol_breakout", breakout_high_days=55, breakout_min_rvol=2.0))
    assert isinstance(chosen.strategy, RvolBreakout)
    assert (chosen.params.high_days, chosen.params.min_rvol, chosen.params.low_days) == (55, 2.0, 10)
    assert chosen.strategy.lookback == 56


def test_the_old_default_name_still_selects_the_zscore_strategy_with_a_deprecation_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry, "_WARNED", set())
    with capture_logs() as logs:
        first = select_strategy(Settings(strategy_name="zscore_mr"))
        select_strategy(Settings(strategy_name="zscore_mr"))
    assert (first.name, first.order_tag) == ("zscore_mean_reversion", "zscore_mr")
    warnings = [entry for entry in logs if entry["event"] == "strategy_name_deprecated"]
    assert len(warnings) == 1  # once per process
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["use"] == "zscore_mean_reversion"


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(StrategyError) as caught:
        select_strategy(Settings(strategy_name="momentum"))
    assert str(caught.value) == (f"STRATEGY_NAME: unknown strategy 'momentum'; known: {', '.join(known_names())}")
    assert "\n" not in str(caught.value)


def test_a_plug_in_is_found_through_its_entry_point_and_takes_strategy_params(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(
        tmp_path,
        monkeypatch,
        dist="tradingd-above",
        entry_points={"above_level": "above_level_mod:AboveLevel"},
        modules={"above_level_mod.py": PLUGIN},
    )
    assert "above_level" in known_names()
    chosen = select_strategy(Settings(strategy_name="above_level", strategy_params="level=250"))
    assert chosen.params.level == 250.0
    assert chosen.order_tag == "above_level"
    assert chosen.info.description == "Buy any close above a fixed level."
    assert chosen.info.source == "plug-in from tradingd-above 0.1 (above_level = above_level_mod:AboveLevel)"
    assert not chosen.info.ranks_entries
    assert "above_level" in [info.name for info in catalog()]
    with pytest.raises(StrategyError, match="STRATEGY_PARAMS: 'lvl' is not a parameter of above_level"):
        select_strategy(Settings(strategy_name="above_level", strategy_params="lvl=250"))


def test_a_broken_plug_in_is_reported_by_name_and_stops_only_who_needs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(
        tmp_path,
        monkeypatch,
        dist="tradingd-broken",
        entry_points={"broken": "broken_mod:Broken"},
        modules={"broken_mod.py": "import a_module_that_is_not_installed\n"},
    )
    with pytest.raises(StrategyError) as caught:
        select_strategy(Settings(strategy_name="broken"))
    assert str(caught.value) == (
        "STRATEGY_NAME: strategy 'broken' (plug-in from tradingd-broken 0.1 (broken = broken_mod:Broken)) cannot be"
        " loaded: ModuleNotFoundError: No module named 'a_module_that_is_not_installed'"
    )
    assert select_strategy(Settings()).name == "zscore_mean_reversion"  # plug-ins are imported only when needed
    with pytest.raises(StrategyError, match="'broken'"):
        catalog()


@pytest.mark.parametrize(
    ("entry_point", "source", "message"),
    [
        ("rvol_breakout", "class Thing:\n    pass\n", "takes the name of a built-in; rename its entry point"),
        ("zscore_mr", "class Thing:\n    pass\n", "takes the name of a built-in; rename its entry point"),
        ("no_params", "class Thing:\n    pass\n", "it has no Params dataclass"),
        (
            "a_very_long_strategy_name",
            PLUGIN.replace("AboveLevel", "Thing"),
            "order tag 'a_very_long_strategy_name' must be 1 to 12 of a-z, 0-9 and _",
        ),
        ("manual", PLUGIN.replace("AboveLevel", "Thing"), "order tag 'manual' is reserved for the daemon's own exits"),
        (
            "no_start",
            PLUGIN.replace("AboveLevel", "Thing").replace("self.lookback = 1", "raise RuntimeError('no licence')"),
            "failed to start: RuntimeError: no licence",
        ),
        (
            "no_signals",
            PLUGIN.replace("AboveLevel", "Thing").replace("def signals", "def decide"),
            "which has no `lookback` and `signals()`",
        ),
    ],
)
def test_a_plug_in_that_is_not_a_usable_strategy_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry_point: str, source: str, message: str
) -> None:
    module = f"bad_{entry_point}"
    install_plugin(
        tmp_path, monkeypatch, dist="tradingd-bad", entry_points={entry_point: f"{module}:Thing"},
        modules={f"{module}.py": source},
    )  # fmt: skip
    with pytest.raises(StrategyError) as caught:
        select_strategy(Settings(strategy_name=entry_point))
    assert str(caught.value).startswith("STRATEGY_NAME: strategy ")
    assert message in str(caught.value)
