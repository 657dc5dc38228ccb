"""Tests for tradingd/scan_schedule.py: 16:05 ET on NYSE sessions (13:05 on early closes), once per session across
restarts, and the daily job end to end in sim. Dates come from the XNYS calendar: freezegun sets the wall clock that
`LiveClock` reads."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from freezegun import freeze_time
from structlog.testing import capture_logs

from agents.daily_scan import DailyScanner, ScanConfig
from config.settings import Settings
from core.broker.replay import ReplayMarketData
from core.candidates import read_candidates
from core.clock import LiveClock, NyseCalendar, SimClock
from core.rolling_volumes import RollingVolumes
from core.store import StateStore
from core.types import BarFrame
from core.universe import FileUniverse, Universe, UniverseSource
from core.volume_cache import VolumeCache, cache_target
from tradingd.configs import scan_config
from tradingd.scan_runtime import ScanRuntime, bundled_history, open_runtime
from tradingd.scan_schedule import LAST_SCAN_FLAG, DailyScanJob, ScanSchedule

CONSTITUENTS = Path(__file__).resolve().parents[2] / "data" / "sp500_constituents_2018-02.csv"


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state.db")


def early_runtime(settings: Settings, session: date) -> ScanRuntime:
    """A sim scan runtime at a session too early for any 20-day average. `open_runtime` refuses such an `--as-of`
    (bad input for `tradingd scan`), but the daemon's job meets these sessions at the start of every replay."""
    runtime = open_runtime(settings)
    clock = SimClock(runtime.calendar.scan_time(session))
    market_data = ReplayMarketData(bundled_history(settings.sim_data_file), clock)
    return replace(runtime, clock=clock, market_data=market_data, as_of=session)


def due_at(schedule: ScanSchedule, moment: str) -> date | None:
    with freeze_time(moment):
        return schedule.due_session(LiveClock().now())


def test_normal_day_is_due_from_1605_new_york(calendar: NyseCalendar, store: StateStore) -> None:
    schedule = ScanSchedule(calendar, store)
    store.set_flag(LAST_SCAN_FLAG, "2018-02-06")
    assert due_at(schedule, "2018-02-07 21:04:59+00:00") is None  # 16:04:59 EST
    assert due_at(schedule, "2018-02-07 21:05:00+00:00") == date(2018, 2, 7)
    schedule.mark_done(date(2018, 2, 7))
    assert due_at(schedule, "2018-02-07 21:06:00+00:00") is None
    assert store.get_flag(LAST_SCAN_FLAG) == "2018-02-07"


def test_daylight_saving_time_keeps_1605_new_york(calendar: NyseCalendar, store: StateStore) -> None:
    store.set_flag(LAST_SCAN_FLAG, "2017-07-05")
    schedule = ScanSchedule(calendar, store)
    assert due_at(schedule, "2017-07-06 20:04:00+00:00") is None  # 16:04 EDT
    assert due_at(schedule, "2017-07-06 20:05:00+00:00") == date(2017, 7, 6)


def test_early_close_is_due_five_minutes_after_1300(calendar: NyseCalendar, store: StateStore) -> None:
    store.set_flag(LAST_SCAN_FLAG, "2017-11-22")
    schedule = ScanSchedule(calendar, store)
    # Friday after Thanksgiving 2017: the market closed at 13:00 EST.
    assert due_at(schedule, "2017-11-24 18:04:00+00:00") is None
    assert due_at(schedule, "2017-11-24 18:05:00+00:00") == date(2017, 11, 24)


def test_holiday_is_never_a_scan_day(calendar: NyseCalendar, store: StateStore) -> None:
    store.set_flag(LAST_SCAN_FLAG, "2018-01-12")
    schedule = ScanSchedule(calendar, store)
    assert due_at(schedule, "2018-01-15 21:05:00+00:00") is None  # Martin Luther King Jr. Day
    assert due_at(schedule, "2018-01-15 23:59:00+00:00") is None
    assert due_at(schedule, "2018-01-16 21:05:00+00:00") == date(2018, 1, 16)


