"""The review of issue 15's dashboard: no broker from the web thread, Host check, one snapshot per request."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import core.broker.alpaca_data as alpaca_data
from analytics.benchmark import ClosesCache, write_closes_cache
from config.settings import Settings
from core.store import StateStore
from core.types import TradingMode
from tests.tradingd.web.conftest import SYMBOLS, TOKEN, sim_settings, start_server
from tradingd.local_state import state_db_path
from tradingd.web.hosts import allowed_hosts
from tradingd.web.state_reader import StateReader
from tradingd.web.token import DashboardAccess

OPEN_READS = DashboardAccess(TOKEN, reads_need_token=False, token_file=None)


def paper_settings(data_dir: Path) -> Settings:
    """Paper without any Alpaca keys: a dashboard that needed the broker would fail."""
    return Settings(data_dir=data_dir, trading_mode=TradingMode.PAPER, symbols=SYMBOLS)


def copy_state(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


@pytest.fixture
def paper_dir(state_dir: Path, tmp_path: Path) -> Path:
    """The sim replay's state DB as a paper daemon's (same schema, fills and marks)."""
    copy_state(state_dir / "sim" / "state.db", state_db_path(paper_settings(tmp_path)))
    return tmp_path


def test_paper_equity_and_report_never_call_the_broker(paper_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_broker(*args: object, **kwargs: object) -> None:
        raise AssertionError("the dashboard built a market-data client")

    monkeypatch.setattr(alpaca_data, "AlpacaMarketData", no_broker)
    settings = paper_settings(paper_dir)
    server = start_server(settings, OPEN_READS)
    try:
        equity = server.get("/api/equity")
        report = server.get("/api/report")
    finally:
        server.server.stop()
    assert equity.status_code == 200, equity.text
    body = equity.json()
    assert body["points"]
    assert body["benchmark"] is None  # no cached SPY: none, with the reason in the report
    assert all(point["benchmark"] is None for point in body["points"])
    assert report.status_code == 200, report.text
    document = report.json()
    assert document["benchmark"] is None
    assert any("No benchmark: no SPY closes cached in benchmark_spy.json" in note for note in document["notes"])
    assert any("no daily bars" in note for note in document["notes"])
    assert not (paper_dir / "paper" / "benchmark_spy.json").exists()  # nothing written beside the state


def test_paper_benchmark_from_the_cache_file(paper_dir: Path) -> None:
    settings = paper_settings(paper_dir)
    db = state_db_path(settings)
    store = StateStore(db, read_only=True)
    try:
        sessions = [mark.session for mark in store.equity_marks()]
    finally:
        store.close()
    closes = {day: 100.0 + n for n, day in enumerate(sessions)}
    cache = db.parent / "benchmark_spy.json"
    write_closes_cache(cache, ClosesCache(sessions[0], closes))
    before = cache.read_bytes()
    server = start_server(settings, OPEN_READS)
    try:
        body = server.get("/api/equity").json()
    finally:
        server.server.stop()
    assert body["benchmark"] == "SPY"
    first, last = body["points"][0]["benchmark"], body["points"][-1]["benchmark"]
    assert last / first == pytest.approx(closes[sessions[-1]] / closes[sessions[0]])  # SPY's growth, from the file
    assert cache.read_bytes() == before  # read, never rewritten


def test_a_foreign_host_header_is_refused(state_dir: Path) -> None:
    server = start_server(sim_settings(state_dir), OPEN_READS)
    try:
        port = server.url.rsplit(":", 1)[1]
        assert server.get("/api/health", headers={"Host": f"evil.example:{port}"}).status_code == 400
        assert server.get("/api/health", headers={"Host": "evil.example"}).status_code == 400
        for host in ("127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}", "[::1]", f"[::1]:{port}"):
            assert server.get("/api/health", headers={"Host": host}).status_code == 200, host
    finally:
        server.server.stop()


def test_allowed_hosts() -> None:
    assert allowed_hosts("127.0.0.1") == ["127.0.0.1", "localhost", "[::1]"]
    assert allowed_hosts("192.168.1.5")[-1] == "192.168.1.5"
    assert allowed_hosts("::1") == ["127.0.0.1", "localhost", "[::1]"]
    assert allowed_hosts("Dash.Local")[-1] == "dash.local"
    assert allowed_hosts("0.0.0.0") == ["*"]  # every name of the machine; the token guards it
    assert allowed_hosts("::") == ["*"]


def test_one_request_reads_one_snapshot(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    writer = StateStore(db)
    try:
        with writer.transaction():
            writer.set_flag("probe", "before")
        reader = StateReader(Settings(data_dir=tmp_path, trading_mode=TradingMode.SIM), db, {})
        with reader.store() as store:
            assert store.get_flag("probe") == "before"
            with writer.transaction():  # the daemon commits the next iteration mid-request
                writer.set_flag("probe", "after")
            assert store.get_flag("probe") == "before"  # the request still sees the state it started with
        with reader.store() as store:
            assert store.get_flag("probe") == "after"
    finally:
        writer.close()
