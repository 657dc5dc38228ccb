"""The reports issue's report for the API, built once per equity mark, from what is on disk only.

It never contacts the broker (`tradingd/cli_report.py::stored_report_of`): sim uses the bundled bars; paper/live has
no bars (positions valued at their fill prices, said in the report's notes) and SPY from the cache file
`tradingd report` wrote, or none with the reason.

A sim report costs ~0.3 s (the bars, the benchmark, the statistics): it is rebuilt only when the latest equity mark
(session and value) moved, and one build at a time (a lock), so a page polling every few seconds costs one build per
iteration at most.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from analytics.model import Report
from config.settings import Settings
from core.store import StateStore
from tradingd.cli_report import stored_report_of

MarkKey = tuple[date, Decimal] | None
# The equity curve's benchmark may lag the latest mark by this much: a paced replay marks equity every fraction of a
# second, and rebuilding the report for each chart refresh would take the daemon's CPU.
CHART_REBUILD_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class CachedReport:
    key: MarkKey
    report: Report | None  # None: nothing to report yet (no end-of-day equity)
    built: float  # time.monotonic() of the build


class ReportCache:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._cached: CachedReport | None = None

    def get(self, store: StateStore) -> Report | None:
        """The report of `store` as of its latest equity mark. Raises what `report_of` raises (`SetupError`)."""
        mark = store.latest_equity_mark()
        key: MarkKey = None if mark is None else (mark.session, mark.last_equity)
        with self._lock:
            cached = self._cached
            if cached is not None and cached.key == key:
                return cached.report
            report = None if key is None else stored_report_of(store, self._settings)
            self._cached = CachedReport(key, report, time.monotonic())
            return report

    def latest_or_build(self, store: StateStore) -> Report | None:
        """The last report when it is younger than CHART_REBUILD_SECONDS (whatever mark it was built at), else the
        report as of the latest mark: what the equity chart's benchmark needs."""
        cached = self._cached
        if cached is not None and cached.report is not None and time.monotonic() - cached.built < CHART_REBUILD_SECONDS:
            return cached.report
        return self.get(store)