def test_weekend_is_never_a_scan_day(calendar: NyseCalendar, store: StateStore) -> None:
    store.set_flag(LAST_SCAN_FLAG, "2018-02-09")
    schedule = ScanSchedule(calendar, store)
    for moment in ("2018-02-10 21:05:00+00:00", "2018-02-11 21:05:00+00:00", "2018-02-12 14:00:00+00:00"):
        assert due_at(schedule, moment) is None, moment
    assert due_at(schedule, "2018-02-12 21:05:00+00:00") == date(2018, 2, 12)


def test_restart_after_1605_does_not_scan_twice(tmp_path: Path, calendar: NyseCalendar) -> None:
    path = tmp_path / "state.db"
    with StateStore(path) as first_run:
        schedule = ScanSchedule(calendar, first_run)
        assert due_at(schedule, "2018-02-07 21:05:00+00:00") == date(2018, 2, 7)
        schedule.mark_done(date(2018, 2, 7))
    with StateStore(path) as after_restart:
        schedule = ScanSchedule(calendar, after_restart)
        assert due_at(schedule, "2018-02-07 21:30:00+00:00") is None
        assert due_at(schedule, "2018-02-08 03:00:00+00:00") is None


def test_restart_after_1605_before_the_scan_ran_scans_once(tmp_path: Path, calendar: NyseCalendar) -> None:
    with StateStore(tmp_path / "state.db") as store:
        store.set_flag(LAST_SCAN_FLAG, "2018-02-06")
        schedule = ScanSchedule(calendar, store)
        assert due_at(schedule, "2018-02-07 22:30:00+00:00") == date(2018, 2, 7)


def test_missed_scan_catches_up_before_the_next_open_only(calendar: NyseCalendar, store: StateStore) -> None:
    store.set_flag(LAST_SCAN_FLAG, "2018-02-08")
    schedule = ScanSchedule(calendar, store)
    # Friday's scan was missed (daemon down): it runs for Friday on Saturday or Monday before the open...
    assert due_at(schedule, "2018-02-10 12:00:00+00:00") == date(2018, 2, 9)
    assert due_at(schedule, "2018-02-12 14:29:00+00:00") == date(2018, 2, 9)
    # ...but not once Monday has opened: a snapshot then shows Monday, not Friday.
    assert due_at(schedule, "2018-02-12 14:30:00+00:00") is None


def test_failed_scan_is_retried_after_the_retry_delay(calendar: NyseCalendar, store: StateStore) -> None:
    store.set_flag(LAST_SCAN_FLAG, "2018-02-06")
    schedule = ScanSchedule(calendar, store, retry_after=timedelta(minutes=15))
    schedule.mark_failed(date(2018, 2, 7), datetime(2018, 2, 7, 21, 5, tzinfo=UTC))
    assert due_at(schedule, "2018-02-07 21:19:00+00:00") is None
    assert due_at(schedule, "2018-02-07 21:20:00+00:00") == date(2018, 2, 7)


def test_next_run_after_a_failure_is_the_retry_time(calendar: NyseCalendar, store: StateStore) -> None:
    store.set_flag(LAST_SCAN_FLAG, "2018-02-06")
    schedule = ScanSchedule(calendar, store, retry_after=timedelta(minutes=15))
    schedule.mark_failed(date(2018, 2, 7), datetime(2018, 2, 7, 21, 5, tzinfo=UTC))
    with freeze_time("2018-02-07 21:10:00+00:00"):
        assert schedule.next_run(LiveClock().now()) == datetime(2018, 2, 7, 21, 20, tzinfo=UTC)
    schedule.mark_done(date(2018, 2, 7))
    with freeze_time("2018-02-07 21:10:00+00:00"):
        assert schedule.next_run(LiveClock().now()) == datetime(2018, 2, 8, 21, 5, tzinfo=UTC)


def test_unreadable_flag_counts_as_never_scanned(calendar: NyseCalendar, store: StateStore) -> None:
    store.set_flag(LAST_SCAN_FLAG, "yesterday")
    schedule = ScanSchedule(calendar, store)
    assert schedule.last_scan_date() is None
    assert due_at(schedule, "2018-02-07 21:05:00+00:00") == date(2018, 2, 7)


