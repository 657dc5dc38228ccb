"""Alpaca market data behind the `MarketData` port (the only module that imports `alpaca.data`).

Cache-first: bars already in the local cache are never asked for again; a steady-state iteration asks only for
the bars completed since the last cached one, for all symbols in one request per chunk of `DATA_CHUNK_SIZE`
(the SDK follows `next_page_token`), and asks nothing at all while no new bar can have completed. Only
*complete* bars (start + timeframe <= now) are returned and cached, so a bar still forming is never frozen into
the cache. Every incremental request starts at the last cached bar,
which costs no extra call and shows whether the vendor restated history (a split): such a symbol's cache is
dropped and its window fetched afresh. Bars failing sanity are dropped and counted in `rejected`.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
import structlog
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest, StockSnapshotRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from core.bar_sanity import PASSED, count_failures, series_failures
from core.broker.alpaca_http import AsyncSleep, CallCounter, Retrier, RetryPolicy, install_transport
from core.broker.alpaca_options import AlpacaConnection, AlpacaDataOptions
from core.broker.alpaca_wire import WireFormatError, bars_from_wire, parse_time
from core.broker.bar_cache import BarCache, CacheKey, CleanBars, Coverage
from core.broker.base import AuthenticationError, Progress, Snapshot
from core.broker.rate_limit import RateLimiter
from core.clock import Clock
from core.redact import register_secrets
from core.timeconv import datetime_to_ns, ns_to_datetime, ny_date, ny_instant
from core.types import BarFrame

log = structlog.get_logger(__name__)

MINUTE_NS = 60 * 10**9
_TIMEFRAMES: dict[str, tuple[TimeFrame, int]] = {
    "1Day": (TimeFrame(1, TimeFrameUnit.Day), 1440 * MINUTE_NS),
    "15Min": (TimeFrame(15, TimeFrameUnit.Minute), 15 * MINUTE_NS),
    "1Min": (TimeFrame(1, TimeFrameUnit.Minute), MINUTE_NS),
}
SIP_DELAY_NS = 16 * MINUTE_NS  # the free plan may not query the latest 15 minutes of SIP
MERGE_WINDOW_BARS = 10  # symbols whose fetches start this close together share one request
RESTATEMENT_RTOL = 1e-6


def chunked(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for index in range(0, len(items), size):
        yield list(items[index : index + size])


@dataclass(frozen=True, slots=True)
class FetchStats:
    """What one `get_bars` call cost."""

    api_calls: int
    cache_hits: int  # symbols answered entirely from the cache
    symbols_fetched: int
    bars_fetched: int
    restated: int


@dataclass(frozen=True, slots=True)
class _Need:
    start_ns: int
    overlap_ns: int | None  # the cached bar the fetch starts on, checked for restatement


class AlpacaMarketData:
    def __init__(
        self,
        connection: AlpacaConnection,
        options: AlpacaDataOptions,
        clock: Clock,
        *,
        cache: BarCache | None = None,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        sleep: AsyncSleep = asyncio.sleep,
        adjustment: str = "split",
    ) -> None:
        if connection.api_key is None or connection.secret_key is None:
            raise AuthenticationError("Alpaca market data needs ALPACA_API_KEY and ALPACA_SECRET_KEY")
        # error texts from here on never carry the keys, whoever built us
        register_secrets(connection.api_key, connection.secret_key)
        self._clock = clock
        self._client = StockHistoricalDataClient(
            api_key=connection.api_key.get_secret_value(),
            secret_key=connection.secret_key.get_secret_value(),
            raw_data=True,  # we validate bars ourselves; the SDK's models would parse every bar twice
            url_override=connection.data_url,
        )
        self._counter = CallCounter()
        install_transport(
            self._client,
            timeout=connection.http_timeout_seconds,
            limiter=limiter or RateLimiter(connection.data_rate_limit_per_min),
            counter=self._counter,
        )
        self._retrier = Retrier(retry or RetryPolicy(), clock, sleep=sleep)
        self._cache = cache if cache is not None else BarCache(options.bar_cache_path)
        self._timeframe, self._duration_ns = _TIMEFRAMES[options.timeframe]
        self._timeframe_name = options.timeframe
        self._chunk_size = options.chunk_size
        self._feed = DataFeed(options.feed)
        self._adjustment = Adjustment(adjustment)
        self._cache_tag = f"{options.feed}/{adjustment}"
        self.rejected: Counter[str] = Counter()
        self.cache_hits = 0
        self.restatements = 0
        self.last_fetch = FetchStats(0, 0, 0, 0, 0)

    @property
    def api_calls(self) -> int:
        return self._counter.calls

    def close(self) -> None:
        self._cache.close()

    # --- bars --------------------------------------------------------------------------------------------------------
    async def get_bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, *, on_progress: Progress | None = None
    ) -> BarFrame:
        wanted = tuple(dict.fromkeys(symbols))
        calls_before = self._counter.calls
        now_ns = datetime_to_ns(self._clock.now())
        start_ns = datetime_to_ns(start)
        known_end = min(datetime_to_ns(end), self._horizon(now_ns))
        keys = {s: CacheKey(s, self._timeframe_name, self._cache_tag) for s in wanted}
        self._cache.load(keys.values())

        needs = {s: need for s in wanted if (need := self._need(keys[s], start_ns, known_end)) is not None}
        hits = len(wanted) - len(needs)
        bars_fetched = restated = 0
        if needs:
            done = hits

            def fetched(count: int) -> None:
                nonlocal done
                done += count
                if on_progress is not None:
                    on_progress(done, len(wanted))

            bars_fetched, stale = await self._fetch(needs, keys, known_end, now_ns, fetched)
            if stale:
                restated = len(stale)
                for symbol in stale:
                    self._cache.drop(keys[symbol])
                fresh = {s: _Need(start_ns, None) for s in stale}
                more, _ = await self._fetch(fresh, keys, known_end, now_ns)
                bars_fetched += more
        self.cache_hits += hits
        self.restatements += restated
        self.last_fetch = FetchStats(
            api_calls=self._counter.calls - calls_before,
            cache_hits=hits,
            symbols_fetched=len(needs),
            bars_fetched=bars_fetched,
            restated=restated,
        )
        return self._frame(wanted, keys, start_ns, known_end)

    def _horizon(self, now_ns: int) -> int:
        """Bars starting before this are complete (and may be asked for on this feed)."""
        horizon = now_ns - self._duration_ns + 1
        if self._feed is DataFeed.SIP:
            horizon = min(horizon, now_ns - SIP_DELAY_NS)
        return horizon

    def _need(self, key: CacheKey, start_ns: int, end_ns: int) -> _Need | None:
        if end_ns <= start_ns:
            return None
        coverage = self._cache.coverage(key)
        if coverage is not None and coverage.covers(start_ns, end_ns):
            return None
        if coverage is None or start_ns < coverage.start_ns or start_ns > coverage.end_ns:
            return _Need(start_ns, None)
        if self._next_bar_start(coverage.end_ns) >= end_ns:
            return None  # no bar can start in the uncovered tail: nothing new can exist yet
        last = self._cache.last_t_within(key, coverage)
        if last is not None and last >= start_ns:
            return _Need(last, last)
        return _Need(coverage.end_ns, None)

    def _next_bar_start(self, ns: int) -> int:
        """The earliest bar start at or after `ns`: Alpaca stamps daily bars at midnight New York time and
        intraday bars on multiples of their length."""
        if self._timeframe_name != "1Day":
            return -(-ns // self._duration_ns) * self._duration_ns
        day = ny_date(ns_to_datetime(ns))
        midnight = datetime_to_ns(ny_instant(day))
        if midnight < ns:
            midnight = datetime_to_ns(ny_instant(day + timedelta(days=1)))
        return midnight

    async def _fetch(
        self,
        needs: dict[str, _Need],
        keys: dict[str, CacheKey],
        end_ns: int,
        now_ns: int,
        on_chunk: Callable[[int], None] | None = None,
    ) -> tuple[int, list[str]]:
        """Fetch and cache, one request per chunk of `DATA_CHUNK_SIZE` symbols (`on_chunk(symbols)` after each);
        returns the bars fetched and the symbols whose history was restated."""
        fetched_bars = 0
        stale: list[str] = []
        for cluster_start, symbols in self._clusters(needs):
            for chunk in chunked(symbols, self._chunk_size):
                raw = await self._request_bars(chunk, cluster_start, end_ns)
                to_store: dict[CacheKey, tuple[CleanBars, Coverage]] = {}
                for symbol in chunk:
                    bars = _within(clean_bars(raw.get(symbol) or [], now_ns, self.rejected), cluster_start, end_ns)
                    overlap = needs[symbol].overlap_ns
                    if overlap is not None and self._restated(keys[symbol], bars, overlap):
                        stale.append(symbol)
                        continue
                    fetched_bars += len(bars)
                    to_store[keys[symbol]] = (bars, Coverage(cluster_start, end_ns))
                self._cache.store(to_store)
                if on_chunk is not None:
                    on_chunk(len(chunk))
        if self.rejected:
            log.debug("bars_rejected_total", **self.rejected)
        return fetched_bars, stale

    def _clusters(self, needs: dict[str, _Need]) -> Iterator[tuple[int, list[str]]]:
        """Group symbols whose fetches start close together, so the steady state is one request."""
        window = MERGE_WINDOW_BARS * self._duration_ns
        ordered = sorted(needs, key=lambda s: needs[s].start_ns)
        group: list[str] = []
        group_start = 0
        for symbol in ordered:
            start = needs[symbol].start_ns
            if group and start - group_start > window:
                yield group_start, group
                group = []
            if not group:
                group_start = start
            group.append(symbol)
        if group:
            yield group_start, group

    async def _request_bars(self, symbols: list[str], start_ns: int, end_ns: int) -> dict[str, list[dict[str, Any]]]:
        request = StockBarsRequest(
            symbol_or_symbols=symbols,
            timeframe=self._timeframe,
            start=ns_to_datetime(start_ns),
            end=ns_to_datetime(end_ns - 1),  # Alpaca's end is inclusive; ours is exclusive
            feed=self._feed,
            adjustment=self._adjustment,
        )
        raw = await self._retrier.call("get_stock_bars", self._client.get_stock_bars, request)
        if not isinstance(raw, dict):
            raise WireFormatError(f"bars response is a {type(raw).__name__}, not an object")
        return cast(dict[str, list[dict[str, Any]]], raw)

    def _restated(self, key: CacheKey, fetched: CleanBars, overlap_ns: int) -> bool:
        cached = self._cache.bars(key)
        index = int(np.searchsorted(cached.t, overlap_ns))
        position = int(np.searchsorted(fetched.t, overlap_ns))
        if position >= len(fetched) or fetched.t[position] != overlap_ns:
            log.warning("bars_restated", symbol=key.symbol, reason="cached bar no longer served")
            return True
        fresh, kept = fetched.values[position, :4].tolist(), cached.values[index, :4].tolist()
        same = all(math.isclose(a, b, rel_tol=RESTATEMENT_RTOL) for a, b in zip(fresh, kept, strict=True))
        if not same:
            log.warning("bars_restated", symbol=key.symbol, reason="prices changed (split or correction)")
        return not same

    def _frame(self, symbols: tuple[str, ...], keys: dict[str, CacheKey], start_ns: int, end_ns: int) -> BarFrame:
        if not symbols:
            return BarFrame.empty(symbols)
        selected: list[CleanBars] = []
        for symbol in symbols:
            bars = self._cache.bars(keys[symbol])
            lo = int(np.searchsorted(bars.t, start_ns, side="left"))
            hi = int(np.searchsorted(bars.t, end_ns, side="left"))
            selected.append(CleanBars(bars.t[lo:hi], bars.values[lo:hi]))
        stamps = np.unique(np.concatenate([b.t for b in selected])) if selected else np.empty(0, np.int64)
        grid = np.full((5, len(stamps), len(symbols)), np.nan)
        for column, bars in enumerate(selected):
            rows = np.searchsorted(stamps, bars.t)
            grid[:, rows, column] = bars.values.T
        return BarFrame(
            symbols=symbols,
            timestamps=stamps.astype("datetime64[ns]"),
            open=grid[0],
            high=grid[1],
            low=grid[2],
            close=grid[3],
            volume=grid[4],
        )

    # --- snapshots ---------------------------------------------------------------------------------------------------
    async def get_snapshots(self, symbols: Sequence[str]) -> dict[str, Snapshot]:
        """One request per chunk of symbols; a symbol whose snapshot is incomplete or insane is left out."""
        wanted = list(dict.fromkeys(symbols))
        now = self._clock.now()
        result: dict[str, Snapshot] = {}
        for chunk in chunked(wanted, self._chunk_size):
            request = StockSnapshotRequest(symbol_or_symbols=chunk, feed=self._feed)
            raw = await self._retrier.call("get_stock_snapshot", self._client.get_stock_snapshot, request)
            if not isinstance(raw, dict):
                raise WireFormatError(f"snapshots response is a {type(raw).__name__}, not an object")
            for symbol, data in raw.items():
                snapshot = self._snapshot(symbol, data, now)
                if snapshot is not None:
                    result[symbol] = snapshot
        return result

    def _snapshot(self, symbol: str, data: Any, now: datetime) -> Snapshot | None:
        def reject(reason: str) -> None:
            self.rejected[f"snapshot_{reason}"] += 1
            log.info("snapshot_rejected", symbol=symbol, reason=reason)

        if not isinstance(data, dict):
            return None
        trade, daily, previous = (data.get(k) or {} for k in ("latestTrade", "dailyBar", "prevDailyBar"))
        price, prev_close, volume = _number(trade, "p"), _number(previous, "c"), _number(daily, "v")
        try:
            ts = parse_time(trade.get("t"))
        except WireFormatError:
            ts = None
        # The bar-sanity vocabulary (core.bar_sanity.REASONS): a trade without a readable time has no usable price.
        if ts is None or not (math.isfinite(price) and math.isfinite(prev_close)):
            reject("missing_price")
            return None
        if not math.isfinite(volume):
            reject("missing_volume")
            return None
        if price <= 0 or prev_close <= 0:
            reject("non_positive_price")
            return None
        if volume < 0:
            reject("negative_volume")
            return None
        if ts > now:
            reject("future_timestamp")
            return None
        return Snapshot(symbol=symbol, price=price, prev_close=prev_close, volume=volume, ts=ts)


def _number(raw: Any, name: str) -> float:
    """A wire number, or NaN when it is missing or not a number."""
    value: Any = raw.get(name) if isinstance(raw, dict) else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def clean_bars(raw: Sequence[dict[str, Any]], now_ns: int, rejected: Counter[str]) -> CleanBars:
    """One symbol's wire bars that pass sanity; the others are counted in `rejected` by reason."""
    if not raw:
        return CleanBars.empty()
    t, values = bars_from_wire(raw)
    codes = series_failures(t, values, now_ns)
    rejected.update(count_failures(codes))
    keep = codes == PASSED
    return CleanBars(t[keep], values[keep])


def _within(bars: CleanBars, start_ns: int, end_ns: int) -> CleanBars:
    keep = (bars.t >= start_ns) & (bars.t < end_ns)
    return CleanBars(bars.t[keep], bars.values[keep])
