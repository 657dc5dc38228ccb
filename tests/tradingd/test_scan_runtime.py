"""Tests for tradingd/scan_runtime.py: what makes a scan impossible is refused up front (exit 2 in the CLI)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from config.settings import Settings
from tradingd.scan_runtime import ScanSetupError, check_scan_universe, open_runtime


def _paper(universe: Path, **values: object) -> Settings:
    return Settings(trading_mode="paper", alpaca_api_key="k", alpaca_secret_key="s", scan_universe=universe, **values)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "no symbols"),
        ("\n\n# only a comment\n", "no symbols"),
        ("1234\n$$$\n", "none of its 2 symbols is a symbol the scan takes"),
        ("Symbol,Market Cap\nAAPL,1e9\n", "none of its 1 symbol passes MIN_MARKET_CAP"),
    ],
)
def test_paper_universe_file_without_a_usable_symbol(tmp_path: Path, content: str, reason: str) -> None:
    universe = tmp_path / "u.csv"
    universe.write_text(content)
    with pytest.raises(ScanSetupError, match=f"^SCAN_UNIVERSE: .*{reason}"):
        check_scan_universe(_paper(universe, min_market_cap=1e12), None)


def test_paper_universe_with_one_usable_symbol_passes(tmp_path: Path) -> None:
    universe = tmp_path / "u.txt"
    universe.write_text("1234\nAAPL\n")
    check_scan_universe(_paper(universe), None)


def test_sim_universe_needs_a_symbol_of_the_data(tmp_path: Path) -> None:
    universe = tmp_path / "u.txt"
    universe.write_text("AAPL\nNOPE\n")
    settings = Settings(trading_mode="sim", scan_universe=universe)
    check_scan_universe(settings, ("AAPL", "MSFT"))
    with pytest.raises(ScanSetupError, match="none of its 2 symbols is in the bundled data"):
        check_scan_universe(settings, ("MSFT",))


def test_paper_refuses_as_of(tmp_path: Path) -> None:
    universe = tmp_path / "u.txt"
    universe.write_text("AAPL\n")
    with pytest.raises(ScanSetupError, match="--as-of is only for sim mode"):
        open_runtime(_paper(universe), date(2018, 1, 9))
