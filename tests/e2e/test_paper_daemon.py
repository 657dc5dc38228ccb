"""The daemon in paper mode against the local fake Alpaca server: the same decisions as sim on the same bars.

Timing: sim decides at the close of session t and fills at the open of t+1. Paper with daily bars sees bar t once it
is complete, so the paper run decides before the open of t+1 (09:00 ET) and fills at that same open. With slippage
off, both runs must place the same orders (ids, sides, amounts), and the server must hold no duplicate client ids.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from core.bars import default_sim_tiers
from core.broker.alpaca_http import RetryPolicy
from core.broker.bar_cache import BarCache
from core.clock import NyseCalendar
from core.types import BrokerOrder
from tests.core.broker.conftest import RecordingSleep, ServerClock, fast_limiter
from tests.fakes.alpaca_server import FakeAlpacaServer
from tests.fakes.alpaca_tape import MarketTape, largest_symbols, load_tape
from tradingd.app import App, build_live, build_sim, run_app
from tradingd.orchestrator import Schedule, Tick

FIRST, LAST = date(2017, 8, 1), date(2017, 11, 30)
SYMBOLS = tuple(largest_symbols(29))


@pytest.fixture(scope="module")
def tape() -> MarketTape:
    return load_tape(SYMBOLS)


class PreOpenSchedule:
    """One iteration per session at 09:00 ET, moving the fake server's clock (which fills due orders)."""

    def __init__(self, server: FakeAlpacaServer, sessions: list[date]) -> None:
        self._server = server
        self._sessions = sessions
        self._calendar = NyseCalendar()

    async def __aiter__(self) -> AsyncIterator[Tick]:
        for session in self._sessions:
            self._server.set_now(self._calendar.session_open(session) - timedelta(minutes=30))
            yield Tick.ITERATE


def _settings(symbols: tuple[str, ...] = SYMBOLS, **values: Any) -> Settings:
    universe = Settings().sim_universe_file
    tiers = default_sim_tiers(universe, set(symbols))
    return Settings(
        use_scanner=False, symbols=symbols, symbol_tiers=tiers, sim_slippage_bps=0, log_level="ERROR", **values
    )


def _stored_orders(app: App) -> list[BrokerOrder]:
    return [r.order for r in app.store.order_records()]


def _sim_orders(tmp: Path, sessions: list[date]) -> dict[str, tuple[str, str, Any, Any]]:
    app = build_sim(_settings(data_dir=tmp, stop_mode="close"), start=sessions[0], end=sessions[-1])
    asyncio.run(run_app(app))
    orders = {o.client_order_id: (o.symbol, o.side.value, o.qty, o.notional) for o in _stored_orders(app)}
    app.close()
    return orders


def _paper_app(
    server: FakeAlpacaServer, data_dir: Path, sessions: list[date], *, schedule: Schedule | None = None, **values: Any
) -> App:
    """The daemon in paper mode against the fake, its clock reading the server's, waits that cost nothing; one
    iteration before each session's open unless another `schedule` is given."""
    settings = _settings(
        **values,
        data_dir=data_dir,
        trading_mode="paper",
        alpaca_api_key=server.key,
        alpaca_secret_key=server.secret,
        alpaca_trading_url=server.url,
        alpaca_data_url=server.url,
        alpaca_stream_url=server.stream_url,
        http_timeout_seconds=10.0,
    )
    sleep = RecordingSleep()
    options = {
        "market_data": {"cache": BarCache(None), "limiter": fast_limiter(), "sleep": sleep},
        "broker": {"limiter": fast_limiter(), "retry": RetryPolicy(), "sleep": sleep},
    }
    schedule = schedule or PreOpenSchedule(server, sessions)
    return build_live(settings, clock=ServerClock(server), schedule=schedule, adapter_options=options)


def test_paper_against_the_fake_places_what_sim_places(tape: MarketTape, tmp_path: Path) -> None:
    calendar = NyseCalendar()
    sessions = calendar.sessions_in_range(FIRST, LAST)
    decided_on = sessions[:-1]  # sim decides at these closes ...
    executed_on = sessions[1:]  # ... paper at the next pre-opens
    expected = _sim_orders(tmp_path / "sim", decided_on)
    assert len(expected) >= 10, "the period must exercise entries and exits"

    server = FakeAlpacaServer(tape, now=calendar.session_open(executed_on[0]) - timedelta(hours=1))
    with server:
        # The decisions are compared: stops are placed on different ticks here (sim at the open, this harness before
        # it) and are held to agree with the fake by tests/core/broker/test_stops_sim_vs_fake.py.
        app = _paper_app(server, tmp_path / "paper", executed_on, stop_mode="close")
        asyncio.run(run_app(app))
        paper = {o.client_order_id: (o.symbol, o.side.value, o.qty, o.notional) for o in _stored_orders(app)}
        server_ids = Counter(o.client_order_id for o in server.orders.values())
        app.close()

    assert paper == expected
    assert set(server_ids) == set(expected)
    assert max(server_ids.values()) == 1  # zero duplicate client order ids on the server


def test_bad_keys_stop_the_daemon_with_a_clear_message(
    tape: MarketTape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner  # noqa: PLC0415 - only this test drives the CLI

    from tradingd.cli import app as cli  # noqa: PLC0415

    with FakeAlpacaServer(tape) as server:
        for name, value in {
            "TRADING_MODE": "paper",
            "ALPACA_API_KEY": "wrong-key",
            "ALPACA_SECRET_KEY": "wrong-secret",
            "ALPACA_TRADING_URL": server.url,
            "ALPACA_DATA_URL": server.url,
            "ALPACA_STREAM_URL": server.stream_url,
            "DATA_DIR": str(tmp_path),
            "LOG_LEVEL": "ERROR",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(cli, ["run", "--iterations", "1"])
    assert result.exit_code == 2
    assert "401" in result.stderr or "unauthor" in result.stderr.lower()
    assert "wrong-secret" not in result.stderr


def test_restarting_every_session_loses_no_fill_and_duplicates_no_order(tape: MarketTape, tmp_path: Path) -> None:
    """One process per session (a restart, or `run --once` from cron): fills that happen while no daemon runs are
    recovered at the next start-up, and the orders match a single long-running process."""
    calendar = NyseCalendar()
    sessions = calendar.sessions_in_range(FIRST, date(2017, 9, 29))
    server = FakeAlpacaServer(tape, now=calendar.session_open(sessions[0]) - timedelta(hours=1))
    with server:
        for session in sessions:
            app = _paper_app(server, tmp_path / "paper", [session])
            asyncio.run(run_app(app))
            app.close()
        server.set_now(calendar.session_close(sessions[-1]))  # the last orders fill after the last process ended
        app = _paper_app(server, tmp_path / "paper", [])
        asyncio.run(run_app(app))
        fills = app.store.fills()
        orders = _stored_orders(app)
        server_filled = {o.client_order_id for o in server.orders.values() if o.status == "filled"}
        server_ids = Counter(o.client_order_id for o in server.orders.values())
        app.close()
    assert server_filled
    assert {f.client_order_id for f in fills} == server_filled
    assert len(fills) == len(server_filled)
    assert {o.client_order_id for o in orders} == set(server_ids)
    assert max(server_ids.values()) == 1
