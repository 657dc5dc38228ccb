"""Risk: circuit breakers, the kill switch, and the decision on every validated signal.

`RiskEngine` holds the pure pre-trade checks (no clock, no I/O). `RiskAgent` is the thin shell on the bus: it collects
`SignalValidated` during an iteration, and once the bars have been processed the orchestrator calls `flush()`, which
answers every signal with `OrderApproved` or `OrderDenied(reason)`: exits first, then entries, best score first.

Breakers and the kill switch live in a `FlagStore` (the SQLite state store in production), read on every iteration
so a `tradingd halt` from another process stops the daemon at its next flush, and a restart cannot forget a halt.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog

from agents.sizing import (
    DenialReason,
    EntryCandidate,
    TieredPositionSizer,
    TierExposureTracker,
    effective_positions,
    herfindahl,
)
from core.messages import (
    BarsFetched,
    CircuitBreakerTripped,
    Message,
    OrderApproved,
    OrderDenied,
    OrderFilled,
    SignalGenerated,
    SignalValidated,
    SizedOrder,
)
from core.types import (
    Asset,
    BarFrame,
    BrokerOrder,
    OrderSide,
    PortfolioSnapshot,
    Position,
    Tier,
    TradingState,
    derive_trading_state,
)

if TYPE_CHECKING:
    from config.settings import Settings
    from core.bus import EventBus
    from core.clock import Clock
    from core.flags import FlagStore

log = structlog.get_logger(__name__)

FLAG_HALTED = "halted"
FLAG_DAILY_LOSS = "breaker_daily_loss"
FLAG_DRAWDOWN = "breaker_drawdown"
FLAG_REDUCE_ONLY = "reduce_only"  # `tradingd halt --reduce-only`: the value is the operator's reason
FLAG_RECOVERY = "recovery"  # the state DB was lost, set aside or restored: the value says which
# Peak equity since the last manual resume. Without it, resuming after a drawdown trip would re-trip at once, since
# equity is still below the all-time peak. "rebase" means: the next iteration's equity becomes the peak.
FLAG_DRAWDOWN_PEAK = "drawdown_peak"
_REBASE = "rebase"
_ZERO = Decimal(0)

Verdict = tuple[str, str] | None  # (reason, detail) when denied


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_daily_loss_pct: Decimal = Decimal("0.02")
    max_drawdown_pct: Decimal = Decimal("0.10")
    max_open_positions: int = 20
    max_position_pct: Decimal = Decimal("0.10")

    def __post_init__(self) -> None:
        for name in ("max_daily_loss_pct", "max_drawdown_pct", "max_position_pct"):
            value: Decimal = getattr(self, name)
            if not value.is_finite() or not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.max_open_positions < 1:
            raise ValueError(f"max_open_positions must be at least 1, got {self.max_open_positions}")

    @classmethod
    def from_settings(cls, settings: Settings) -> RiskLimits:
        return cls(
            max_daily_loss_pct=settings.max_daily_loss_pct,
            max_drawdown_pct=settings.max_drawdown_pct,
            max_open_positions=settings.max_open_positions,
            max_position_pct=settings.max_position_pct,
        )


# ----------------------------------------------------------------------------------------------------------------------
# PRE-TRADE CHECKS (pure)
# ----------------------------------------------------------------------------------------------------------------------


class RiskEngine:
    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits

    def daily_loss_breached(self, *, equity: Decimal, start_of_day_equity: Decimal) -> bool:
        """Equity fell to start-of-day × (1 − limit). Only a real loss trips it."""
        if start_of_day_equity <= 0 or equity >= start_of_day_equity:
            return False
        return equity <= start_of_day_equity * (1 - self.limits.max_daily_loss_pct)

    @staticmethod
    def drawdown(*, equity: Decimal, peak_equity: Decimal) -> Decimal:
        if peak_equity <= 0 or equity >= peak_equity:
            return _ZERO
        return (peak_equity - equity) / peak_equity

    def drawdown_breached(self, *, equity: Decimal, peak_equity: Decimal) -> bool:
        dd = self.drawdown(equity=equity, peak_equity=peak_equity)
        return dd > 0 and dd >= self.limits.max_drawdown_pct

    def entry_gate(self, *, open_positions: int) -> Verdict:
        """The capacity check that denies every entry of the iteration at once (the kill switch and the breakers are
        the trading state's, `read_trading_state`)."""
        if open_positions >= self.limits.max_open_positions:
            return DenialReason.MAX_OPEN_POSITIONS.value, f"{open_positions} open of {self.limits.max_open_positions}"
        return None

    def check_entry(self, order: SizedOrder, *, equity: Decimal, buying_power: Decimal) -> Verdict:
        """Last line of defence after sizing: an approved entry never exceeds the equity cap or buying power."""
        cap = self.limits.max_position_pct * equity
        if order.est_notional > cap:
            return DenialReason.MAX_POSITION_PCT.value, f"${order.est_notional} above the ${cap:.2f} cap"
        if order.est_notional > buying_power:
            return DenialReason.INSUFFICIENT_BUYING_POWER.value, f"${order.est_notional} above ${buying_power:.2f}"
        return None

    @staticmethod
    def exit_order(position: Position, *, tier: Tier | None, est_price: Decimal) -> SizedOrder:
        """Close the whole long position."""
        qty = position.qty
        return SizedOrder(
            symbol=position.symbol,
            side=OrderSide.SELL,
            tier=tier,
            qty=qty,
            notional=None,
            est_price=est_price,
            est_notional=qty * est_price,
            fractional=qty != qty.to_integral_value(),
        )


def pending_buys(
    open_orders: tuple[BrokerOrder, ...], price_of: Callable[[str], Decimal | None]
) -> tuple[dict[str, Decimal], list[str]]:
    """Unfilled notional of open buy orders per client order id, and the ids that cannot be priced."""
    pending: dict[str, Decimal] = {}
    unpriced: list[str] = []
    for order in open_orders:
        if order.side is not OrderSide.BUY or not order.status.is_open:
            continue
        filled_value = order.filled_qty * (order.filled_avg_price or _ZERO)
        if order.notional is not None:
            pending[order.client_order_id] = max(order.notional - filled_value, _ZERO)
        elif order.qty is not None:
            price = price_of(order.symbol) or order.filled_avg_price
            if price is None:
                unpriced.append(order.client_order_id)
                continue
            pending[order.client_order_id] = max(order.qty - order.filled_qty, _ZERO) * price
    return pending, unpriced


# ----------------------------------------------------------------------------------------------------------------------
# AGENT
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Iteration:
    snapshot: PortfolioSnapshot
    session: date
    start_of_day_equity: Decimal
    peak_equity: Decimal
    assets: Mapping[str, Asset]
    filled: dict[str, Decimal] = field(default_factory=dict)  # buy fills since begin, per client order id


@dataclass(frozen=True, slots=True)
class StateView:
    """The trading state and why: `reasons` are (code, detail) pairs, most severe first (the denial reason)."""

    state: TradingState
    reasons: tuple[tuple[str, str], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"state": self.state.value, "reasons": [{"code": c, "detail": d} for c, d in self.reasons]}


def read_trading_state(flags: FlagStore, session: date | None = None) -> StateView:
    """The one derivation of the trading state from the persisted flags (README "Trading states").

    `session`: the daemon's current session; a daily-loss trip from another session no longer counts (the daemon
    clears it at its next iteration). Without one (`tradingd status`), a stored daily-loss trip counts.
    """
    halted = flags.get_flag(FLAG_HALTED)
    daily = flags.get_flag(FLAG_DAILY_LOSS)
    daily_loss = daily is not None and (session is None or daily == session.isoformat())
    drawdown = flags.get_flag(FLAG_DRAWDOWN)
    reduce_only = flags.get_flag(FLAG_REDUCE_ONLY)
    recovery = flags.get_flag(FLAG_RECOVERY)
    state = derive_trading_state(
        halted=halted is not None,
        reduce_only=reduce_only is not None,
        daily_loss=daily_loss,
        drawdown=drawdown is not None,
        recovery=recovery is not None,
    )
    candidates = (
        (halted is not None, DenialReason.HALTED.value, f"kill switch engaged ({halted}); `tradingd resume` lifts it"),
        (
            daily_loss,
            DenialReason.DAILY_LOSS_LIMIT.value,
            f"daily loss limit hit on {daily}; entries resume next trading day",
        ),
        (
            drawdown is not None,
            DenialReason.MAX_DRAWDOWN.value,
            f"drawdown limit hit ({drawdown}); entries resume after `tradingd resume`",
        ),
        (
            reduce_only is not None,
            DenialReason.REDUCE_ONLY.value,
            f"reduce-only ({reduce_only}); entries resume after `tradingd resume`",
        ),
        (
            recovery is not None,
            DenialReason.RECOVERY.value,
            f"recovery after state loss ({recovery}); entries resume after `tradingd resume`",
        ),
    )
    return StateView(state, tuple((code, detail) for on, code, detail in candidates if on))


def halt_trading(flags: FlagStore, reason: str, *, reduce_only: bool = False) -> None:
    """The kill switch (or, with `reduce_only`, entries only): persisted, so it holds across restarts and is seen
    by a running daemon at its next flush.

    `--reduce-only` while halted lifts the kill switch to reducing: the operator asked for exits to run again.
    """
    reason = reason or "manual"
    if reduce_only:
        flags.set_flag(FLAG_REDUCE_ONLY, reason)
        flags.clear_flag(FLAG_HALTED)
        log.warning("trading_reduce_only", reason=reason, trading_state=TradingState.REDUCING.value)
        return
    flags.set_flag(FLAG_HALTED, reason)
    log.warning("trading_halted", reason=reason, trading_state=TradingState.HALTED.value)


def resume_trading(flags: FlagStore) -> bool:
    """Lift the kill switch, reduce-only, the drawdown breaker and recovery; drawdown is then measured from the next
    equity seen. A daily-loss trip still holds until the next session.

    Returns whether a drawdown breaker was lifted.
    """
    was_drawdown = flags.get_flag(FLAG_DRAWDOWN) is not None
    for name in (FLAG_HALTED, FLAG_REDUCE_ONLY, FLAG_DRAWDOWN, FLAG_RECOVERY):
        flags.clear_flag(name)
    if was_drawdown:
        flags.set_flag(FLAG_DRAWDOWN_PEAK, _REBASE)
    log.warning("risk_resumed", drawdown_rebased=was_drawdown)
    return was_drawdown


class RiskAgent:
    def __init__(
        self,
        bus: EventBus,
        sizer: TieredPositionSizer,
        tracker: TierExposureTracker,
        limits: RiskLimits,
        flags: FlagStore,
        clock: Clock,
    ) -> None:
        self._bus = bus
        self._sizer = sizer
        self._tracker = tracker
        self._engine = RiskEngine(limits)
        self._flags = flags
        self._clock = clock
        self._signals: list[SignalGenerated] = []
        self._iteration: _Iteration | None = None
        self._frame: BarFrame | None = None
        self._halt_announced = False
        self._logged_state: StateView | None = None
        self.denials: Counter[str] = Counter()
        self.approved = 0
        bus.subscribe(SignalValidated, self._on_signal)
        bus.subscribe(OrderFilled, self._on_fill)
        bus.subscribe(BarsFetched, self._on_bars)

    # -- handlers -------------------------------------------------------------------------------------------------
    def _on_signal(self, message: SignalValidated) -> None:
        self._signals.append(message.signal)

    def _on_fill(self, message: OrderFilled) -> None:
        fill = message.fill
        self._tracker.apply_fill(fill)
        if self._iteration is not None and fill.side is OrderSide.BUY:
            filled = self._iteration.filled
            filled[fill.client_order_id] = filled.get(fill.client_order_id, _ZERO) + fill.qty * fill.price

    def _on_bars(self, message: BarsFetched) -> None:
        self._frame = message.frame

    # -- kill switch ----------------------------------------------------------------------------------------------
    @property
    def is_halted(self) -> bool:
        return self._flags.get_flag(FLAG_HALTED) is not None

    def halt(self, reason: str) -> None:
        halt_trading(self._flags, reason)
        self._announce_halt()

    def resume(self) -> None:
        resume_trading(self._flags)
        self._halt_announced = False

    def log_state(self, session: date | None) -> StateView:
        """Log the trading state at start and whenever it changes (a halt from another process included)."""
        view = read_trading_state(self._flags, session)
        if view != self._logged_state:
            # Only a state that blocks orders is worth a warning; `active` is the normal case.
            emit = log.info if view.state is TradingState.ACTIVE else log.warning
            emit(
                "trading_state",
                state=view.state.value,
                reasons=[code for code, _ in view.reasons],
                detail="; ".join(detail for _, detail in view.reasons) or None,
            )
            self._logged_state = view
        return view

    def _announce_halt(self) -> None:
        reason = self._flags.get_flag(FLAG_HALTED)
        if reason is None:
            self._halt_announced = False
            return
        if not self._halt_announced:
            self._halt_announced = True
            self._trip(DenialReason.HALTED.value, reason)

    # -- iteration ------------------------------------------------------------------------------------------------
    def begin_iteration(
        self,
        snapshot: PortfolioSnapshot,
        *,
        session: date,
        start_of_day_equity: Decimal,
        peak_equity: Decimal,
        assets: Mapping[str, Asset],
    ) -> None:
        """Take the account as it stands before this iteration's bars and trip any breaker it breaches."""
        self._iteration = _Iteration(snapshot, session, start_of_day_equity, peak_equity, assets)
        self._tracker.rebuild(snapshot.positions)
        equity = snapshot.account.equity
        self._announce_halt()

        tripped_on = self._flags.get_flag(FLAG_DAILY_LOSS)
        if tripped_on is not None and tripped_on != session.isoformat():
            self._flags.clear_flag(FLAG_DAILY_LOSS)
            tripped_on = None
        if tripped_on is None and self._engine.daily_loss_breached(
            equity=equity, start_of_day_equity=start_of_day_equity
        ):
            self._flags.set_flag(FLAG_DAILY_LOSS, session.isoformat())
            self._trip(
                DenialReason.DAILY_LOSS_LIMIT.value,
                f"equity {equity:.2f} vs start of day {start_of_day_equity:.2f} "
                f"(limit {self._engine.limits.max_daily_loss_pct:%})",
            )

        peak = self._drawdown_peak(equity, peak_equity)
        if self._flags.get_flag(FLAG_DRAWDOWN) is None and self._engine.drawdown_breached(
            equity=equity, peak_equity=peak
        ):
            dd = self._engine.drawdown(equity=equity, peak_equity=peak)
            detail = f"equity {equity:.2f} is {dd:.2%} below peak {peak:.2f} on {session.isoformat()}"
            self._flags.set_flag(FLAG_DRAWDOWN, detail)
            self._trip(DenialReason.MAX_DRAWDOWN.value, detail)
        self.log_state(session)

    def _drawdown_peak(self, equity: Decimal, peak_equity: Decimal) -> Decimal:
        """The peak drawdown is measured from: the all-time peak, or the peak since a resume while that is lower."""
        stored = self._flags.get_flag(FLAG_DRAWDOWN_PEAK)
        if stored is None:
            return peak_equity
        try:
            anchor = max(Decimal(stored), equity) if stored != _REBASE else equity
        except InvalidOperation:
            anchor = equity
        if anchor >= peak_equity:
            self._flags.clear_flag(FLAG_DRAWDOWN_PEAK)
            return peak_equity
        if str(anchor) != stored:
            self._flags.set_flag(FLAG_DRAWDOWN_PEAK, str(anchor))
        return anchor

    def flush(self) -> None:
        """Answer every signal collected since the last flush: exits first, then entries, best score first."""
        signals, self._signals = self._signals, []
        if not signals:
            return
        iteration = self._iteration
        if iteration is None:
            raise RuntimeError("RiskAgent.flush() with signals but no begin_iteration() since the last flush")
        self._iteration = None  # one flush per snapshot: a second one would not see this one's reservations
        view = self.log_state(iteration.session)  # read now: a halt from another process counts at once
        exits = [s for s in signals if s.is_exit]
        entries = [s for s in signals if not s.is_exit]
        self._flush_exits(exits, iteration, halted=not view.state.allows_exits)
        if entries:
            self._flush_entries(entries, iteration, view=view)

    def _flush_exits(self, exits: list[SignalGenerated], iteration: _Iteration, *, halted: bool) -> None:
        positions = iteration.snapshot.positions
        selling = {o.symbol for o in iteration.snapshot.open_orders if o.side is OrderSide.SELL and o.status.is_open}
        for signal in exits:
            position = positions.get(signal.symbol)
            if halted:
                self._deny(signal, DenialReason.HALTED.value, "kill switch engaged")
            elif position is None or position.qty <= 0:
                self._deny(signal, DenialReason.NO_POSITION.value, "no long position to close")
            elif signal.symbol in selling:
                self._deny(signal, DenialReason.ORDER_PENDING.value, "a sell order for this symbol is still open")
            else:
                selling.add(signal.symbol)
                price = _decimal_price(signal.price) or position.market_price
                tier = self._sizer.config.pool_of(signal.symbol)
                self._approve(signal, self._engine.exit_order(position, tier=tier, est_price=price))

    def _flush_entries(self, entries: list[SignalGenerated], iteration: _Iteration, *, view: StateView) -> None:
        snapshot = iteration.snapshot
        equity = snapshot.account.equity
        ranked = sorted(entries, key=lambda s: (-(s.score if math.isfinite(s.score) else -math.inf), s.symbol))
        prices = {s.symbol: p for s in ranked if (p := _decimal_price(s.price)) is not None}
        pending_by_order, unpriced = pending_buys(
            snapshot.open_orders,
            lambda symbol: prices.get(symbol) or self._tracker.price(symbol) or self._last_close(symbol),
        )
        symbol_of = {o.client_order_id: o.symbol for o in snapshot.open_orders}
        pending: dict[str, Decimal] = {}
        for order_id, notional in pending_by_order.items():
            left = max(notional - iteration.filled.get(order_id, _ZERO), _ZERO)
            pending[symbol_of[order_id]] = pending.get(symbol_of[order_id], _ZERO) + left
        buying_symbols = {o.symbol for o in snapshot.open_orders if o.side is OrderSide.BUY and o.status.is_open}
        held = {s for s, p in snapshot.positions.items() if p.qty > 0}
        open_positions = len(held | buying_symbols)
        # The broker's buying power is already net of open orders (Alpaca's and the sim's alike): pending buys count
        # against their tier's budget below, not a second time against cash.
        buying_power = max(snapshot.account.buying_power, _ZERO)

        # Entries only when active; otherwise the most severe reason (the breakers keep their own codes).
        gate: Verdict = (
            view.reasons[0] if not view.state.allows_entries else self._engine.entry_gate(open_positions=open_positions)
        )
        if gate is None and unpriced:
            gate = (DenialReason.INSUFFICIENT_BUYING_POWER.value, f"cannot price open orders {unpriced}")
        candidates: list[EntryCandidate] = []
        for signal in ranked:
            verdict = gate or self._pre_check(signal, iteration.assets, prices, buying_symbols)
            if verdict is not None:
                self._deny(signal, *verdict)
                continue
            asset = iteration.assets[signal.symbol]
            candidates.append(EntryCandidate(signal, prices[signal.symbol], asset.fractionable))
        if not candidates:
            return
        sized = self._sizer.size_entries(
            candidates,
            equity=equity,
            buying_power=buying_power,
            tracker=self._tracker,
            open_positions=open_positions,
            pending=pending,
        )
        for candidate, result in zip(candidates, sized, strict=True):
            if not isinstance(result, SizedOrder):
                self._deny(candidate.signal, result.reason, result.detail)
            elif (verdict := self._engine.check_entry(result, equity=equity, buying_power=buying_power)) is not None:
                self._deny(candidate.signal, *verdict)
            else:
                buying_power -= result.est_notional
                self._approve(candidate.signal, result)

    @staticmethod
    def _pre_check(
        signal: SignalGenerated, assets: Mapping[str, Asset], prices: Mapping[str, Decimal], buying: set[str]
    ) -> Verdict:
        asset = assets.get(signal.symbol)
        if signal.side is not OrderSide.BUY:
            return DenialReason.SHORT_NOT_SUPPORTED.value, "entries are long only"
        if asset is None or not asset.tradable:
            return DenialReason.NOT_TRADABLE.value, "asset unknown" if asset is None else "asset not tradable"
        if signal.symbol not in prices:
            return DenialReason.INVALID_PRICE.value, f"price {signal.price!r}"
        if signal.symbol in buying:
            return DenialReason.ORDER_PENDING.value, "a buy order for this symbol is still open"
        return None

    def _last_close(self, symbol: str) -> Decimal | None:
        """Latest valid close seen on the bus: the price of last resort for an open whole-share order."""
        frame = self._frame
        if frame is None or symbol not in frame.symbols:
            return None
        column = frame.close[:, frame.column(symbol)]
        finite = column[np.isfinite(column) & (column > 0)]
        return Decimal(repr(float(finite[-1]))) if finite.size else None

    # -- egress ---------------------------------------------------------------------------------------------------
    def _approve(self, signal: SignalGenerated, order: SizedOrder) -> None:
        self.approved += 1
        now = self._clock.now()
        self._publish(
            OrderApproved(ts_event=now, ts_init=now, correlation_id=signal.correlation_id, signal=signal, order=order)
        )

    def _deny(self, signal: SignalGenerated, reason: str, detail: str) -> None:
        self.denials[reason] += 1
        now = self._clock.now()
        self._publish(
            OrderDenied(
                ts_event=now,
                ts_init=now,
                correlation_id=signal.correlation_id,
                signal=signal,
                reason=reason,
                detail=detail,
            )
        )

    def _trip(self, breaker: str, detail: str) -> None:
        log.warning("circuit_breaker_tripped", breaker=breaker, detail=detail)
        now = self._clock.now()
        self._publish(CircuitBreakerTripped(ts_event=now, ts_init=now, breaker=breaker, detail=detail))

    def _publish(self, message: Message) -> None:
        self._bus.publish(message)

    # -- status ---------------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JSON-ready risk state for `tradingd status`."""
        names = (FLAG_HALTED, FLAG_DAILY_LOSS, FLAG_DRAWDOWN, FLAG_REDUCE_ONLY, FLAG_RECOVERY)
        flags = {name: self._flags.get_flag(name) for name in names}
        values = self._tracker.exposures().values()
        limits = self._engine.limits
        return {
            "halted": flags[FLAG_HALTED] is not None,
            "halt_reason": flags[FLAG_HALTED],
            "trading_state": read_trading_state(self._flags).as_json(),
            "breakers": {
                "daily_loss_limit": {"tripped_on": flags[FLAG_DAILY_LOSS]},
                "max_drawdown": {"tripped": flags[FLAG_DRAWDOWN] is not None, "detail": flags[FLAG_DRAWDOWN]},
            },
            "flags": {name: value for name, value in flags.items() if value is not None},
            "limits": {
                "max_daily_loss_pct": str(limits.max_daily_loss_pct),
                "max_drawdown_pct": str(limits.max_drawdown_pct),
                "max_open_positions": limits.max_open_positions,
                "max_position_pct": str(limits.max_position_pct),
            },
            "exposure": self._tracker.snapshot(),
            "effective_positions": round(float(effective_positions(values)), 4),
            "herfindahl": round(float(herfindahl(values)), 4),
            "approved": self.approved,
            "denials": dict(self.denials),
        }


def _decimal_price(price: float) -> Decimal | None:
    """A signal's float price as Decimal (shortest repr, so 912.37 stays 912.37), or None if unusable."""
    if not math.isfinite(price) or price <= 0:
        return None
    return Decimal(repr(price))
