"""`tradingd status`, `halt`, `resume`, `orders` and `fills`: the local state DB only, never the broker or the daemon.

What these need is the settings, the SQLite store and the tables, so this module imports no numpy, no pandas, no
exchange-calendars and no alpaca-py (checked by tests/tradingd/test_startup_imports.py): they start in a fraction of
the time `run` needs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from agents.focus_scoring import persisted_scores
from agents.risk import halt_trading, read_trading_state, resume_trading
from agents.sizing import TierExposureTracker, effective_positions, herfindahl
from analytics.model import PortfolioRisk
from config.settings import Settings
from core.clock import LiveClock
from core.close_requests import CloseRequests
from core.console import fills_table, orders_table, print_status, print_table
from core.errors import SetupError
from core.flags import FLAG_DRAWDOWN, FLAG_HALTED, FLAG_RECOVERY, FLAG_REDUCE_ONLY
from core.logging import close_logging
from core.reasons import Breaker
from core.redact import redact
from core.store import OrderRecord, StateStore
from core.timeconv import ny_instant
from core.types import Fill, OrderStatus, TradingMode
from tradingd.cli_common import guarded, load_cli_settings, open_store, quiet_logging, state_note
from tradingd.cli_options import EXIT_BAD_INPUT, as_date
from tradingd.configs import tier_config
from tradingd.local_state import configured_tiers, state_db_path

if TYPE_CHECKING:
    from rich.table import Table

T = TypeVar("T")


def show_status(mode: TradingMode | None, as_json: bool) -> None:
    settings = load_cli_settings(broker=False, trading_mode=mode)
    try:
        tiers = configured_tiers(settings)
    except SetupError as error:
        typer.echo(redact(f"error: {error}"), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    with open_store(settings) as store:
        trading_state = read_trading_state(guarded(store)).as_json()
        summary = store.summary()
        summary["trading_state"] = trading_state
        summary["close_requests"] = [r.as_json() for r in CloseRequests(store).pending()]
        positions = store.load_positions()
        open_orders = store.open_orders()
        summary["focus_scores"] = persisted_scores(store, LiveClock().now(), settings.scoring_interval_minutes)
        summary["portfolio"] = portfolio_risk_json(settings, store, {s: p.market_value for s, p in positions.items()})
    tracker = TierExposureTracker(tier_config(settings, tiers))
    tracker.rebuild(positions)
    values = [p.market_value for p in positions.values()]
    summary["exposure"] = tracker.snapshot()
    summary["herfindahl"] = str(round(herfindahl(values), 4))
    summary["effective_positions"] = str(round(effective_positions(values), 2))
    summary["mode"] = settings.mode.value
    summary["db"] = str(state_db_path(settings))
    if as_json:
        typer.echo(json.dumps(summary, default=str))
    else:
        held_tiers = {symbol: item["tier"] for symbol, item in summary["exposure"]["symbols"].items()}
        print_status(summary, positions, open_orders, held_tiers)


def portfolio_risk_json(settings: Settings, store: StateStore, values: Mapping[str, Decimal]) -> dict[str, Any]:
    """The held positions' volatility and diversification ratio (`status`, the dashboard's `/api/status`); numpy
    and the bars are loaded only when some are held, so an empty `status` stays as light as before."""
    if not any(values.values()):
        return PortfolioRisk(None, None, 0, 0, None, "no positions").as_json()
    from tradingd.status_risk import status_portfolio_risk  # here: numpy and the bars only with positions

    return status_portfolio_risk(settings, store, values)


def halt(reason: str, reduce_only: bool, mode: TradingMode | None) -> None:
    settings = load_cli_settings(broker=False, trading_mode=mode)
    quiet_logging(settings)
    try:
        message = halt_state(settings, redact(reason), reduce_only)  # a pasted secret never reaches the state DB
    finally:
        close_logging()
    typer.echo(message)


def halt_state(settings: Settings, reason: str, reduce_only: bool) -> str:
    """The kill switch (or reduce-only) on the mode's state, and the line that says what was done: `tradingd halt`
    and the dashboard's `POST /api/halt` both come here."""
    existed = state_db_path(settings).exists()
    with open_store(settings) as store:
        halt_trading(guarded(store), reason, reduce_only=reduce_only)
    what = "reducing" if reduce_only else "halted"
    return f"{what} ({settings.mode.value}): {reason}; {state_note(settings, existed)}"


def resume(mode: TradingMode | None) -> None:
    settings = load_cli_settings(broker=False, trading_mode=mode)
    quiet_logging(settings)
    try:
        message = resume_state(settings)
    finally:
        close_logging()
    typer.echo(message)


