"""API calls per iteration against the fake Alpaca server, for the 29-symbol default and for 500 symbols.

`python -m benchmarks.bench_api_calls` prints one JSON object. Each scenario runs the real adapters (and the
real alpaca-py clients) against the fake on loopback, serving the bundled 2013-2018 daily bars:
cold start (a year of history, empty cache), the steady-state iteration after a new daily bar completes, an
intraday iteration (no bar can have completed), one bulk snapshot, and the trading side of an iteration.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from config.settings import Settings
from core.broker.alpaca import AlpacaBroker
from core.broker.alpaca_data import AlpacaMarketData
from core.broker.bar_cache import BarCache
from core.broker.rate_limit import RateLimiter
from core.timeconv import datetime_to_ns, ns_to_datetime
from core.types import OrderRequest, OrderSide
from tests.fakes.alpaca_server import FakeAlpacaServer
from tests.fakes.alpaca_tape import DAY_NS, MarketTape, largest_symbols, load_tape
from tests.fakes.clock import ServerClock
from tradingd.configs import alpaca_connection, alpaca_data_options

START_DAY = date(2018, 1, 10)


def _next_session(server: FakeAlpacaServer) -> None:
    sessions = server.tape.session_t
    now_ns = datetime_to_ns(server.now)
    following = sessions[sessions + DAY_NS > now_ns]
    server.set_now(ns_to_datetime(int(following[0] + DAY_NS)))


async def _scenario(tape: MarketTape, symbols: list[str], chunk: int) -> dict[str, Any]:
    with FakeAlpacaServer(tape, now=tape.session_start(START_DAY)) as server, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            trading_mode="paper",  # type: ignore[arg-type]
            alpaca_api_key=server.key,  # type: ignore[arg-type]
            alpaca_secret_key=server.secret,  # type: ignore[arg-type]
            alpaca_trading_url=server.url,
            alpaca_data_url=server.url,
            data_dir=Path(tmp),
            data_chunk_size=chunk,
        )
        clock = ServerClock(server)
        # Generous limiters: this measures calls, not the pacing of a 200/min plan.
        cache = BarCache(Path(tmp) / "bars.sqlite")
        connection = alpaca_connection(settings)
        data = AlpacaMarketData(
            connection, alpaca_data_options(settings), clock, cache=cache, limiter=RateLimiter(100_000)
        )
        broker = AlpacaBroker(connection, clock, limiter=RateLimiter(100_000))
        lookback = timedelta(days=365)

        started = time.perf_counter()
        await data.get_bars(symbols, server.now - lookback, server.now)
        cold = data.last_fetch
        cold_s = time.perf_counter() - started

        _next_session(server)
        started = time.perf_counter()
        await data.get_bars(symbols, server.now - lookback, server.now)
        steady = data.last_fetch
        steady_s = time.perf_counter() - started

        server.set_now(server.now + timedelta(hours=10))
        await data.get_bars(symbols, server.now - lookback, server.now)
        intraday = data.last_fetch

        before = data.api_calls
        await data.get_snapshots(symbols)
        snapshot_calls = data.api_calls - before

        before = broker.api_calls
        await broker.get_account()
        await broker.get_positions()
        await broker.poll_updates()
        idle_trading = broker.api_calls - before
        await broker.submit_order(
            OrderRequest(client_order_id="bench-1", symbol=symbols[0], side=OrderSide.BUY, notional=Decimal(100))
        )
        before = broker.api_calls
        await broker.poll_updates()
        poll_with_open_order = broker.api_calls - before
        data.close()
        bars = cold.bars_fetched
        return {
            "symbols": len(symbols),
            "data_chunk_size": chunk,
            "cold_start": {"api_calls": cold.api_calls, "bars": bars, "seconds": round(cold_s, 3)},
            "steady_state_new_bar": {
                "api_calls": steady.api_calls,
                "bars": steady.bars_fetched,
                "seconds": round(steady_s, 4),
            },
            "intraday_no_new_bar": {"api_calls": intraday.api_calls, "cache_hits": intraday.cache_hits},
            "snapshots_api_calls": snapshot_calls,
            "trading_account_positions_poll_api_calls": idle_trading,
            "trading_poll_with_open_orders_stream_down_api_calls": poll_with_open_order,
        }


async def _all() -> dict[str, Any]:
    tape = load_tape()
    default = largest_symbols(29)
    wide = [s for s in tape.symbols if s not in default][: 500 - len(default)]
    return {
        "symbols_29_chunk_200": await _scenario(tape, default, 200),
        "symbols_500_chunk_200": await _scenario(tape, [*default, *wide], 200),
        "symbols_500_chunk_500": await _scenario(tape, [*default, *wide], 500),
        "target": "ceil(bars / 10,000) pages; 1 call per steady-state iteration for the 29-symbol default",
    }


def run() -> dict[str, Any]:
    return asyncio.run(_all())


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