def test_next_run(calendar: NyseCalendar, store: StateStore) -> None:
    store.set_flag(LAST_SCAN_FLAG, "2018-02-09")
    schedule = ScanSchedule(calendar, store)
    with freeze_time("2018-02-10 12:00:00+00:00"):
        assert schedule.next_run(LiveClock().now()) == datetime(2018, 2, 12, 21, 5, tzinfo=UTC)
    store.set_flag(LAST_SCAN_FLAG, "2017-11-22")
    with freeze_time("2017-11-24 15:00:00+00:00"):
        assert schedule.next_run(LiveClock().now()) == datetime(2017, 11, 24, 18, 5, tzinfo=UTC)


# ---- the job -------------------------------------------------------------------------------------------------------


class _Small:
    """The constituents file restricted to the symbols of the small real history."""

    def __init__(self, history: BarFrame) -> None:
        self._symbols = set(history.symbols)

    async def load(self) -> Universe:
        full = await FileUniverse(CONSTITUENTS).load()
        frame = full.frame[full.frame["symbol"].isin(self._symbols)].reset_index(drop=True)
        return Universe(frame, has_market_cap=True, source="small")


class _Broken:
    async def load(self) -> Universe:
        raise OSError("universe file on a dead disk")


def job_for(
    tmp_path: Path, history: BarFrame, calendar: NyseCalendar, store: StateStore, universe: UniverseSource
) -> tuple[DailyScanJob, SimClock]:
    clock = SimClock(calendar.scan_time(date(2018, 2, 7)))
    market = ReplayMarketData(history, clock)
    cache = VolumeCache(tmp_path / "volume_cache.db")
    job = DailyScanJob(
        schedule=ScanSchedule(calendar, store),
        scanner=DailyScanner(market, cache, calendar, ScanConfig()),
        universe=universe,
        cache=cache,
        market_data=market,
        calendar=calendar,
        candidates_path=tmp_path / "candidates.json",
    )
    return job, clock


async def test_job_refreshes_scans_writes_and_records_once(
    tmp_path: Path, small_history: BarFrame, calendar: NyseCalendar, store: StateStore
) -> None:
    job, clock = job_for(tmp_path, small_history, calendar, store, _Small(small_history))
    assert job.due(clock.now())
    outcome = await job.run(clock.now())
    assert outcome is not None
    assert outcome.session == date(2018, 2, 7)
    document = read_candidates(tmp_path / "candidates.json")
    assert document.as_of == date(2018, 2, 7)
    assert document.symbols == outcome.result.symbols
    assert document.stats["cache_refresh"]["written"] == 6  # the volume cache was filled before the scan
    assert store.get_flag(LAST_SCAN_FLAG) == "2018-02-07"
    assert not job.due(clock.now())
    assert await job.run(clock.now()) is None


async def test_failed_job_does_not_raise_and_keeps_the_old_file(
    tmp_path: Path, small_history: BarFrame, calendar: NyseCalendar, store: StateStore
) -> None:
    (tmp_path / "candidates.json").write_text("previous")
    job, clock = job_for(tmp_path, small_history, calendar, store, _Broken())
    assert await job.run(clock.now()) is None
    assert (tmp_path / "candidates.json").read_text() == "previous"
    assert store.get_flag(LAST_SCAN_FLAG) is None
    assert not job.due(clock.now())  # retried later, not in a tight loop
    clock.advance(15 * 60)
    assert job.due(clock.now())


async def test_job_writes_nothing_without_volume_history(tmp_path: Path) -> None:
    """The first sessions of a replay have no 20-day averages: no baseline-only file replaces the fallback."""
    settings = Settings(data_dir=tmp_path, candidates_file=tmp_path / "candidates.json")
    runtime = early_runtime(settings, date(2013, 2, 12))
    cache = VolumeCache(tmp_path / "vc.db")
    with StateStore(tmp_path / "state.db") as store:
        job = DailyScanJob(
            schedule=ScanSchedule(runtime.calendar, store),
            scanner=DailyScanner(runtime.market_data, cache, runtime.calendar, scan_config(settings)),
            universe=runtime.universe,
            cache=cache,
            market_data=runtime.market_data,
            calendar=runtime.calendar,
            candidates_path=settings.candidates_file,
        )
        assert await job.run(runtime.clock.now()) is None
    assert not settings.candidates_file.exists()
    cache.close()