def resume_state(settings: Settings) -> str:
    """Lift what `tradingd resume` lifts on the mode's state, and the line that says what was done (also the
    dashboard's `POST /api/resume`)."""
    existed = state_db_path(settings).exists()
    with open_store(settings) as store:
        flags = guarded(store)
        if all(flags.get_flag(f) is None for f in (FLAG_HALTED, FLAG_DRAWDOWN, FLAG_REDUCE_ONLY, FLAG_RECOVERY)):
            # Not an error (exit 0), but say so: "resumed" would suggest something had been stopped.
            return f"nothing to resume ({settings.mode.value}): not halted; {state_note(settings, existed)}"
        flattening = any(r.breaker == Breaker.MAX_DRAWDOWN for r in CloseRequests(store).pending())
        mark = store.latest_equity_mark()
        lifted = resume_trading(flags, equity=mark.last_equity if mark is not None else None)
    lifted_note = ", drawdown breaker lifted" if lifted else ""
    lifted_note += " and its flatten withdrawn" if lifted and flattening else ""
    return f"resumed ({settings.mode.value}){lifted_note}; {state_note(settings, existed)}"


# ---- orders / fills: what the store holds (local state only, never the broker, never the daemon lock) ---------------


def list_orders(
    statuses: set[OrderStatus] | None, status_: str | None, mode: TradingMode | None, as_json: bool
) -> None:
    settings = load_cli_settings(broker=False, trading_mode=mode)
    title = f"orders ({settings.mode.value}{'' if status_ is None else ', ' + status_.strip().lower()})"
    _list_stored(
        settings,
        key="orders",
        read=lambda store: store.order_records(statuses),
        as_json=as_json,
        row_json=order_json,
        table=lambda records: orders_table([r.order for r in records], title),
    )


def list_fills(since: datetime | None, mode: TradingMode | None, as_json: bool) -> None:
    settings = load_cli_settings(broker=False, trading_mode=mode)
    day = as_date(since)
    # Trading days are New York days: a fill at 20:30 New York time on the 4th is the 4th's, though UTC says the 5th.
    start = None if day is None else ny_instant(day)
    title = f"fills ({settings.mode.value}{'' if day is None else f', since {day}'})"
    _list_stored(
        settings,
        key="fills",
        read=lambda store: store.fills(start),
        as_json=as_json,
        row_json=fill_json,
        table=lambda found: fills_table(list(found), title),
    )


def _list_stored(
    settings: Settings,
    *,
    key: str,
    read: Callable[[StateStore], Sequence[T]],
    as_json: bool,
    row_json: Callable[[T], dict[str, Any]],
    table: Callable[[Sequence[T]], Table],
) -> None:
    """`orders` and `fills`: read the local state DB, print rows as JSON or a table with the DB's path under it."""
    db = state_db_path(settings)
    # A listing is read-only: it does not create a state DB where no daemon has run (status/halt may, this need not).
    existed = db.exists()
    rows: Sequence[T] = []
    if existed:
        with StateStore(db) as store:
            rows = read(store)
    if as_json:
        typer.echo(json.dumps({"mode": settings.mode.value, "db": str(db), key: [row_json(r) for r in rows]}))
        return
    # Names the DB read, so a listing from the wrong directory or DATA_DIR cannot pass for "no orders".
    note = f"state DB {db}" if existed else f"state DB {db} does not exist: no daemon has run with this DATA_DIR yet"
    print_table(table(rows), note)


def order_json(record: OrderRecord) -> dict[str, Any]:
    order = record.order
    return {
        "client_order_id": order.client_order_id,
        "broker_order_id": order.broker_order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "qty": _str_or_none(order.qty),
        "notional": _str_or_none(order.notional),
        "filled_qty": str(order.filled_qty),
        "filled_avg_price": _str_or_none(order.filled_avg_price),
        "status": order.status.value,
        "submitted_at": _iso_or_none(order.submitted_at),
        "updated_at": _iso_or_none(order.updated_at),
        "reason": order.reason,
        "order_type": order.order_type.value,
        "time_in_force": order.time_in_force.value,
        "stop_price": _str_or_none(order.stop_price),
        "trail_percent": _str_or_none(order.trail_percent),
        "strategy": record.strategy,
        "tier": None if record.tier is None else record.tier.value,
    }


def fill_json(fill: Fill) -> dict[str, Any]:
    return {
        "ts": fill.ts.isoformat(),
        "symbol": fill.symbol,
        "side": fill.side.value,
        "qty": str(fill.qty),
        "price": str(fill.price),
        "client_order_id": fill.client_order_id,
        "execution_id": fill.execution_id,
    }


def _str_or_none(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
