"""`ML_ENABLED=true` in paper mode against the local fake Alpaca server: the daemon fetches the model's daily history
through the market-data port (batched, one request per chunk of symbols), asks the model about its entries, and denies
them `ml_unavailable` while that fetch fails, retrying at the next iteration. A 10-tree model trained on the seven
small-history symbols: behaviour, not skill."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from core.bars import default_sim_tiers
from core.broker.alpaca_http import RetryPolicy
from core.broker.bar_cache import BarCache
from core.broker.base import MarketData, Progress
from core.clock import NyseCalendar
from core.daily_window import last_sessions
from core.messages import OrderDenied
from core.types import BarFrame, OrderSide
from intelligence.dataset import build_dataset
from intelligence.model import ForestParams
from intelligence.model_file import save
from intelligence.training import train
from tests.core.broker.conftest import RecordingSleep, fast_limiter
from tests.fakes.alpaca_server import FakeAlpacaServer, Fault
from tests.fakes.alpaca_tape import MarketTape, largest_symbols, load_tape
from tests.fakes.clock import ServerClock
from tradingd.app import App, build_live, run_app
from tradingd.configs import select_strategy
from tradingd.ml_live import HISTORY_SESSIONS, LiveWinPredictor
from tradingd.ml_runtime import exit_rules

FIRST, LAST = date(2017, 9, 1), date(2017, 10, 31)
SYMBOLS = tuple(largest_symbols(29))
BARS = "/v2/stocks/bars"
CHUNK = 10  # DATA_CHUNK_SIZE: 29 symbols make three requests per page


@pytest.fixture(scope="module")
def tape() -> MarketTape:
    return load_tape(SYMBOLS)


@pytest.fixture(scope="module")
def model_file(small_history: BarFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    settings = Settings(stop_mode="close")  # the daemon's exit rules below: a model of other rules is refused
    strategy = select_strategy(settings)
    rules = exit_rules(settings)
    saved = train(
        build_dataset(small_history, strategy.strategy, rules),
        strategy=strategy.name,
        strategy_params=strategy.params,
        rules=rules,
        params=ForestParams(n_estimators=10),
    )
    path = tmp_path_factory.mktemp("model") / "win_probability.skops"
    save(path, saved)
    return path


class PreOpenSchedule:
    """One iteration per session at 09:00 ET, moving the fake server's clock; notes the bar requests so far."""

    def __init__(self, server: FakeAlpacaServer, sessions: list[date]) -> None:
        self._server = server
        self._sessions = sessions
        self.bar_requests_before: list[int] = []

    async def __aiter__(self) -> AsyncIterator[Any]:
        from tradingd.orchestrator import Tick  # noqa: PLC0415

        calendar = NyseCalendar()
        for session in self._sessions:
            self._server.set_now(calendar.session_open(session) - timedelta(minutes=30))
            self.bar_requests_before.append(self._server.count("GET", BARS))
            yield Tick.ITERATE


class FailingFetches:
    """The market-data port whose first `failures` calls meet a server failing every attempt (HTTP 503, retried by
    the adapter until its policy gives up): the real adapter's `BrokerError`, over loopback."""

    def __init__(self, inner: MarketData, server: FakeAlpacaServer, failures: int, attempts: int) -> None:
        self._inner = inner
        self._server = server
        self._left = failures
        self._attempts = attempts
        self.calls = 0

    async def get_bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, *, on_progress: Progress | None = None
    ) -> BarFrame:
        self.calls += 1
        if self._left > 0:
            self._left -= 1
            self._server.inject(Fault.http(503), "GET", BARS, times=self._attempts)
        return await self._inner.get_bars(symbols, start, end, on_progress=on_progress)

    async def get_snapshots(self, symbols: Sequence[str]) -> Any:
        return await self._inner.get_snapshots(symbols)

    @property
    def api_calls(self) -> int:
        return self._inner.api_calls


def _paper_app(server: FakeAlpacaServer, data_dir: Path, model: Path, schedule: PreOpenSchedule, **values: Any) -> App:
    settings = Settings(
        use_scanner=False,
        symbols=SYMBOLS,
        symbol_tiers=default_sim_tiers(Settings().sim_universe_file, set(SYMBOLS)),
        log_level="ERROR",
        data_dir=data_dir,
        trading_mode="paper",
        alpaca_api_key=server.key,
        alpaca_secret_key=server.secret,
        alpaca_trading_url=server.url,
        alpaca_data_url=server.url,
        alpaca_stream_url=server.stream_url,
        http_timeout_seconds=10.0,
        stop_mode="close",
        data_chunk_size=CHUNK,
        ml_enabled=True,
        ml_model_path=model,
        **values,
    )
    sleep = RecordingSleep()
    options = {
        "market_data": {"cache": BarCache(None), "limiter": fast_limiter(), "sleep": sleep, "retry": RetryPolicy()},
        "broker": {"limiter": fast_limiter(), "retry": RetryPolicy(), "sleep": sleep},
    }
    return build_live(settings, clock=ServerClock(server), schedule=schedule, adapter_options=options)


