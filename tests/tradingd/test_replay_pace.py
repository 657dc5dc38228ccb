"""`tradingd replay --pace SECONDS`: a wall-clock sleep after each replayed session (never slept for real here)."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from typer.testing import CliRunner

from core.clock import NyseCalendar, SimClock
from tradingd import orchestrator
from tradingd.cli import app
from tradingd.orchestrator import SimSchedule, Tick


def _ticks(schedule: SimSchedule) -> list[Tick]:
    async def collect() -> list[Tick]:
        return [tick async for tick in schedule]

    return asyncio.run(collect())


def test_pace_sleeps_after_each_iteration(monkeypatch: pytest.MonkeyPatch, calendar: NyseCalendar) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(orchestrator.asyncio, "sleep", fake_sleep)
    sessions = [date(2015, 1, 2), date(2015, 1, 5), date(2015, 1, 6)]
    clock = SimClock(calendar.session_open(sessions[0]))
    paced = SimSchedule(clock, calendar, sessions, scan=True, protect=True, pace_seconds=0.3)
    assert _ticks(paced).count(Tick.ITERATE) == 3
    assert slept == [0.3, 0.3, 0.3]
    slept.clear()
    unpaced = SimSchedule(SimClock(calendar.session_open(sessions[0])), calendar, sessions)
    assert len(_ticks(unpaced)) == 3
    assert slept == []


def test_pace_must_not_be_negative() -> None:
    result = CliRunner().invoke(app, ["replay", "--pace", "-1"])
    assert result.exit_code == 2
    assert "--pace" in result.output
