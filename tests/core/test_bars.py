from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import bars as bars_module
from core.bars import (
    default_sim_tiers,
    largest_by_market_cap,
    last_valid_row,
    load_daily_bars,
    load_daily_bars_cached,
    load_universe,
)
from core.errors import SetupError
from core.timeconv import NEW_YORK, datetime_to_ns
from core.types import BarFrame, Tier

DATA = Path(__file__).resolve().parents[2] / "data"
BARS = DATA / "sp500_daily_2013_2018.csv.xz"
UNIVERSE = DATA / "sp500_constituents_2018-02.csv"

# The 11 source rows with an empty open (and, for most, empty high/low too): (date, symbol, high is empty).
BAD_ROWS = [
    ("2017-07-26", "BHF", True),
    ("2015-07-17", "DHR", False),
    ("2016-01-12", "DHR", True),
    ("2015-07-17", "ES", False),
    ("2016-07-01", "FTV", True),
    ("2015-07-17", "O", False),
    ("2016-01-12", "O", True),
    ("2015-06-09", "REGN", True),
    ("2016-04-07", "UA", True),
    ("2015-05-12", "VRTX", True),
    ("2015-06-26", "WRK", True),
]


@pytest.fixture(scope="module")
def full() -> BarFrame:
    return load_daily_bars(BARS)


def _row(history: BarFrame, day: str) -> int:
    stamp = pd.Timestamp(day).tz_localize(NEW_YORK).tz_convert("UTC").tz_localize(None)
    return int(np.searchsorted(history.timestamps, stamp.to_datetime64()))


def test_full_file_pivots_to_every_row(full: BarFrame) -> None:
    assert full.n_rows == 1259
    assert full.n_symbols == 505
    assert list(full.symbols) == sorted(full.symbols)
    # Every source row lands in exactly one cell: 619,040 rows, all with a close.
    assert int(np.count_nonzero(~np.isnan(full.close))) == 619_040
    assert full.close.dtype == np.float64
    assert full.timestamps.dtype == np.dtype("datetime64[ns]")


def test_timestamps_are_midnight_new_york_in_utc(full: BarFrame) -> None:
    first = pd.Timestamp(full.timestamps[0], tz="UTC")
    assert first == pd.Timestamp("2013-02-08 05:00", tz="UTC")  # EST: UTC-5
    summer = pd.Timestamp(full.timestamps[_row(full, "2015-07-17")], tz="UTC")
    assert summer == pd.Timestamp("2015-07-17 04:00", tz="UTC")  # EDT: UTC-4
    assert pd.Timestamp(full.timestamps[-1], tz="UTC").tz_convert(NEW_YORK).date() == date(2018, 2, 7)
    assert bool(np.all(np.diff(full.timestamps_ns) > 0))


def test_bad_rows_stay_nan_and_are_not_repaired(full: BarFrame) -> None:
    nan_opens = np.argwhere(np.isnan(full.open) & ~np.isnan(full.close))
    assert len(nan_opens) == len(BAD_ROWS)
    for day, symbol, high_empty in BAD_ROWS:
        row, col = _row(full, day), full.symbols.index(symbol)
        assert np.isnan(full.open[row, col]), (day, symbol)
        assert np.isnan(full.high[row, col]) == high_empty, (day, symbol)
        assert np.isnan(full.low[row, col]) == high_empty, (day, symbol)
        assert not np.isnan(full.close[row, col]), (day, symbol)


def test_known_values_land_on_their_date_and_symbol(full: BarFrame) -> None:
    row, col = _row(full, "2013-02-08"), full.symbols.index("AAL")
    assert (full.open[row, col], full.high[row, col], full.low[row, col], full.close[row, col]) == (
        15.07,
        15.12,
        14.63,
        14.75,
    )
    assert full.volume[row, col] == 8_407_500
    dhr = full.symbols.index("DHR")
    assert full.high[_row(full, "2015-07-17"), dhr] == 88.76


