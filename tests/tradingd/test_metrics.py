"""Prometheus metrics (`tradingd/metrics.py`): a real sim replay's counters equal its run summary's; the state DB's
gauges are read at scrape time, also from a stopped daemon's state; every body parses as Prometheus text."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from agents.risk import halt_trading
from config.settings import Settings
from core.broker.alpaca import AlpacaBroker
from core.bus import EventBus
from core.clock import NyseCalendar
from core.messages import CircuitBreakerTripped, IterationFailed, OrderFilled
from core.state_guard import GuardedFlags, KillSwitchFile, kill_switch_path
from core.store import StateStore
from core.types import Fill, OrderSide
from tests.e2e.test_paper_daemon import _paper_app
from tests.fakes.alpaca_server import FakeAlpacaServer, Fault
from tests.fakes.alpaca_tape import load_tape
from tradingd.app import build_sim, run_app
from tradingd.cli_daemon import run_summary
from tradingd.metrics import DaemonMetrics, attach_metrics, metrics_text

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(body: bytes) -> Samples:
    """Every sample of a Prometheus text body by (name, sorted labels); parsing it is the format check."""
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: value for (n, labels), value in samples.items() if n == name}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def nonzero(counts: dict[str, float]) -> dict[str, int]:
    return {key: int(n) for key, n in counts.items() if n}


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A year of real bars with tight limits (both breakers trip), metrics attached as the daemon attaches them."""
    data_dir = tmp_path_factory.mktemp("metrics")
    settings = Settings(
        data_dir=data_dir,
        use_scanner=False,
        log_level="ERROR",
        sim_initial_cash=Decimal(5000),
        enable_fractional_shares=False,
        max_open_positions=6,
        max_daily_loss_pct=Decimal("0.003"),
        max_drawdown_pct=Decimal("0.025"),
    )
    app = build_sim(settings, start=date(2015, 6, 1), end=date(2016, 6, 30))
    metrics = attach_metrics(app)
    trips: list[CircuitBreakerTripped] = []
    app.orchestrator.bus.subscribe(CircuitBreakerTripped, trips.append)
    asyncio.run(run_app(app))
    summary = run_summary(app, app.orchestrator.stats, 1.0)
    live = parse(metrics_text(app.store.path, metrics)[0])
    store = {
        "by_status": app.store.summary()["orders"]["by_status"],
        "positions": app.store.load_positions(),
        "mark": app.store.latest_equity_mark(),
        "filled_orders": {fill.client_order_id for fill in app.store.fills()},
        "state": app.orchestrator.risk.state.value,
        "data_calls": app.market_data.api_calls,
    }
    app.close()
    stopped = parse(metrics_text(app.store.path, None)[0])  # `tradingd serve` on the stopped daemon's state
    return {"summary": summary, "live": live, "stopped": stopped, "store": store, "trips": trips, "db": app.store.path}


def test_the_counters_equal_the_run_summary(replay: dict[str, Any]) -> None:
    summary, live = replay["summary"], replay["live"]
    assert summary["iterations"] > 200
    assert value(live, "tradingd_iterations_total") == summary["iterations"]
    assert value(live, "tradingd_iteration_duration_seconds_count") == summary["iterations"]
    assert value(live, "tradingd_iteration_duration_seconds_sum") > 0
    assert sum(by_label(live, "tradingd_orders_submitted_total", "side").values()) == summary["orders"] > 0
    assert nonzero(by_label(live, "tradingd_orders_rejected_total", "reason")) == summary["orders_rejected"]
    assert sum(by_label(live, "tradingd_fills_total", "side").values()) == summary["fills"] > 0
    assert nonzero(by_label(live, "tradingd_signals_denied_total", "reason")) == summary["denied"]
    assert summary["denied"]["daily_loss_limit"] > 0
    assert nonzero(by_label(live, "tradingd_iterations_failed_total", "kind")) == summary["errors"] == {}


def test_orders_filled_counts_each_order_once(replay: dict[str, Any]) -> None:
    filled = sum(by_label(replay["live"], "tradingd_orders_filled_total", "side").values())
    assert filled == len(replay["store"]["filled_orders"])
    assert filled <= replay["summary"]["fills"]


def test_breaker_trips_by_breaker(replay: dict[str, Any]) -> None:
    trips = by_label(replay["live"], "tradingd_breaker_trips_total", "breaker")
    assert set(trips) == {"daily_loss_limit", "max_drawdown"}  # both series exist from the start, trips or not
    for breaker, count in trips.items():
        assert count == sum(1 for t in replay["trips"] if t.breaker == breaker)
    assert trips["daily_loss_limit"] > 0
    assert trips["max_drawdown"] == 1


def test_the_adapters_call_counts_are_read_at_scrape_time(replay: dict[str, Any]) -> None:
    calls = by_label(replay["live"], "tradingd_broker_api_calls_total", "client")
    assert calls == {"data": replay["store"]["data_calls"]}  # the sim broker counts no requests: it makes none
    assert calls["data"] > 0


def test_the_trading_state_live_is_the_daemons(replay: dict[str, Any]) -> None:
    states = by_label(replay["live"], "tradingd_trading_state", "state")
    assert states == {s: float(s == replay["store"]["state"]) for s in ("active", "reducing", "halted")}
    assert replay["store"]["state"] == "reducing"  # the drawdown breaker held to the end (no resume in the run)


