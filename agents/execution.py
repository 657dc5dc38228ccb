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
asks the broker what became of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from core.broker.base import Broker, BrokerError, OrderRejectedError
from core.broker.reconcile import updates_between
from core.bus import EventBus
from core.clock import Clock
from core.failpoints import failpoint
from core.messages import OrderApproved, OrderCanceled, OrderFilled, OrderRejected, OrderSubmitted
from core.order_ids import is_our_client_order_id, signal_correlation_id
from core.portfolio import PortfolioView
from core.reasons import CancelReason, RejectionReason
from core.store import StateStore
from core.types import BrokerOrder, Fill, OrderRequest, OrderStatus, OrderUpdate

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Placed:
    """An order the broker accepted, with the approval it came from."""

    order: BrokerOrder
    approval: OrderApproved


@dataclass(frozen=True, slots=True)
class _Staged:
    """An approved order on its way: committed as `pending` before its request goes to the broker."""

    event: OrderApproved
    request: OrderRequest
    pending: BrokerOrder


class ExecutionAgent:
    def __init__(
        self, bus: EventBus, broker: Broker, store: StateStore, portfolio: PortfolioView, clock: Clock
    ) -> None:
        self._bus = bus
        self._broker = broker
        self._store = store
        self._portfolio = portfolio
        self._clock = clock
        # The signal's correlation id of every order placed by this process and not final yet (bounded by the open
        # orders): a broker update names only the client order id.
        self._correlations: dict[str, str] = {}

    async def submit(self, approved: Sequence[OrderApproved]) -> list[Placed]:
        """Submit the approved orders; returns those the broker accepted (announced later by `record_placed`).

        Write-ahead in two commits per iteration, not two per order: every order of the batch is committed as
        `pending_submit` before the first broker call, and the broker's answers are committed together after the
        last. A crash in between leaves pending rows that recovery looks up by client order id.
        """
        staged: list[_Staged] = []
        seen: set[str] = set()
        for event in approved:
            item = self._stage(event, seen)
            if item is not None:
                staged.append(item)
        if not staged:
            return []
        with self._store.transaction():  # committed before any broker call: a crash after it loses nothing
            for item in staged:
                signal, sized = item.event.signal, item.event.order
                self._store.upsert_order(
                    item.pending, strategy=signal.strategy, tier=sized.tier, signal_bar_ts=signal.bar_ts
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
            with self._store.transaction():
                for item, order in answered:
                    self._store.upsert_order(order)
                    if order.filled_qty > 0:
                        # Found filled after an ambiguous failure (the reply was lost, the order was not): its fill
                        # is derived like any recovered one, so a later report of the same totals is not a new fill.
                        self.apply_updates(updates_between([item.pending], [order], self._clock.now()))
        return [Placed(order, item.event) for item, order in answered]

    def record_placed(self, placed: Sequence[Placed]) -> None:
        """Announce placed orders; call inside the iteration's store transaction (the journal's).

        The orders themselves were stored around the broker calls (`submit`); the write lock is never held
        across a broker call.
        """
        for item in placed:
            self._announce(item.order, item.approval)

    def _stage(self, event: OrderApproved, seen: set[str]) -> _Staged | None:
        sized, coid = event.order, event.client_order_id
        known = self._store.get_order(coid)
        if known is not None or coid in seen:
            status = known.status.value if known is not None else OrderStatus.PENDING_SUBMIT.value
            log.info("order_already_known", client_order_id=coid, status=status)
            return None
        seen.add(coid)
        self._correlations[coid] = event.correlation_id
        request = OrderRequest(
            client_order_id=coid, symbol=sized.symbol, side=sized.side, qty=sized.qty, notional=sized.notional
        )
        pending = BrokerOrder(
            client_order_id=coid,
            broker_order_id="",
            symbol=sized.symbol,
            side=sized.side,
            status=OrderStatus.PENDING_SUBMIT,
            qty=sized.qty,
            notional=sized.notional,
            submitted_at=self._clock.now(),
        )
        return _Staged(event, request, pending)

    async def _send(self, item: _Staged) -> BrokerOrder | None:
        coid, symbol = item.request.client_order_id, item.request.symbol
        try:
            return await self._broker.submit_order(item.request)
        except OrderRejectedError as error:
            # A definite refusal: the broker holds nothing under this id, so neither does the store (the same
            # signal may be tried again, as before write-ahead).
            self._store.discard_pending(coid)
            self._correlations.pop(coid, None)
            self._reject(coid, symbol, error.reason, error.message, item.event.correlation_id)
            return None
        except BrokerError as error:
            # Ambiguous: the adapter already looked the order up and retried within its budget. The row stays
            # pending_submit and the next `fetch_updates` asks the broker by client order id.
            self._reject(coid, symbol, RejectionReason.BROKER_UNAVAILABLE, str(error), item.event.correlation_id)
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
        return is_our_client_order_id(coid) or self._store.get_order(coid) is not None

    async def sync_updates(self) -> list[Fill]:
        """Fetch and apply in one go (its own transaction); returns the new fills."""
        updates = await self.fetch_updates()
        with self._store.transaction():
            return self.apply_updates(updates)

    def apply_updates(self, updates: Sequence[OrderUpdate]) -> list[Fill]:
        """Record fills and state changes, feed new fills to the owned-positions ledger and publish their events;
        returns the new fills (a fill reported again is not new)."""
        fresh: list[bool] = []
        for update in updates:
            self._store.upsert_order(update.order)
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
