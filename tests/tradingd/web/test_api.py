"""The API on the real uvicorn server (a free loopback port), over a finished replay's state: every endpoint's shape,
the auth rules, 4xx on bad input, and no secret in any response."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

import pytest
import requests

from agents.win_probability import Prediction
from core.flags import FLAG_HALTED
from core.logging import configure_logging
from core.state_guard import KillSwitchFile, kill_switch_path
from core.store import StateStore
from tests.tradingd.web.conftest import (
    FAKE_KEY,
    FAKE_SECRET,
    HTTP_TIMEOUT_S,
    TOKEN,
    Running,
    sim_settings,
    start_server,
)
from tradingd.cli_state import portfolio_risk_json
from tradingd.web.live_feed import LiveFeed
from tradingd.web.token import DashboardAccess

AUTH = {"Authorization": f"Bearer {TOKEN}"}
READS = [
    "/api/status",
    "/api/positions",
    "/api/orders",
    "/api/orders?status=open",
    "/api/orders?status=filled",
    "/api/fills",
    "/api/fills?since=2015-03-01",
    "/api/equity",
    "/api/equity?from=2015-02-01&to=2015-03-31",
    "/api/candidates",
    "/api/smart-selection",
    "/api/report",
    "/api/health",
    "/api/warnings",
    "/metrics",
    "/",
    "/static/app.js",
    "/docs",
    "/openapi.json",
]


def test_status_shape(running: Running) -> None:
    body = running.get("/api/status").json()
    assert body["mode"] == "sim"
    assert body["trading_state"]["state"] == "active"
    assert body["session"] == "2015-04-30"
    assert float(body["equity"]) > 0
    assert body["live_feed"] is True
    assert body["fills"] > 0
    assert set(body["breakers"]) == {"daily_loss_limit", "max_drawdown"}
    assert [row["tier"] for row in body["exposure"]] == ["TIER1", "TIER2", "TIER3"]
    assert body["limits"]["max_daily_loss_pct"] == 2.0
    # The portfolio's risk as `tradingd status` computes it, from the same state.
    with StateStore(running.settings.data_dir / "sim" / "state.db", read_only=True) as store:
        values = {s: p.market_value for s, p in store.load_positions().items()}
        expected = portfolio_risk_json(running.settings, store, values)
    assert body["portfolio"] == expected


def test_positions_carry_unrealised_pnl(running: Running) -> None:
    rows = running.get("/api/positions").json()
    with StateStore(running.settings.data_dir / "sim" / "state.db", read_only=True) as store:
        held = store.load_positions()
    assert [row["symbol"] for row in rows] == sorted(held)
    for row in rows:
        position = held[row["symbol"]]
        expected = position.qty * (position.market_price - position.avg_entry_price)
        assert abs(float(row["unrealized_pl"]) - float(expected)) < 0.01


def test_orders_filter_by_status(running: Running) -> None:
    every = running.get("/api/orders").json()
    open_ = running.get("/api/orders?status=open").json()
    filled = running.get("/api/orders?status=filled").json()
    assert every
    assert filled
    assert {row["status"] for row in filled} == {"filled"}
    assert {row["status"] for row in open_} <= {"pending_submit", "new", "accepted", "partially_filled"}
    assert len(open_) + len(filled) <= len(every)


def test_fills_since_a_new_york_day(running: Running) -> None:
    every = running.get("/api/fills").json()
    later = running.get("/api/fills?since=2015-03-01").json()
    assert every
    assert set(every[0]) == {"ts", "symbol", "side", "qty", "price", "client_order_id", "execution_id"}
    assert later == [row for row in every if row["ts"] >= "2015-03-01T05:00"]


def test_equity_with_the_benchmark(running: Running) -> None:
    body = running.get("/api/equity?from=2015-02-01&to=2015-03-31").json()
    sessions = [point["session"] for point in body["points"]]
    assert sessions[0] >= "2015-02-02"
    assert sessions[-1] <= "2015-03-31"
    assert all(point["benchmark"] is not None for point in body["points"])
    assert "equal-weight" in body["benchmark"]


def test_candidates_from_the_scan_file(running: Running) -> None:
    body = running.get("/api/candidates").json()
    assert body["as_of"] == "2015-04-30"
    assert [row["symbol"] for row in body["candidates"]] == ["AAPL", "MSFT", "JPM"]
    assert body["candidates"][2]["volatility"] is None
    assert all(row["win_probability"] is None for row in body["candidates"])


def test_smart_selection_has_the_issue_shape(running: Running) -> None:
    body = running.get("/api/smart-selection").json()
    assert set(body) == {"top_scores", "top_performers", "risk_metrics"}
    score_keys = {"symbol", "score", "trend", "volatility", "volume", "liquidity", "win_probability", "expected_return"}
    assert all(set(row) == score_keys for row in body["top_scores"])
    assert [row["symbol"] for row in body["top_scores"]] == ["AAPL", "MSFT", "JPM"]
    aapl, msft, jpm = body["top_scores"]
    assert aapl["trend"] > msft["trend"]
    assert jpm["volume"] > aapl["volume"]
    assert jpm["volatility"] is None
    assert jpm["liquidity"] is None
    assert aapl["win_probability"] is None
    assert aapl["expected_return"] is None
    performer_keys = {"symbol", "wins", "losses", "win_rate", "profit_factor", "pnl"}
    assert body["top_performers"]
    assert all(set(row) == performer_keys for row in body["top_performers"])
    pnls = [row["pnl"] for row in body["top_performers"]]
    assert pnls == sorted(pnls, reverse=True)  # ranked by realised P&L, which each row now shows
    assert len(body["top_performers"]) <= 10
    risk = body["risk_metrics"]
    assert set(risk) == {"daily_loss_pct", "max_daily_loss_pct", "current_drawdown", "max_drawdown_pct", "at_risk"}
    assert risk["max_daily_loss_pct"] == 2.0
    assert risk["max_drawdown_pct"] == 10.0
    assert isinstance(risk["at_risk"], bool)
    assert risk["current_drawdown"] >= 0


def test_a_trained_predictor_fills_the_probabilities(state_dir: Path) -> None:
    asked: list[tuple[tuple[str, ...], date]] = []

    class Trained:
        def predict_as_of(self, symbols: Sequence[str], as_of: date) -> Mapping[str, Prediction]:
            asked.append((tuple(symbols), as_of))
            return {"AAPL": Prediction(0.6, 0.01, 0.9)}  # it could not judge MSFT

    server = start_server(
        sim_settings(state_dir), DashboardAccess(TOKEN, reads_need_token=False, token_file=None), predictor=Trained()
    )
    try:
        rows = server.get("/api/smart-selection").json()["top_scores"]
        candidates = server.get("/api/candidates").json()["candidates"]
    finally:
        server.server.stop()
    assert rows[0]["win_probability"] == 0.6
    assert rows[0]["expected_return"] == 0.01
    assert rows[1]["win_probability"] is None  # the predictor could not judge MSFT
    assert candidates[0]["win_probability"] == 0.6
    assert {when for _, when in asked} == {date(2015, 4, 30)}  # on the candidates file's session


def test_report_is_the_reports_json(running: Running) -> None:
    body = running.get("/api/report").json()
    assert body["mode"] == "sim"
    assert body["start"] == "2015-01-02"
    assert body["end"] == "2015-04-30"
    assert {"total_return_pct", "sharpe", "by_symbol", "benchmark"} <= set(body)


def test_health_from_the_daemon_observer(running: Running) -> None:
    body = running.get("/api/health").json()
    assert body["source"] == "daemon"
    assert body["status"] == "unknown"
    assert body["stream"]["connected"] is None
    assert "sim" in body["stream"]["reason"]


def test_health_from_the_journal_when_standalone(state_dir: Path) -> None:
    server = start_server(sim_settings(state_dir), DashboardAccess(TOKEN, reads_need_token=False, token_file=None))
    try:
        body = server.get("/api/health").json()
        stream = server.get("/api/stream")
    finally:
        server.server.stop()
    assert body["source"] == "journal"
    assert body["status"] == "ok"
    assert body["last_iteration"] > 0
    assert body["last_iteration_at"].startswith("2015-04-30")
    assert body["broker"]["connected"] is True
    assert stream.status_code == 404  # serve has no live feed: the page polls


def test_metrics_route_serves_the_given_callable(running: Running) -> None:
    response = running.get("/metrics")
    assert response.status_code == 200
    assert "tradingd_up 1" in response.text
    assert response.headers["content-type"].startswith("text/plain")


def test_page_and_offline_assets(running: Running) -> None:
    page = running.get("/")
    assert page.status_code == 200
    assert "/static/plotly.min.js" in page.text
    assert "https://" not in page.text
    plotly = running.get("/static/plotly.min.js")
    assert plotly.status_code == 200
    assert len(plotly.content) > 1_000_000
    assert running.get("/static/app.js").status_code == 200


def test_the_api_page_is_offline_and_lists_the_endpoints(running: Running) -> None:
    docs = running.get("/docs")
    assert docs.status_code == 200
    assert "https://" not in docs.text  # no CDN (FastAPI's Swagger UI loads from one)
    assert "/static/docs.js" in docs.text
    assert "https://" not in running.get("/static/docs.js").text
    spec = running.get("/openapi.json").json()
    assert {"/api/status", "/api/equity", "/api/halt", "/api/stream"} <= set(spec["paths"])
    assert "pnl" in spec["components"]["schemas"]["PerformerRow"]["properties"]
    assert running.get("/redoc").status_code == 404


def test_stream_resumes_from_last_event_id(running: Running) -> None:
    feed = running.feed
    assert isinstance(feed, LiveFeed)
    for n in range(3):
        feed.add("OrderFilled", {"symbol": f"S{n}"})
    with requests.get(
        running.url + "/api/stream", headers={"Last-Event-ID": feed.event_id(1)}, stream=True, timeout=HTTP_TIMEOUT_S
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = _stream_until(response, '"S2"')
    ids = [line.removeprefix("id: ") for line in lines if line.startswith("id: ")]
    assert ids == [feed.event_id(2), feed.event_id(3)]  # the events after Last-Event-ID 1, in order
    assert json.loads(lines[-1].removeprefix("data: "))["seq"] == 3


def _stream_until(response: requests.Response, marker: str) -> list[str]:
    lines = []
    for line in response.iter_lines(decode_unicode=True):
        lines.append(line)
        if line.startswith("data: ") and marker in line:
            break
    return lines


@pytest.mark.parametrize("old_id", ["0123456789abcdef:5000", "5000"])
def test_stream_after_a_daemon_restart_resets(running: Running, old_id: str) -> None:
    """A page still holding the last id of the daemon before a restart (its sequence started again at 0) gets a
    `reset` and this process's events, never silence."""
    feed = running.feed
    assert isinstance(feed, LiveFeed)
    feed.add("OrderFilled", {"symbol": "AFTER_RESTART"})
    with requests.get(
        running.url + "/api/stream", headers={"Last-Event-ID": old_id}, stream=True, timeout=HTTP_TIMEOUT_S
    ) as response:
        lines = _stream_until(response, '"AFTER_RESTART"')
    assert "event: reset" in lines
    assert lines.index("event: reset") < lines.index("event: OrderFilled")
    assert f"id: {feed.event_id(feed.last_seq)}" in lines


