"""Tests for core/candidates.py: schema validation, atomic writes, and the daemon's never-raising focus loader."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from core.candidates import (
    SOURCE_CANDIDATES,
    SOURCE_FALLBACK,
    CandidatesError,
    load_focus_symbols,
    read_candidates,
    required_as_of,
    validate_candidates,
    write_candidates,
)
from core.clock import NyseCalendar

FALLBACK = ("AAPL", "MSFT")
BASELINE = ("SPY", "QQQ")
# Wednesday 2018-02-07: the scan of that day ran at 16:05 ET (21:05 UTC).
AFTER_SCAN = datetime(2018, 2, 7, 21, 30, tzinfo=UTC)
NEXT_MORNING = datetime(2018, 2, 8, 15, 0, tzinfo=UTC)


def payload(as_of: str = "2018-02-07", picks: tuple[str, ...] = ("DHR", "FTV", "XOM")) -> dict[str, Any]:
    # Figures from the real 2018-02-07 scan of the bundled data.
    return {
        "schema": 1,
        "generated_at": "2018-02-07T21:05:00+00:00",
        "as_of": as_of,
        "symbols": [*picks, *BASELINE],
        "baseline": list(BASELINE),
        "candidates": [
            {"symbol": s, "score": 50.0 - i, "zscore": -2.1, "rvol": 1.6, "price": 76.94, "reason": "test"}
            for i, s in enumerate(picks)
        ],
        "stats": {"universe": 505},
    }


def write_raw(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


# ---- schema -------------------------------------------------------------------------------------------------------


def test_valid_payload_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "candidates.json"
    write_candidates(path, payload())
    document = read_candidates(path)
    assert document.as_of == date(2018, 2, 7)
    assert document.symbols == ("DHR", "FTV", "XOM", "SPY", "QQQ")
    assert document.generated_at == datetime(2018, 2, 7, 21, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.update(schema=2), "schema"),
        (lambda p: p.update(schema=True), "schema"),
        (lambda p: p.update(generated_at="2018-02-07T16:05:00"), "generated_at"),
        (lambda p: p.update(generated_at="2018-02-07T16:05:00-05:00"), "generated_at"),
        (lambda p: p.update(as_of="07/02/2018"), "as_of"),
        (lambda p: p["candidates"][0].pop("rvol"), "missing rvol"),
        (lambda p: p["candidates"][0].update(score=float("nan")), "score"),
        (lambda p: p["candidates"][0].update(price=0), "price"),
        (lambda p: p["candidates"][0].update(zscore="low"), "zscore"),
        (lambda p: p["candidates"][0].update(reason=""), "reason"),
        (lambda p: p["symbols"].append("TSLA"), "neither candidates nor baseline"),
        (lambda p: p["symbols"].remove("SPY"), "missing"),
        (lambda p: p.update(stats=[]), "stats"),
        (lambda p: p.update(candidates={}), "candidates"),
    ],
)
def test_schema_violations_are_reported(mutate: Any, message: str) -> None:
    document = payload()
    mutate(document)
    errors = validate_candidates(document)
    assert any(message in e for e in errors), errors


def test_invalid_payload_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "candidates.json"
    bad = payload()
    bad["candidates"][0]["rvol"] = -1
    with pytest.raises(CandidatesError, match="rvol"):
        write_candidates(path, bad)
    assert not path.exists()


# ---- atomic write -------------------------------------------------------------------------------------------------


def test_crash_before_the_rename_leaves_the_previous_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "candidates.json"
    write_candidates(path, payload())
    before = path.read_bytes()

    def crash(fd: int) -> None:
        raise OSError("disk full")  # the new content is half on disk when the process dies

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        write_candidates(path, payload(picks=("AAPL",)))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["candidates.json"]  # no temp file left behind


def test_a_replays_own_file_is_replaced_atomically_without_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "candidates.json"
    write_candidates(path, payload())

    def no_fsync(fd: int) -> None:
        raise AssertionError("a sim replay's candidates file is not fsynced")

    monkeypatch.setattr(os, "fsync", no_fsync)
    write_candidates(path, payload(picks=("AAPL",)), durable=False)
    assert read_candidates(path).symbols[0] == "AAPL"
    assert [p.name for p in tmp_path.iterdir()] == ["candidates.json"]  # renamed over, no temp file left


def test_a_killed_writer_leaves_only_a_temp_file_that_readers_ignore(tmp_path: Path) -> None:
    path = tmp_path / "candidates.json"
    write_candidates(path, payload())
    (tmp_path / ".candidates.json.abc123.tmp").write_text('{"schema": 1, "as_of": "2018-02-')  # half a file
    assert read_candidates(path).symbols[:3] == ("DHR", "FTV", "XOM")
    write_candidates(path, payload(picks=("AAPL",)))  # the next scan still writes normally
    assert read_candidates(path).symbols == ("AAPL", "SPY", "QQQ")


# ---- freshness and the focus loader ---------------------------------------------------------------------------------


def test_required_as_of_moves_at_the_scan_time(calendar: NyseCalendar) -> None:
    assert required_as_of(calendar, datetime(2018, 2, 7, 21, 4, tzinfo=UTC)) == date(2018, 2, 6)
    assert required_as_of(calendar, datetime(2018, 2, 7, 21, 5, tzinfo=UTC)) == date(2018, 2, 7)
    # Saturday: Friday's scan is the newest.
    assert required_as_of(calendar, datetime(2018, 2, 10, 12, 0, tzinfo=UTC)) == date(2018, 2, 9)


def test_valid_fresh_file_gives_top_n_plus_baseline(tmp_path: Path, calendar: NyseCalendar) -> None:
    path = tmp_path / "candidates.json"
    write_candidates(path, payload())
    symbols, source, warning = load_focus_symbols(path, calendar, NEXT_MORNING, FALLBACK, BASELINE, 10)
    assert (symbols, source, warning) == (("DHR", "FTV", "XOM", "SPY", "QQQ"), SOURCE_CANDIDATES, None)
    symbols, _, _ = load_focus_symbols(path, calendar, AFTER_SCAN, FALLBACK, BASELINE, 2)
    assert symbols == ("DHR", "FTV", "SPY", "QQQ")


def test_only_symbols_the_file_holds_are_returned(tmp_path: Path, calendar: NyseCalendar) -> None:
    path = tmp_path / "candidates.json"
    write_candidates(path, payload())
    symbols, source, warning = load_focus_symbols(path, calendar, AFTER_SCAN, FALLBACK, ("SPY", "QQQ", "DIA"), 10)
    assert "DIA" not in symbols
    assert source == SOURCE_CANDIDATES
    assert warning is not None
    assert "DIA" in warning


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "does not exist"),
        ("{not json", "not valid JSON"),
        ('{"schema": 1, "x": NaN}', "not valid JSON"),
        (json.dumps({"schema": 1}), "generated_at"),
        (json.dumps([1, 2]), "JSON object"),
    ],
)
def test_missing_or_corrupt_file_falls_back_with_a_warning(
    tmp_path: Path, calendar: NyseCalendar, content: str | None, reason: str
) -> None:
    path = tmp_path / "candidates.json"
    if content is not None:
        path.write_text(content)
    symbols, source, warning = load_focus_symbols(path, calendar, AFTER_SCAN, FALLBACK, BASELINE, 10)
    assert (symbols, source) == (FALLBACK, SOURCE_FALLBACK)
    assert warning is not None
    assert reason in warning


def test_stale_file_falls_back(tmp_path: Path, calendar: NyseCalendar) -> None:
    path = write_raw(tmp_path / "candidates.json", payload(as_of="2018-02-06"))
    # Fresh until the next scan time, stale after it.
    before = load_focus_symbols(path, calendar, datetime(2018, 2, 7, 21, 0, tzinfo=UTC), FALLBACK, BASELINE, 10)
    after = load_focus_symbols(path, calendar, AFTER_SCAN, FALLBACK, BASELINE, 10)
    assert before[1] == SOURCE_CANDIDATES
    assert after[:2] == (FALLBACK, SOURCE_FALLBACK)
    assert after[2] is not None
    assert "stale" in after[2]


def test_file_dated_after_now_falls_back(tmp_path: Path, calendar: NyseCalendar) -> None:
    # In sim a replay that starts in 2013 must not trade on a 2018 scan.
    path = write_raw(tmp_path / "candidates.json", payload(as_of="2018-02-07"))
    symbols, source, warning = load_focus_symbols(
        path, calendar, datetime(2013, 6, 3, 20, 0, tzinfo=UTC), FALLBACK, BASELINE, 10
    )
    assert (symbols, source) == (FALLBACK, SOURCE_FALLBACK)
    assert warning is not None
    assert "after" in warning


def test_loader_never_raises(tmp_path: Path, calendar: NyseCalendar) -> None:
    directory = tmp_path / "candidates.json"
    directory.mkdir()  # unreadable as a file
    assert load_focus_symbols(directory, calendar, AFTER_SCAN, FALLBACK, BASELINE, 10)[1] == SOURCE_FALLBACK
    path = write_raw(tmp_path / "c.json", payload())
    outside = datetime(2040, 1, 1, tzinfo=UTC)  # beyond the exchange calendar
    assert load_focus_symbols(path, calendar, outside, FALLBACK, BASELINE, 10)[1] == SOURCE_FALLBACK


@pytest.mark.parametrize(
    "text",
    [
        '{"schema": 1, "score": ' + "9" * 400 + "}",
        "[" * 200_000,
    ],
)
def test_absurd_json_falls_back_instead_of_raising(tmp_path: Path, text: str) -> None:
    path = tmp_path / "candidates.json"
    path.write_text(text)
    calendar = NyseCalendar()
    now = calendar.session_close(date(2018, 2, 7))
    symbols, source, warning = load_focus_symbols(path, calendar, now, fallback=("AAPL",), baseline=("SPY",), top_n=10)
    assert symbols == ("AAPL",)
    assert source == "fallback"
    assert warning


# ---- size, file type and linear validation ----------------------------------------------------------------------


def big_payload(n: int) -> dict[str, Any]:
    picks = tuple(f"S{i:06d}" for i in range(n))
    return payload(picks=picks)


def test_100k_candidates_validate() -> None:
    document = big_payload(100_000)
    assert validate_candidates(document) == []
    document["symbols"].append("EXTRA")
    document["symbols"].remove("S000000")
    errors = validate_candidates(document)
    assert "symbols: ['EXTRA'] are neither candidates nor baseline" in errors
    assert "symbols: missing ['S000000']" in errors


class _CountingStr(str):
    """A symbol that counts how often it is hashed: the work a set-membership check does."""

    hashes = 0

    def __hash__(self) -> int:
        _CountingStr.hashes += 1
        return str.__hash__(self)


def test_validation_does_a_bounded_number_of_set_operations_per_symbol() -> None:
    # Asserting on the algorithm, not the clock: a set rebuilt per lookup would hash n * n times (4M here).
    n = 2_000
    document = big_payload(n)
    document["symbols"] = [_CountingStr(s) for s in document["symbols"]]
    for item in document["candidates"]:
        item["symbol"] = _CountingStr(item["symbol"])
    _CountingStr.hashes = 0
    assert validate_candidates(document) == []
    assert _CountingStr.hashes <= 10 * n


def test_long_symbol_lists_in_errors_are_shortened() -> None:
    document = big_payload(50)
    document["symbols"] = list(BASELINE)
    [error] = [e for e in validate_candidates(document) if e.startswith("symbols: missing")]
    assert error.endswith("and 40 more")


def test_oversized_file_is_rejected_and_the_daemon_falls_back(tmp_path: Path, calendar: NyseCalendar) -> None:
    path = write_raw(tmp_path / "candidates.json", payload())
    size = path.stat().st_size
    with pytest.raises(CandidatesError, match="too large"):
        read_candidates(path, max_bytes=size - 1)
    assert read_candidates(path, max_bytes=size).as_of == date(2018, 2, 7)
    with path.open("a") as handle:
        handle.write(" " * (5 * 1024 * 1024))  # trailing whitespace: still valid JSON, but over the default cap
    symbols, source, warning = load_focus_symbols(path, calendar, AFTER_SCAN, FALLBACK, BASELINE, 10)
    assert (symbols, source) == (FALLBACK, SOURCE_FALLBACK)
    assert warning is not None
    assert "too large" in warning


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_rejected_without_blocking(tmp_path: Path, calendar: NyseCalendar) -> None:
    # No writer ever opens this FIFO: opening it for reading would block forever, so the test would hang.
    path = tmp_path / "candidates.json"
    os.mkfifo(path)
    with pytest.raises(CandidatesError, match="not a regular file"):
        read_candidates(path)
    symbols, source, warning = load_focus_symbols(path, calendar, AFTER_SCAN, FALLBACK, BASELINE, 10)
    assert (symbols, source) == (FALLBACK, SOURCE_FALLBACK)
    assert warning is not None
    assert "not a regular file" in warning
