"""Rendering the HTML report of a full 5-year replay: the median time of `render_html`, target < 2 s.

The report is of the size a full replay gives: the 1,259 bundled sessions, ~3,000 round trips over 30 symbols taken
from the real bundled closes, 3 tiers, a benchmark and the 5 most-traded symbols' price charts (built by
`tests/analytics/sample_report.py`, the presentation's fixture, until the analytics builder is measured here too).
Beside the total: the charts alone, the tables alone (the ledger's rows included), and writing the page to a file.
Nothing is asserted: these are measurements.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from analytics import html_report
from analytics.model import Report
from config.settings import Settings
from core.bars import load_daily_bars
from core.types import Tier
from tests.analytics.sample_report import build_sample_report

REPEATS = 5
SYMBOLS = 30
ROUND_TRIPS = 3_000
TARGET_S = 2.0


def full_size_report() -> Report:
    history = load_daily_bars(Settings().sim_data_file)
    complete = np.flatnonzero(~np.isnan(history.close).any(axis=0))[:SYMBOLS]  # listed for the whole period
    symbols = [history.symbols[i] for i in complete]
    closes = {symbol: history.close[:, i].astype(np.float64) for symbol, i in zip(symbols, complete, strict=True)}
    sessions = [day.item() for day in history.timestamps.astype("datetime64[D]")]
    tiers = {symbol: list(Tier)[k % 3] for k, symbol in enumerate(symbols)}
    return build_sample_report(sessions, closes, trades=ROUND_TRIPS, tiers=tiers, hold_sessions=6)


def _median_s(work: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        work()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times), 3)


def run() -> dict[str, Any]:
    report = full_size_report()
    with tempfile.TemporaryDirectory() as tmp:
        return _measure(report, tmp)


def _measure(report: Report, tmp: str) -> dict[str, Any]:
    page = html_report.render_html(report)
    return {
        "sessions": len(report.series.sessions),
        "round_trips": len(report.ledger),
        "charts": 5 + len(report.top_symbols),
        "html_mb": round(len(page.encode()) / 1e6, 2),
        "render_median_s": _median_s(lambda: html_report.render_html(report)),
        "charts_median_s": _median_s(lambda: html_report._charts(report)),
        "tables_median_s": _median_s(lambda: (html_report._tables(report), html_report._ledger(report))),
        "write_median_s": _median_s(lambda: html_report.write_html(report, Path(tmp) / "report.html")),
        "target": f"render < {TARGET_S:g} s",
    }
