"""Prometheus metrics: what the running daemon did (a bus observer) and what its state DB holds (read per scrape).

Two halves, one text body (`metrics_text`):

- `DaemonMetrics` lives in the daemon's process: counters fed by the events the stages publish (docs/ARCHITECTURE.md
  §One iteration), the iteration latency from the orchestrator's per-iteration callback (`total_ms`), and the
  adapters' own request counters, read when scraped (the hot path counts nothing twice). `attach_metrics` wires it.
- The state DB half is read at scrape time through a read-only connection (equity, positions, orders by status,
  breakers, the trading state), so `tradingd serve` on a stopped daemon's state still serves it.

Each scrape builds the DB half in a registry of its own; the daemon half has its own `CollectorRegistry`, never
prometheus-client's global default (a test or a second app in the process would share it). Names follow
Prometheus conventions: the `tradingd_` prefix, base units in the name, `_total` for counters.
"""

from __future__ import annotations

import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from agents.risk import read_trading_state
from core.bus import EventBus
from core.flags import FLAG_DAILY_LOSS, FLAG_DRAWDOWN, FLAG_HALTED, FLAG_RECOVERY, FLAG_REDUCE_ONLY
from core.messages import (
    CircuitBreakerTripped,
    IterationCompleted,
    IterationFailed,
    OrderDenied,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    TradingStateChanged,
)
from core.reasons import Breaker
from core.sqlite_db import connect_read_only
from core.state_guard import FILE_FLAGS, KillSwitchFile, kill_switch_path
from core.types import OrderStatus, TradingState

if TYPE_CHECKING:
    from tradingd.app import App

IterationSink = Callable[[dict[str, Any]], None]

PREFIX: Final = "tradingd"
# Sim iterations take milliseconds, paper/live ones up to tens of seconds (network, retries with backoff).
LATENCY_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Orders counted as filled are remembered by client order id so a partial fill's siblings do not count again; the
# memory is bounded for a daemon that runs for months (an order's fills arrive within days, not 10,000 orders later).
FILLED_ORDERS_REMEMBERED: Final = 10_000
_BREAKER_FLAGS: Final = {Breaker.DAILY_LOSS_LIMIT: FLAG_DAILY_LOSS, Breaker.MAX_DRAWDOWN: FLAG_DRAWDOWN}


@runtime_checkable
class _CountsCalls(Protocol):
    """An adapter that counts the requests it puts on the wire (Alpaca's, and every `MarketData`)."""

    @property
    def api_calls(self) -> int: ...


@runtime_checkable
class _CountsRetries(Protocol):
    @property
    def retries(self) -> int: ...


class _Children:
    """A labelled counter's children by label value, looked up in a dict: `Counter.labels()` validates and locks
    on every call (~3 µs), and a 5-year replay counts ~40,000 events."""

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._children: dict[str, Counter] = {}

    def inc(self, label: str) -> None:
        child = self._children.get(label)
        if child is None:
            child = self._children[label] = self._counter.labels(label)
        child.inc()


