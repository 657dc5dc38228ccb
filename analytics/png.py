"""A static PNG of the equity chart (equity against the benchmark), for notifications.

Drawn with matplotlib's Agg backend (no display, no browser: plotly's kaleido would download a Chromium, which
fails offline). matplotlib is imported when a PNG is drawn, not when `analytics` is: most commands never draw one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np

from analytics.charts import BENCHMARK_COLOUR, STRATEGY_COLOUR
from analytics.model import Report

SIZE_INCHES = (9.0, 4.0)
DPI = 110


def write_equity_png(report: Report, path: Path) -> Path:
    """The report's equity against its benchmark (when it has one)."""
    benchmark = None
    if report.benchmark is not None:
        benchmark = (f"benchmark: {report.benchmark.name}", report.series.benchmark_equity)
    title = f"tradingd {report.mode}: equity, {report.start} to {report.end}"
    return draw_equity_png(report.series.sessions, report.series.equity, title, path, benchmark=benchmark)


def draw_equity_png(
    sessions: Sequence[date],
    equity: Sequence[float],
    title: str,
    path: Path,
    *,
    benchmark: tuple[str, Sequence[float | None]] | None = None,
) -> Path:
    """An equity curve (and a benchmark's, labelled) as a PNG at `path`: the report's chart, and the notifier's
    daily digest, which has equity marks but no report."""
    import matplotlib  # noqa: PLC0415 - only the PNG needs it

    matplotlib.use("Agg")  # before pyplot: never a GUI backend
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import StrMethodFormatter  # noqa: PLC0415

    days = np.asarray(sessions, dtype="datetime64[D]")
    fig, ax = plt.subplots(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
    try:
        ax.plot(days, np.asarray(equity), color=STRATEGY_COLOUR, linewidth=1.4, label="strategy")
        if benchmark is not None:
            label, values = benchmark
            ax.plot(
                days,
                np.asarray(values, dtype=np.float64),
                color=BENCHMARK_COLOUR,
                linewidth=1.2,
                linestyle=":",
                label=label,
            )
        ax.set_title(title, loc="left", fontsize=11)
        ax.set_ylabel("equity ($)")
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        ax.grid(True, color="#e4e4e4", linewidth=0.6)
        ax.legend(loc="upper left", fontsize=8, frameon=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
