"""Tests for core/logging.py: every event in the rotating JSON log file, a readable console that a replay keeps
short, and one FILL line per fill in real time."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import structlog

from core.logging import (
    LOG_FILE_BACKUPS,
    LOG_FILE_MAX_BYTES,
    close_logging,
    configure_logging,
    current_log_file,
    info_enabled,
    log_file_path,
)

log = structlog.get_logger("test")


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    yield
    close_logging()
    configure_logging("json", "WARNING")


def _events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _fill() -> None:
    log.info(
        "order_filled",
        client_order_id="zscore_mr-AAPL-b-201603010500-abc",
        symbol="AAPL",
        side="buy",
        qty="12.500000000",
        price="171.2049",
    )


def test_log_file_path_is_under_the_modes_logs_dir(tmp_path: Path) -> None:
    assert log_file_path(tmp_path, "paper") == tmp_path / "paper" / "logs" / "tradingd.log"


def test_file_rotates_by_size(tmp_path: Path) -> None:
    configure_logging("auto", "INFO", log_file=tmp_path / "logs" / "tradingd.log")
    handler = current_log_file()
    assert handler is not None
    assert handler.maxBytes == LOG_FILE_MAX_BYTES == 20 * 1024 * 1024
    assert handler.backupCount == LOG_FILE_BACKUPS == 5
    assert Path(handler.baseFilename) == tmp_path / "logs" / "tradingd.log"


def test_replay_console_shows_warnings_only_and_the_file_has_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "logs" / "tradingd.log"
    configure_logging("auto", "INFO", log_file=path, replay=True)
    log.info("iteration", iteration=1, equity="100000.00", timings_ms={"store_ms": 0.2})
    _fill()
    log.warning("state_db_corrupt", path="x")
    log.debug("below_log_level")
    close_logging()
    err = capsys.readouterr().err
    assert "state_db_corrupt" in err
    assert "iteration" not in err
    assert "FILL" not in err
    assert "\x1b" not in err  # not a terminal: no colours
    events = _events(path)
    assert [e["event"] for e in events] == ["iteration", "order_filled", "state_db_corrupt"]
    assert events[0]["timings_ms"] == {"store_ms": 0.2}
    assert events[2]["level"] == "warning"
    assert all("timestamp" in e for e in events)


def test_real_time_console_prints_one_fill_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tradingd.log"
    configure_logging("auto", "INFO", log_file=path, replay=False)
    log.info("iteration", iteration=7)
    _fill()
    close_logging()
    lines = capsys.readouterr().err.splitlines()
    assert "FILL buy 12.5 AAPL @ 171.20 (coid zscore_mr-AAPL-b-201603010500-abc)" in lines
    assert any("iteration" in line for line in lines)
    assert [e["event"] for e in _events(path)] == ["iteration", "order_filled"]


def test_json_console_and_log_level_still_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tradingd.log"
    configure_logging("json", "WARNING", log_file=path, replay=False)
    log.info("iteration", iteration=1)
    log.warning("focus_fallback", warning="corrupt")
    close_logging()
    lines = capsys.readouterr().err.splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["focus_fallback"]
    assert [e["event"] for e in _events(path)] == ["focus_fallback"]


def test_info_enabled_follows_the_configured_level_and_never_drops_more_than_structlog() -> None:
    assert info_enabled()  # nothing configured: structlog's defaults keep every level
    configure_logging("json", "ERROR")
    assert not info_enabled()
    configure_logging("json", "INFO")
    assert info_enabled()
    configure_logging("json", "WARNING")
    close_logging()
    assert info_enabled()  # a later structlog reset keeps every level again: the check must not skip lines then


def test_values_json_cannot_encode_natively_are_strings(tmp_path: Path) -> None:
    path = tmp_path / "tradingd.log"
    configure_logging("json", "INFO", log_file=path)
    log.info("odd", amount=Decimal("1.10"), where=tmp_path, counts={1: 2}, huge=10**40)
    close_logging()
    (event,) = _events(path)
    assert event["amount"] == "1.10"
    assert event["where"] == str(tmp_path)
    assert str(event["huge"]) == str(10**40)


def test_reconfiguring_closes_the_previous_file(tmp_path: Path) -> None:
    configure_logging("json", "INFO", log_file=tmp_path / "a.log")
    first = current_log_file()
    configure_logging("json", "INFO", log_file=tmp_path / "b.log")
    assert first is not None
    assert first.stream is None  # closed
    log.info("second")
    close_logging()
    assert (tmp_path / "a.log").read_text() == ""
    assert "second" in (tmp_path / "b.log").read_text()


def test_the_file_rolls_over_counting_what_it_held_before_the_daemon_opened_it(tmp_path: Path) -> None:
    path = tmp_path / "tradingd.log"
    path.write_text("x" * 900 + "\n")  # an earlier run's lines: they count towards the size limit
    configure_logging("json", "INFO", log_file=path)
    handler = current_log_file()
    assert handler is not None
    handler.maxBytes = 950
    log.info("first")  # 901 + this line > 950: the old file becomes .1 and this line starts a new one
    log.info("second")
    close_logging()
    assert [e["event"] for e in _events(path)] == ["first", "second"]
    assert (tmp_path / "tradingd.log.1").read_text() == "x" * 900 + "\n"
    assert not (tmp_path / "tradingd.log.2").exists()


def test_non_ascii_lines_count_their_bytes(tmp_path: Path) -> None:
    path = tmp_path / "tradingd.log"
    configure_logging("json", "INFO", log_file=path)
    handler = current_log_file()
    assert handler is not None
    log.info("näive", note="é" * 10)
    assert handler.stream.tell() == path.stat().st_size == len(path.read_bytes())
    close_logging()


def test_a_failed_log_write_never_raises_into_the_code_that_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tradingd.log"
    configure_logging("json", "INFO", log_file=path)
    handler = current_log_file()
    assert handler is not None

    class FullDisk(io.StringIO):
        def write(self, _text: str) -> int:
            raise OSError(28, "No space left on device")

    real = handler.stream
    handler.stream = FullDisk()
    log.info("lost")  # like logging's own handlers: reported on stderr, the caller goes on
    handler.stream = real
    log.info("kept")
    close_logging()
    assert "log file write failed" in capsys.readouterr().err
    assert [e["event"] for e in _events(path)] == ["kept"]
