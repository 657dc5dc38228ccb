"""Tests for core/universe.py: universe files (CSV with or without caps, plain lists) and a broker directory."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from core.universe import DirectoryUniverse, FileUniverse, UniverseError, read_universe_file

CONSTITUENTS = Path(__file__).resolve().parents[2] / "data" / "sp500_constituents_2018-02.csv"


def test_constituents_file_carries_caps_and_sectors() -> None:
    universe = read_universe_file(CONSTITUENTS)
    assert len(universe) == 505
    assert universe.has_market_cap
    aapl = universe.frame.set_index("symbol").loc["AAPL"]
    assert aapl["sector"] == "Information Technology"
    assert aapl["market_cap"] == pytest.approx(809_508_034_020)


def test_plain_list_with_comments_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "universe.txt"
    path.write_text("# my watchlist\naapl, msft\nXOM  # energy\n\nAAPL\n")
    universe = read_universe_file(path)
    assert universe.symbols == ("AAPL", "MSFT", "XOM")
    assert not universe.has_market_cap
    assert all(math.isnan(cap) for cap in universe.frame["market_cap"])


def test_csv_without_a_cap_column(tmp_path: Path) -> None:
    path = tmp_path / "universe.csv"
    path.write_text("ticker,name\nAAPL,Apple\nmsft,Microsoft\n")
    universe = read_universe_file(path)
    assert universe.symbols == ("AAPL", "MSFT")
    assert not universe.has_market_cap


def test_unreadable_or_empty_universe_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UniverseError, match="cannot read"):
        read_universe_file(tmp_path / "missing.csv")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n")
    with pytest.raises(UniverseError, match="no symbols"):
        read_universe_file(empty)


class _Directory:
    async def list_tradable_equities(self) -> Sequence[str]:
        return ["AAPL", "SPY", "BRK.B"]


async def test_directory_universe_has_no_caps() -> None:
    universe = await DirectoryUniverse(_Directory()).load()
    assert universe.symbols == ("AAPL", "SPY", "BRK.B")
    assert not universe.has_market_cap


async def test_file_universe_rereads_only_a_changed_file(tmp_path: Path) -> None:
    path = tmp_path / "universe.txt"
    path.write_text("AAPL\n")
    source = FileUniverse(path)
    first = await source.load()
    assert await source.load() is first
    path.write_text("AAPL\nMSFT\n")
    assert (await source.load()).symbols == ("AAPL", "MSFT")
    path.unlink()
    with pytest.raises(UniverseError):
        await source.load()
