"""`tradingd scan` sets itself up, `validate` only checks, and a sim replay never touches the cache they use.

Sim runs on the bundled bars (505 constituents, last session 2018-02-07); the paper test runs against the fake
Alpaca server on loopback.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from agents.daily_scan import static_screen
from config.settings import Settings, load_settings
from core.broker.alpaca_data import AlpacaMarketData
from core.broker.bar_cache import BarCache
from core.clock import NyseCalendar
from core.universe import FileUniverse
from core.volume_cache import VolumeCache
from tests.core.broker.conftest import RecordingSleep, ServerClock, fast_limiter
from tests.fakes.alpaca_server import FakeAlpacaServer
from tests.fakes.alpaca_tape import MarketTape, largest_symbols, load_tape
from tradingd.app import build_sim, daemon_volume_cache_path, run_app
from tradingd.cli_scan import register, scan_with_fresh_cache
from tradingd.configs import alpaca_connection, alpaca_data_options, scan_config, select_strategy
from tradingd.scan_runtime import ScanRuntime, default_as_of, volume_cache_path

SCANNABLE = 495  # 505 bundled constituents minus 10 single-letter symbols


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "TRADING_MODE": "sim",
        "DATA_DIR": str(tmp_path / "var"),
        "CANDIDATES_FILE": str(tmp_path / "candidates.json"),
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    for name in ("USE_SCANNER", "SYMBOLS", "SCAN_UNIVERSE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return values


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def invoke(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def scan_cache(env: dict[str, str]) -> Path:
    return Path(env["DATA_DIR"]) / "volume_cache.sim.db"


def fingerprint(path: Path) -> tuple[int, str]:
    return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def test_scan_on_a_fresh_data_dir_builds_the_cache_and_validate_passes(env: dict[str, str], cli: typer.Typer) -> None:
    code, out, err = invoke(cli, "scan", "--json")
    assert code == 0, err

    built = [e for e in events(err) if e["event"] == "volume_cache_built"]
    assert len(built) == 1
    assert built[0]["level"] == "info"
    assert built[0]["symbols"] == SCANNABLE
    document = json.loads(Path(env["CANDIDATES_FILE"]).read_text())
    assert json.loads(out)["candidates"] == document["candidates"]
    assert document["as_of"] == "2018-02-07"
    assert document["stats"]["cache_refresh"]["written"] == SCANNABLE
    assert document["stats"]["cache"]["hit_rate"] == 1.0
    assert len(document["candidates"]) == 10
    rvol = np.array([c["rvol"] for c in document["candidates"]])
    assert np.isfinite(rvol).all()
    assert np.unique(rvol).size == rvol.size  # real averages: no two picks share a made-up RVOL

    with VolumeCache(scan_cache(env)) as cache:
        summary = cache.summary(date(2018, 2, 6))
    assert summary["entries"] == summary["fresh"] == SCANNABLE

    code, out, err = invoke(cli, "validate", "--json")
    report = json.loads(out)
    assert code == 0, report
    assert [c["status"] for c in report["checks"]] == ["PASS"] * 5


def test_a_second_scan_fetches_nothing(env: dict[str, str], cli: typer.Typer) -> None:
    assert invoke(cli, "scan")[0] == 0
    code, out, err = invoke(cli, "scan", "--json")
    assert code == 0, err
    refresh = json.loads(out)["stats"]["cache_refresh"]
    assert refresh["skipped_fresh"] == SCANNABLE
    assert refresh["written"] == refresh["api_calls"] == 0
    assert not [e for e in events(err) if e["event"].startswith("volume_cache_")]


def test_human_output_says_what_the_refresh_did(env: dict[str, str], cli: typer.Typer) -> None:
    code, out, _ = invoke(cli, "scan")
    assert code == 0
    assert f"volume cache refresh: {SCANNABLE} written" in out


FIRST_SCANNABLE = "2013-03-11"  # the 21st bundled session: the first with 20 complete sessions before it


@pytest.mark.parametrize("command", [("scan",), ("cache", "refresh"), ("validate",)])
@pytest.mark.parametrize("as_of", ["2013-02-08", "2013-02-20", "2013-03-08"])  # 1st, 8th, 20th bundled session
def test_an_as_of_without_20_prior_sessions_is_bad_input(
    env: dict[str, str], cli: typer.Typer, command: tuple[str, ...], as_of: str
) -> None:
    # Too little history for any volume average: never defaulted, and refused before anything runs.
    code, out, err = invoke(cli, *command, "--as-of", as_of, "--json")
    assert code == 2
    message = (out if command == ("validate",) else err).strip()
    assert len(message.splitlines()) == 1
    assert f"--as-of {as_of}" in message
    assert f"first bundled session that can be scanned is {FIRST_SCANNABLE}" in message
    assert not Path(env["CANDIDATES_FILE"]).exists()
    assert not scan_cache(env).exists()


def test_the_first_scannable_session_scans(env: dict[str, str], cli: typer.Typer) -> None:
    code, out, err = invoke(cli, "scan", "--as-of", FIRST_SCANNABLE, "--json")
    assert code == 0, err
    assert json.loads(out)["stats"]["cache"]["hits"] > 0


def test_symbols_without_a_full_window_are_skipped_and_counted(env: dict[str, str], cli: typer.Typer) -> None:
    code, out, err = invoke(cli, "scan", "--as-of", "2013-03-12", "--json")
    assert code == 0, err
    stats = json.loads(out)["stats"]
    incomplete = stats["cache_refresh"]["incomplete"]
    assert incomplete > 0
    assert stats["cache_refresh"]["written"] + incomplete == SCANNABLE
    assert stats["cache"]["missing"] == incomplete


def test_validate_only_checks_and_names_the_fix(env: dict[str, str], cli: typer.Typer) -> None:
    code, out, _ = invoke(cli, "validate", "--json")
    assert code == 1
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert {n for n, c in checks.items() if c["status"] == "FAIL"} == {"volume_cache", "rvol", "candidates"}
    for name in ("volume_cache", "rvol", "candidates"):
        assert "`tradingd scan`" in checks[name]["detail"]
    with VolumeCache(scan_cache(env)) as cache:
        assert cache.summary()["entries"] == 0  # validate did not fill it behind the user's back

    code, out, _ = invoke(cli, "validate", "--as-of", "2017-06-01")
    assert code == 1
    assert "`tradingd scan --as-of 2017-06-01`" in out


def test_a_partial_replay_leaves_the_scan_cache_alone(env: dict[str, str], cli: typer.Typer) -> None:
    assert invoke(cli, "scan")[0] == 0
    before = fingerprint(scan_cache(env))

    settings = load_settings()
    assert settings.scanner_enabled
    app = build_sim(settings, end=date(2013, 4, 1))
    try:
        asyncio.run(run_app(app))
    finally:
        app.close()

    assert fingerprint(scan_cache(env)) == before
    replay_cache = daemon_volume_cache_path(settings)
    assert replay_cache == Path(env["DATA_DIR"]) / "sim" / "volume_cache.db"
    assert replay_cache != volume_cache_path(settings)
    with sqlite3.connect(replay_cache) as conn:
        (newest,) = conn.execute("SELECT MAX(as_of) FROM volume_averages").fetchone()
    assert newest < "2013-04-01"  # the replay did scan, into its own file

    code, out, _ = invoke(cli, "validate", "--json")
    assert code == 0, out


# ---- paper: the refresh goes through the Alpaca adapter, batched, cache-first -----------------------------------

PAPER_SYMBOLS = tuple(largest_symbols(29))


@pytest.fixture(scope="module")
def tape() -> MarketTape:
    return load_tape(PAPER_SYMBOLS)


@pytest.fixture
def server(tape: MarketTape) -> Iterator[FakeAlpacaServer]:
    fake = FakeAlpacaServer(tape, now=NyseCalendar().scan_time(date(2018, 1, 9)))
    with fake:
        yield fake


def _paper_runtime(server: FakeAlpacaServer, tmp_path: Path) -> tuple[ScanRuntime, AlpacaMarketData]:
    universe_file = tmp_path / "universe.txt"
    universe_file.write_text("\n".join(PAPER_SYMBOLS) + "\n")
    settings = Settings(
        trading_mode="paper",
        alpaca_api_key=server.key,
        alpaca_secret_key=server.secret,
        alpaca_trading_url=server.url,
        alpaca_data_url=server.url,
        data_dir=tmp_path / "var",
        data_chunk_size=10,
        scan_universe=universe_file,
        http_timeout_seconds=2.0,
    )
    clock = ServerClock(server)
    calendar = NyseCalendar()
    market_data = AlpacaMarketData(
        alpaca_connection(settings),
        alpaca_data_options(settings),
        clock,
        cache=BarCache(None),
        limiter=fast_limiter(),
        sleep=RecordingSleep(),
    )
    runtime = ScanRuntime(
        settings=settings,
        calendar=calendar,
        clock=clock,
        market_data=market_data,
        as_of=default_as_of(calendar, clock.now()),
        universe=FileUniverse(universe_file),
        cache_path=volume_cache_path(settings),
        major_symbols=("AAPL", "MSFT"),
        strategy=select_strategy(settings),
    )
    return runtime, market_data


def test_paper_scan_on_an_empty_cache_refreshes_it_in_batches(server: FakeAlpacaServer, tmp_path: Path) -> None:
    runtime, market_data = _paper_runtime(server, tmp_path)
    try:
        universe = asyncio.run(runtime.universe.load())
        scannable = static_screen(universe, scan_config(runtime.settings))
        assert runtime.as_of == date(2018, 1, 9)

        server.clear_requests()
        seen: list[tuple[int, int]] = []
        refresh, result = asyncio.run(scan_with_fresh_cache(runtime, lambda done, total: seen.append((done, total))))
        # One bars request per chunk of 10 symbols for the whole refresh, never one per symbol.
        chunks = -(-len(scannable) // 10)
        assert refresh.api_calls == chunks
        # The download reports its progress after every chunk, ending at the whole universe.
        assert len(seen) == chunks
        assert seen[-1] == (len(scannable), len(scannable))
        assert [done for done, _ in seen] == sorted(done for done, _ in seen)
        assert refresh.written == len(scannable)
        assert result.stats["cache"]["hits"] == len(scannable)
        with runtime.open_cache() as cache:
            assert cache.summary(date(2018, 1, 8))["fresh"] == len(scannable)

        # Cache-first: the next scan of the same session asks for no history to refresh.
        again, _ = asyncio.run(scan_with_fresh_cache(runtime))
        assert again.api_calls == 0
        assert again.skipped_fresh == len(scannable)
    finally:
        market_data.close()


def test_paper_scan_with_rejected_keys_is_one_line_and_exit_2(
    server: FakeAlpacaServer, cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    universe_file = tmp_path / "universe.txt"
    universe_file.write_text("AAPL\nMSFT\n")
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "TRADING_MODE": "paper",
        "ALPACA_API_KEY": "wrong",
        "ALPACA_SECRET_KEY": "wrong",
        "ALPACA_TRADING_URL": server.url,
        "ALPACA_DATA_URL": server.url,
        "SCAN_UNIVERSE": str(universe_file),
        "DATA_DIR": str(tmp_path / "var"),
        "LOG_LEVEL": "WARNING",  # ERROR would outlive the test: capture_logs keeps the level filter
    }.items():
        monkeypatch.setenv(name, value)

    code, out, err = invoke(cli, "scan", "--json")

    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1


# ---- a scan universe without a usable symbol, and validate agreeing with run -------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("NOPE\nZZZZ\n", "none of its 2 symbols is in the bundled data"),
        ("Symbol,Market Cap\nNOPE,1e9\n", "none of its 1 symbol is in the bundled data"),
        ("\x01\x02;;garbage??\n", "none of its 1 symbol is in the bundled data"),
        ("F\nT\n", "none of its 2 symbols is a symbol the scan takes"),  # in the data, but single letters
    ],
)
@pytest.mark.parametrize("command", [("scan",), ("cache", "refresh"), ("validate",)])
def test_a_scan_universe_without_a_usable_symbol_is_bad_input(
    env: dict[str, str],
    cli: typer.Typer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: str,
    reason: str,
    command: tuple[str, ...],
) -> None:
    universe = tmp_path / "u.txt"
    universe.write_text(content)
    monkeypatch.setenv("SCAN_UNIVERSE", str(universe))
    code, out, err = invoke(cli, *command)
    assert code == 2
    message = (out if command == ("validate",) else err).strip()
    assert len(message.splitlines()) == 1
    assert f"SCAN_UNIVERSE: {universe}: {reason}" in message
    assert not Path(env["CANDIDATES_FILE"]).exists()


def test_a_missing_scan_universe_names_the_variable(
    env: dict[str, str], cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCAN_UNIVERSE", str(tmp_path / "missing.txt"))
    code, _, err = invoke(cli, "scan")
    assert code == 2
    assert err.startswith("error: SCAN_UNIVERSE: cannot read universe file")


@pytest.mark.parametrize(
    ("settings_env", "needle"),
    [
        ({"BAR_TIMEFRAME": "15Min"}, "BAR_TIMEFRAME=15Min"),
        ({"SYMBOLS": "NOPE"}, "SYMBOLS: none of NOPE"),
        ({"SIM_START": "2020-01-01"}, "SIM_START 2020-01-01"),
        ({"MAX_POSITION_PCT": "0"}, "MAX_POSITION_PCT"),
    ],
)
def test_validate_fails_the_settings_run_refuses(
    env: dict[str, str], cli: typer.Typer, monkeypatch: pytest.MonkeyPatch, settings_env: dict[str, str], needle: str
) -> None:
    for key, value in settings_env.items():
        monkeypatch.setenv(key, value)
    code, out, _ = invoke(cli, "validate")
    assert code == 2
    assert out.startswith("FAIL  settings  ")
    assert needle in out
    assert len(out.strip().splitlines()) == 1

    code, out, _ = invoke(cli, "validate", "--json")
    assert code == 2
    report = json.loads(out)
    assert report["ok"] is False
    assert report["checks"][0]["name"] == "settings"
    assert needle in report["checks"][0]["detail"]


def test_cache_refresh_as_of_help_describes_the_refresh(cli: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps help at the terminal width: keep the sentence on one line
    result = CliRunner().invoke(cli, ["cache", "refresh", "--help"])
    assert result.exit_code == 0
    assert "the session to scan" not in result.stdout
    assert "refresh the averages a scan of this session needs" in result.stdout
