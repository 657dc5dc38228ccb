"""The HTML report in a real headless Chromium over file://: every chart rendered, with data points, offline.

Skipped only when Chromium is not installed and CI is not set; under `.ci/run` (CI=1) a missing browser fails.
A screenshot of the whole page is saved to pytest's tmp dir, and to REPORT_SCREENSHOT when that is set.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.support.ui import WebDriverWait

from analytics.build import build_report, sim_report_inputs
from analytics.html_report import write_html
from analytics.model import Report
from config.settings import Settings
from core.bars import load_daily_bars
from tests.analytics.browser import PAGE_LOAD_TIMEOUT_S, chromium_or_skip, headless_chromium
from tradingd.app import build_sim, run_app
from tradingd.cli_report import sim_tradable_symbols

# Per chart: its traces' point counts as plotly decoded them (a scatter's points; a heatmap's non-empty cells) and
# how many marks it drew.
CHARTS_JS = """
const charts = Array.from(document.querySelectorAll('.js-plotly-plot'));
return charts.map(gd => ({
  id: gd.id,
  rendered: !!gd._fullLayout,
  points: (gd._fullData || []).map(t => t.type === 'heatmap'
    ? Array.from(t.z).reduce((n, row) => n + Array.from(row).filter(v => v !== null && !Number.isNaN(v)).length, 0)
    : t._length),
  drawn: gd.querySelectorAll(
    '.scatterlayer path.js-line, .scatterlayer path.js-fill, .scatterlayer .point, .heatmaplayer image'
  ).length,
}));
"""
READY_JS = """
const charts = document.querySelectorAll('.js-plotly-plot');
return document.readyState === 'complete' && charts.length === arguments[0]
  && Array.from(charts).every(gd => gd._fullLayout && gd.querySelector('.main-svg'));
"""


@pytest.fixture
def chromium() -> tuple[str, str]:
    return chromium_or_skip()


@pytest.fixture(scope="module")
def replay_report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """The report of a real half-year default replay (scanner on, protective stops), built as `tradingd report`
    builds it."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("replay"), sim_start=date(2017, 1, 3), sim_end=date(2017, 6, 30)
    )
    app = build_sim(settings)
    try:
        asyncio.run(run_app(app))
        history = load_daily_bars(settings.sim_data_file)
        bars, benchmark = sim_report_inputs(history, sim_tradable_symbols(settings, history.symbols))
        return build_report(app.store, mode="sim", bars=bars, benchmark=benchmark)
    finally:
        app.close()


@pytest.fixture(params=["sample", "replay"])
def any_report(request: pytest.FixtureRequest) -> Report:
    """The hand-built sample report, and a real replay's."""
    name = "report" if request.param == "sample" else "replay_report"
    found: Report = request.getfixturevalue(name)
    return found


def _open(driver: Any, page: Path, expected_charts: int) -> list[dict[str, Any]]:
    driver.get(page.as_uri())
    WebDriverWait(driver, PAGE_LOAD_TIMEOUT_S).until(lambda d: d.execute_script(READY_JS, expected_charts))
    charts: list[dict[str, Any]] = driver.execute_script(CHARTS_JS)
    return charts


def _full_page_screenshot(driver: Any, path: Path) -> None:
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(1280, min(height, 16_000))
    driver.save_screenshot(str(path))


def test_every_chart_renders_with_data_points_offline(
    any_report: Report, chromium: tuple[str, str], tmp_path: Path
) -> None:
    report = any_report
    page = write_html(report, tmp_path / "report.html")
    expected = 5 + len(report.top_symbols)
    with headless_chromium(*chromium) as driver:
        charts = _open(driver, page, expected)
        ids = [chart["id"] for chart in charts]
        assert ids[:5] == ["chart-equity", "chart-drawdown", "chart-monthly", "chart-rolling-sharpe", "chart-exposure"]
        assert ids[5:] == [f"chart-symbol-{marks.symbol}" for marks in report.top_symbols]
        for chart in charts:
            assert chart["rendered"], chart
            assert chart["points"], chart
            assert all(n > 0 for n in chart["points"]), chart  # every trace has points
            assert chart["drawn"] > 0, chart  # and the browser drew them
        by_id = {chart["id"]: chart for chart in charts}
        assert by_id["chart-equity"]["points"] == [len(report.series.sessions)] * 2  # strategy and benchmark
        assert len(by_id["chart-exposure"]["points"]) == len(report.series.exposure_by_tier_pct)
        headline = driver.execute_script("return document.getElementById('headline').innerText")
        assert "Sharpe" in headline
        assert "equal-weight buy-and-hold" in headline
        ledger_rows = driver.execute_script("return document.querySelectorAll('#ledger tbody tr').length")
        assert ledger_rows == len(report.ledger)
        screenshot = tmp_path / "report.png"
        _full_page_screenshot(driver, screenshot)
    assert screenshot.stat().st_size > 0
    if target := os.environ.get("REPORT_SCREENSHOT"):
        shutil.copyfile(screenshot, target)
