"""The report of a full 5-year replay: building it from the state store and rendering its HTML, target < 2 s.

One default sim replay (scanner on, 1,259 sessions, ~25k orders, ~4.8k fills) into a temporary DATA_DIR, then, each
the median of `REPEATS`: `build_report` (the store read, ledger, statistics, benchmark, exposure), `render_html`
(the charts and tables, the ledger's every row), and the two together as `tradingd report --html` does them (plus
writing the page). Beside them: the charts alone and the tables alone. Nothing is asserted: these are measurements.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analytics import html_report
from analytics.build import build_report, sim_report_inputs
from config.settings import Settings
from core.bars import load_daily_bars
from core.logging import configure_logging
from tradingd.app import App, build_sim, load_assets
from tradingd.cli_report import sim_tradable_symbols

REPEATS = 5
TARGET_S = 2.0


def _median_s(work: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        work()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times), 3)


def _replay(app: App) -> None:
    async def go() -> None:
        await load_assets(app)
        await app.orchestrator.run()

    asyncio.run(go())


def run() -> dict[str, Any]:
    configure_logging("json", "ERROR")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), log_level="ERROR")
        app = build_sim(settings)
        try:
            _replay(app)
            return _measure(app, settings, Path(tmp))
        finally:
            app.close()


def _measure(app: App, settings: Settings, tmp: Path) -> dict[str, Any]:
    history = load_daily_bars(settings.sim_data_file)  # the bundled bars, as `tradingd report` reads them (untimed)
    bars, benchmark = sim_report_inputs(history, sim_tradable_symbols(settings, history.symbols))

    def build() -> Any:
        return build_report(app.store, mode="sim", bars=bars, benchmark=benchmark)

    report = build()
    page = html_report.render_html(report)

    def both() -> None:
        html_report.write_html(build(), tmp / "report.html")

    return {
        "sessions": len(report.series.sessions),
        "round_trips": len(report.ledger),
        "fills": len(app.store.fills()),
        "charts": 5 + len(report.top_symbols),
        "html_mb": round(len(page.encode()) / 1e6, 2),
        "build_median_s": _median_s(build),
        "render_median_s": _median_s(lambda: html_report.render_html(report)),
        "build_render_write_median_s": _median_s(both),
        "charts_median_s": _median_s(lambda: html_report._charts(report)),
        "tables_median_s": _median_s(lambda: (html_report._tables(report), html_report._ledger(report))),
        "target": f"build + render < {TARGET_S:g} s",
    }


if __name__ == "__main__":
    print(run())