class DaemonMetrics:
    """The running daemon's counters, histogram and gauges, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.iteration_seconds = Histogram(
            f"{PREFIX}_iteration_duration_seconds",
            "Wall time of one trading iteration, bars in to orders out and the store commit (the log's total_ms)",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.iterations = Counter(f"{PREFIX}_iterations", "Iterations run to the end", registry=r)
        self.iterations_failed = Counter(
            f"{PREFIX}_iterations_failed",
            "Ticks a broker error cut short, after the adapter's retries (IterationFailed), by error class",
            ["kind"],
            registry=r,
        )
        self.last_iteration = Gauge(
            f"{PREFIX}_last_iteration_timestamp_seconds",
            "Unix time (wall clock) at which the last iteration ended",
            registry=r,
        )
        self.orders_submitted = Counter(
            f"{PREFIX}_orders_submitted", "Orders the broker accepted (OrderSubmitted)", ["side"], registry=r
        )
        self.orders_rejected = Counter(
            f"{PREFIX}_orders_rejected", "Orders refused by the broker or the adapter's check", ["reason"], registry=r
        )
        self.orders_filled = Counter(
            f"{PREFIX}_orders_filled", "Orders that received their first fill", ["side"], registry=r
        )
        self.fills = Counter(f"{PREFIX}_fills", "Fills (executions; an order may fill in parts)", ["side"], registry=r)
        self.signals_denied = Counter(
            f"{PREFIX}_signals_denied",
            "Signals the risk agent turned down (OrderDenied), by reason",
            ["reason"],
            registry=r,
        )
        self.breaker_trips = Counter(
            f"{PREFIX}_breaker_trips", "Circuit breaker trips (CircuitBreakerTripped)", ["breaker"], registry=r
        )
        self.trading_state = Gauge(
            f"{PREFIX}_trading_state",
            "The daemon's trading state: 1 for the current one, 0 for the others",
            ["state"],
            registry=r,
        )
        self._submitted_by_side = _Children(self.orders_submitted)
        self._rejected_by_reason = _Children(self.orders_rejected)
        self._filled_by_side = _Children(self.orders_filled)
        self._fills_by_side = _Children(self.fills)
        self._denied_by_reason = _Children(self.signals_denied)
        self._filled_orders: OrderedDict[str, None] = OrderedDict()
        self._adapters: dict[str, object] = {}
        for breaker in Breaker:  # a trip count of 0 is an answer ("never tripped"), not a missing series
            self.breaker_trips.labels(breaker.value)
        self.set_trading_state(TradingState.ACTIVE)
        r.register(_AdapterCallsCollector(self._adapters))

    # -- wiring ---------------------------------------------------------------------------------------------------

    def observe(self, bus: EventBus) -> None:
        """Count everything published on `bus` from now on (inline handlers: a counter increment each)."""
        bus.subscribe(IterationCompleted, self._on_iteration_completed)
        bus.subscribe(IterationFailed, self._on_iteration_failed)
        bus.subscribe(OrderSubmitted, self._on_submitted)
        bus.subscribe(OrderRejected, self._on_rejected)
        bus.subscribe(OrderFilled, self._on_fill)
        bus.subscribe(OrderDenied, self._on_denied)
        bus.subscribe(CircuitBreakerTripped, self._on_breaker)
        bus.subscribe(TradingStateChanged, self._on_state)

    def watch_adapter(self, client: str, adapter: object) -> None:
        """Report `adapter`'s own request (and retry) counters under `client`, read at each scrape."""
        if isinstance(adapter, _CountsCalls):
            self._adapters[client] = adapter

    def set_trading_state(self, state: TradingState) -> None:
        for each in TradingState:
            self.trading_state.labels(each.value).set(1 if each is state else 0)

    def on_iteration(self, stats: Mapping[str, Any]) -> None:
        """The orchestrator's per-iteration callback (the dict the `iteration` log line is built from)."""
        self.iteration_seconds.observe(stats["total_ms"] / 1000)
        self.last_iteration.set(time.time())

    # -- bus handlers ---------------------------------------------------------------------------------------------

    def _on_iteration_completed(self, _: IterationCompleted) -> None:
        self.iterations.inc()

    def _on_iteration_failed(self, event: IterationFailed) -> None:
        self.iterations_failed.labels(event.kind).inc()  # rare: no cache

    def _on_submitted(self, event: OrderSubmitted) -> None:
        self._submitted_by_side.inc(event.side.value)

    def _on_rejected(self, event: OrderRejected) -> None:
        self._rejected_by_reason.inc(event.reason.value)

    def _on_fill(self, event: OrderFilled) -> None:
        fill = event.fill
        self._fills_by_side.inc(fill.side.value)
        if fill.client_order_id in self._filled_orders:
            return
        self._filled_orders[fill.client_order_id] = None
        if len(self._filled_orders) > FILLED_ORDERS_REMEMBERED:
            self._filled_orders.popitem(last=False)
        self._filled_by_side.inc(fill.side.value)

    def _on_denied(self, event: OrderDenied) -> None:
        self._denied_by_reason.inc(event.reason.value)

    def _on_breaker(self, event: CircuitBreakerTripped) -> None:
        self.breaker_trips.labels(event.breaker.value).inc()

    def _on_state(self, event: TradingStateChanged) -> None:
        self.set_trading_state(event.current)


