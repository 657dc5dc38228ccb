"""ExitRequestAgent: turns the pending close requests (`tradingd close`, a breaker's flatten) into exit signals.

The requests live in the state DB's flags (`core/close_requests.py`). At each iteration the orchestrator gives this
agent the portfolio snapshot and hands the exits it returns straight to risk, ahead of the strategy's (they are no
strategy's ideas, so the signal validator, which judges bars, does not see them). Each exit sells an owned position
(the snapshot's positions are capped at what the daemon's own fills bought) at its market price; its strategy is the
request's exit tag (`manual`, `flatten`), its bar time the request time, so the orders table and the journal say why
the position was sold and a retry after a crash carries the same client order id.

A request is cleared once every position it names has its exit order placed (any state but written-ahead) or is
gone. While risk refuses the exit (halted, say), the request stays and is offered again at every iteration; the
refusal is written into it so `tradingd close` and `tradingd status` can say why.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime

import structlog

from core.bus import EventBus
from core.clock import Clock
from core.close_requests import ALL, CloseRequest, CloseRequests
from core.messages import OrderDenied, SignalGenerated
from core.order_ids import FLATTEN_EXIT_TAG, MANUAL_EXIT_TAG, signal_correlation_id
from core.types import OrderSide, OrderStatus, PortfolioSnapshot, Position

log = structlog.get_logger(__name__)

EXIT_REQUEST_TAGS = frozenset({MANUAL_EXIT_TAG, FLATTEN_EXIT_TAG})

OrderStatusLookup = Callable[[str], OrderStatus | None]  # a client order id's stored status, None when not stored


class ExitRequestAgent:
    def __init__(self, bus: EventBus, requests: CloseRequests, order_status: OrderStatusLookup, clock: Clock) -> None:
        self._bus = bus
        self._requests = requests
        self._order_status = order_status
        self._clock = clock

    def signals(self, snapshot: PortfolioSnapshot, *, targets: Collection[str] | None = None) -> list[SignalGenerated]:
        """The exits the pending requests still need, each published; requests already carried out are cleared
        first. `targets`: only the requests for these targets (a symbol or `*`), as `tradingd close` asked."""
        due = self._review(snapshot, targets)
        now = self._clock.now()
        return [self._emit(request, position, now) for request, position in due]

    def settle(self, snapshot: PortfolioSnapshot, *, targets: Collection[str] | None = None) -> list[CloseRequest]:
        """Clear the requests carried out by now (after their orders were placed); returns those still pending."""
        self._review(snapshot, targets)
        return [r for r in self._requests.pending() if targets is None or r.target in targets]

    def note_refusals(self, denied: Sequence[OrderDenied]) -> None:
        """Write risk's refusal of a requested exit into its request, for `close` and `status` to show."""
        for denial in denied:
            signal = denial.signal
            if signal.strategy not in EXIT_REQUEST_TAGS:
                continue
            for request in self._requests.pending():
                if _asked(request, signal.strategy, signal.symbol, signal.bar_ts):
                    self._requests.note_refused(request, f"{denial.reason.value}: {denial.detail}")
                    break

    def _review(
        self, snapshot: PortfolioSnapshot, targets: Collection[str] | None
    ) -> list[tuple[CloseRequest, Position]]:
        """Clear the requests with nothing left to do; return the (request, position) pairs that need an exit now.

        At most one exit per symbol (a symbol's own request before the request for all), and none for a symbol one
        of the requests is already selling: risk would refuse it as pending.
        """
        requests = [r for r in self._requests.pending() if targets is None or r.target in targets]
        statuses = {
            (request.target, symbol): self._order_status(request.order_id(symbol))
            for request in requests
            for symbol in _owned(request, snapshot)
        }
        selling = {symbol for (_, symbol), status in statuses.items() if status is not None and status.is_open}
        due: list[tuple[CloseRequest, Position]] = []
        for request in requests:
            outstanding = False
            for symbol in _owned(request, snapshot):
                status = statuses[(request.target, symbol)]
                if status is not None and status is not OrderStatus.PENDING_SUBMIT:
                    continue  # its exit order is placed
                outstanding = True
                if symbol not in selling:
                    selling.add(symbol)
                    due.append((request, snapshot.positions[symbol]))
            if not outstanding:
                self._requests.clear(request)
                log.info("close_request_done", target=request.target, tag=request.tag)
        return due

    def _emit(self, request: CloseRequest, position: Position, now: datetime) -> SignalGenerated:
        symbol, side = position.symbol, OrderSide.SELL
        signal = SignalGenerated(
            ts_event=now,
            ts_init=now,
            correlation_id=signal_correlation_id(request.tag, symbol, side, request.requested_at),
            strategy=request.tag,
            symbol=symbol,
            side=side,
            is_exit=True,
            price=position.market_price,
            score=0.0,
            volatility=0.0,
            bar_ts=request.requested_at,
            reason=request.reason,
        )
        self._bus.publish(signal)
        return signal


def _owned(request: CloseRequest, snapshot: PortfolioSnapshot) -> list[str]:
    """The owned positions `request` names (a position gone, or never the daemon's, has nothing left to sell)."""
    held = sorted(symbol for symbol, position in snapshot.positions.items() if position.qty > 0)
    return held if request.target == ALL else [symbol for symbol in held if symbol == request.target]


def _asked(request: CloseRequest, tag: str, symbol: str, bar_ts: datetime) -> bool:
    """Whether this exit signal (tag, symbol, bar time) is one `request` asked for."""
    return request.tag == tag and request.requested_at == bar_ts and request.covers(symbol)