# ---- auth ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/halt", "/api/resume"])
def test_mutations_need_the_token(running: Running, path: str) -> None:
    body = {"reason": "test"}
    missing = running.post(path, json=body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = running.post(path, json=body, headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 403
    assert running.post(path, json=body, headers={"Authorization": TOKEN}).status_code == 401  # not a bearer


def test_halt_and_resume_are_the_cli_path(running: Running) -> None:
    state = running.settings.data_dir / "sim" / "state.db"
    halted = running.post("/api/halt", json={"reason": "lunch"}, headers=AUTH)
    assert halted.status_code == 200
    assert halted.json()["trading_state"]["state"] == "halted"
    with StateStore(state, read_only=True) as store:
        assert store.get_flag(FLAG_HALTED) == "dashboard: lunch"
    assert KillSwitchFile(kill_switch_path(state)).read()[FLAG_HALTED] == "dashboard: lunch"  # the file twin too
    assert running.get("/api/status").json()["trading_state"]["state"] == "halted"
    resumed = running.post("/api/resume", headers=AUTH)
    assert resumed.status_code == 200
    assert resumed.json()["trading_state"]["state"] == "active"
    assert FLAG_HALTED not in KillSwitchFile(kill_switch_path(state)).read()


def test_reads_need_the_token_beyond_loopback(state_dir: Path) -> None:
    # What a non-loopback DASHBOARD_HOST enforces (served on loopback here: tests stay on 127.0.0.1).
    server = start_server(sim_settings(state_dir), DashboardAccess(TOKEN, reads_need_token=True, token_file=None))
    try:
        assert server.get("/api/status").status_code == 401
        assert server.get("/api/status", headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 403
        assert server.get("/api/status", headers=AUTH).status_code == 200
        assert server.get("/metrics").status_code == 404  # not given a metrics source: no route
        assert server.get("/openapi.json").status_code == 401  # the schema is a read like the others
        assert server.get("/openapi.json", headers=AUTH).status_code == 200
    finally:
        server.server.stop()


# ---- bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/api/fills?since=yesterday", 400, "since: 'yesterday' is not a date"),
        ("/api/fills?since=2015-02-30", 400, "since: '2015-02-30' is not a date"),
        ("/api/equity?from=2015-13-01", 400, "from: '2015-13-01' is not a date"),
        ("/api/equity?from=2015-03-01&to=2015-02-01", 400, "from 2015-03-01 is after to 2015-02-01"),
        ("/api/orders?status=bogus", 400, "status: 'bogus' is not one of open, pending_submit"),
        ("/api/warnings?limit=0", 422, "greater than or equal to 1"),
    ],
)
def test_bad_queries_get_a_reason(running: Running, path: str, status: int, words: str) -> None:
    response = running.get(path)
    assert response.status_code == status
    assert words in json.dumps(response.json()["detail"])


def test_bad_bodies_get_a_reason(running: Running) -> None:
    assert running.post("/api/halt", json={}, headers=AUTH).status_code == 422  # no reason
    blank = running.post("/api/halt", json={"reason": "   "}, headers=AUTH)
    assert blank.status_code == 400
    assert "reason" in blank.json()["detail"]
    long = running.post("/api/halt", json={"reason": "x" * 201}, headers=AUTH)
    assert long.status_code == 422
    huge = running.post("/api/halt", data=json.dumps({"reason": "x" * 10_000}), headers=AUTH)
    assert huge.status_code == 413
    assert "over 4096 bytes" in huge.json()["detail"]
    chunked = running.post("/api/halt", data=iter([b'{"reason": "', b"x" * 5_000, b'"}']), headers=AUTH)
    assert chunked.status_code == 413
    assert running.post("/api/halt", data="not json", headers=AUTH).status_code == 422
    assert running.get("/api/stream", headers={"Last-Event-ID": "abc"}).status_code == 400
    assert running.get("/api/status").json()["trading_state"]["state"] == "active"  # none of them halted anything


# ---- secrets ------------------------------------------------------------------------------------------------------


def test_no_secret_in_any_response_or_the_log(running: Running, tmp_path: Path) -> None:
    log_file = tmp_path / "dashboard.log"
    configure_logging("json", "DEBUG", log_file=log_file, quiet=True)
    texts = []
    for path in READS:
        response = running.get(path)
        assert response.status_code == 200, path
        texts.append(response.text + json.dumps(dict(response.headers)))
    for path, kwargs in [
        ("/api/halt", {"json": {"reason": f"leak {FAKE_KEY}"}, "headers": AUTH}),
        ("/api/resume", {"headers": AUTH}),
        ("/api/halt", {"json": {"reason": "x"}, "headers": {"Authorization": f"Bearer {FAKE_SECRET}"}}),
    ]:
        response = running.post(path, **kwargs)  # type: ignore[arg-type]
        texts.append(response.text + json.dumps(dict(response.headers)))
    texts.append(log_file.read_text())
    for secret in (FAKE_KEY, FAKE_SECRET, TOKEN):
        assert not [text[:300] for text in texts if secret in text], secret
    running.post("/api/resume", headers=AUTH)
