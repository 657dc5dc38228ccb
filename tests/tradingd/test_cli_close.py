"""`tradingd close`: by a running daemon (a request it carries out at its next iteration) or in this process, against
the fake Alpaca server, whose clock the command reads (`TRADINGD_TEST_CLOCK=broker`) and which moves an hour at every
reading, so waiting for a fill costs no real time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from core.clock import NyseCalendar
from core.order_ids import client_order_id, is_protective_stop_id
from core.store import StateStore
from core.types import BrokerOrder, Fill, OrderSide, OrderStatus, Position
from tests.core.test_daemon_lock import start_holder
from tests.fakes.alpaca_server import FakeAlpacaServer, Fault
from tests.fakes.alpaca_tape import MarketTape, load_tape
from tests.state_db import journal_rows
from tradingd.cli import app

pytestmark = pytest.mark.usefixtures("cli_env")

runner = CliRunner()
SYMBOLS = ("AAPL", "MSFT", "XOM")
DAY = date(2017, 8, 2)
OPEN = NyseCalendar().session_open(DAY)
OWNED, USERS = Decimal(10), Decimal(2)  # the daemon's shares, and the user's own in the same account


@pytest.fixture(scope="module")
def tape() -> MarketTape:
    return load_tape(SYMBOLS)


@pytest.fixture
def server(tape: MarketTape) -> Iterator[FakeAlpacaServer]:
    with FakeAlpacaServer(tape, now=OPEN + timedelta(hours=2)) as fake:
        fake.clock_step = timedelta(hours=1)  # each reading of its clock moves it on: time passes only when asked
        yield fake


@pytest.fixture
def db(server: FakeAlpacaServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A paper state that owns 10 AAPL (the account holds 12), and the environment of a command run on it."""
    env = {
        "TRADING_MODE": "paper",
        "ALPACA_API_KEY": server.key,
        "ALPACA_SECRET_KEY": server.secret,
        "ALPACA_TRADING_URL": server.url,
        "ALPACA_DATA_URL": server.url,
        "ALPACA_STREAM_URL": server.stream_url,
        "USE_SCANNER": "false",
        "SYMBOLS": ",".join(SYMBOLS),
        "TRADING_RATE_LIMIT_PER_MIN": "1000000",
        "DATA_RATE_LIMIT_PER_MIN": "1000000",
        "TRADINGD_TEST_HOOKS": "1",
        "TRADINGD_TEST_CLOCK": "broker",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "var" / "paper" / "state.db"
    bought = OPEN - timedelta(days=1)
    coid = client_order_id("zscore_mr", "AAPL", OrderSide.BUY, bought)
    price = Decimal("150.00")
    with StateStore(path) as store, store.transaction():
        order = BrokerOrder(coid, "b-1", "AAPL", OrderSide.BUY, OrderStatus.FILLED, OWNED, None, OWNED, price, bought)
        store.upsert_order(order, strategy="zscore_mr")
        store.record_fill(Fill(f"b-1:{OWNED}", coid, "AAPL", OrderSide.BUY, OWNED, price, bought))
        store.save_positions({"AAPL": Position("AAPL", OWNED, price, price)})
    server.seed_position("AAPL", OWNED + USERS, price)
    return path


def close(*args: str) -> Result:
    return runner.invoke(app, ["close", *args])


def sells(server: FakeAlpacaServer) -> list[Any]:
    return [o for o in server.orders.values() if o.side == "sell"]


def status(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["status", "--json", *args])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_with_no_daemon_running_close_sells_the_owned_quantity_and_waits_for_the_fill(
    server: FakeAlpacaServer, db: Path
) -> None:
    result = close("aapl")
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    [sell] = sells(server)
    assert sell.qty == OWNED  # never the user's own 2 shares
    assert sell.status == "filled"  # at the next open: the command polled for it
    assert sell.client_order_id.startswith("td-manual-AAPL-s-")
    assert (
        line == f"close (paper): AAPL: sold 10 @ {sell.filled_avg_price.normalize():f} (order {sell.client_order_id})"
    )
    assert result.stderr == ""
    with StateStore(db) as store:
        record = store.order_record(sell.client_order_id)
        assert record is not None
        assert (record.strategy, record.order.status) == ("manual", OrderStatus.FILLED)  # the exit reason, stored
        assert store.load_positions() == {}
    exits = [r["payload"] for r in journal_rows(db) if r["type"] == "SignalGenerated"]
    assert [(e["symbol"], e["strategy"], e["reason"]) for e in exits] == [("AAPL", "manual", "manual")]
    assert status()["close_requests"] == []


def test_with_the_market_closed_the_order_waits_for_the_open(server: FakeAlpacaServer, db: Path) -> None:
    server.set_now(OPEN - timedelta(hours=3))
    result = close("AAPL")
    assert result.exit_code == 0, result.output
    [sell] = sells(server)
    assert sell.status == "accepted"
    assert result.stdout.strip() == (
        f"close (paper): AAPL: sell 10 queued for the open: the market is closed (order {sell.client_order_id})"
    )
    assert status()["close_requests"] == []  # placed: carried out


def test_while_halted_nothing_is_sold_and_the_request_says_why(server: FakeAlpacaServer, db: Path) -> None:
    assert runner.invoke(app, ["halt", "--reason", "ops"]).exit_code == 0
    result = close("AAPL")
    assert result.exit_code == 1
    assert result.stdout.strip() == (
        "close (paper): AAPL: not sold: halted: kill switch engaged; the request stays for the daemon"
    )
    assert sells(server) == []
    [request] = status()["close_requests"]
    assert (request["target"], request["tag"], request["refused"]) == ("AAPL", "manual", "halted: kill switch engaged")


def test_a_sell_the_broker_refuses_leaves_the_position_under_its_stop_not_bare(
    server: FakeAlpacaServer, db: Path
) -> None:
    server.inject(Fault.http(403, message="account is not allowed to trade"), "POST", "/v2/orders")
    result = close("AAPL")
    assert result.exit_code == 1, result.output
    [stop] = sells(server)  # the refused sell never landed; the close pass's stop step protected the position
    assert is_protective_stop_id(stop.client_order_id)
    assert (stop.type, stop.time_in_force, stop.qty, stop.status) == ("stop", "gtc", OWNED, "accepted")
    assert status()["close_requests"], "the request stays for the daemon"


def test_a_running_daemon_is_asked_and_a_restarted_one_still_closes(server: FakeAlpacaServer, db: Path) -> None:
    holder = start_holder(db.parent)  # a daemon holds this state
    try:
        result = close("AAPL")
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith(f"close requested (paper): tradingd pid {holder.pid} (started ")
        assert result.stdout.strip().endswith(", run) holds this state and sells at its next iteration: AAPL 10")
        again = close("AAPL")
        assert again.exit_code == 0, again.output
        assert "note: AAPL was already requested at " in again.stdout
        assert server.count("POST", "/v2/orders") == 0  # the command itself never trades while a daemon runs
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    [request] = status()["close_requests"]
    assert request["target"] == "AAPL"

    # That daemon stopped before its next iteration; the request is in the state DB, so the next one sells.
    run = runner.invoke(app, ["run", "--iterations", "2"])
    assert run.exit_code == 0, run.output
    [sell] = sells(server)
    assert (sell.qty, sell.client_order_id[:17]) == (OWNED, "td-manual-AAPL-s-")
    assert status()["close_requests"] == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["TSLA"], "error: close: TSLA is not a position the daemon owns (it owns: AAPL 10)"),
        ([], "give one or more symbols, or --all"),
        (["AAPL", "--all"], "give one or more symbols, or --all"),
    ],
)
def test_bad_input_exits_2_with_one_line(server: FakeAlpacaServer, db: Path, args: list[str], needle: str) -> None:
    result = close(*args)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert "Traceback" not in result.output
    assert sells(server) == []
    assert status()["close_requests"] == []


def test_a_symbol_not_held_is_refused_before_any_request_while_a_daemon_runs(db: Path) -> None:
    holder = start_holder(db.parent)
    try:
        result = close("AAPL", "xom")
    finally:
        holder.kill()
        holder.wait()
        for stream in (holder.stdin, holder.stdout):
            assert stream is not None
            stream.close()
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: close: XOM is not a position the daemon owns (it owns: AAPL 10)"
    assert status()["close_requests"] == []


def test_close_acts_on_paper_or_live_only(monkeypatch: pytest.MonkeyPatch) -> None:
    result = close("AAPL", "--mode", "sim")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: close acts on a paper/live account; this is sim (use --mode paper or live)"


def test_status_shows_a_pending_close(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one row per line: the refusal is not folded
    assert runner.invoke(app, ["halt"]).exit_code == 0
    assert close("AAPL").exit_code == 1
    table = runner.invoke(app, ["status"])
    assert table.exit_code == 0, table.output
    [row] = [line for line in table.stdout.splitlines() if "close AAPL" in line]
    assert "manual, requested " in row
    assert row.rstrip(" │").endswith("last refused: halted: kill switch engaged")
