"""`tradingd close SYMBOL…|--all`: sell positions by hand, through the daemon's own exit path (close requests,
`core/close_requests.py`, carried out by `agents/exit_requests.py`), the exit reason `manual`.

With a daemon running on the state (it holds the daemon lock), the command only writes the requests
(`request_close`): the daemon sells at its next iteration. With none, the command holds the lock itself, so nothing
else trades this state meanwhile, and carries them out (`close_positions`): it starts like `run` (the account banner,
start-up recovery with the broker, the update stream), then makes one pass that is an iteration cut down to the
requested exits: settle the broker's updates, refresh the portfolio, mark equity and let risk take the account
(breakers included), then the close requests' exits go to risk and the approved ones to execution (write-ahead,
deterministic client order ids, the exit reason in the orders table and the journal). No bars are fetched, no
strategy runs, no entry is made. While the market is open it then polls the broker a bounded number of times for the
fills; while it is closed the orders wait at the broker for the open. What became of each symbol is returned for the
CLI to print; the requests carried out are cleared, the others stay for the next daemon.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from agents.execution import StopOutcome
from core.broker.base import Broker
from core.close_requests import ALL, CloseRequest, CloseRequests
from core.messages import Message, OrderDenied, OrderRejected
from core.order_ids import MANUAL_EXIT_TAG
from core.store import StateStore
from core.types import Asset, BrokerOrder, OrderSide, OrderStatus, PortfolioSnapshot, Position
from tradingd.app import App

POLL_SECONDS = 2.0  # between two looks at the broker while waiting for the fills
MAX_POLLS = 30  # a minute of waiting in real time; an order still open then is left to fill at the broker


class NotHeldError(Exception):
    """A symbol to close is not a position the daemon owns (bad input: the CLI exits 2)."""

    def __init__(self, missing: Sequence[str], owned: dict[str, Position]) -> None:
        super().__init__(not_held_message(missing, owned))


def not_held_message(missing: Sequence[str], owned: dict[str, Position]) -> str:
    held = ", ".join(f"{s} {owned[s].qty.normalize():f}" for s in sorted(owned)) or "none"
    names = ", ".join(missing)
    verb = "is not a position" if len(missing) == 1 else "are not positions"
    return f"{names} {verb} the daemon owns (it owns: {held})"


@dataclass(frozen=True, slots=True)
class Requested:
    """A position a running daemon is asked to sell, as the state DB has it, and the request in force for it."""

    position: Position
    request: CloseRequest
    new: bool  # False: it was already requested (that request is kept)


def request_close(store: StateStore, symbols: Sequence[str] | None, now: datetime) -> list[Requested]:
    """Ask the daemon holding this state to sell `symbols` (None: every owned position) at its next iteration.

    The daemon's owned positions are read from the state DB (what it saved at its last iteration). Raises
    `NotHeldError` before anything is requested when a symbol is not one of them.
    """
    owned = store.load_positions()
    wanted = _wanted(owned, symbols)
    if not wanted:
        return []
    asked = _request(CloseRequests(store), symbols, now)
    return [Requested(owned[s], *(asked.get(s) or asked[ALL])) for s in wanted]


def _wanted(owned: dict[str, Position], symbols: Sequence[str] | None) -> list[str]:
    """The symbols to sell: those given, each one owned (else `NotHeldError`), or every owned one."""
    missing = [s for s in symbols or () if s not in owned]
    if missing:
        raise NotHeldError(missing, owned)
    return sorted(owned) if symbols is None else list(symbols)


def _request(
    requests: CloseRequests, symbols: Sequence[str] | None, now: datetime
) -> dict[str, tuple[CloseRequest, bool]]:
    """The manual close requests for `symbols` (None: all), by target, each with whether it is new."""
    targets = [ALL] if symbols is None else list(symbols)
    return {t: requests.request(t, tag=MANUAL_EXIT_TAG, reason=MANUAL_EXIT_TAG, now=now) for t in targets}


@dataclass(frozen=True, slots=True)
class Closed:
    """What became of one symbol: `done` unless nothing was sold or is on its way to be."""

    symbol: str
    done: bool
    text: str


async def close_positions(
    app: App, symbols: Sequence[str] | None, *, polls: int = MAX_POLLS, poll_seconds: float = POLL_SECONDS
) -> list[Closed]:
    """Start up as `run` does, request the close of `symbols` (None: every owned position) and carry it out.

    Raises `NotHeldError` before anything is requested when a symbol is not owned.
    """
    if app.startup is not None:
        await app.startup(app)
    try:
        return await _close(app, symbols, polls=polls, poll_seconds=poll_seconds)
    finally:
        if app.shutdown is not None:
            await app.shutdown(app)


async def _close(app: App, symbols: Sequence[str] | None, *, polls: int, poll_seconds: float) -> list[Closed]:
    orch = app.orchestrator
    events: list[Message] = []
    orch.bus.tap(events.append)  # the journal of this pass, written with its last transaction
    await orch.execution.sync_updates()
    snapshot = await orch.portfolio.refresh()
    owned = dict(snapshot.positions)
    wanted = _wanted(owned, symbols)
    if not wanted:
        return []  # `--all` with nothing owned: no request to leave behind
    asked = {t: request for t, (request, _) in _request(CloseRequests(app.store), symbols, orch.clock.now()).items()}
    targets = list(asked)
    await _load_assets(app.broker, orch.assets, wanted)
    _begin(app, snapshot)
    signals = orch.exit_requests.signals(snapshot, targets=targets)
    decisions = orch.risk.decide(signals)
    orch.exit_requests.note_refusals(decisions.denied)
    placed = await orch.execution.submit(decisions.approved)
    with app.store.transaction():
        orch.execution.record_placed(placed)
    market_open = orch.calendar.is_open(orch.clock.now())
    ids = [p.order.client_order_id for p in placed]
    for _ in range(polls if market_open else 0):
        if all(_final(app, coid) for coid in ids):
            break
        await orch.clock.sleep(poll_seconds)
        await orch.execution.sync_updates()
    # The stop step, as a daemon iteration ends: a position whose exit was refused or held back (its stop's cancel
    # unconfirmed) gets its stop back before this process leaves, rather than staying bare until a daemon starts.
    # The planner leaves alone what an open exit is selling.
    stops = await orch.protection.run() if orch.protection is not None else StopOutcome()
    snapshot = await orch.portfolio.refresh()
    orch.exit_requests.settle(snapshot, targets=targets)
    with app.store.transaction():
        orch.execution.record_stops(stops.placed)
        app.store.journal(events)
        app.store.save_positions(snapshot.positions)
    report = _Report(app, asked, decisions.denied, events, market_open=market_open, polls=polls)
    return [report.outcome(symbol, owned[symbol]) for symbol in wanted]


async def _load_assets(broker: Broker, assets: dict[str, Asset], symbols: Sequence[str]) -> None:
    """Risk sells only what it knows to be tradable: the assets of the symbols to close."""
    for symbol in symbols:
        if symbol not in assets:
            asset = await broker.get_asset(symbol)
            if asset is not None:
                assets[symbol] = asset


def _begin(app: App, snapshot: PortfolioSnapshot) -> None:
    """Mark equity and hand risk the account, as an iteration does (the breakers see this equity too)."""
    orch = app.orchestrator
    session = orch.calendar.session_date(orch.clock.now())
    mark = app.store.mark_equity(session, snapshot.account.equity)
    previous = app.store.equity_mark(orch.calendar.previous_session(session))
    orch.risk.begin_iteration(
        snapshot,
        session=session,
        start_of_day_equity=previous.last_equity if previous is not None else mark.start_equity,
        peak_equity=mark.peak_equity,
        assets=orch.assets,
    )


def _final(app: App, client_order_id: str) -> bool:
    order = app.store.get_order(client_order_id)
    return order is None or not order.status.is_open


class _Report:
    """One line per symbol, from the store (the orders as the broker last reported them) and this pass's events."""

    def __init__(
        self,
        app: App,
        asked: dict[str, CloseRequest],
        denied: Sequence[OrderDenied],
        events: Sequence[Message],
        *,
        market_open: bool,
        polls: int,
    ) -> None:
        self._store = app.store
        self._asked = asked
        self._denied = {d.signal.symbol: d for d in denied}
        self._rejected = {e.client_order_id: e for e in events if isinstance(e, OrderRejected)}
        self._market_open = market_open
        self._polls = polls

    def outcome(self, symbol: str, position: Position) -> Closed:
        request = self._asked.get(symbol) or self._asked[ALL]
        coid = request.order_id(symbol)
        order = self._store.get_order(coid)
        if order is not None:
            return self._placed(symbol, order)
        denial = self._denied.get(symbol)
        if denial is not None:
            why = f"{denial.reason.value}: {denial.detail}"
            return Closed(symbol, False, f"not sold: {why}; the request stays for the daemon")
        rejection = self._rejected.get(coid)
        if rejection is not None:
            why = f"{rejection.reason.value}" + (f" ({rejection.detail})" if rejection.detail else "")
            return Closed(symbol, False, f"not sold: the broker refused the order: {why}; the request stays")
        selling = [
            o for o in self._store.open_orders() if o.symbol == symbol and o.side is OrderSide.SELL and not o.is_stop
        ]
        if selling:
            return Closed(symbol, True, f"already being sold by order {selling[0].client_order_id}")
        return Closed(symbol, False, f"not sold: no order placed for {position.qty.normalize():f} owned")

    def _placed(self, symbol: str, order: BrokerOrder) -> Closed:
        coid, qty = order.client_order_id, _qty(order.qty)
        if order.status is OrderStatus.FILLED:
            return Closed(
                symbol, True, f"sold {_qty(order.filled_qty)} @ {_qty(order.filled_avg_price)} (order {coid})"
            )
        if order.status.is_open:
            part = f", {_qty(order.filled_qty)} filled so far" if order.filled_qty > 0 else ""
            if not self._market_open:
                return Closed(symbol, True, f"sell {qty} queued for the open: the market is closed (order {coid})")
            return Closed(
                symbol,
                True,
                f"sell {qty} placed, not filled after {self._polls} polls{part} (order {coid}, {order.status.value});"
                " it stays open at the broker and the next daemon start records its fill",
            )
        reason = f" ({order.reason})" if order.reason else ""
        return Closed(symbol, False, f"not sold: order {coid} {order.status.value}{reason}")


def _qty(value: Decimal | None) -> str:
    return f"{(value or Decimal(0)).normalize():f}"
