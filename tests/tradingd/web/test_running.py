"""Starting the dashboard: `tradingd serve` refusals (exit 2, one line), the token file, the bind rules, and the
daemon trading on when the dashboard cannot start."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs
from typer.testing import CliRunner

import tradingd.metrics
import tradingd.web.app
from config.settings import Settings
from core.errors import SetupError
from core.logging import close_logging, configure_logging
from core.redact import clear_secrets, register_secrets
from core.types import TradingMode
from tests.tradingd.web.conftest import start_server
from tradingd.app import build_sim, load_assets
from tradingd.cli import app
from tradingd.cli_daemon import _start_dashboard
from tradingd.web.server import PortUnavailableError, bind
from tradingd.web.token import TOKEN_FILE, DashboardAccess, check_bind, dashboard_access

runner = CliRunner()


@pytest.fixture
def taken_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def test_non_loopback_needs_a_token() -> None:
    with pytest.raises(SetupError, match=r"^DASHBOARD_TOKEN: must be set when DASHBOARD_HOST \(0\.0\.0\.0\)"):
        check_bind(Settings(dashboard_host="0.0.0.0"))
    with pytest.raises(SetupError, match="DASHBOARD_TOKEN: must be at least 16 characters"):
        check_bind(Settings(dashboard_host="0.0.0.0", dashboard_token="short"))
    access = dashboard_access(Settings(dashboard_host="10.1.2.3", dashboard_token="x" * 20))
    assert access.reads_need_token
    assert access.token_file is None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_hosts_need_no_token(host: str) -> None:
    check_bind(Settings(dashboard_host=host))


def test_a_token_is_generated_once_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, trading_mode=TradingMode.SIM)
    first = dashboard_access(settings)
    path = tmp_path / "sim" / TOKEN_FILE
    assert first.token_file == path
    assert not first.reads_need_token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.token) >= 40
    assert dashboard_access(settings).token == first.token  # the same token at every start
    os.chmod(path, 0o644)
    assert dashboard_access(settings).token == first.token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # made private again


def test_bind_names_a_taken_port(taken_port: int) -> None:
    with pytest.raises(PortUnavailableError, match=f"^DASHBOARD_PORT: 127.0.0.1:{taken_port} cannot be bound"):
        bind("127.0.0.1", taken_port)


@pytest.mark.usefixtures("cli_env")
def test_serve_without_a_state_db_exits_2() -> None:
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: no state DB at ")
    assert lines[0].endswith("var/sim/state.db: no daemon has run with this DATA_DIR and mode yet (--mode, DATA_DIR)")


@pytest.mark.usefixtures("cli_env")
def test_serve_refusals_are_one_line(monkeypatch: pytest.MonkeyPatch, taken_port: int) -> None:
    assert runner.invoke(app, ["replay", "--start", "2015-01-02", "--end", "2015-01-09", "--json"]).exit_code == 0
    taken = runner.invoke(app, ["serve", "--port", str(taken_port)])
    assert taken.exit_code == 2
    assert taken.output.strip() == (
        f"error: DASHBOARD_PORT: 127.0.0.1:{taken_port} cannot be bound: Address already in use"
    )
    monkeypatch.setenv("DASHBOARD_HOST", "0.0.0.0")
    open_ = runner.invoke(app, ["serve"])
    assert open_.exit_code == 2
    assert len(open_.output.strip().splitlines()) == 1
    assert open_.output.startswith("error: DASHBOARD_TOKEN: must be set when DASHBOARD_HOST (0.0.0.0)")


@pytest.mark.usefixtures("cli_env")
def test_replay_trades_on_when_the_dashboard_cannot_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, taken_port: int
) -> None:
    monkeypatch.setenv("DASHBOARD_ENABLED", "true")
    monkeypatch.setenv("DASHBOARD_PORT", str(taken_port))
    monkeypatch.setenv("SYMBOLS", "AAPL,MSFT,JPM")
    result = runner.invoke(app, ["replay", "--start", "2015-01-02", "--end", "2015-03-31", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["iterations"] > 50
    log = (tmp_path / "var" / "sim" / "logs" / "tradingd.log").read_text()
    failed = [json.loads(line) for line in log.splitlines() if '"dashboard_failed"' in line]
    assert len(failed) == 1
    assert "cannot be bound" in failed[0]["error"]


@pytest.mark.usefixtures("cli_env")
def test_replay_starts_the_dashboard_and_logs_the_token_path_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DASHBOARD_ENABLED", "true")
    monkeypatch.setenv("DASHBOARD_PORT", "0")
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    monkeypatch.setenv("SYMBOLS", "AAPL,MSFT")
    result = runner.invoke(app, ["replay", "--start", "2015-01-02", "--end", "2015-01-30", "--json"])
    assert result.exit_code == 0, result.output
    state = tmp_path / "var" / "sim"
    token = (state / TOKEN_FILE).read_text().strip()
    log = (state / "logs" / "tradingd.log").read_text()
    started = [json.loads(line) for line in log.splitlines() if '"dashboard_started"' in line]
    assert len(started) == 1
    assert started[0]["token_file"] == str(state / TOKEN_FILE)
    assert started[0]["url"].startswith("http://127.0.0.1:")
    assert token not in log
    assert token not in result.output


@pytest.mark.usefixtures("cli_env")
def test_run_with_an_open_host_and_no_token_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHBOARD_ENABLED", "true")
    monkeypatch.setenv("DASHBOARD_HOST", "0.0.0.0")
    result = runner.invoke(app, ["replay", "--start", "2015-01-02", "--end", "2015-01-09"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: DASHBOARD_TOKEN: must be set when DASHBOARD_HOST (0.0.0.0)")


def test_a_daemons_dashboard_serves_its_live_metrics_with_the_stored_ones(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, symbols=("AAPL", "MSFT"), log_level="ERROR", dashboard_enabled=True, dashboard_port=0
    )
    built = build_sim(settings, start=date(2015, 1, 2), end=date(2015, 1, 30))
    try:
        dashboard = _start_dashboard(built)
        assert dashboard is not None
        try:

            async def run() -> None:
                await load_assets(built)
                await built.orchestrator.run()

            asyncio.run(run())
            body = requests.get(f"{dashboard.server.url}metrics", timeout=30).text  # the url ends with "/"
        finally:
            dashboard.server.stop()
    finally:
        built.close()
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if not sample.labels
    }
    assert samples["tradingd_iterations_total"] == 20  # the sessions of January 2015 from the 2nd
    assert samples["tradingd_state_db_up"] == 1
    assert samples["tradingd_equity_dollars"] > 0


def test_a_failure_while_starting_the_dashboard_never_stops_trading(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(_: object) -> None:
        raise RuntimeError("metrics could not attach")

    monkeypatch.setattr(tradingd.metrics, "attach_metrics", broken)
    settings = Settings(
        data_dir=tmp_path, symbols=("AAPL", "MSFT"), log_level="ERROR", dashboard_enabled=True, dashboard_port=0
    )
    built = build_sim(settings, start=date(2015, 1, 2), end=date(2015, 1, 9))
    try:
        with capture_logs() as logs:
            assert _start_dashboard(built) is None  # logged, not raised
    finally:
        built.close()
    failed = [line for line in logs if line["event"] == "dashboard_failed"]
    assert [line["error"] for line in failed] == ["metrics could not attach"]
    assert not [thread for thread in threading.enumerate() if thread.name == "dashboard" and thread.is_alive()]


def test_an_endpoint_traceback_lands_masked_in_the_json_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    secret = "EndpointSecret0123456789abcdef"
    register_secrets(secret)

    def broken(*_: object) -> None:
        raise RuntimeError(f"endpoint bug near {secret}")

    monkeypatch.setattr(tradingd.web.app, "_health", broken)
    log_file = tmp_path / "dashboard.log"
    configure_logging("json", "INFO", log_file=log_file, quiet=True)
    settings = Settings(data_dir=tmp_path, symbols=("AAPL",))
    server = start_server(settings, DashboardAccess("t" * 32, reads_need_token=False, token_file=None))
    try:
        assert server.get("/api/health").status_code == 500
    finally:
        server.server.stop()
        close_logging()
        clear_secrets()
    errors = [json.loads(line) for line in log_file.read_text().splitlines() if "dashboard_server_error" in line]
    assert len(errors) == 1
    assert "RuntimeError: endpoint bug near ***" in errors[0]["exception"]
    assert secret not in log_file.read_text()
    assert "Traceback" not in capfd.readouterr().err  # not raw on stderr (logging's last-resort handler)
