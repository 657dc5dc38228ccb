"""The dashboard's cost to the trading loop, and its endpoints' latency.

1. A half-year default replay (scanner on) three ways, interleaved, `REPEATS` each, medians: without the dashboard;
   with it on (the server thread, the live feed and the health observer on the bus); and with it on while a client
   makes the page's reads every `POLL_S` and holds the SSE stream open (what an open page costs). The ratios to
   the first are the number to read: the loop never waits on the server, but the server shares the process's GIL.
2. After the replay, the median latency of each read endpoint over `REQUESTS` requests on loopback (the report
   once uncached, as the first request after a new equity mark pays it, then cached).
3. The live feed's cost per published event (the handler `publish` runs inline).

Nothing is asserted: these are measurements.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import requests

from config.settings import Settings
from core.bus import EventBus
from core.logging import configure_logging
from core.messages import IterationCompleted, IterationStats
from core.types import TradingMode
from tradingd.app import build_sim, run_app
from tradingd.web.app import create_app
from tradingd.web.health import HealthMonitor
from tradingd.web.live_feed import LiveFeed
from tradingd.web.server import DashboardServer, bind
from tradingd.web.token import DashboardAccess

REPEATS: Final = 5
REQUESTS: Final = 30
POLL_S: Final = 2.0  # the page's own ceiling on refreshes (static/app.js MIN_REFRESH_MS)
START, END = date(2016, 1, 4), date(2016, 6, 30)
READS: Final = ("/api/status", "/api/positions", "/api/orders?status=open", "/api/fills", "/api/equity",
                "/api/candidates", "/api/smart-selection", "/api/health", "/api/warnings")  # fmt: skip
TOKEN: Final = "bench-dashboard-token-0123456789"


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, trading_mode=TradingMode.SIM, sim_start=START, sim_end=END, log_level="ERROR")


def _start(settings: Settings, bus: EventBus | None) -> tuple[DashboardServer, str]:
    feed, health = LiveFeed(), HealthMonitor()
    if bus is not None:
        feed.attach(bus)
        health.attach(bus)
    access = DashboardAccess(TOKEN, reads_need_token=False, token_file=None)
    server = DashboardServer(create_app(settings, access, feed=feed, health=health), bind("127.0.0.1", 0))
    server.start()
    url = server.url.rstrip("/")
    requests.get(url + "/api/health", timeout=60)  # up and answering: its start-up is not counted as the loop's
    return server, url


class _Page:
    """What an open page does: the reads every POLL_S, and the SSE stream held open."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._poll, daemon=True),
            threading.Thread(target=self._sse, daemon=True),
        ]
        self.requests = 0

    def __enter__(self) -> _Page:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()

    def _poll(self) -> None:
        while not self._stop.is_set():
            for path in READS:
                try:
                    requests.get(self._url + path, timeout=30)
                    self.requests += 1
                except requests.RequestException:
                    return
            self._stop.wait(POLL_S)

    def _sse(self) -> None:
        try:
            with requests.get(self._url + "/api/stream", stream=True, timeout=30) as response:
                for _ in response.iter_lines():
                    if self._stop.is_set():
                        return
        except requests.RequestException:
            return


def _replay_s(dashboard: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = _settings(Path(tmp))
        app = build_sim(settings)
        server = None
        page_requests = 0
        try:
            if dashboard != "off":
                server, url = _start(settings, app.orchestrator.bus)
            t = time.perf_counter()
            if dashboard == "page":
                with _Page(url) as page:
                    asyncio.run(run_app(app))
                page_requests = page.requests
            else:
                asyncio.run(run_app(app))
            return time.perf_counter() - t, page_requests
        finally:
            if server is not None:
                server.stop()
            app.close()


def _median_ms(work: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        work()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000, 2)


def _latencies() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = _settings(Path(tmp))
        app = build_sim(settings)
        try:
            asyncio.run(run_app(app))
        finally:
            app.close()
        server, url = _start(settings, None)
        try:
            # The report first: /api/equity builds it too, and the first request after a new mark pays for it.
            report = url + "/api/report"
            result = {"/api/report (first, uncached)": _median_ms(lambda: requests.get(report, timeout=60), 1)}
            result["/api/report (cached)"] = _median_ms(lambda: requests.get(report, timeout=60), REQUESTS)
            result.update(
                {path: _median_ms(lambda p=path: requests.get(url + p, timeout=60), REQUESTS) for path in READS}
            )
            return result
        finally:
            server.stop()


def _feed_us_per_event() -> float:
    bus, feed = EventBus(), LiveFeed()
    feed.attach(bus)
    now = datetime(2016, 1, 4, 21, tzinfo=UTC)
    stats = IterationStats(
        session=START, bars=500, rejected_bars=0, orders=3, fills=2, equity=Decimal(100_000), positions=5
    )
    events = [IterationCompleted(ts_event=now, ts_init=now, iteration=i, stats=stats) for i in range(20_000)]
    bare = EventBus()
    bare.subscribe(IterationCompleted, lambda _: None)

    def publish(target: EventBus) -> Callable[[], None]:
        return lambda: [target.publish(event) for event in events]

    with_feed = _median_ms(publish(bus), REPEATS)
    without = _median_ms(publish(bare), REPEATS)
    return round((with_feed - without) * 1000 / len(events), 2)


def run() -> dict[str, Any]:
    configure_logging("json", "ERROR")
    walls: dict[str, list[float]] = {"off": [], "on": [], "page": []}
    page_requests = 0
    for _ in range(REPEATS):
        for mode, values in walls.items():  # interleaved: a machine's drift lands on all three alike
            wall, served = _replay_s(mode)
            values.append(wall)
            page_requests = max(page_requests, served)
    medians = {mode: round(statistics.median(values), 3) for mode, values in walls.items()}
    return {
        "sessions": f"{START}..{END}",
        "replay_s_dashboard_off": medians["off"],
        "replay_s_dashboard_on": medians["on"],
        "replay_s_dashboard_on_page_open": medians["page"],
        "ratio_on_vs_off": round(medians["on"] / medians["off"], 3),
        "ratio_page_open_vs_off": round(medians["page"] / medians["off"], 3),
        "page_requests_served_during_replay": page_requests,
        "endpoint_median_ms": _latencies(),
        "live_feed_us_per_event": _feed_us_per_event(),
    }
