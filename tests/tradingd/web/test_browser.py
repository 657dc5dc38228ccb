"""The dashboard in real headless Chromium while a paced sim replay runs (`tradingd replay --pace 0.3` with
DASHBOARD_ENABLED): the equity chart gains points, a fill appears in the list, and clicking Halt (entering the token
once) makes the next iteration deny entries with `halted`.

Skipped only when Chromium is not installed and CI is not set. Screenshots go to pytest's tmp dir, and to
DASHBOARD_SCREENSHOT_DIR when that is set. Every wait polls with a generous ceiling: nothing here measures time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import tradingd.web.app
from core.sqlite_db import connect_read_only
from tests.analytics.browser import chromium_or_skip, headless_chromium
from tests.tradingd.web.conftest import sim_settings, start_server
from tradingd.web.token import DashboardAccess

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[3]
TOKEN = "browser-test-token-0123456789abcdef"
WAIT_S = 90  # ceilings on a loaded 2-core machine, never measured durations
POLL_S = 1.0
CHART_POINTS_JS = "const gd = document.getElementById('equity-chart'); return gd && gd.data ? gd.data[0].x.length : 0;"


@pytest.fixture
def chromium() -> tuple[str, str]:
    return chromium_or_skip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(what: str, probe: Callable[[], T | None], ceiling: float = WAIT_S) -> T:
    deadline = time.monotonic() + ceiling
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(POLL_S)


@pytest.fixture
def paced_replay(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ALPACA_", "DASHBOARD_", "TRADING_", "SIM_", "NOTIFY_"))
    }
    env.update(
        DATA_DIR=str(tmp_path / "var"),
        DASHBOARD_ENABLED="true",
        DASHBOARD_PORT=str(port),
        DASHBOARD_TOKEN=TOKEN,
        SYMBOLS="AAPL,MSFT,JPM,XOM,JNJ,PG,KO,WMT,INTC,CSCO",
        ZSCORE_ENTRY="-0.5",  # many signals: the iteration after the halt has entries to deny
        LOG_LEVEL="INFO",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tradingd", "replay", "--start", "2015-01-02", "--end", "2016-12-30", "--pace", "0.3"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        yield url, tmp_path / "var" / "sim" / "state.db", process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the replay finishes its iteration and stops
            try:
                process.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(WAIT_S)


def _up(url: str) -> bool:
    try:
        return requests.get(url + "/api/health", timeout=WAIT_S).status_code == 200
    except requests.ConnectionError:
        return False


def _halted_entry_denials(db: Path) -> int:
    """Entries denied `halted` in the journal (the denial's signal looked up by its reference: not an exit)."""
    conn = connect_read_only(db)
    try:
        signals = {
            msg_id: json.loads(payload)
            for msg_id, payload in conn.execute("SELECT msg_id, payload FROM journal WHERE type = 'SignalGenerated'")
        }
        denied = [json.loads(p) for (p,) in conn.execute("SELECT payload FROM journal WHERE type = 'OrderDenied'")]
    finally:
        conn.close()
    return sum(1 for d in denied if d["reason"] == "halted" and not signals[d["signal"]["ref"]]["is_exit"])


def test_dashboard_follows_a_paced_replay_and_halts_it(
    chromium: tuple[str, str], paced_replay: tuple[str, Path, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    url, db, process = paced_replay
    _wait("the dashboard to answer", lambda: process.poll() is None and _up(url))
    shots = Path(os.environ.get("DASHBOARD_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with headless_chromium(*chromium, width=1400, height=1500) as driver:
        driver.get(url + "/")
        wait = WebDriverWait(driver, WAIT_S, poll_frequency=POLL_S)
        first = wait.until(lambda d: d.execute_script(CHART_POINTS_JS) >= 5 and d.execute_script(CHART_POINTS_JS))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#fills li"))
        grown = wait.until(lambda d: (n := d.execute_script(CHART_POINTS_JS)) > first and n)
        assert grown > first  # the chart gained points while the page was open, without a reload
        assert driver.find_element(By.ID, "feed").text == "live"
        assert " @ " in driver.find_element(By.CSS_SELECTOR, "#fills li").text
        driver.save_screenshot(str(shots / "dashboard-running.png"))

        driver.find_element(By.ID, "reason").clear()
        driver.find_element(By.ID, "reason").send_keys("browser test")
        driver.find_element(By.ID, "halt").click()
        token_box = driver.find_element(By.ID, "token-box")
        wait.until(lambda d: token_box.is_displayed())  # asked once, kept in sessionStorage
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.ID, "token-save").click()
        wait.until(lambda d: "halted (sim): dashboard: browser test" in d.find_element(By.ID, "message").text)
        wait.until(lambda d: d.find_element(By.ID, "state").text == "halted")
        assert driver.execute_script("return sessionStorage.getItem('tradingd_dashboard_token')") == TOKEN
        denials = _wait("an entry denied `halted` in the journal", lambda: _halted_entry_denials(db))
        assert denials > 0
        driver.save_screenshot(str(shots / "dashboard-halted.png"))
    status: dict[str, Any] = requests.get(url + "/api/status", timeout=WAIT_S).json()
    assert status["trading_state"]["state"] == "halted"


def test_a_failing_panel_shows_its_error_and_the_others_render(
    chromium: tuple[str, str], state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Promise.allSettled`: one endpoint answering 500 costs its own panel, never the page's refresh."""

    def broken(*_: object) -> None:
        raise RuntimeError("health is broken")

    monkeypatch.setattr(tradingd.web.app, "_health", broken)
    server = start_server(sim_settings(state_dir), DashboardAccess(TOKEN, reads_need_token=False, token_file=None))
    try:
        with headless_chromium(*chromium) as driver:
            driver.get(server.url + "/")
            wait = WebDriverWait(driver, WAIT_S, poll_frequency=POLL_S)
            wait.until(lambda d: "health: could not load (500" in d.find_element(By.ID, "health").text)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#candidates tbody tr td"))
            wait.until(lambda d: d.execute_script(CHART_POINTS_JS) > 0)
            assert driver.find_elements(By.CSS_SELECTOR, "#fills li")
            assert "health" in driver.find_element(By.ID, "message").text  # the banner names the failed panel
    finally:
        server.server.stop()
