"""`build_report` on a real replay: the issue's proof (the ledger's total P&L is the change in equity minus the open
positions' unrealised P&L, to the cent), the JSON contract, the period filter, and the benchmark's absence."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from analytics.benchmark import UnavailableBenchmark
from analytics.build import ReportDataError, build_report, live_report_inputs, sim_report_inputs
from analytics.ledger import OrderTags, build_ledger
from analytics.model import ExitReason, Report, report_json
from config.settings import Settings
from core.bars import load_daily_bars
from core.broker.replay import ReplayMarketData
from core.clock import SimClock
from core.store import StateStore
from core.timeconv import NEW_YORK
from core.types import BarFrame, OrderSide
from tradingd.app import App, build_sim, load_assets
from tradingd.cli_report import sim_tradable_symbols

# A cheaper configuration than the default replay (29 symbols from the scanner, 5 years): six real symbols over
# about two years, ending with positions open, fixed stops (the default): signals, stop-losses and open lots all occur.
SYMBOLS = ("AAPL", "MSFT", "XOM", "JPM", "DHR", "O")
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("replay"), use_scanner=False, symbols=SYMBOLS, log_level="ERROR"
    )
    app = build_sim(settings, start=date(2015, 1, 2), end=date(2016, 11, 8))

    async def run() -> None:
        await load_assets(app)
        await app.orchestrator.run()

    asyncio.run(run())
    yield app
    app.close()


def _report(app: App, history: BarFrame, **period: date) -> Report:
    bars, benchmark = sim_report_inputs(history, SYMBOLS)
    return build_report(app.store, mode="sim", bars=bars, benchmark=benchmark, **period)


def test_ledger_pnl_is_the_change_in_equity_less_open_positions_unrealised_pnl(
    replayed: App, small_history: BarFrame
) -> None:
    report = _report(replayed, small_history)
    store = replayed.store
    ledger = build_ledger(store.fills(), {k: OrderTags(*v) for k, v in store.order_tags().items()})
    positions = store.load_positions()
    assert ledger.open_lots, "the configuration should end with open positions"
    unrealised = sum((lot.qty * (positions[lot.symbol].market_price - lot.price) for lot in ledger.open_lots), D0)
    realised = sum((trip.pnl for trip in report.ledger), D0)

    assert realised.quantize(CENT) == (report.final_equity - report.start_equity - unrealised).quantize(CENT)
    assert len(report.ledger) == report.trades.trades > 20
    assert {trip.exit_reason for trip in report.ledger} == {ExitReason.SIGNAL, ExitReason.STOP_LOSS}
    assert any(note.startswith(f"{len(ledger.open_lots)} open lot(s)") for note in report.notes)


def test_close_based_stop_loss_exits_are_labelled_stop_loss_in_the_ledger(
    tmp_path: Path, small_history: BarFrame
) -> None:
    # STOP_MODE=close sells through the strategy's own tag (client ids derive from it); the reason stored with the
    # order at staging is what tells its stop-loss exits from its signal exits.
    settings = Settings(data_dir=tmp_path, use_scanner=False, symbols=SYMBOLS, stop_mode="close", log_level="ERROR")
    app = build_sim(settings, start=date(2015, 1, 2), end=date(2016, 11, 8))

    async def run() -> None:
        await load_assets(app)
        await app.orchestrator.run()

    try:
        asyncio.run(run())
        sells = [r for r in app.store.order_records() if r.order.side is OrderSide.SELL and r.order.filled_qty > 0]
        tags = {r.strategy for r in sells}
        reasons = {r.exit_reason for r in sells}
        bars, benchmark = sim_report_inputs(small_history, SYMBOLS)
        report = build_report(app.store, mode="sim", bars=bars, benchmark=benchmark)
    finally:
        app.close()
    assert tags == {"zscore_mr"}  # one tag for both kinds of exit
    assert reasons == {ExitReason.SIGNAL, ExitReason.STOP_LOSS}
    assert {trip.exit_reason for trip in report.ledger} == {ExitReason.SIGNAL, ExitReason.STOP_LOSS}


D0 = Decimal(0)


def test_fill_times_are_the_real_times_of_the_fills(replayed: App, small_history: BarFrame) -> None:
    report = _report(replayed, small_history)
    entry_clock = {trip.entry_time.astimezone(NEW_YORK).strftime("%H:%M") for trip in report.ledger}
    exit_clock = {trip.exit_time.astimezone(NEW_YORK).strftime("%H:%M") for trip in report.ledger}
    assert entry_clock == {"09:30"}  # market orders fill at the session's open
    assert exit_clock <= {"09:30", "16:00", "13:00"}  # the open, or a stop within the bar at the (early) close
    assert "09:30" in exit_clock


def test_json_contract_has_every_key_and_no_infinity(replayed: App, small_history: BarFrame) -> None:
    data = report_json(_report(replayed, small_history))
    text = json.dumps(data, allow_nan=False)  # an undefined value is null, never NaN or infinity
    assert json.loads(text) == data
    for key in (
        "start", "end", "start_equity", "final_equity", "total_return_pct", "cagr_pct", "volatility_pct", "sharpe",
        "sortino", "calmar", "max_drawdown_pct", "max_drawdown_days", "exposure_pct", "trades", "win_rate_pct",
        "profit_factor", "expectancy", "avg_hold_days", "benchmark", "alpha", "beta", "by_symbol", "by_tier",
    ):  # fmt: skip
        assert key in data
    assert data["benchmark"]["name"] == f"equal-weight buy-and-hold of {len(SYMBOLS)} symbols"
    assert set(data["benchmark"]) >= {"name", "total_return_pct", "cagr_pct", "max_drawdown_pct", "sharpe"}
    assert data["alpha"] is not None
    assert data["beta"] is not None
    assert {row["symbol"] for row in data["by_symbol"]} <= set(SYMBOLS)
    assert sum(row["trades"] for row in data["by_symbol"]) == data["trades"]
    assert sum(tier["trades"] for tier in data["by_tier"].values()) == data["trades"]


def test_a_period_keeps_its_sessions_and_the_trips_closed_in_it(replayed: App, small_history: BarFrame) -> None:
    whole = _report(replayed, small_history)
    part = _report(replayed, small_history, from_date=date(2016, 1, 1), to_date=date(2016, 6, 30))
    assert (part.start, part.end) == (date(2016, 1, 4), date(2016, 6, 30))
    assert part.series.sessions[0] == part.start
    assert len(part.series.equity) == len(part.series.benchmark_equity) == len(part.series.sessions)
    assert part.series.benchmark_equity[0] is not None
    assert 0 < len(part.ledger) < len(whole.ledger)
    assert all(date(2016, 1, 1) <= trip.exit_time.astimezone(NEW_YORK).date() <= part.end for trip in part.ledger)
    assert len(part.top_symbols) == min(5, len({t.symbol for t in part.ledger}))
    top = part.top_symbols[0]
    assert len(top.sessions) == len(top.closes) > 100
    assert len(top.entries) == len(top.exits) == part.by_symbol[0].stats.trades


def test_without_a_benchmark_the_report_says_why(replayed: App, small_history: BarFrame) -> None:
    report = build_report(
        replayed.store, mode="paper", bars=small_history, benchmark=UnavailableBenchmark("SPY closes: HTTP 503")
    )
    assert report.benchmark is None
    assert report.alpha is None
    assert report.beta is None
    assert "No benchmark: SPY closes: HTTP 503." in report.notes
    assert set(report.series.benchmark_equity) == {None}


def test_an_empty_store_is_a_one_line_error(tmp_path: Path, small_history: BarFrame) -> None:
    with StateStore(tmp_path / "state.db") as store, pytest.raises(ReportDataError, match="no equity marks"):
        build_report(store, mode="sim", bars=small_history, benchmark=UnavailableBenchmark("none"))


def test_paper_live_inputs_come_from_the_market_data_port(replayed: App, small_history: BarFrame) -> None:
    """The port answers the traded symbols' bars; it has no SPY, so the report has no benchmark and says why."""
    port = ReplayMarketData(small_history, SimClock(datetime(2017, 1, 3, tzinfo=UTC)))
    bars, benchmark = asyncio.run(live_report_inputs(replayed.store, port))
    assert set(bars.symbols) == {trip.symbol for trip in _report(replayed, small_history).ledger} | set(
        replayed.store.load_positions()
    )
    assert benchmark == UnavailableBenchmark("no SPY closes from the market-data adapter")
    report = build_report(replayed.store, mode="paper", bars=bars, benchmark=benchmark)
    assert report.returns.exposure_avg_pct == _report(replayed, small_history).returns.exposure_avg_pct
    assert "No benchmark: no SPY closes from the market-data adapter." in report.notes


