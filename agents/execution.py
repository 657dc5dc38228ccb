"""ExecutionAgent: the last stage. Turns approved orders into broker orders, exactly once, and broker updates into
stored orders and fills.

The orchestrator hands it the risk agent's approvals (`submit`) and gets back the orders the broker accepted; it asks
it for the broker's updates (`fetch_updates`, `apply_updates`) and gets back the new fills, which it has already fed
to the owned-positions ledger. Each outcome is also published (`OrderSubmitted`, `OrderRejected`, `OrderFilled`,
`OrderCanceled`) for the observers.

Only an `OrderApproved` reaches a broker from here: the risk agent is the one gate. The order's identity comes with
the approval (`OrderApproved.client_order_id`, a pure function of the signal, `core/order_ids.py`): a retry, a crash
or a restart that approves the same signal again produces the same id, which the store and the broker both refuse to
place twice. Every event about an order carries the correlation id of the signal it came from, fills included.

Write-ahead: an order is committed to the store as `pending_submit` (with everything needed to look it up) before
the broker call and updated with the broker's answer right after it, each in its own transaction. Whatever happens
in between (a crash, a reply that never comes), the store knows the id, and recovery (`core/broker/reconcile.py`)
asks the broker what became of it. Protective stops (`protect`) are placed the same way, their rows' strategy `ps`.

Cancel before exit: the broker holds back the shares a resting stop covers, and an exit must never sell them twice.
So an approved exit of a symbol with open protective stops first cancels them and waits for the broker to confirm
(`cancel_stops`: a few tries, `clock.sleep` between them); a stop that filled instead leaves less to sell (or
nothing: the exit is dropped), and an exit whose cancel is not confirmed is not sent this iteration but kept for the
next one (`take_deferred_exits`), the position left to its stop meanwhile. Fills are only ever recorded from the
broker's updates (`poll_updates`), so one is never counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

import structlog

from agents.stop_plan import StopCancel, StopPlacement, StopPlan
from core.broker.base import Broker, BrokerError, OrderRejectedError
from core.broker.reconcile import updates_between
from core.bus import EventBus
from core.clock import Clock
from core.exit_reasons import ExitReason, exit_reason_of
from core.failpoints import failpoint
from core.logging import info_enabled
from core.messages import (
    ExitWithheld,
    OrderApproved,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    SignalGenerated,
    StopCancelRequested,
    StopPlaced,
)
from core.order_ids import PROTECTIVE_STOP_TAG, is_our_client_order_id, is_protective_stop_id, signal_correlation_id
from core.portfolio import PortfolioView
from core.reasons import CancelReason, ExitWithheldReason, RejectionReason, StopReason
from core.store import StateStore
from core.types import BrokerOrder, Fill, OrderRequest, OrderSide, OrderStatus, OrderUpdate, Tier

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Placed:
    """An order the broker accepted, with the approval it came from."""

    order: BrokerOrder
    approval: OrderApproved


@dataclass(frozen=True, slots=True)
class PlacedStop:
    """A protective stop the broker accepted, with the placement it came from."""

    order: BrokerOrder
    placement: StopPlacement


@dataclass(frozen=True, slots=True)
class StopOutcome:
    """What execution made of an approved stop plan: the stops placed, and the cancels the broker confirmed."""

    placed: tuple[PlacedStop, ...] = ()
    canceled: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class _Staged:
    """An order on its way: committed as `pending` (with what the broker does not keep) before its request goes to
    the broker."""

    request: OrderRequest
    pending: BrokerOrder
    correlation_id: str
    strategy: str
    tier: Tier | None = None
    signal_bar_ts: datetime | None = None
    exit_reason: ExitReason | None = None  # sells only: why (core/exit_reasons.py), stored with the order


CANCEL_TRIES = 5  # looks at a canceled stop before its exit waits for the next iteration
CANCEL_WAIT_SECONDS = 1.0  # between two looks


class ExecutionAgent:
    def __init__(
        self,
        bus: EventBus,
        broker: Broker,
        store: StateStore,
        portfolio: PortfolioView,
        clock: Clock,
        *,
        cancel_tries: int = CANCEL_TRIES,
        cancel_wait_seconds: float = CANCEL_WAIT_SECONDS,
    ) -> None:
        if cancel_tries < 1:
            raise ValueError(f"cancel_tries must be at least 1, got {cancel_tries}")
        self._bus = bus
        self._broker = broker
        self._store = store
        self._portfolio = portfolio
        self._clock = clock
        self._cancel_tries = cancel_tries
        self._cancel_wait = cancel_wait_seconds
        # The signal's correlation id of every order placed by this process and not final yet (bounded by the open
        # orders): a broker update names only the client order id.
        self._correlations: dict[str, str] = {}
        # Approved exits not sent because their stop's cancel was not confirmed, by symbol: a daily signal comes
        # once, so it is kept for the next iteration (in memory: a restart re-reads the broker instead).
        self._deferred: dict[str, SignalGenerated] = {}

    async def submit(self, approved: Sequence[OrderApproved]) -> list[Placed]:
        """Submit the approved orders; returns those the broker accepted (announced later by `record_placed`).

        Exits of symbols with open protective stops cancel them first (`_clear_stops`). Write-ahead in two commits
        per iteration, not two per order: every order of the batch is committed as `pending_submit` before the first
        broker call, and the broker's answers are committed together after the last. A crash in between leaves
        pending rows that recovery looks up by client order id.
        """
        # An approval whose id was used already is never placed again (`_known` below): it must not cancel stops.
        # Which ids are stored is asked once for the whole batch (not once per approval), and again after stops were
        # cleared: applying the broker's updates there may have stored rows.
        ids = [a.client_order_id for a in approved]
        used = self._store.known_order_ids(ids) if ids else set()
        ready = await self._clear_stops([a for a in approved if a.client_order_id not in used])
        ready += [(a, None) for a in approved if a.client_order_id in used]  # `_stage_approval` logs and skips them
        stored = self._store.known_order_ids(ids) if len(used) < len(ids) else used
        staged: list[_Staged] = []
        events: dict[str, OrderApproved] = {}
        seen: set[str] = set()
        for event, qty in ready:
            item = self._stage_approval(event, seen, qty, stored)
            if item is not None:
                staged.append(item)
                events[event.client_order_id] = event
        return [Placed(order, events[item.request.client_order_id]) for item, order in await self._place(staged)]

    async def protect(self, plan: StopPlan) -> StopOutcome:
        """Carry out an approved stop plan: the cancels first, then the placements of every symbol whose cancels the
        broker confirmed without a fill (a stop that sold meanwhile makes the plan stale: it is made again next
        time). Returns the stops placed (announced later by `record_stops`) and the confirmed cancels."""
        canceled, sold = await self.cancel_stops(plan.cancels)
        held_back = {c.symbol for c in plan.cancels if c.client_order_id not in canceled} | sold
        staged: list[_Staged] = []
        placements: dict[str, StopPlacement] = {}
        seen: set[str] = set()
        # Which ids are stored already: one query for the plan (the planner chose ids not used, so this is rare).
        ids = [p.client_order_id for p in plan.placements]
        stored = self._store.known_order_ids(ids) if ids else set()
        for placement in plan.placements:
            if placement.symbol in held_back:
                log.info("stop_placement_deferred", symbol=placement.symbol, client_order_id=placement.client_order_id)
                continue
            item = self._stage_stop(placement, seen, stored)
            if item is not None:
                staged.append(item)
                placements[placement.client_order_id] = placement
        if staged:
            failpoint("stops.before_place")
        placed = await self._place(staged)
        return StopOutcome(
            placed=tuple(PlacedStop(order, placements[item.request.client_order_id]) for item, order in placed),
            canceled=frozenset(canceled),
        )

    async def cancel_stops(self, cancels: Sequence[StopCancel]) -> tuple[set[str], set[str]]:
        """Ask the broker to cancel these stops and wait for it to confirm: up to `cancel_tries` looks, `clock.sleep`
        between them. Returns the client order ids now final at the broker, and the symbols whose stops sold shares
        meanwhile (those fills are recorded: every look first applies the broker's updates)."""
        if not cancels:
            return set(), set()
        for cancel in cancels:
            try:
                await self._broker.cancel_order(cancel.client_order_id)
            except OrderRejectedError:
                pass  # already final (or unknown): its state is learnt below
            except BrokerError as error:
                # The adapter's retries ran out: the cancel may or may not have landed. It counts as unconfirmed
                # below (the exit waits for the next iteration) instead of aborting the iteration's other orders.
                log.warning("stop_cancel_failed", client_order_id=cancel.client_order_id, error=str(error))
            if info_enabled():
                log.info(
                    "stop_cancel_requested",
                    client_order_id=cancel.client_order_id,
                    symbol=cancel.symbol,
                    reason=cancel.reason.value,
                )
            now = self._clock.now()
            self._bus.publish(
                StopCancelRequested(
                    ts_event=now,
                    ts_init=now,
                    correlation_id=cancel.client_order_id,
                    client_order_id=cancel.client_order_id,
                    symbol=cancel.symbol,
                    reason=cancel.reason,
                )
            )
        waiting = {cancel.client_order_id for cancel in cancels}
        confirmed: set[str] = set()
        for attempt in range(self._cancel_tries):
            if attempt:
                await self._clock.sleep(self._cancel_wait)
            try:
                await self.sync_updates()
                for coid in sorted(waiting):
                    if await self._is_final(coid):
                        confirmed.add(coid)
            except BrokerError as error:
                log.warning("stop_cancel_check_failed", error=str(error), attempt=attempt + 1)
            waiting -= confirmed
            if not waiting:
                break
        for coid in sorted(waiting):
            log.warning("stop_cancel_unconfirmed", client_order_id=coid, tries=self._cancel_tries)
        sold = {
            cancel.symbol for cancel in cancels if self._filled_qty(cancel.client_order_id) > cancel.order.filled_qty
        }
        return confirmed, sold

    def defer_exits(self, signals: Sequence[SignalGenerated]) -> None:
        """Keep exits for the next iteration again (risk turned them down for now, e.g. while halted: their stops
        may be canceled already, so forgetting them would leave the positions with neither a stop nor an exit)."""
        for signal in signals:
            self._deferred.setdefault(signal.symbol, signal)

    def take_deferred_exits(self) -> list[SignalGenerated]:
        """The exit signals an unconfirmed stop cancel held back, for risk to decide again (and forget here)."""
        deferred, self._deferred = list(self._deferred.values()), {}
        return deferred

    async def _is_final(self, coid: str) -> bool:
        """Whether the stop is done at the broker. Final in the store (its updates applied, fills included), or final
        at the broker with no fill the store has not recorded yet (a fill is waited for: it comes with its update)."""
        stored = self._store.get_order(coid)
        if stored is not None and not stored.status.is_open:
            return True
        seen = await self._broker.get_order(coid)
        if seen is None:
            return True  # the broker holds nothing under this id
        return not seen.status.is_open and seen.filled_qty == self._filled_qty(coid)

    def _filled_qty(self, coid: str) -> Decimal:
        stored = self._store.get_order(coid)
        return stored.filled_qty if stored is not None else Decimal(0)

    async def _clear_stops(self, approved: Sequence[OrderApproved]) -> list[tuple[OrderApproved, Decimal | None]]:
        """Cancel before exit: the approved orders that may go now, each with the quantity an exit may still sell
        (None: as approved). An exit whose stop's cancel is unconfirmed waits for the next iteration; one whose
        stop sold everything is dropped; one whose stop sold part sells what is still owned."""
        exiting = {a.order.symbol for a in approved if a.order.side is OrderSide.SELL}
        stops = [o for o in self._portfolio.snapshot.open_orders if o.symbol in exiting and _is_open_stop(o)]
        if not stops:
            return [(a, None) for a in approved]
        confirmed, _ = await self.cancel_stops([StopCancel(o, StopReason.EXIT) for o in stops])
        if confirmed:
            failpoint("exit.after_cancel")
        ready: list[tuple[OrderApproved, Decimal | None]] = []
        for event in approved:
            symbol, approved_qty = event.order.symbol, event.order.qty
            covering = [o for o in stops if o.symbol == symbol]
            if event.order.side is not OrderSide.SELL or not covering or approved_qty is None:
                ready.append((event, None))
            elif any(o.client_order_id not in confirmed for o in covering):
                self._deferred[symbol] = event.signal
                self._withhold(event, ExitWithheldReason.CANCEL_UNCONFIRMED, "the stop's cancel is not confirmed yet")
            else:
                qty = _still_owned(approved_qty, self._portfolio.ledger.qty(symbol))
                if qty <= 0:
                    self._withhold(event, ExitWithheldReason.STOP_FILLED, "the protective stop sold the position")
                else:
                    ready.append((event, None if qty == approved_qty else qty))
        return ready

    def _withhold(self, event: OrderApproved, reason: ExitWithheldReason, detail: str) -> None:
        log.info("exit_withheld", client_order_id=event.client_order_id, symbol=event.order.symbol, reason=reason.value)
        now = self._clock.now()
        self._bus.publish(
            ExitWithheld(
                ts_event=now,
                ts_init=now,
                correlation_id=event.correlation_id,
                client_order_id=event.client_order_id,
                symbol=event.order.symbol,
                reason=reason,
                detail=detail,
            )
        )

    async def _place(self, staged: Sequence[_Staged]) -> list[tuple[_Staged, BrokerOrder]]:
        """Write-ahead placement of a batch: pending rows committed, the broker called, its answers committed."""
        if not staged:
            return []
        with self._store.transaction():  # committed before any broker call: a crash after it loses nothing
            self._store.upsert_orders(
                [item.pending for item in staged],
                info=[(item.strategy, item.tier, item.signal_bar_ts, item.exit_reason) for item in staged],
            )
        failpoint("submit.before_broker")
        answered: list[tuple[_Staged, BrokerOrder]] = []
        for item in staged:
            order = await self._send(item)
            if order is not None:
                failpoint("submit.after_broker")
                answered.append((item, order))
                self._portfolio.note_submitted(order)
        if answered:
            with self._store.transaction():  # the answers, committed together right after the last broker call
                self._store.upsert_orders([order for _, order in answered])
                for item, order in answered:
                    if order.filled_qty > 0:
                        # Found filled after an ambiguous failure (the reply was lost, the order was not): its fill
                        # is derived like any recovered one, so a later report of the same totals is not a new fill.
                        self.apply_updates(updates_between([item.pending], [order], self._clock.now()))
        return answered

    def record_placed(self, placed: Sequence[Placed]) -> None:
        """Announce placed orders; call inside the iteration's store transaction (the journal's).

        The orders themselves were stored around the broker calls (`submit`); the write lock is never held
        across a broker call.
        """
        for item in placed:
            self._announce(item.order, item.approval)

    def record_stops(self, placed: Iterable[PlacedStop]) -> None:
        """Announce placed protective stops (`StopPlaced`), like `record_placed`."""
        for item in placed:
            order, placement = item.order, item.placement
            if info_enabled():
                log.info(
                    "stop_placed",
                    client_order_id=order.client_order_id,
                    symbol=order.symbol,
                    qty=str(placement.qty),
                    order_type=placement.order_type.value,
                    time_in_force=placement.time_in_force.value,
                    stop_price=None if placement.stop_price is None else str(placement.stop_price),
                    trail_percent=None if placement.trail_percent is None else str(placement.trail_percent),
                    reason=placement.reason.value,
                )
            now = self._clock.now()
            self._bus.publish(
                StopPlaced(
                    ts_event=now,
                    ts_init=now,
                    correlation_id=order.client_order_id,
                    client_order_id=order.client_order_id,
                    broker_order_id=order.broker_order_id,
                    symbol=order.symbol,
                    qty=placement.qty,
                    order_type=placement.order_type,
                    time_in_force=placement.time_in_force,
                    stop_price=placement.stop_price,
                    trail_percent=placement.trail_percent,
                    reason=placement.reason,
                )
            )

    def _known(self, coid: str, seen: set[str], stored: set[str] | None = None) -> bool:
        """Whether an order under `coid` was stored already or staged in this batch (it is never placed twice).
        `stored`: the batch's ids known to be stored, looked up together beforehand (None: ask the store)."""
        in_store = coid in stored if stored is not None else self._store.has_order(coid)
        if coid in seen or in_store:
            known = self._store.get_order(coid)  # decoded only to say its status (rare: a retried approval)
            status = known.status.value if known is not None else OrderStatus.PENDING_SUBMIT.value
            log.info("order_already_known", client_order_id=coid, status=status)
            return True
        seen.add(coid)
        return False

    def _stage_approval(
        self, event: OrderApproved, seen: set[str], qty: Decimal | None, stored: set[str]
    ) -> _Staged | None:
        """`qty`: what an exit may still sell when a stop sold part of the position first (None: as approved);
        `stored`: the batch's ids already stored."""
        sized, coid = event.order, event.client_order_id
        if self._known(coid, seen, stored):
            return None
        self._correlations[coid] = event.correlation_id
        request = OrderRequest(
            client_order_id=coid,
            symbol=sized.symbol,
            side=sized.side,
            qty=sized.qty if qty is None else qty,
            notional=sized.notional if qty is None else None,
        )
        signal = event.signal
        why = exit_reason_of(signal.strategy, signal.reason) if sized.side is OrderSide.SELL else None
        return self._staged(request, event.correlation_id, signal.strategy, sized.tier, signal.bar_ts, why)

    def _stage_stop(self, placement: StopPlacement, seen: set[str], stored: set[str]) -> _Staged | None:
        """`stored`: the plan's ids already stored."""
        coid = placement.client_order_id
        if self._known(coid, seen, stored):
            return None
        # A stop has no signal: it goes by its own client order id, as an adopted order does.
        self._correlations[coid] = coid
        return self._staged(placement.request(), coid, PROTECTIVE_STOP_TAG, exit_reason=ExitReason.STOP_LOSS)

    def _staged(
        self,
        request: OrderRequest,
        correlation_id: str,
        strategy: str,
        tier: Tier | None = None,
        signal_bar_ts: datetime | None = None,
        exit_reason: ExitReason | None = None,
    ) -> _Staged:
        pending = BrokerOrder(
            client_order_id=request.client_order_id,
            broker_order_id="",
            symbol=request.symbol,
            side=request.side,
            status=OrderStatus.PENDING_SUBMIT,
            qty=request.qty,
            notional=request.notional,
            submitted_at=self._clock.now(),
            order_type=request.order_type,
            time_in_force=request.time_in_force,
            stop_price=request.stop_price,
            trail_percent=request.trail_percent,
        )
        return _Staged(request, pending, correlation_id, strategy, tier, signal_bar_ts, exit_reason)

    async def _send(self, item: _Staged) -> BrokerOrder | None:
        coid, symbol = item.request.client_order_id, item.request.symbol
        try:
            return await self._broker.submit_order(item.request)
        except OrderRejectedError as error:
            # A definite refusal: the broker holds nothing under this id, so neither does the store (the same
            # signal may be tried again, as before write-ahead).
            self._store.discard_pending(coid)
            self._correlations.pop(coid, None)
            self._reject(coid, symbol, error.reason, error.message, item.correlation_id)
            return None
        except BrokerError as error:
            # Ambiguous: the adapter already looked the order up and retried within its budget. The row stays
            # pending_submit and the next `fetch_updates` asks the broker by client order id.
            self._reject(coid, symbol, RejectionReason.BROKER_UNAVAILABLE, str(error), item.correlation_id)
            return None

    async def _resolve_pending(self) -> list[OrderUpdate]:
        """Orders left `pending_submit` by an ambiguous failure: what the broker made of them.

        One the broker never saw is forgotten (its id may be submitted again); start-up recovery, which cannot
        tell a crash before the call from one after, closes such orders as never_submitted instead.
        """
        pending = self._store.pending_orders()
        found: list[BrokerOrder] = []
        for order in pending:
            seen = await self._broker.get_order(order.client_order_id)
            if seen is None:
                self._store.discard_pending(order.client_order_id)
                self._correlations.pop(order.client_order_id, None)
                log.info("pending_order_not_at_broker", client_order_id=order.client_order_id)
            else:
                found.append(seen)
                log.warning("pending_order_found", client_order_id=order.client_order_id, status=seen.status.value)
        return updates_between(pending, found, self._clock.now()) if found else []

    def _announce(self, order: BrokerOrder, event: OrderApproved) -> None:
        now = self._clock.now()
        if info_enabled():
            log.info(
                "order_submitted",
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side.value,
                qty=str(order.qty) if order.qty is not None else None,
                notional=str(order.notional) if order.notional is not None else None,
            )
        self._bus.publish(
            OrderSubmitted(
                ts_event=now,
                ts_init=now,
                correlation_id=event.correlation_id,
                client_order_id=order.client_order_id,
                broker_order_id=order.broker_order_id,
                symbol=order.symbol,
                side=order.side,
                qty=order.qty,
                notional=order.notional,
            )
        )

    def _reject(self, coid: str, symbol: str, reason: RejectionReason, message: str, correlation_id: str) -> None:
        now = self._clock.now()
        log.warning("order_rejected", client_order_id=coid, symbol=symbol, reason=reason.value, message=message)
        self._bus.publish(
            OrderRejected(
                ts_event=now,
                ts_init=now,
                correlation_id=correlation_id,
                client_order_id=coid,
                symbol=symbol,
                reason=reason,
                detail=message,
            )
        )

    def _correlation_id(self, order: BrokerOrder) -> str:
        """The correlation id of the signal an order came from: the approval's, or for an order placed before a
        restart, rebuilt from what was written ahead of it (strategy, signal bar time). An order with no signal
        (adopted) goes by its client order id."""
        coid = order.client_order_id
        known = self._correlations.get(coid)
        if known is not None:
            return known
        record = self._store.order_record(coid)
        if record is None or not record.strategy or record.signal_bar_ts is None:
            return order.client_order_id
        return signal_correlation_id(record.strategy, order.symbol, order.side, record.signal_bar_ts)

    async def fetch_updates(self) -> list[OrderUpdate]:
        """Order state changes from the broker since the last call (network; see `apply_updates`), including what
        became of orders an ambiguous failure left `pending_submit`."""
        updates = self._ours(await self._broker.poll_updates())
        recovered = await self._resolve_pending()
        return sorted([*updates, *recovered], key=lambda u: u.ts) if recovered else updates

    def _ours(self, updates: list[OrderUpdate]) -> list[OrderUpdate]:
        """Drop updates of orders this daemon did not place: the account's stream also reports the user's own
        orders, and a fill of theirs recorded here would make their shares ours to sell."""
        kept = [u for u in updates if self._is_ours(u.order.client_order_id)]
        if len(kept) < len(updates):
            log.debug("updates_not_ours", count=len(updates) - len(kept))
        return kept

    def _is_ours(self, coid: str) -> bool:
        return is_our_client_order_id(coid) or self._store.has_order(coid)

    async def sync_updates(self) -> list[Fill]:
        """Fetch and apply in one go (its own transaction); returns the new fills."""
        updates = await self.fetch_updates()
        with self._store.transaction():
            return self.apply_updates(updates)

    def apply_updates(self, updates: Sequence[OrderUpdate]) -> list[Fill]:
        """Record fills and state changes, feed new fills to the owned-positions ledger and publish their events;
        returns the new fills (a fill reported again is not new)."""
        # Every order row in one statement, in update order (an order updated twice ends in its last state); then the
        # fills, one by one: whether each is new decides what is fed to the ledger. One transaction either way.
        self._store.upsert_orders([update.order for update in updates])
        fresh: list[bool] = []
        for update in updates:
            is_new = update.fill is not None and self._store.record_fill(update.fill)
            fresh.append(is_new)
            if is_new:
                failpoint("updates.between_fills")
        new_fills: list[Fill] = []
        for update, is_new_fill in zip(updates, fresh, strict=True):
            order = update.order
            if update.fill is not None:
                if is_new_fill:
                    fill = update.fill
                    self._portfolio.ledger.apply(fill)
                    new_fills.append(fill)
                    # Logged once per new fill (a re-reported fill is not new): the log file's trade record, and
                    # the console's FILL line in paper/live.
                    if info_enabled():
                        log.info(
                            "order_filled",
                            client_order_id=fill.client_order_id,
                            symbol=fill.symbol,
                            side=fill.side.value,
                            qty=str(fill.qty),
                            price=str(fill.price),
                            fill_ts=fill.ts.isoformat(),
                            execution_id=fill.execution_id,
                        )
                    self._bus.publish(
                        OrderFilled(
                            ts_event=update.ts,
                            ts_init=self._clock.now(),
                            correlation_id=self._correlation_id(order),
                            fill=update.fill,
                        )
                    )
            elif order.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
                reason = CancelReason.parse(order.reason, fallback=CancelReason(order.status.value))
                self._bus.publish(
                    OrderCanceled(
                        ts_event=update.ts,
                        ts_init=self._clock.now(),
                        correlation_id=self._correlation_id(order),
                        client_order_id=order.client_order_id,
                        symbol=order.symbol,
                        reason=reason,
                        detail=order.reason,
                    )
                )
            elif order.status is OrderStatus.REJECTED:
                refusal = RejectionReason.parse(order.reason) if order.reason else RejectionReason.REJECTED
                self._reject(order.client_order_id, order.symbol, refusal, order.reason, self._correlation_id(order))
            if not order.status.is_open:
                self._correlations.pop(order.client_order_id, None)
        return new_fills


def _is_open_stop(order: BrokerOrder) -> bool:
    """A protective stop of ours still open at the broker (resting, or triggered and filling)."""
    return order.side is OrderSide.SELL and order.status.is_open and is_protective_stop_id(order.client_order_id)


def _still_owned(approved: Decimal, owned: Decimal) -> Decimal:
    """What an exit may sell once its stop is gone: the approved quantity, or less when the stop sold part of it
    (whole shares stay whole: an approved whole-share exit was one that may not hold a fraction)."""
    qty = min(approved, owned)
    if approved == approved.to_integral_value():
        qty = qty.to_integral_value(rounding=ROUND_FLOOR)
    return max(qty, Decimal(0))