def _run(app: App) -> list[OrderDenied]:
    denied: list[OrderDenied] = []
    app.orchestrator.bus.subscribe(OrderDenied, denied.append)
    try:
        asyncio.run(run_app(app))
    finally:
        app.close()
    return denied


def _predictor(app: App) -> LiveWinPredictor:
    refresh = app.orchestrator.model_refresh
    assert isinstance(refresh, LiveWinPredictor)
    return refresh


def test_paper_daemon_asks_the_model_over_a_fetched_history(tape: MarketTape, model_file: Path, tmp_path: Path) -> None:
    calendar = NyseCalendar()
    sessions = calendar.sessions_in_range(FIRST, LAST)
    server = FakeAlpacaServer(tape, now=calendar.session_open(sessions[0]) - timedelta(hours=1))
    schedule = PreOpenSchedule(server, sessions)
    with server:
        # A threshold no probability reaches: every entry the model is asked about is denied.
        app = _paper_app(server, tmp_path, model_file, schedule, ml_min_win_prob=1)
        predictor = _predictor(app)
        denied = _run(app)
        requests = server.requests("GET", BARS)
        buys = [o for o in server.orders.values() if o.side == OrderSide.BUY.value]

    entries = [d for d in denied if d.reason == "ml_low_probability"]
    assert entries, "the period must exercise entry signals"
    # The model answered with its features (a signal whose bar the history lacked would read "no prediction").
    assert all(d.detail.startswith("win probability ") for d in entries)
    assert not buys
    # Rebuilt once per session (each brings a new daily bar), on the symbols the daemon trades.
    assert predictor.rebuilds == len(sessions)
    assert predictor.history_symbols == set(SYMBOLS)
    # Batched: every bars request names a whole chunk of symbols, never one symbol alone (29 = 10 + 10 + 9).
    assert {len(r.query["symbols"].split(",")) for r in requests} <= {CHUNK, len(SYMBOLS) % CHUNK}
    # The first iteration fetches the model's two years; afterwards the adapter's bar cache serves the history and
    # each session's new bar costs the one request per chunk the DataAgent makes anyway.
    through = calendar.previous_session(sessions[0])  # the newest complete bar at the first pre-open
    history_start = calendar.daily_bar_ts(last_sessions(calendar, through, HISTORY_SESSIONS)[0])
    first_history = [r for r in requests if datetime.fromisoformat(r.query["start"]) == history_start]
    assert [len(r.query["symbols"].split(",")) for r in first_history] == [10, 10, 9]
    before = schedule.bar_requests_before
    per_session = [after - earlier for earlier, after in itertools.pairwise(before[1:])]
    assert len(per_session) == len(sessions) - 2
    assert all(n == 3 for n in per_session)


def test_a_failing_history_fetch_denies_entries_and_is_retried(
    tape: MarketTape, model_file: Path, tmp_path: Path
) -> None:
    calendar = NyseCalendar()
    sessions = calendar.sessions_in_range(FIRST, LAST)
    server = FakeAlpacaServer(tape, now=calendar.session_open(sessions[0]) - timedelta(hours=1))
    failures = len(sessions) // 2
    with server:
        app = _paper_app(server, tmp_path, model_file, PreOpenSchedule(server, sessions), ml_min_win_prob=1)
        predictor = _predictor(app)
        failing = FailingFetches(predictor.market_data, server, failures, RetryPolicy().max_attempts)
        predictor.market_data = failing
        denied = _run(app)
        buys = [o for o in server.orders.values() if o.side == OrderSide.BUY.value]

    reasons = {d.reason for d in denied}
    assert {"ml_unavailable", "ml_low_probability"} <= reasons, "entries while failing and after the retry succeeded"
    unavailable = [d for d in denied if d.reason == "ml_unavailable"]
    assert all("could not be fetched" in d.detail for d in unavailable)
    # The daemon lived through every session, retrying at each iteration until a fetch succeeded.
    assert failing.calls == len(sessions)
    assert predictor.rebuilds == len(sessions) - failures
    assert not buys