def test_the_state_db_gauges(replay: dict[str, Any]) -> None:
    live, store = replay["live"], replay["store"]
    assert value(live, "tradingd_state_db_up") == 1
    assert value(live, "tradingd_equity_dollars") == float(store["mark"].last_equity)
    assert value(live, "tradingd_equity_peak_dollars") == float(store["mark"].peak_equity)
    assert value(live, "tradingd_positions") == len(store["positions"])
    market_value = sum(p.qty * p.market_price for p in store["positions"].values())
    assert value(live, "tradingd_positions_value_dollars") == pytest.approx(float(market_value))
    assert nonzero(by_label(live, "tradingd_orders", "status")) == store["by_status"]
    assert set(by_label(live, "tradingd_open_orders", "status")) == {
        "pending_submit",
        "new",
        "accepted",
        "partially_filled",
    }
    breakers = by_label(live, "tradingd_breaker_tripped", "breaker")
    assert breakers["max_drawdown"] == 1


def test_a_stopped_daemons_state_still_serves_its_gauges(replay: dict[str, Any]) -> None:
    stopped, live = replay["stopped"], replay["live"]
    assert value(stopped, "tradingd_state_db_up") == 1
    for name in ("tradingd_equity_dollars", "tradingd_positions"):
        assert value(stopped, name) == value(live, name)
    assert by_label(stopped, "tradingd_trading_state", "state") == by_label(live, "tradingd_trading_state", "state")
    assert not any(name.startswith("tradingd_iterations") for name, _ in stopped)  # no daemon: no counters


def test_a_halt_from_the_kill_switch_file_alone_shows(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store = StateStore(db)
    halt_trading(GuardedFlags(store, KillSwitchFile(kill_switch_path(db))), "maintenance")
    store.clear_flag("halted")  # a DB that lost its halt: the kill-switch file still holds it
    store.close()
    samples = parse(metrics_text(db, None)[0])
    assert value(samples, "tradingd_kill_switch_engaged", kind="halted") == 1
    assert value(samples, "tradingd_trading_state", state="halted") == 1
    assert value(samples, "tradingd_trading_state", state="active") == 0


@pytest.mark.parametrize("content", [None, b"not a database at all" * 100])
def test_no_readable_state_db_is_a_gauge_not_an_error(tmp_path: Path, content: bytes | None) -> None:
    db = tmp_path / "state.db"
    if content is not None:
        db.write_bytes(content)
    body, content_type = metrics_text(db, DaemonMetrics())
    assert content_type.startswith("text/plain")
    samples = parse(body)
    assert value(samples, "tradingd_state_db_up") == 0
    assert ("tradingd_equity_dollars", ()) not in samples
    assert value(samples, "tradingd_iterations_total") == 0
    if content is not None:
        assert db.read_bytes() == content  # a scrape never writes, nor sets a file aside


def _fill(order: str, execution: str) -> OrderFilled:
    now = datetime(2026, 1, 5, 15, tzinfo=UTC)
    fill = Fill(execution, order, "AAPL", OrderSide.BUY, Decimal(1), Decimal(100), now)
    return OrderFilled(ts_event=now, ts_init=now, fill=fill)


def _failed(kind: str) -> IterationFailed:
    now = datetime(2026, 1, 5, 15, tzinfo=UTC)
    return IterationFailed(ts_event=now, ts_init=now, tick="iteration", kind=kind, detail="HTTP 503")


def _publish(bus: EventBus, events: Iterable[Any]) -> None:
    for event in events:
        bus.publish(event)


def test_partial_fills_and_failed_iterations() -> None:
    metrics, bus = DaemonMetrics(), EventBus()
    metrics.observe(bus)
    _publish(bus, [_fill("a", "1"), _fill("a", "2"), _fill("b", "3"), _failed("TransientBrokerError")])
    _publish(bus, [_failed("TransientBrokerError"), _failed("BrokerError")])
    samples = parse(metrics_text(Path("/nonexistent/state.db"), metrics)[0])
    assert value(samples, "tradingd_fills_total", side="buy") == 3
    assert value(samples, "tradingd_orders_filled_total", side="buy") == 2
    assert by_label(samples, "tradingd_iterations_failed_total", "kind") == {
        "TransientBrokerError": 2,
        "BrokerError": 1,
    }


def test_each_daemon_metrics_has_its_own_registry() -> None:
    first, second = DaemonMetrics(), DaemonMetrics()  # a second one in the process would clash in a shared registry
    first.iterations.inc()
    assert second.iterations._value.get() == 0
    assert not [m for m in REGISTRY.collect() if m.name.startswith("tradingd_")]


def test_paper_daemon_counts_the_alpaca_adapters_calls_and_retries(tmp_path: Path) -> None:
    """Against the fake Alpaca server: the call counters are the adapters' own, and a 503 retried shows."""
    calendar = NyseCalendar()
    sessions = calendar.sessions_in_range(date(2017, 8, 1), date(2017, 8, 10))
    symbols = ("AAPL", "MSFT", "JPM", "XOM", "JNJ")
    server = FakeAlpacaServer(load_tape(symbols), now=calendar.session_open(sessions[0]) - timedelta(hours=1))
    with server:
        app = _paper_app(server, tmp_path, sessions, symbols=symbols, stop_mode="close")
        metrics = attach_metrics(app)
        server.inject(Fault("status", status=503), "GET", "/v2/account")
        asyncio.run(run_app(app))
        body = metrics_text(app.store.path, metrics)[0]
        samples = parse(body)
        assert isinstance(app.broker, AlpacaBroker)
        calls = {"trading": app.broker.api_calls, "data": app.market_data.api_calls}
        app.close()
    assert by_label(samples, "tradingd_broker_api_calls_total", "client") == calls
    assert calls["trading"] > 0
    assert calls["data"] > 0
    assert value(samples, "tradingd_broker_api_retries_total", client="trading") >= 1
    assert value(samples, "tradingd_iterations_total") == len(sessions)
    for secret in (server.key, server.secret):
        assert secret.encode() not in body
