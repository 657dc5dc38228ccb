"""Tests for tradingd/focus.py: when falling back to the configured symbols is a warning and when it is the plan."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from core.clock import NyseCalendar
from tradingd.focus import FocusManager


@pytest.fixture(autouse=True)
def _all_levels() -> None:
    """capture_logs replaces the processors, not the level filter an earlier CLI test may have left at WARNING."""
    structlog.reset_defaults()


def manager(path: Path, *, warmup: bool) -> FocusManager:
    nothing: Any = None  # load() uses neither the scan job nor the scorer
    return FocusManager(
        job=nothing,
        scorer=nothing,
        calendar=NyseCalendar(),
        candidates_path=path,
        fallback=("AAPL", "MSFT"),
        baseline=("SPY",),
        top_n=10,
        warmup=warmup,
    )


@pytest.mark.parametrize(
    ("warmup", "content", "level"),
    [(True, None, "info"), (True, "{not json", "warning"), (False, None, "warning"), (False, "{not json", "warning")],
    ids=["replay-no-file-yet", "replay-corrupt-file", "paper-no-file", "paper-corrupt-file"],
)
def test_fallback_is_a_warning_unless_a_replay_has_not_scanned_yet(
    tmp_path: Path, calendar: NyseCalendar, warmup: bool, content: str | None, level: str
) -> None:
    path = tmp_path / "candidates.json"
    if content is not None:
        path.write_text(content)
    with capture_logs() as logs:
        symbols = manager(path, warmup=warmup).load(calendar.session_close(date(2016, 3, 1)))
    assert symbols == ("AAPL", "MSFT")
    assert [(e["event"], e["log_level"]) for e in logs] == [("focus_fallback", level)]
