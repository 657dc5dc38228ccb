"""`SessionClosed`, the digest's cue: once per replayed session, after its close (and after its scan, scanner on)."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest

from config.settings import Settings
from core.clock import NyseCalendar
from core.messages import SessionClosed
from tradingd.app import build_sim, run_app

START, END = date(2016, 3, 1), date(2016, 3, 8)


@pytest.mark.parametrize("scanner", [False, True])
def test_one_session_closed_per_session_after_its_close(tmp_path: Path, scanner: bool) -> None:
    settings = Settings(data_dir=tmp_path, use_scanner=scanner, log_level="ERROR", symbols=() if scanner else ("AAPL",))
    app = build_sim(settings, start=START, end=END)
    closed: list[SessionClosed] = []
    app.orchestrator.bus.subscribe(SessionClosed, closed.append)
    scans: list[int] = []
    if scanner:
        assert app.orchestrator.focus is not None
        focus = app.orchestrator.focus
        app.orchestrator.bus.subscribe(SessionClosed, lambda _: scans.append(focus.scans))
    asyncio.run(run_app(app))
    app.close()
    calendar = NyseCalendar()
    sessions = calendar.sessions_in_range(START, END)
    assert [event.session for event in closed] == sessions
    for event in closed:
        due = calendar.scan_time(event.session) if scanner else calendar.session_close(event.session)
        assert event.ts_event >= due
    if scanner:
        assert scans == list(range(1, len(sessions) + 1))  # each after that session's scan
