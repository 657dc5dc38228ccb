"""The chart series computed here (not by the statistics code): underwater curve, monthly returns, rolling Sharpe,
checked against values worked out by hand; and the PNG."""

from __future__ import annotations

import dataclasses
import math
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from analytics.charts import drawdown_pct, monthly_returns, report_figures, rolling_sharpe, rolling_window
from analytics.model import Report, ReportSeries
from analytics.png import write_equity_png


def test_underwater_is_the_percent_below_the_running_peak() -> None:
    underwater = drawdown_pct(np.array([100.0, 110.0, 99.0, 121.0, 110.0]))
    assert underwater.tolist() == pytest.approx([0.0, 0.0, -10.0, 0.0, -100 / 11])


def test_monthly_returns_chain_month_ends_from_the_start_equity(report: Report) -> None:
    sessions = (date(2017, 12, 28), date(2017, 12, 29), date(2018, 1, 2), date(2018, 1, 31), date(2018, 3, 1))
    series = ReportSeries(sessions=sessions, equity=(101.0, 102.0, 99.0, 104.04, 93.636),
                          benchmark_equity=(None,) * 5, exposure_by_tier_pct={})  # fmt: skip
    years, grid = monthly_returns(dataclasses.replace(report, start_equity=Decimal(100), series=series))
    assert years == [2017, 2018]
    assert grid[0, 11] == pytest.approx(2.0)  # 100 -> 102
    assert grid[1, 0] == pytest.approx(2.0)  # 102 -> 104.04
    assert math.isnan(grid[1, 1])  # no session in February
    assert grid[1, 2] == pytest.approx(-10.0)  # 104.04 -> 93.636
    assert np.isnan(grid[0, :11]).all()


def test_rolling_sharpe_is_mean_over_sample_std_times_root_252() -> None:
    equity = np.array([100.0, 101.0, 100.0, 102.0, 102.0])  # returns 1%, -0.990..%, 2%, 0%
    r = equity[1:] / equity[:-1] - 1
    by_hand = [
        (sum(w) / 3) / math.sqrt(sum((x - sum(w) / 3) ** 2 for x in w) / 2) * math.sqrt(252) for w in (r[:3], r[1:])
    ]
    assert rolling_sharpe(equity, 3).tolist() == pytest.approx(by_hand)
    assert math.isnan(rolling_sharpe(np.array([100.0, 100.0, 100.0, 100.0]), 2)[0])  # no variance: undefined
    assert rolling_window(1259) == 126
    assert rolling_window(60) == 20  # a short report still gets a curve, and its title says the window


def test_every_chart_has_points(report: Report) -> None:
    figures = report_figures(report)
    assert len(figures) == 5 + len(report.top_symbols)
    for element_id, figure in figures.items():
        assert figure.data, element_id
        for trace in figure.data:
            values = trace.z if trace.type == "heatmap" else trace.x
            assert len(values) > 0, (element_id, trace.name)


def test_the_equity_png_is_drawn_without_a_display(report: Report, tmp_path: Path) -> None:
    path = write_equity_png(report, tmp_path / "equity.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib  # noqa: PLC0415 - after the PNG: which backend it chose

    assert matplotlib.get_backend().lower() == "agg"