def test_symbol_and_date_filters_keep_order_and_align_dates() -> None:
    history = load_daily_bars(
        BARS, symbols=["MSFT", "FTV", "AAPL", "NOPE"], start=date(2016, 6, 1), end=date(2016, 7, 29)
    )
    assert history.symbols == ("MSFT", "FTV", "AAPL")  # requested order; unknown symbol left out
    days = pd.DatetimeIndex(history.timestamps).tz_localize("UTC").tz_convert(NEW_YORK).date
    assert days[0] == date(2016, 6, 1)
    assert days[-1] == date(2016, 7, 29)
    # FTV was spun off on 2016-07-01 (whose row is bad): NaN before, aligned on the shared dates after.
    ftv = history.symbols.index("FTV")
    first_ftv = int(np.flatnonzero(~np.isnan(history.close[:, ftv]))[0])
    assert days[first_ftv] == date(2016, 7, 1)
    assert np.isnan(history.open[first_ftv, ftv])
    assert not np.isnan(history.close[:, [0, 2]]).any()


def test_arrays_are_read_only(full: BarFrame) -> None:
    with pytest.raises(ValueError, match="read-only"):
        full.close[0, 0] = 1.0


def test_full_load_holds_every_bundled_symbol_and_session() -> None:
    """The whole bundled file (its load time is measured by `make bench`, bench_micro)."""
    history = load_daily_bars(BARS)
    assert history.close.shape == (history.n_rows, len(history.symbols))
    assert len(history.symbols) == 505
    assert history.n_rows == 1259


def test_last_valid_row_carries_forward_and_marks_never_seen() -> None:
    values = np.array([[np.nan, 1.0], [2.0, np.nan], [np.nan, np.nan], [3.0, 4.0]])
    assert last_valid_row(values).tolist() == [[-1, 0], [1, 0], [1, 0], [3, 3]]


def test_datetime_to_ns_is_exact_and_refuses_naive() -> None:
    assert datetime_to_ns(datetime(2015, 7, 17, 4, tzinfo=UTC)) == pd.Timestamp("2015-07-17 04:00", tz="UTC").value
    with pytest.raises(ValueError, match="naive"):
        datetime_to_ns(datetime(2015, 7, 17))


def test_universe_has_market_caps_as_float() -> None:
    universe = load_universe(UNIVERSE)
    assert list(universe.columns) == ["symbol", "name", "sector", "market_cap"]
    assert len(universe) == 505
    assert universe["market_cap"].dtype == np.float64
    aapl = universe[universe["symbol"] == "AAPL"].iloc[0]
    assert aapl["market_cap"] == 809_508_034_020.0
    assert aapl["sector"] == "Information Technology"


def test_largest_by_market_cap_respects_available() -> None:
    universe = load_universe(UNIVERSE)
    assert largest_by_market_cap(universe, 3, {"AAPL", "GOOGL", "GOOG", "MSFT"}) == ["AAPL", "GOOGL", "GOOG"]
    assert largest_by_market_cap(universe, 3, {"MSFT", "MMM", "ZZZZ"}) == ["MSFT", "MMM"]


def test_default_sim_tiers_are_the_29_largest_in_4_5_20(full: BarFrame) -> None:
    tiers = default_sim_tiers(UNIVERSE, set(full.symbols))
    symbols = list(tiers)
    assert len(symbols) == 29
    assert symbols[:4] == ["AAPL", "GOOGL", "GOOG", "MSFT"]
    assert all(tiers[s] is Tier.TIER1 for s in symbols[:4])
    assert symbols[4:9] == ["AMZN", "FB", "JPM", "JNJ", "XOM"]
    assert all(tiers[s] is Tier.TIER2 for s in symbols[4:9])
    assert all(tiers[s] is Tier.TIER3 for s in symbols[9:])
    assert symbols[-1] == "CMCSA"


def test_default_sim_tiers_skip_symbols_the_data_lacks() -> None:
    tiers = default_sim_tiers(UNIVERSE, {"MSFT", "AAPL", "MMM"})
    assert tiers == {"AAPL": Tier.TIER1, "MSFT": Tier.TIER1, "MMM": Tier.TIER1}


def _garbage_xz(tmp_path: Path) -> Path:
    path = tmp_path / "bars.csv.xz"
    path.write_bytes(bytes(range(256)) * 8)  # not an xz stream
    return path


