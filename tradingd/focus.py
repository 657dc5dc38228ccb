"""Which symbols the daemon watches: the configured list, or the daily scanner's picks plus what it holds.

The daily scan runs at 16:05 ET (close + 5 min on early-close days) through `DailyScanJob`, which refuses to run
twice for a session; after a scan the focus list is reloaded from `candidates.json`. A missing, corrupt or stale file
falls back to the configured symbols with a warning. Held positions always stay in focus, so a symbol the scanner
drops can still be exited. During market hours the focus symbols are re-scored every SCORING_INTERVAL_MINUTES.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from agents.focus_scoring import FocusScorer
from core.candidates import CandidatesError, CandidatesFile, load_focus_symbols, read_candidates
from core.clock import NyseCalendar
from tradingd.scan_schedule import DailyScanJob

log = structlog.get_logger(__name__)


class FocusManager:
    def __init__(
        self,
        *,
        job: DailyScanJob,
        scorer: FocusScorer,
        calendar: NyseCalendar,
        candidates_path: Path,
        fallback: tuple[str, ...],
        baseline: tuple[str, ...],
        top_n: int,
        warmup: bool = False,
    ) -> None:
        """`warmup`: a replay starting from nothing, so no candidates file exists before its first scan; falling
        back to the configured symbols until then is the plan (info), not a problem (warning)."""
        self._warmup = warmup
        self.job = job
        self.scorer = scorer
        self._calendar = calendar
        self._path = candidates_path
        self._fallback = fallback
        self._baseline = baseline
        self._top_n = top_n
        self.source = "fallback"
        self.scans = 0
        # A replay's latest scan, in memory: its job writes the file only every few sessions (scan_schedule.py).
        self._document: CandidatesFile | None = None

    def load(self, now: datetime, held: Iterable[str] = ()) -> tuple[str, ...]:
        """The focus list as of `now`: candidates (top N + baseline) or the fallback, plus held symbols."""
        symbols, self.source, warning = load_focus_symbols(
            self._path,
            self._calendar,
            now,
            fallback=self._fallback,
            baseline=self._baseline,
            top_n=self._top_n,
            document=self._document,
        )
        if warning:
            if self._warmup and self.scans == 0 and not self._path.exists():
                log.info("focus_fallback", warning=warning, warmup=True)
            else:
                log.warning("focus_fallback", warning=warning)
        return tuple(dict.fromkeys([*symbols, *sorted(held)]))

    async def on_scan_tick(self, now: datetime, held: Iterable[str]) -> tuple[str, ...]:
        """Run the daily scan if it is due, then the focus list as of now (a stale file has fallen back)."""
        if self.job.due(now):
            outcome = await self.job.run(now)
            if outcome is not None:
                self.scans += 1
                if self.job.in_memory:
                    self._document = outcome.document
        return self.load(now, held)

    async def rescore(self, symbols: tuple[str, ...], now: datetime) -> None:
        if self.scorer.due(now):
            await self.scorer.run(symbols, now)

    def latest_candidates(self) -> CandidatesFile | None:
        """The latest scan's document: a replay's in memory, else the candidates file (None: none readable)."""
        if self._document is not None:
            return self._document
        try:
            return read_candidates(self._path)
        except CandidatesError:
            return None

    def state(self, now: datetime) -> dict[str, Any]:
        return {"source": self.source, "scans": self.scans, "scores": self.scorer.latest_scores(now)}
