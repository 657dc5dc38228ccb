"""SignalValidator: the third stage, the gate between a strategy's idea and the risk agent.

A signal passes only if it is fresh (daily bars: the bar of the last closed session; intraday: younger than
SIGNAL_MAX_AGE_SECONDS), carries a real positive price, names a symbol the
broker can trade, and does not duplicate an open order, a held position or another signal of this iteration.
`validate` returns the signals that pass, in order, and publishes a `SignalValidated` for each and a
`SignalRejected` with a stable reason code (`SignalRejectReason`) for each of the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from core.bus import EventBus
from core.clock import Clock, NyseCalendar
from core.messages import SignalGenerated, SignalRejected, SignalValidated
from core.portfolio import PortfolioView
from core.reasons import SignalRejectReason
from core.types import Asset, OrderSide


class SignalValidator:
    def __init__(
        self,
        bus: EventBus,
        portfolio: PortfolioView,
        clock: Clock,
        *,
        max_age: timedelta,
        assets: Mapping[str, Asset],
        calendar: NyseCalendar | None = None,
    ) -> None:
        self._bus = bus
        self._portfolio = portfolio
        self._clock = clock
        self._max_age = max_age
        self._calendar = calendar
        self._assets = assets
        self._seen: set[tuple[str, OrderSide]] = set()
        self._seen_bar: object = None
        self._stale_key: tuple[datetime, datetime] | None = None  # (bar time, now) of the last staleness answer
        self._stale = False

    def rejection_reason(self, signal: SignalGenerated) -> SignalRejectReason | None:
        now = self._clock.now()
        if signal.bar_ts > now:
            return SignalRejectReason.FUTURE_BAR
        if self._calendar is not None:
            # Daily bars: fresh means the bar of the last session that has closed. A fixed age would call Friday's
            # bar stale on Monday morning, and would accept Thursday's bar after Friday's close.
            if self._stale_daily(self._calendar, signal.bar_ts, now):
                return SignalRejectReason.STALE_SIGNAL
        elif now - signal.bar_ts > self._max_age:
            return SignalRejectReason.STALE_SIGNAL
        if not signal.price.is_finite() or signal.price <= 0:
            return SignalRejectReason.INVALID_PRICE
        asset = self._assets.get(signal.symbol)
        if asset is None:
            return SignalRejectReason.UNKNOWN_SYMBOL
        if not asset.tradable:
            return SignalRejectReason.NOT_TRADABLE
        if self._portfolio.has_open_order(signal.symbol):
            return SignalRejectReason.DUPLICATE_OPEN_ORDER
        position = self._portfolio.position(signal.symbol)
        if signal.side is OrderSide.BUY and position is not None and position.qty > 0:
            return SignalRejectReason.DUPLICATE_POSITION
        if signal.is_exit and (position is None or position.qty <= 0):
            return SignalRejectReason.NO_POSITION
        if (signal.symbol, signal.side) in self._seen:
            return SignalRejectReason.DUPLICATE_SIGNAL
        return None

    def _stale_daily(self, calendar: NyseCalendar, bar_ts: datetime, now: datetime) -> bool:
        """Whether a daily bar is older than the last completed session's. An iteration's signals share one bar time
        and one now: the calendar is asked once per pair, not once per signal."""
        key = (bar_ts, now)
        if key != self._stale_key:
            self._stale_key = key
            self._stale = calendar.session_date(bar_ts) < calendar.last_completed_session(now)
        return self._stale

    def validate(self, signals: Sequence[SignalGenerated]) -> list[SignalGenerated]:
        """The signals that pass, in their order."""
        return [signal for signal in signals if self._passes(signal)]

    def _passes(self, signal: SignalGenerated) -> bool:
        if self._seen_bar != signal.bar_ts:  # duplicates are judged within one bar's signals
            self._seen_bar = signal.bar_ts
            self._seen.clear()
        now = self._clock.now()
        reason = self.rejection_reason(signal)
        if reason is not None:
            self._bus.publish(
                SignalRejected(
                    ts_event=now, ts_init=now, correlation_id=signal.correlation_id, signal=signal, reason=reason
                )
            )
            return False
        self._seen.add((signal.symbol, signal.side))
        self._bus.publish(
            SignalValidated(ts_event=now, ts_init=now, correlation_id=signal.correlation_id, signal=signal)
        )
        return True