def _truncated_xz(tmp_path: Path) -> Path:
    path = tmp_path / "bars.csv.xz"
    with BARS.open("rb") as source:
        path.write_bytes(source.read(20_000))  # the first blocks of the real file, cut mid-stream
    return path


def _wrong_columns(tmp_path: Path) -> Path:
    path = tmp_path / "bars.csv"
    path.write_text("a,b\n1,2\n")
    return path


def _bad_number(tmp_path: Path) -> Path:
    path = tmp_path / "bars.csv"
    path.write_text("date,symbol,open,high,low,close,volume\n2017-01-03,AAPL,abc,1,1,1,1\n")
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_garbage_xz, "Input format not supported"),
        (_truncated_xz, "ended before the end-of-stream"),
        (_wrong_columns, "Usecols do not match"),
        (_bad_number, "could not convert"),
    ],
    ids=["random_bytes_xz", "truncated_xz", "wrong_columns", "not_a_number"],
)
def test_unreadable_bar_file_is_a_setup_error_naming_the_variable(
    tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(SetupError) as caught:
        load_daily_bars(path)
    message = str(caught.value)
    assert message.startswith(f"SIM_DATA_FILE: {path}: not a valid bar file (")
    assert reason.lower() in message.lower()
    assert "\n" not in message


def test_missing_bar_file_stays_an_os_error_for_the_cli(tmp_path: Path) -> None:
    # tradingd.cli.main turns an OSError that names its file into one line; the loader must not hide it.
    with pytest.raises(FileNotFoundError):
        load_daily_bars(tmp_path / "absent.csv")


def test_unreadable_universe_file_is_a_setup_error_naming_the_variable(tmp_path: Path) -> None:
    path = _wrong_columns(tmp_path)
    with pytest.raises(SetupError, match=r"^SIM_UNIVERSE_FILE: .*: not a valid constituents file \(Usecols"):
        load_universe(path)


# -- the parsed-bars cache ---------------------------------------------------------------------------------------
_SMALL_CSV = "date,symbol,open,high,low,close,volume\n2016-01-04,AAA,1,2,0.5,1.5,100\n2016-01-05,AAA,,,,1.6,90\n"


def _same(a: BarFrame, b: BarFrame) -> None:
    assert a.symbols == b.symbols
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))  # NaN where NaN: bit for bit
        assert not getattr(b, name).flags.writeable


def test_cached_bars_equal_the_parse_and_are_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "bars.csv"
    source.write_text(_SMALL_CSV)
    cache_dir = tmp_path / "cache"
    first = load_daily_bars_cached(source, cache_dir)
    _same(load_daily_bars(source), first)
    assert [p.name for p in cache_dir.iterdir()] == ["bars.csv.npz"]  # no temporary file left behind

    def no_parse(*args: object, **kwargs: object) -> BarFrame:
        raise AssertionError("parsed again although the cache matches")

    monkeypatch.setattr(bars_module, "load_daily_bars", no_parse)
    _same(first, load_daily_bars_cached(source, cache_dir))


def test_cached_bars_follow_a_changed_source(tmp_path: Path) -> None:
    source = tmp_path / "bars.csv"
    source.write_text(_SMALL_CSV)
    cache_dir = tmp_path / "cache"
    load_daily_bars_cached(source, cache_dir)
    source.write_text(_SMALL_CSV.replace("1.6,90", "1.7,90"))  # same size: the hash tells
    assert load_daily_bars_cached(source, cache_dir).close[1, 0] == 1.7
    stat = source.stat()
    source.write_text(_SMALL_CSV.replace("1.6,90", "1.8,90"))
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime: the hash still tells
    assert load_daily_bars_cached(source, cache_dir).close[1, 0] == 1.8


def test_a_corrupt_or_unwritable_cache_is_only_a_cache(tmp_path: Path) -> None:
    source = tmp_path / "bars.csv"
    source.write_text(_SMALL_CSV)
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / "bars.csv.npz").write_bytes(b"not a zip")
    _same(load_daily_bars(source), load_daily_bars_cached(source, cache_dir))
    _same(load_daily_bars(source), load_daily_bars_cached(source, cache_dir))  # rewritten: read back this time
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the cache directory should be: nothing is written, the bars still load
    _same(load_daily_bars(source), load_daily_bars_cached(source, blocked / "cache"))