class _AdapterCallsCollector(Collector):
    """The adapters' request counters (`CallCounter` in Alpaca's transport, the sim's batched reads) as counters,
    read when scraped: the requests themselves are counted once, where they are made."""

    def __init__(self, adapters: Mapping[str, object]) -> None:
        self._adapters = adapters

    def collect(self) -> Iterable[Metric]:
        calls = CounterMetricFamily(
            f"{PREFIX}_broker_api_calls", "Requests the broker and market-data adapters made", labels=["client"]
        )
        retries = CounterMetricFamily(
            f"{PREFIX}_broker_api_retries",
            "Failed broker requests retried (timeouts, resets, 429, 5xx); the Alpaca trading adapter only",
            labels=["client"],
        )
        for client, adapter in sorted(self._adapters.items()):
            if isinstance(adapter, _CountsCalls):
                calls.add_metric([client], adapter.api_calls)
            if isinstance(adapter, _CountsRetries):
                retries.add_metric([client], adapter.retries)
        return [calls, retries]

    def describe(self) -> Iterable[Metric]:
        return self.collect()


def attach_metrics(app: App) -> DaemonMetrics:
    """Metrics for a built daemon: observe its bus, feed on its iterations, watch its adapters' call counters.

    Call once after `build_sim`/`build_live`, before `run_app`; the counts then equal the run summary's."""
    metrics = DaemonMetrics()
    metrics.set_trading_state(app.orchestrator.risk.state)
    metrics.observe(app.orchestrator.bus)
    metrics.watch_adapter("trading", app.broker)
    metrics.watch_adapter("data", app.market_data)
    app.orchestrator.add_iteration_sink(metrics.on_iteration)
    return metrics


# ---------------------------------------------------------------------------------------------------------------------
# The state DB, read at scrape time
# ---------------------------------------------------------------------------------------------------------------------


class _ReadOnlyFlags:
    """The flags the trading state is derived from, as `GuardedFlags` reads them (DB first, then the kill-switch
    file for the safety flags), over a read-only connection: a scrape never writes."""

    def __init__(self, conn: sqlite3.Connection, kill_switch: KillSwitchFile) -> None:
        self._values = dict(conn.execute("SELECT name, value FROM flags"))
        self._file = kill_switch

    def get_flag(self, name: str) -> str | None:
        value = self._values.get(name)
        if value is None and name in FILE_FLAGS:
            return self._file.read().get(name)
        return value

    def set_flag(self, name: str, value: str) -> None:
        raise PermissionError("metrics read the state; they never write it")

    def clear_flag(self, name: str) -> None:
        raise PermissionError("metrics read the state; they never write it")

    def flags_with_prefix(self, prefix: str) -> dict[str, str]:
        return {name: value for name, value in self._values.items() if name.startswith(prefix)}