def test_on_the_full_default_replay_the_ledger_pnl_is_the_change_in_equity_less_unrealised_pnl(tmp_path: Path) -> None:
    """The issue's proof on the whole default run (scanner on, fixed stops, 1,259 sessions, ~4,800 fills)."""
    settings = Settings(data_dir=tmp_path, log_level="ERROR")
    app = build_sim(settings)
    try:

        async def run() -> None:
            await load_assets(app)
            await app.orchestrator.run()

        asyncio.run(run())
        history = load_daily_bars(settings.sim_data_file)
        bars, benchmark = sim_report_inputs(history, sim_tradable_symbols(settings, history.symbols))
        report = build_report(app.store, mode="sim", bars=bars, benchmark=benchmark)
        store = app.store
        ledger = build_ledger(store.fills(), {k: OrderTags(*v) for k, v in store.order_tags().items()})
        positions = store.load_positions()
        unrealised = sum((lot.qty * (positions[lot.symbol].market_price - lot.price) for lot in ledger.open_lots), D0)
        realised = sum((trip.pnl for trip in report.ledger), D0)
        assert realised.quantize(CENT) == (report.final_equity - report.start_equity - unrealised).quantize(CENT)
        assert len(report.series.sessions) == 1259
        assert report.trades.trades > 1000
    finally:
        app.close()