@pytest.mark.parametrize(
    ("warmup", "scanned_before", "level"),
    [(True, False, "info"), (False, False, "warning"), (True, True, "warning")],
    ids=["replay-warm-up", "paper-live", "after-a-successful-scan"],
)
async def test_skip_without_history_is_info_only_during_a_replay_warm_up(
    tmp_path: Path, warmup: bool, scanned_before: bool, level: str
) -> None:
    """The first 20 sessions of a replay cannot have a 20-day average: normal, so info. Anywhere else (paper/live,
    or a replay whose scans already worked) no history is a real problem: a warning."""
    structlog.reset_defaults()  # capture_logs keeps the level filter an earlier CLI test may have set
    settings = Settings(data_dir=tmp_path, candidates_file=tmp_path / "candidates.json")
    runtime = early_runtime(settings, date(2013, 2, 12))
    cache = VolumeCache(tmp_path / "vc.db")
    with StateStore(tmp_path / "state.db") as store:
        if scanned_before:
            store.set_flag(LAST_SCAN_FLAG, "2013-02-08")
        job = DailyScanJob(
            schedule=ScanSchedule(runtime.calendar, store),
            scanner=DailyScanner(runtime.market_data, cache, runtime.calendar, scan_config(settings)),
            universe=runtime.universe,
            cache=cache,
            market_data=runtime.market_data,
            calendar=runtime.calendar,
            candidates_path=settings.candidates_file,
            warmup=warmup,
        )
        with capture_logs() as logs:
            assert await job.run(runtime.clock.now()) is None
    cache.close()
    skipped = [entry for entry in logs if entry["event"] == "daily_scan_skipped"]
    assert [entry["log_level"] for entry in skipped] == [level]


async def test_a_replay_job_with_a_rolling_window_picks_what_the_sqlite_job_picks(
    tmp_path: Path, small_history: BarFrame, calendar: NyseCalendar
) -> None:
    """Session by session through July 2016 (FTV's first weeks), the same candidates; the window reaches its cache
    file every `persist_every` scans and at the replay's last session."""
    sessions = calendar.sessions_in_range(date(2016, 7, 1), date(2016, 8, 12))
    outputs: dict[str, list[object]] = {}
    for kind in ("sqlite", "rolling"):
        folder = tmp_path / kind
        folder.mkdir()
        clock = SimClock(calendar.scan_time(sessions[0]))
        market = ReplayMarketData(small_history, clock)
        cache = VolumeCache(folder / "volume_cache.db")
        rolling = RollingVolumes() if kind == "rolling" else None
        with StateStore(folder / "state.db") as store:
            job = DailyScanJob(
                schedule=ScanSchedule(calendar, store),
                scanner=DailyScanner(market, rolling or cache, calendar, ScanConfig()),
                universe=_Small(small_history),
                cache=cache,
                market_data=market,
                calendar=calendar,
                candidates_path=folder / "candidates.json",
                rolling=rolling,
                last_session=sessions[-1],
                persist_every=7,
            )
            picks: list[object] = []
            for session in sessions:
                clock.set(calendar.scan_time(session))
                outcome = await job.run(clock.now())
                assert outcome is not None
                picks.append([c.as_dict() for c in outcome.result.candidates])
                if kind == "rolling" and session == sessions[9]:
                    assert cache.summary()["newest"] == cache_target(calendar, sessions[6]).isoformat()
        outputs[kind] = picks
        summary = cache.summary()
        assert summary["newest"] == cache_target(calendar, sessions[-1]).isoformat()
        assert summary["entries"] == 6
        cache.close()
    assert outputs["rolling"] == outputs["sqlite"]
