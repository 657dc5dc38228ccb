"""A scripted strategy for the stop tests, installed as a plug-in: it enters one symbol on the bar of one date and
exits it on the bar of another, so a test knows which position exists when (the stops do the rest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.plugins import install_plugin

NAME = "scripted_stops"
SOURCE = '''
from dataclasses import dataclass

import numpy as np

from agents.strategies.base import Holdings, Signals, param
from core.types import BarFrame


@dataclass(frozen=True)
class ScriptedParams:
    symbol: str = param("CELG", "the one symbol traded")
    enter_on: str = param("", "YYYY-MM-DD: the bar whose signal enters")
    exit_on: str = param("", "YYYY-MM-DD: the bar whose signal exits (empty: never)")


class Scripted:
    """Enter `symbol` on the bar of `enter_on`, exit it on the bar of `exit_on`."""

    Params = ScriptedParams
    order_tag = "scripted"

    def __init__(self, params: ScriptedParams) -> None:
        self.params = params
        self.lookback = 1

    def signals(self, frame: BarFrame, holdings: Holdings) -> Signals:
        day = str(frame.timestamps[-1])[:10]  # daily bars are stamped at midnight New York: the UTC date is the day's
        mine = np.array([symbol == self.params.symbol for symbol in frame.symbols])
        return Signals(
            entries=mine & (day == self.params.enter_on) & ~holdings.held,
            exits=mine & (day == self.params.exit_on) & holdings.held,
            score=np.ones(frame.n_symbols),
        )
'''


def install_scripted(root: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Install the plug-in under `root` for this test; returns the STRATEGY_NAME that selects it."""
    install_plugin(
        root,
        monkeypatch,
        dist="tradingd-scripted-stops",
        entry_points={NAME: "scripted_stops_plugin:Scripted"},
        modules={"scripted_stops_plugin.py": SOURCE},
    )
    return NAME


def params(symbol: str, enter_on: str, exit_on: str = "") -> dict[str, str]:
    return {"symbol": symbol, "enter_on": enter_on, "exit_on": exit_on}
