"""When the daemon runs the daily scan, and the job that runs it.

The scan of session S is due from S's close + 5 minutes (16:05 ET, 13:05 ET on an early close) until the next
session opens, and only if it has not run yet: the last scanned session is persisted in the state store (flag
`last_scan_date`), so a restart after 16:05 does not scan twice. Weekends and holidays are not sessions, so no scan
is ever *for* one; a scan missed while the daemon was down (say Friday's) runs once at start-up if the next session
has not opened yet, and is skipped otherwise, because a snapshot taken after the open no longer shows session S.
A failed scan is retried after `retry_after` (not in a tight loop).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import structlog

from agents.daily_scan import DailyScanner, ScanResult, static_screen
from core.broker.base import MarketData
from core.candidates import CandidatesFile, parse_candidates, required_as_of, write_candidates
from core.clock import NyseCalendar
from core.flags import FlagStore
from core.rolling_volumes import RollingVolumes
from core.universe import LoadedUniverse, Universe, UniverseSource
from core.volume_cache import RefreshStats, VolumeCache, cache_target, refresh_volume_cache

log = structlog.get_logger(__name__)

LAST_SCAN_FLAG = "last_scan_date"
DEFAULT_RETRY_AFTER = timedelta(minutes=15)
DEFAULT_PERSIST_EVERY = 20  # sessions between writes of a replay's rolling volume window to its cache file


class ScanSchedule:
    def __init__(
        self, calendar: NyseCalendar, store: FlagStore, *, retry_after: timedelta = DEFAULT_RETRY_AFTER
    ) -> None:
        self._calendar = calendar
        self._store = store
        self._retry_after = retry_after
        self._failed: tuple[date, datetime] | None = None

    def last_scan_date(self) -> date | None:
        value = self._store.get_flag(LAST_SCAN_FLAG)
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            log.warning("scan_flag_unreadable", flag=LAST_SCAN_FLAG, value=value)
            return None

    def due_session(self, now: datetime) -> date | None:
        """The session whose scan should run now, or None."""
        session = required_as_of(self._calendar, now)
        if now >= self._calendar.session_open(self._calendar.next_session(session)):
            return None
        last = self.last_scan_date()
        if last is not None and last >= session:
            return None
        if self._failed is not None and self._failed[0] == session and now < self._failed[1] + self._retry_after:
            return None
        return session

    def due(self, now: datetime) -> bool:
        return self.due_session(now) is not None

    def next_run(self, now: datetime) -> datetime:
        """When the next scan is due: now if one is due, the retry time after a failure, else the next scan time."""
        if self.due(now):
            return now
        if self._failed is not None:
            session, failed_at = self._failed
            retry = failed_at + self._retry_after
            last = self.last_scan_date()
            still_open = retry < self._calendar.session_open(self._calendar.next_session(session))
            if still_open and (last is None or last < session):
                return retry
        today = self._calendar.session_date(now)
        session = today if self._calendar.is_trading_day(today) else self._calendar.next_session(today)
        if self._calendar.scan_time(session) <= now:
            session = self._calendar.next_session(session)
        return self._calendar.scan_time(session)

    def mark_done(self, session: date) -> None:
        self._store.set_flag(LAST_SCAN_FLAG, session.isoformat())
        self._failed = None

    def mark_failed(self, session: date, now: datetime) -> None:
        self._failed = (session, now)


@dataclass(frozen=True, slots=True)
class JobOutcome:
    session: date
    result: ScanResult
    path: Path
    document: CandidatesFile  # what the file holds (or, in a replay between two writes, would hold)


class NoVolumeHistoryError(RuntimeError):
    """The volume cache has no usable average: the scan would rank nothing."""


class DailyScanJob:
    """What the daemon calls: `if job.due(now): await job.run(now)` — refresh stale volumes, scan, write, record."""

    def __init__(
        self,
        *,
        schedule: ScanSchedule,
        scanner: DailyScanner,
        universe: UniverseSource,
        cache: VolumeCache,
        market_data: MarketData,
        calendar: NyseCalendar,
        candidates_path: Path,
        warmup: bool = False,
        rolling: RollingVolumes | None = None,
        last_session: date | None = None,
        persist_every: int = DEFAULT_PERSIST_EVERY,
    ) -> None:
        """`warmup`: a replay starting from nothing, whose first sessions cannot have a 20-day volume history; its
        scans skipped for that reason before the first one succeeds are normal (info), not a problem (warning).

        `rolling`: a sim replay's in-memory window (the scanner reads its averages from it too): advanced by one
        session per scan instead of a cache-first SQLite refresh, and written to `cache` in one batched transaction
        every `persist_every` scans and at the scan of `last_session` (the replay's end). A replay's candidates.json
        follows the same rhythm, without fsync (still atomic: temp file + rename), and the replay's focus takes each
        scan's document from the outcome (`JobOutcome.document`), not from the file: both files are the replay's own,
        deleted when the next replay starts, read by a person only, and after an interrupted replay they show its
        scans at most `persist_every` sessions late.
        """
        self._warmup = warmup
        self._rolling = rolling
        self._last_session = last_session
        self._persist_every = persist_every
        self._unsaved = 0
        self._scans_unwritten = 0
        self.warmup_skipped = 0
        self.schedule = schedule
        self._scanner = scanner
        self._universe = universe
        self._cache = cache
        self._md = market_data
        self._calendar = calendar
        self._path = candidates_path

    def due(self, now: datetime) -> bool:
        return self.schedule.due(now)

    @property
    def in_memory(self) -> bool:
        """A replay's job: its latest scan is in its outcome, the file may be a few sessions behind."""
        return self._rolling is not None

    async def run(self, now: datetime) -> JobOutcome | None:
        """Run the due scan; None when none is due or it failed (logged, retried after `retry_after`)."""
        session = self.schedule.due_session(now)
        if session is None:
            return None
        t0 = time.perf_counter()
        try:
            universe = await self._universe.load()
            refresh = await self._refresh(universe, session, now)
            result = await self._scanner.run(LoadedUniverse(universe), as_of=session, now=now)
            payload = result.payload()
            if not payload["stats"]["cache"]["hits"]:
                # Too little history for any 20-day average (e.g. the first weeks of a replay): a file holding only
                # the baseline would steer the daemon away from its fallback symbols for nothing.
                raise NoVolumeHistoryError(f"no fresh 20-day volume averages for {session}")
            payload["stats"]["cache_refresh"] = refresh.as_dict()
            document = parse_candidates(payload)  # validated as a write would, so an invalid scan is never used
            self._scans_unwritten += 1
            written = self._rolling is None or self._scans_unwritten >= self._persist_every
            written = written or session == self._last_session
            if written:
                write_candidates(self._path, payload, durable=self._rolling is None)
                self._scans_unwritten = 0
        except NoVolumeHistoryError as error:
            in_warmup = self._warmup and self.schedule.last_scan_date() is None
            self.schedule.mark_failed(session, now)
            if in_warmup:
                self.warmup_skipped += 1
                log.info("daily_scan_skipped", session=session.isoformat(), reason=str(error), warmup=True)
            else:
                log.warning("daily_scan_skipped", session=session.isoformat(), reason=str(error))
            return None
        except Exception as error:  # a failed scan must not stop the daemon: it trades its fallback symbols
            self.schedule.mark_failed(session, now)
            log.exception("daily_scan_failed", session=session.isoformat(), error=str(error))
            return None
        if self.warmup_skipped and self.schedule.last_scan_date() is None:
            # One line that sums up the warm-up, whose per-session lines are only in the log file.
            log.info("daily_scan_warmup_done", first_scan=session.isoformat(), skipped_sessions=self.warmup_skipped)
        self.schedule.mark_done(session)
        log.info(
            "daily_scan_written",
            session=session.isoformat(),
            path=str(self._path),
            file_written=written,  # a replay writes its file every `persist_every` scans
            symbols=result.symbols,
            job_ms=round((time.perf_counter() - t0) * 1000, 3),  # refresh + scan + write: the scan's share of a tick
        )
        return JobOutcome(session=session, result=result, path=self._path, document=document)

    async def _refresh(self, universe: Universe, session: date, now: datetime) -> RefreshStats:
        """Bring the averages up to the session before `session`: paper/live refresh the SQLite cache (missing or
        stale entries only); a replay advances its rolling window by the new session (and persists it, see above)."""
        through = cache_target(self._calendar, session)
        symbols = static_screen(universe, self._scanner.config)
        if self._rolling is None:
            return await refresh_volume_cache(
                self._cache, self._md, self._calendar, symbols, through=through, now=now, stale_only=True
            )
        t0 = time.perf_counter()
        calls0 = self._md.api_calls
        fetched = await self._rolling.advance(self._md, self._calendar, symbols, through)
        averages = self._rolling.averages
        written = incomplete = 0
        if averages is not None:
            written = int(np.count_nonzero(averages.complete))
            incomplete = len(symbols) - written
            self._unsaved += 1 if fetched else 0
            if self._unsaved and (self._unsaved >= self._persist_every or session == self._last_session):
                self._cache.replace_all(self._rolling.symbols, through, averages, now=now)
                self._unsaved = 0
        return RefreshStats(
            through=through,
            requested=len(symbols),
            skipped_fresh=0 if fetched else len(symbols),
            written=written,
            incomplete=incomplete,
            api_calls=self._md.api_calls - calls0,
            elapsed_ms=(time.perf_counter() - t0) * 1000,
        )
