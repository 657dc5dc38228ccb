"""`tradingd report`: options, outputs, bad input; and the report rows at the end of `run`/`replay`.

Most tests replace `_build` / `_build_run` by the hand-built fixture report (tests/analytics/sample_report.py): they
are about the presentation and the command's wiring. The last ones run the real builder on a short replay."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from analytics.csv_export import EQUITY_COLUMNS, LEDGER_COLUMNS
from analytics.model import Report, report_json
from config.settings import Settings
from core.clock import NyseCalendar
from core.console import summary_table
from core.store import StateStore
from core.types import Fill, OrderSide, OrderStatus, TradingMode
from tests.analytics.sample_report import small_report
from tests.core.store.records import make_order
from tests.fakes.alpaca_server import FakeAlpacaServer
from tests.fakes.alpaca_tape import load_tape
from tradingd import cli_report
from tradingd.cli import app

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("cli_env")

Calls = list[tuple[TradingMode, date | None, date | None]]


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Calls:
    """A sim state DB exists, and the builder answers with the fixture report; the calls it got are recorded."""
    StateStore(tmp_path / "var" / "sim" / "state.db").close()
    calls: Calls = []

    def build(settings: Settings, mode: TradingMode, from_: date | None, to: date | None) -> Report:
        calls.append((mode, from_, to))
        return small_report()

    monkeypatch.setattr(cli_report, "_build", build)
    return calls


def test_json_is_one_object_of_the_contract(built: Calls) -> None:
    result = runner.invoke(app, ["report", "--from", "2017-01-03", "--to", "2017-03-27", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(json.dumps(report_json(small_report())))
    assert built == [(TradingMode.SIM, date(2017, 1, 3), date(2017, 3, 27))]


def test_terminal_summary_shows_the_benchmark_trades_tiers_and_symbols(built: Calls) -> None:
    result = runner.invoke(app, ["report"])
    assert result.exit_code == 0, result.output
    for text in ("total return", "benchmark: equal-weight buy-and-hold of 3 symbols", "Sharpe", "win rate",
                 "by tier", "TIER1", "TIER2", "symbols by trades", "AAPL", "survivorship", "conventions:"):  # fmt: skip
        assert text in result.stdout, text
    assert "n/a" in result.stdout  # the fixture's undefined Calmar: never inf


def test_html_and_csv_files(built: Calls, tmp_path: Path) -> None:
    page, ledger, equity = tmp_path / "out" / "r.html", tmp_path / "ledger.csv", tmp_path / "equity.csv"
    args = ["report", "--html", str(page), "--ledger-csv", str(ledger), "--equity-csv", str(equity)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"HTML report: {page}" in result.stdout
    report = small_report()

    text = page.read_text()
    assert text.count("Plotly.newPlot(") == 5 + len(report.top_symbols)
    assert "<script src" not in text  # offline: plotly.js inlined, nothing fetched
    assert "<link" not in text

    rows = list(csv.DictReader(ledger.open()))
    assert tuple(rows[0]) == LEDGER_COLUMNS
    assert len(rows) == len(report.ledger)
    first = report.ledger[0]
    assert rows[0]["entry_time"] == first.entry_time.isoformat()  # ISO, with its UTC offset
    assert rows[0]["exit_reason"] == first.exit_reason.value
    assert rows[0]["pnl"] == f"{first.pnl:f}"

    lines = equity.read_text().splitlines()
    assert tuple(lines[0].split(",")) == EQUITY_COLUMNS
    assert len(lines) - 1 == len(report.series.sessions)
    assert lines[1] == f"{report.series.sessions[0].isoformat()},{report.series.equity[0]:.2f},"  # benchmark not yet
    assert lines[2].split(",")[2] == f"{report.series.benchmark_equity[1]:.2f}"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--from", "2018-13-01"], "--from"),
        (["--to", "yesterday"], "--to"),
        (["--from", "2018-02-01", "--to", "2018-01-01"], "--from 2018-02-01 is after --to 2018-01-01"),
    ],
)
def test_a_bad_date_exits_2_naming_the_option(built: Calls, args: list[str], named: str) -> None:
    result = runner.invoke(app, ["report", *args])
    assert result.exit_code == 2
    assert named in result.output
    assert "Traceback" not in result.output
    assert built == []


@pytest.mark.parametrize("option", ["--html", "--ledger-csv", "--equity-csv"])
def test_an_unwritable_path_exits_2_in_one_line_naming_the_option(built: Calls, tmp_path: Path, option: str) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for target, reason in ((folder, "is a directory"), (blocker / "r.out", f"{blocker} exists and is not a directory")):
        result = runner.invoke(app, ["report", option, str(target)])
        assert result.exit_code == 2, result.output
        assert result.output.strip() == f"error: {option} {target}: {reason}"
    assert built == []  # checked before any work


def test_no_state_db_is_nothing_to_report_exit_0_and_creates_no_db(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["sessions"] == 0
    assert "no daemon has run" in answer["message"]
    assert not (tmp_path / "var" / "sim" / "state.db").exists()
    plain = runner.invoke(app, ["report", "--mode", "paper"])
    assert plain.exit_code == 0
    assert plain.stdout.startswith("nothing to report: no session in the paper state DB")


def test_a_state_db_without_sessions_is_nothing_to_report(tmp_path: Path) -> None:
    StateStore(tmp_path / "var" / "sim" / "state.db").close()
    result = runner.invoke(app, ["report"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("nothing to report: no session in the sim state DB")


def test_a_paper_report_without_keys_is_one_line_exit_2_naming_them(tmp_path: Path) -> None:
    with StateStore(tmp_path / "var" / "paper" / "state.db") as store:
        store.mark_equity(date(2024, 3, 1), Decimal("100000"))
    result = runner.invoke(app, ["report", "--mode", "paper"])
    assert result.exit_code == 2
    assert result.output.startswith("error: report --mode paper: ALPACA_API_KEY and ALPACA_SECRET_KEY are needed")
    assert len(result.output.strip().splitlines()) == 1


def test_replay_checks_its_report_path_before_replaying(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    result = runner.invoke(app, ["replay", "--report", str(tmp_path / "taken")])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: --report {tmp_path / 'taken'}: is a directory"


# ---- the end of run / replay ----------------------------------------------------------------------------------------


def _summary_text(summary: dict[str, Any]) -> str:
    out = io.StringIO()
    Console(file=out, width=200).print(summary_table(summary))
    return out.getvalue()


def _run_summary(**extra: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "mode": "sim", "strategy": "zscore", "iterations": 60, "bars": 100, "signals": 1, "validated": 1,
        "rejected": {}, "orders_approved": 1, "orders": 1, "denied": {}, "orders_rejected": {}, "orders_canceled": {},
        "fills": 1, "bad_bars": {}, "errors": {}, "start_equity": "100000", "final_equity": "101000",
        "return_pct": 1.0, "max_drawdown_pct": 0.5, "exposure_by_tier": {}, "elapsed_s": 1.0, "bars_per_s": 100.0,
        "focus": {"source": "settings", "daily_scans": 0, "symbols": ["AAPL"]},
        "stops": {"mode": "close"},
    }  # fmt: skip
    return summary | extra


def test_the_run_summary_ends_with_the_report_rows_and_the_html_path(tmp_path: Path) -> None:
    summary = _run_summary()
    cli_report.add_report_to_summary(summary, small_report(), tmp_path / "sim" / "report.html")
    text = _summary_text(summary)
    assert "return vs benchmark" in text
    assert "equal-weight buy-and-hold of 3 symbols" in text
    for row in (
        "Sharpe",
        "max drawdown (daily)",
        "round trips",
        "win rate 62.5%",
        str(tmp_path / "sim" / "report.html"),
    ):
        assert row in text, row
    assert text.rstrip().splitlines()[-2].lstrip("│ ").startswith("report")  # the last row: where the HTML is


def test_without_a_report_the_run_summary_is_unchanged() -> None:
    summary = _run_summary()
    cli_report.add_report_to_summary(summary, None, Path("unused.html"))
    assert "report" not in summary
    assert "return vs benchmark" not in _summary_text(summary)


def test_run_writes_the_html_report_beside_the_state_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cli_report, "_build_run", lambda store, settings: small_report())
    result = runner.invoke(app, ["run", "--iterations", "5", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    page = tmp_path / "var" / "sim" / "report.html"
    assert summary["report_html"] == str(page)
    assert page.read_text().startswith("<!doctype html>")
    assert summary["report"]["benchmark"]["name"] == "equal-weight buy-and-hold of 3 symbols"


def test_replay_report_option_writes_the_html_and_embeds_the_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cli_report, "_build_run", lambda store, settings: small_report())
    page = tmp_path / "replay.html"
    result = runner.invoke(
        app, ["replay", "--start", "2017-01-03", "--end", "2017-01-20", "--report", str(page), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["report"] == json.loads(json.dumps(report_json(small_report())))
    assert page.is_file()


# ---- the real builder -----------------------------------------------------------------------------------------------


def test_a_replay_report_and_the_report_command_agree_on_the_real_figures(tmp_path: Path) -> None:
    page = tmp_path / "q1.html"
    replay = runner.invoke(
        app, ["replay", "--start", "2017-01-03", "--end", "2017-03-31", "--report", str(page), "--json"]
    )
    assert replay.exit_code == 0, replay.output
    embedded = json.loads(replay.stdout.strip().splitlines()[-1])["report"]
    assert embedded["start"] == "2017-01-03"
    assert embedded["end"] == "2017-03-31"
    # The scanner is on by default in sim: the benchmark holds the whole scanned universe, the bundled 505, of which
    # 500 trade in the first quarter of 2017 (the other 5 have no bar then).
    assert embedded["benchmark"]["name"] == "equal-weight buy-and-hold of 500 symbols"
    assert "survivorship" in embedded["benchmark"]["note"]
    assert page.read_text().startswith("<!doctype html>")

    again = runner.invoke(app, ["report", "--json", "--ledger-csv", str(tmp_path / "ledger.csv")])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == embedded  # the command rebuilds the same report from the store
    with (tmp_path / "ledger.csv").open() as handle:
        trips = list(csv.DictReader(handle))
    assert len(trips) == embedded["trades"]
    assert {trip["exit_reason"] for trip in trips} <= {"signal", "stop_loss", "breaker", "manual"}


def test_with_symbols_the_benchmark_holds_those_symbols_also_for_a_later_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYMBOLS", "AAPL,MSFT,XOM")
    result = runner.invoke(app, ["replay", "--start", "2017-01-03", "--end", "2017-02-28", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])["report"]
    assert report["benchmark"]["name"] == "equal-weight buy-and-hold of 3 symbols"
    # A later `tradingd report` in another shell (no SYMBOLS: the scanner would be on) reads the run's own record.
    monkeypatch.delenv("SYMBOLS")
    later = runner.invoke(app, ["report", "--json"])
    assert later.exit_code == 0, later.output
    assert json.loads(later.stdout)["benchmark"]["name"] == "equal-weight buy-and-hold of 3 symbols"


def test_a_window_starts_from_the_close_before_it_and_names_the_trips_entered_earlier(tmp_path: Path) -> None:
    replay = runner.invoke(app, ["replay", "--start", "2016-01-04", "--end", "2016-06-30", "--json"])
    assert replay.exit_code == 0, replay.output
    with StateStore(tmp_path / "var" / "sim" / "state.db") as store:
        base = store.equity_mark(date(2016, 2, 29))
        last = store.equity_mark(date(2016, 5, 31))
    assert base is not None
    assert last is not None
    result = runner.invoke(app, ["report", "--json", "--from", "2016-03-01", "--to", "2016-05-31"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["start"] == "2016-03-01"
    assert report["start_equity"] == float(round(base.last_equity, 2))  # the close before the window
    expected = (float(last.last_equity) / float(base.last_equity) - 1) * 100
    assert report["total_return_pct"] == pytest.approx(expected, abs=1e-9)
    assert any("entered before 2016-03-01" in note for note in report["notes"])


def test_a_report_that_cannot_be_written_never_costs_the_run_its_summary(tmp_path: Path) -> None:
    (tmp_path / "var" / "sim" / "report.html").mkdir(parents=True)
    result = runner.invoke(app, ["run", "--iterations", "3", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["iterations"] == 3
    assert "report.html" in summary["report_error"]
    assert "report" not in summary


def test_the_writability_probe_leaves_no_folder_behind(tmp_path: Path) -> None:
    target = tmp_path / "out" / "deep" / "r.html"
    result = runner.invoke(app, ["report", "--html", str(target)])  # no state DB: nothing to report
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "out").exists()


# ---- paper: bars through the real Alpaca adapter against the fake server --------------------------------------------


def test_a_paper_report_values_through_the_market_data_api_and_says_why_it_has_no_spy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The bundled data (the fake server's tape) has no ETFs: SPY cannot be fetched, so the report has no benchmark and
    # says why, rather than making one up.
    server = FakeAlpacaServer(load_tape(("AAPL", "MSFT")), now=NyseCalendar().scan_time(date(2018, 1, 9)))
    with server:
        for name, value in {
            "TRADING_MODE": "paper",
            "ALPACA_API_KEY": server.key,
            "ALPACA_SECRET_KEY": server.secret,
            "ALPACA_TRADING_URL": server.url,
            "ALPACA_DATA_URL": server.url,
            "HTTP_TIMEOUT_SECONDS": "5",
        }.items():
            monkeypatch.setenv(name, value)
        with StateStore(tmp_path / "var" / "paper" / "state.db") as store:
            for day, equity in ((2, "100000"), (3, "100000"), (4, "100050"), (5, "100120"), (8, "100100")):
                store.mark_equity(date(2018, 1, day), Decimal(equity))
            buy = make_order("td-zscore_mr-AAPL-b-1", status=OrderStatus.FILLED, filled_qty=Decimal(10))
            sell = make_order("td-zscore_mr-AAPL-s-1", status=OrderStatus.FILLED, side=OrderSide.SELL, qty=Decimal(10))
            store.upsert_order(buy, strategy="zscore_mr", tier="TIER1")
            store.upsert_order(sell, strategy="zscore_mr", tier="TIER1")
            for execution, order, side, price, day in (
                ("x-1", buy, OrderSide.BUY, "170.00", 3),
                ("x-2", sell, OrderSide.SELL, "175.50", 5),
            ):
                store.record_fill(
                    Fill(
                        execution_id=execution,
                        client_order_id=order.client_order_id,
                        symbol="AAPL",
                        side=side,
                        qty=Decimal(10),
                        price=Decimal(price),
                        ts=datetime(2018, 1, day, 14, 30, tzinfo=UTC),
                    )
                )
        result = runner.invoke(app, ["report", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["mode"], report["start"], report["end"]) == ("paper", "2018-01-02", "2018-01-08")
    assert report["trades"] == 1
    assert report["by_symbol"][0]["pnl"] == 55.0  # (175.50 - 170.00) x 10
    assert report["benchmark"] is None
    assert any("SPY" in note for note in report["notes"])
    assert report["exposure_pct"] is not None  # the position was valued at the closes the API served