class _StateDbCollector(Collector):
    """Gauges read from the state DB for one scrape; `tradingd_state_db_up` says whether it could be read."""

    def __init__(self, db_path: Path, *, with_trading_state: bool) -> None:
        self._db = db_path
        self._with_trading_state = with_trading_state

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(f"{PREFIX}_state_db_up", "1 when the state DB could be read for this scrape")
        try:
            families = self._read()
        except (sqlite3.Error, OSError):  # missing, locked past the timeout, damaged, or not ours: no figures
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> list[Metric]:
        if not self._db.exists():  # a read-only connect would fail too; say so without trying
            raise FileNotFoundError(self._db)
        conn = connect_read_only(self._db)
        try:
            return self._families(conn)
        finally:
            conn.close()

    def _families(self, conn: sqlite3.Connection) -> list[Metric]:
        families: list[Metric] = []
        mark = conn.execute("SELECT last_equity FROM equity_marks ORDER BY session DESC LIMIT 1").fetchone()
        peak = conn.execute("SELECT peak_equity FROM equity_marks ORDER BY write_seq DESC LIMIT 1").fetchone()
        if mark is not None:
            families.append(_gauge("equity_dollars", "Account equity at the last mark", float(Decimal(mark[0]))))
        if peak is not None:
            families.append(_gauge("equity_peak_dollars", "All-time peak equity mark", float(Decimal(peak[0]))))
        rows = conn.execute("SELECT qty, market_price FROM positions").fetchall()
        value = sum((Decimal(qty) * Decimal(price) for qty, price in rows), Decimal(0))
        families.append(_gauge("positions", "Positions held (owned by the daemon's fills)", len(rows)))
        families.append(_gauge("positions_value_dollars", "Market value of the positions at their last price", value))
        by_status = dict(conn.execute("SELECT status, COUNT(*) FROM orders GROUP BY status"))
        orders = GaugeMetricFamily(f"{PREFIX}_orders", "Orders in the state DB, by status", labels=["status"])
        open_orders = GaugeMetricFamily(f"{PREFIX}_open_orders", "Open orders, by status", labels=["status"])
        for status in OrderStatus:
            orders.add_metric([status.value], by_status.get(status.value, 0))
            if status.is_open:
                open_orders.add_metric([status.value], by_status.get(status.value, 0))
        families += [orders, open_orders]
        flags = _ReadOnlyFlags(conn, KillSwitchFile(kill_switch_path(self._db)))
        breakers = GaugeMetricFamily(
            f"{PREFIX}_breaker_tripped", "1 while the circuit breaker's trip holds", labels=["breaker"]
        )
        for breaker, flag in _BREAKER_FLAGS.items():
            breakers.add_metric([breaker.value], 1 if flags.get_flag(flag) is not None else 0)
        kill_switch = GaugeMetricFamily(
            f"{PREFIX}_kill_switch_engaged", "1 while the kill switch (tradingd halt) holds", labels=["kind"]
        )
        kill_switch.add_metric(["halted"], 1 if flags.get_flag(FLAG_HALTED) is not None else 0)
        kill_switch.add_metric(["reduce_only"], 1 if flags.get_flag(FLAG_REDUCE_ONLY) is not None else 0)
        kill_switch.add_metric(["recovery"], 1 if flags.get_flag(FLAG_RECOVERY) is not None else 0)
        families += [breakers, kill_switch]
        if self._with_trading_state:
            state = read_trading_state(flags).state
            gauge = GaugeMetricFamily(
                f"{PREFIX}_trading_state",
                "The trading state the stored flags give: 1 for the current one, 0 for the others",
                labels=["state"],
            )
            for each in TradingState:
                gauge.add_metric([each.value], 1 if each is state else 0)
            families.append(gauge)
        return families

    def describe(self) -> Iterable[Metric]:
        return []  # what a scrape yields depends on the file: nothing to check at registration


def _gauge(name: str, documentation: str, value: float | Decimal) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=float(value))


def metrics_text(db_path: Path, live: DaemonMetrics | None) -> tuple[bytes, str]:
    """The Prometheus text body for `GET /metrics` and its content type.

    With `live` (the daemon's own process) its counters come first and its trading state is the daemon's; without
    (`tradingd serve` beside a stopped daemon), the trading state is the one the stored flags give."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_StateDbCollector(db_path, with_trading_state=live is None))
    body = generate_latest(scrape)
    if live is not None:
        body = generate_latest(live.registry) + body
    return body, CONTENT_TYPE_LATEST
