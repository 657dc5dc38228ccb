"""Risk: the one gate between a strategy's idea and a broker, with one trading state.

`RiskEngine` holds the pure pre-trade checks (no clock, no I/O). `RiskAgent` is the fourth stage: the orchestrator
gives it the portfolio at the start of an iteration (`begin_iteration`), then the validated signals and the frame
(`decide`), and gets back an `OrderApproved` or `OrderDenied(reason)` for every signal, each also published: exits
first, then entries, best score first.
Every decision about what may reach a broker is made here: long only, never a sell above the quantity held, never an
order below the minimum notional, whole shares where the asset or the settings allow no fractions. The adapters only
translate what was approved (and refuse defensively what no approval would hold).

The agent holds one `TradingState` (`active` / `reducing` / `halted`) and publishes `TradingStateChanged` when it
moves. The conditions it is derived from (kill switch, reduce-only, recovery, breakers) live in a `FlagStore` (the
SQLite state store and the kill-switch file in production), read on every iteration so a `tradingd halt` from another
process stops the daemon at its next decision, and a restart cannot forget a halt. A breaker set to flatten
(`RiskLimits.on_daily_loss` / `on_max_drawdown`) also asks for every owned position to be sold when it trips (a close
request, `core/close_requests.py`, carried out by `agents/exit_requests.py`), and withdraws that request when it lifts.

Protective stops pass here too (`decide_stops`): placed and canceled while `active` or `reducing`, never while
`halted` (resting stops then stay at the broker), and no placement may make a symbol's open sells exceed what is
owned. A resting stop does not block an exit (`order_pending` is for other open sells): execution cancels it first.

Fills reach risk through the portfolio: the orchestrator settles the broker's updates before it refreshes the
portfolio, and `begin_iteration` rebuilds the tier exposure from that snapshot. Nothing fills between
`begin_iteration` and `decide`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from agents.oversell import open_sell_qty
from agents.sizing import EntryCandidate, TieredPositionSizer, TierExposureTracker
from agents.stop_plan import StopPlan
from agents.win_probability import MlGate
from core.close_requests import ALL, CloseRequests
from core.flags import (
    FLAG_DAILY_LOSS,
    FLAG_DRAWDOWN,
    FLAG_DRAWDOWN_PEAK,
    FLAG_HALTED,
    FLAG_RECOVERY,
    FLAG_REDUCE_ONLY,
)
from core.messages import (
    CircuitBreakerTripped,
    FlattenRequested,
    Message,
    OrderApproved,
    OrderDenied,
    SignalGenerated,
    SizedOrder,
    StopDenied,
    TradingStateChanged,
)
from core.order_ids import FLATTEN_EXIT_TAG, client_order_id, is_protective_stop_id
from core.reasons import Breaker, DenialReason, TradingStateReason
from core.types import (
    QTY_QUANTUM,
    Asset,
    BarFrame,
    BrokerOrder,
    OrderSide,
    PortfolioSnapshot,
    Position,
    Tier,
    TradingState,
    bar_price,
    derive_trading_state,
)

if TYPE_CHECKING:
    from core.bus import EventBus
    from core.clock import Clock, NyseCalendar
    from core.flags import FlagStore
    from core.store.equity import EquityMark

log = structlog.get_logger(__name__)

_ZERO = Decimal(0)
_ONE = Decimal(1)

Denied = tuple[DenialReason, str]  # (reason, detail)
Verdict = Denied | None


class BreakerAction(enum.StrEnum):
    """What a tripped breaker does beyond stopping entries (ON_DAILY_LOSS, ON_MAX_DRAWDOWN)."""

    REDUCE = "reduce"  # entries stop, positions are kept (the `reducing` state)
    FLATTEN = "flatten"  # the same, and every owned position is sold


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_daily_loss_pct: Decimal = Decimal("0.02")
    max_drawdown_pct: Decimal = Decimal("0.10")
    max_open_positions: int = 20
    max_position_pct: Decimal = Decimal("0.10")
    on_daily_loss: BreakerAction = BreakerAction.REDUCE
    on_max_drawdown: BreakerAction = BreakerAction.REDUCE

    def action(self, breaker: Breaker) -> BreakerAction:
        return self.on_daily_loss if breaker is Breaker.DAILY_LOSS_LIMIT else self.on_max_drawdown

    def __post_init__(self) -> None:
        for name in ("max_daily_loss_pct", "max_drawdown_pct", "max_position_pct"):
            value: Decimal = getattr(self, name)
            if not value.is_finite() or not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.max_open_positions < 1:
            raise ValueError(f"max_open_positions must be at least 1, got {self.max_open_positions}")


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
            return DenialReason.MAX_OPEN_POSITIONS, f"{open_positions} open of {self.limits.max_open_positions}"
        return None

    def check_entry(self, order: SizedOrder, *, equity: Decimal, buying_power: Decimal) -> Verdict:
        """Last line of defence after sizing: an approved entry never exceeds the equity cap or buying power."""
        cap = self.limits.max_position_pct * equity
        if order.est_notional > cap:
            return DenialReason.MAX_POSITION_PCT, f"${order.est_notional} above the ${cap:.2f} cap"
        if order.est_notional > buying_power:
            return DenialReason.INSUFFICIENT_BUYING_POWER, f"${order.est_notional} above ${buying_power:.2f}"
        return None

    @staticmethod
    def exit_order(
        position: Position, *, tier: Tier | None, est_price: Decimal, fractional: bool
    ) -> SizedOrder | Denied:
        """Close the long position: all of it, or its whole shares when the order may not hold a fraction (the
        asset is not fractionable, or fractional shares are off). Never more than is held."""
        qty = sellable_qty(position.qty, fractional=fractional)
        if qty <= 0:
            return (
                DenialReason.ZERO_SHARES,
                f"{position.qty} held, no whole share to sell and fractions are not allowed",
            )
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


def sellable_qty(held: Decimal, *, fractional: bool) -> Decimal:
    """The most of `held` one order may sell: to the share when fractions are not allowed, else to the broker's
    quantity precision (9 decimals). An exact amount keeps its own representation."""
    rounded = held.quantize(QTY_QUANTUM if fractional else _ONE, rounding=ROUND_FLOOR)
    return held if rounded == held else rounded


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


@dataclass(frozen=True, slots=True)
class _Iteration:
    snapshot: PortfolioSnapshot
    session: date
    start_of_day_equity: Decimal
    peak_equity: Decimal
    assets: Mapping[str, Asset]


Answer = OrderApproved | OrderDenied


@dataclass(frozen=True, slots=True)
class Decisions:
    """Risk's answers to one iteration's signals, in the order they were given (exits, then entries by score)."""

    approved: tuple[OrderApproved, ...] = ()
    denied: tuple[OrderDenied, ...] = ()

    @classmethod
    def of(cls, answers: Sequence[Answer]) -> Decisions:
        return cls(
            approved=tuple(a for a in answers if isinstance(a, OrderApproved)),
            denied=tuple(a for a in answers if isinstance(a, OrderDenied)),
        )


@dataclass(frozen=True, slots=True)
class StateView:
    """The trading state and why: `reasons` are (code, detail) pairs, most severe first."""

    state: TradingState
    reasons: tuple[tuple[TradingStateReason, str], ...] = ()

    @property
    def cause(self) -> tuple[TradingStateReason, str]:
        """The most severe reason (the code entries are denied with), or `cleared` when active."""
        return self.reasons[0] if self.reasons else (TradingStateReason.CLEARED, "")

    def as_json(self) -> dict[str, Any]:
        return {"state": self.state.value, "reasons": [{"code": c.value, "detail": d} for c, d in self.reasons]}


class EquityMarks(Protocol):
    def equity_mark(self, session: date) -> EquityMark | None: ...


def daily_loss_reference(marks: EquityMarks, calendar: NyseCalendar, session: date, start_equity: Decimal) -> Decimal:
    """The equity the daily-loss breaker measures today's loss from: the previous calendar session's last mark (its
    close, like Alpaca's `last_equity`, so an overnight gap counts), else `start_equity` (today's first mark). The
    orchestrator feeds it to the breaker; the dashboard's `daily_loss_pct` shows the same figure."""
    previous = marks.equity_mark(calendar.previous_session(session))
    return previous.last_equity if previous is not None else start_equity


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
        (halted is not None, TradingStateReason.HALTED, f"kill switch engaged ({halted}); `tradingd resume` lifts it"),
        (
            daily_loss,
            TradingStateReason.DAILY_LOSS_LIMIT,
            f"daily loss limit hit on {daily}; entries resume next trading day",
        ),
        (
            drawdown is not None,
            TradingStateReason.MAX_DRAWDOWN,
            f"drawdown limit hit ({drawdown}); entries resume after `tradingd resume`",
        ),
        (
            reduce_only is not None,
            TradingStateReason.REDUCE_ONLY,
            f"reduce-only ({reduce_only}); entries resume after `tradingd resume`",
        ),
        (
            recovery is not None,
            TradingStateReason.RECOVERY,
            f"recovery after state loss ({recovery}); entries resume after `tradingd resume`",
        ),
    )
    return StateView(state, tuple((code, detail) for on, code, detail in candidates if on))


def halt_trading(flags: FlagStore, reason: str, *, reduce_only: bool = False) -> None:
    """The kill switch (or, with `reduce_only`, entries only): persisted, so it holds across restarts and is seen
    by a running daemon at its next decision.

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


def resume_trading(flags: FlagStore, *, equity: Decimal | None) -> bool:
    """Lift the kill switch, reduce-only, the drawdown breaker (with its flatten request, if any) and recovery. A
    daily-loss trip (and its flatten) still holds until the next session.

    A lifted drawdown breaker is measured from `equity` (the last equity recorded) from then on, not from the all-time
    peak, which would trip it again at once. With no equity recorded there is no peak yet either: the next equity
    seen becomes it. Returns whether a drawdown breaker was lifted.
    """
    was_drawdown = flags.get_flag(FLAG_DRAWDOWN) is not None
    for name in (FLAG_HALTED, FLAG_REDUCE_ONLY, FLAG_DRAWDOWN, FLAG_RECOVERY):
        flags.clear_flag(name)
    if was_drawdown:
        # The operator takes over from the breaker: a flatten still under way stops with it.
        CloseRequests(flags).withdraw_flatten(Breaker.MAX_DRAWDOWN)
    if was_drawdown and equity is not None:
        flags.set_flag(FLAG_DRAWDOWN_PEAK, str(equity))
    elif was_drawdown:
        flags.clear_flag(FLAG_DRAWDOWN_PEAK)
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
        *,
        session: date | None = None,
        ml: MlGate | None = None,
    ) -> None:
        """`session`: the session the daemon starts in (a daily-loss trip of an earlier one no longer counts).
        `ml`: with `ML_ENABLED=true`, the win-probability gate (README "Machine learning"); None: no model is asked."""
        self._bus = bus
        self._sizer = sizer
        self._tracker = tracker
        self._engine = RiskEngine(limits)
        self._flags = flags
        self._requests = CloseRequests(flags)
        self._clock = clock
        self._iteration: _Iteration | None = None
        self._withheld: set[str] = set()  # stops denied while halted, announced once each
        self._ml = ml
        # The one trading state (with its causes): read from the flags at start, then at every iteration and decision.
        self._view = read_trading_state(flags, session)
        _log_state(self._view)

    # -- trading state --------------------------------------------------------------------------------------------
    @property
    def state(self) -> TradingState:
        return self._view.state

    @property
    def ml_gate(self) -> MlGate | None:
        """The win-probability gate it asks (None without `ML_ENABLED`): the dashboard shows the same model's view."""
        return self._ml

    def _refresh_state(self, session: date) -> StateView:
        """Re-read the conditions (a halt from another process counts at once); log a new view, announce a new
        state."""
        view = read_trading_state(self._flags, session)
        previous, self._view = self._view, view
        if view != previous:
            _log_state(view)
        if view.state is not previous.state:
            reason, detail = view.cause
            now = self._clock.now()
            self._publish(
                TradingStateChanged(
                    ts_event=now, ts_init=now, previous=previous.state, current=view.state, reason=reason, detail=detail
                )
            )
        return view

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

        tripped_on = self._flags.get_flag(FLAG_DAILY_LOSS)
        if tripped_on is not None and tripped_on != session.isoformat():
            self._flags.clear_flag(FLAG_DAILY_LOSS)
            # A flatten lasts as long as its breaker: one left over would sell the new session's entries too.
            self._requests.withdraw_flatten(Breaker.DAILY_LOSS_LIMIT)
            tripped_on = None
        if tripped_on is None and self._engine.daily_loss_breached(
            equity=equity, start_of_day_equity=start_of_day_equity
        ):
            self._flags.set_flag(FLAG_DAILY_LOSS, session.isoformat())
            self._trip(
                Breaker.DAILY_LOSS_LIMIT,
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
            self._trip(Breaker.MAX_DRAWDOWN, detail)
        self._refresh_state(session)

    def _drawdown_peak(self, equity: Decimal, peak_equity: Decimal) -> Decimal:
        """The peak drawdown is measured from: the all-time peak, or the peak since a resume while that is lower."""
        stored = self._flags.get_flag(FLAG_DRAWDOWN_PEAK)
        if stored is None:
            return peak_equity
        since_resume = _parse_amount(stored)
        # Unreadable (a DB of an older version may hold the word "rebase" here): the peak starts from now.
        anchor = equity if since_resume is None else max(since_resume, equity)
        if anchor >= peak_equity:
            self._flags.clear_flag(FLAG_DRAWDOWN_PEAK)
            return peak_equity
        if str(anchor) != stored:
            self._flags.set_flag(FLAG_DRAWDOWN_PEAK, str(anchor))
        return anchor

    def decide(self, signals: Sequence[SignalGenerated], frame: BarFrame | None = None) -> Decisions:
        """Answer every signal: exits first, then entries, best score first. `frame`: the iteration's bars, whose
        last valid close prices an open whole-share order when nothing else does."""
        if not signals:
            return Decisions()
        iteration = self._iteration
        if iteration is None:
            raise RuntimeError("RiskAgent.decide() with signals but no begin_iteration() since the last decision")
        self._iteration = None  # one decision per snapshot: a second one would not see this one's reservations
        view = self._refresh_state(iteration.session)  # read now: a halt from another process counts at once
        answers: list[Answer] = []
        exits = [s for s in signals if s.is_exit]
        entries = [s for s in signals if not s.is_exit]
        self._decide_exits(exits, iteration, answers, allowed=view.state.allows_exits)
        if entries:
            self._decide_entries(entries, iteration, answers, view=view, frame=frame)
        return Decisions.of(answers)

    def _decide_exits(
        self, exits: list[SignalGenerated], iteration: _Iteration, answers: list[Answer], *, allowed: bool
    ) -> None:
        positions = iteration.snapshot.positions
        # A resting protective stop is no pending sale: execution cancels it before the exit goes.
        selling = {
            o.symbol
            for o in iteration.snapshot.open_orders
            if o.side is OrderSide.SELL and o.status.is_open and not is_protective_stop_id(o.client_order_id)
        }
        for signal in exits:
            position = positions.get(signal.symbol)
            asset = iteration.assets.get(signal.symbol)
            if not allowed:
                answers.append(self._deny(signal, DenialReason.HALTED, "kill switch engaged"))
            elif position is None or position.qty <= 0:
                answers.append(self._deny(signal, DenialReason.NO_POSITION, "no long position to close"))
            elif signal.symbol in selling:
                answers.append(
                    self._deny(signal, DenialReason.ORDER_PENDING, "a sell order for this symbol is still open")
                )
            elif asset is None or not asset.tradable:
                detail = "asset unknown" if asset is None else "asset not tradable"
                answers.append(self._deny(signal, DenialReason.NOT_TRADABLE, detail))
            else:
                answer = self._engine.exit_order(
                    position,
                    tier=self._sizer.config.pool_of(signal.symbol),
                    est_price=_usable_price(signal.price) or position.market_price,
                    fractional=self._sizer.config.fractional_enabled and asset.fractionable,
                )
                if isinstance(answer, SizedOrder):
                    selling.add(signal.symbol)
                    answers.append(self._approve(signal, answer))
                else:
                    answers.append(self._deny(signal, *answer))

    def _decide_entries(
        self,
        entries: list[SignalGenerated],
        iteration: _Iteration,
        answers: list[Answer],
        *,
        view: StateView,
        frame: BarFrame | None,
    ) -> None:
        snapshot = iteration.snapshot
        equity = snapshot.account.equity
        ranked = sorted(entries, key=lambda s: (-(s.score if math.isfinite(s.score) else -math.inf), s.symbol))
        prices = {s.symbol: p for s in ranked if (p := _usable_price(s.price)) is not None}
        pending_by_order, unpriced = pending_buys(
            snapshot.open_orders,
            lambda symbol: prices.get(symbol) or self._tracker.price(symbol) or _last_close(frame, symbol),
        )
        symbol_of = {o.client_order_id: o.symbol for o in snapshot.open_orders}
        pending: dict[str, Decimal] = {}
        for order_id, notional in pending_by_order.items():
            pending[symbol_of[order_id]] = pending.get(symbol_of[order_id], _ZERO) + notional
        buying_symbols = {o.symbol for o in snapshot.open_orders if o.side is OrderSide.BUY and o.status.is_open}
        held = {s for s, p in snapshot.positions.items() if p.qty > 0}
        open_positions = len(held | buying_symbols)
        # The broker's buying power is already net of open orders (Alpaca's and the sim's alike): pending buys count
        # against their tier's budget below, not a second time against cash.
        buying_power = max(snapshot.account.buying_power, _ZERO)

        # Entries only when active; otherwise the most severe cause (the breakers keep their own codes).
        gate: Verdict
        if view.state.allows_entries:
            gate = self._engine.entry_gate(open_positions=open_positions)
        else:
            cause, detail = view.cause
            gate = cause.denial, detail
        if gate is None and unpriced:
            gate = (DenialReason.INSUFFICIENT_BUYING_POWER, f"cannot price open orders {unpriced}")
        candidates: list[EntryCandidate] = []
        for signal in ranked:
            verdict = gate or self._pre_check(signal, iteration.assets, prices, buying_symbols)
            if verdict is not None:
                answers.append(self._deny(signal, *verdict))
                continue
            asset = iteration.assets[signal.symbol]
            candidates.append(EntryCandidate(signal, prices[signal.symbol], asset.fractionable))
        if self._ml is not None and candidates:
            candidates = self._ml_gate(self._ml, candidates, answers)
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
                answers.append(self._deny(candidate.signal, result.reason, result.detail))
            elif (verdict := self._engine.check_entry(result, equity=equity, buying_power=buying_power)) is not None:
                answers.append(self._deny(candidate.signal, *verdict))
            else:
                buying_power -= result.est_notional
                answers.append(self._approve(candidate.signal, result))

    def _ml_gate(self, ml: MlGate, candidates: list[EntryCandidate], answers: list[Answer]) -> list[EntryCandidate]:
        """One batch to the model for the entries that passed every other check: below `min_win_prob` (or with no
        prediction: features it cannot compute) is denied `ml_low_probability`; the others carry their expected
        return to the sizer (`ALLOCATION_METHOD=ml` weights by it). A model that cannot answer at all (paper/live:
        its history could not be fetched) denies them all `ml_unavailable`: no entry the model has not seen."""
        why = ml.predictor.unavailable()
        if why is not None:
            for candidate in candidates:
                answers.append(self._deny(candidate.signal, DenialReason.ML_UNAVAILABLE, why))
            return []
        predictions = ml.predictor.predict([c.signal for c in candidates])
        kept: list[EntryCandidate] = []
        for candidate in candidates:
            prediction = predictions.get(candidate.signal.correlation_id)
            if prediction is None:
                detail = "no prediction: the model has no features for this symbol and bar"
                answers.append(self._deny(candidate.signal, DenialReason.ML_LOW_PROBABILITY, detail))
            elif prediction.win_probability < ml.min_win_prob:
                detail = (
                    f"win probability {prediction.win_probability:.3f} < {ml.min_win_prob:.3f} "
                    f"(expected return {prediction.expected_return:+.4f}, confidence {prediction.confidence:.2f})"
                )
                answers.append(self._deny(candidate.signal, DenialReason.ML_LOW_PROBABILITY, detail))
            else:
                kept.append(replace(candidate, expected_return=prediction.expected_return))
        return kept

    def decide_stops(self, plan: StopPlan, snapshot: PortfolioSnapshot, *, session: date) -> StopPlan:
        """The part of a stop plan that may go to the broker: all of it while `active` or `reducing`, nothing while
        `halted` (resting stops stay where they are), and no placement that would make the symbol's open sells
        (after the plan's cancels) exceed what is owned (`oversell`)."""
        if not plan:
            return plan
        view = self._refresh_state(session)  # a halt from another process counts at once
        if not view.state.allows_exits:
            detail = view.cause[1]
            for cancel in plan.cancels:
                self._deny_stop(cancel.client_order_id, cancel.symbol, "cancel", DenialReason.HALTED, detail)
            for placement in plan.placements:
                self._deny_stop(placement.client_order_id, placement.symbol, "place", DenialReason.HALTED, detail)
            return StopPlan()
        self._withheld.clear()
        canceled = {cancel.client_order_id for cancel in plan.cancels}
        selling = open_sell_qty(o for o in snapshot.open_orders if o.client_order_id not in canceled)
        approved = []
        for placement in plan.placements:
            position = snapshot.positions.get(placement.symbol)
            owned = position.qty if position is not None else _ZERO
            after = selling.get(placement.symbol, _ZERO) + placement.qty
            if after > owned:
                detail = f"{after} would be for sale, {owned} owned"
                self._deny_stop(placement.client_order_id, placement.symbol, "place", DenialReason.OVERSELL, detail)
                continue
            selling[placement.symbol] = after
            approved.append(placement)
        return StopPlan(plan.cancels, tuple(approved))

    def _deny_stop(self, coid: str, symbol: str, action: str, reason: DenialReason, detail: str) -> None:
        if reason is DenialReason.HALTED:
            # Re-planned every iteration while halted: the journal gets each withheld stop once.
            if coid in self._withheld:
                return
            self._withheld.add(coid)
        log.warning("stop_denied", client_order_id=coid, symbol=symbol, action=action, reason=reason.value)
        now = self._clock.now()
        self._publish(
            StopDenied(
                ts_event=now,
                ts_init=now,
                correlation_id=coid,
                client_order_id=coid,
                symbol=symbol,
                action=action,
                reason=reason,
                detail=detail,
            )
        )

    @staticmethod
    def _pre_check(
        signal: SignalGenerated, assets: Mapping[str, Asset], prices: Mapping[str, Decimal], buying: set[str]
    ) -> Verdict:
        asset = assets.get(signal.symbol)
        if signal.side is not OrderSide.BUY:
            return DenialReason.SHORT_NOT_SUPPORTED, "entries are long only"
        if asset is None or not asset.tradable:
            return DenialReason.NOT_TRADABLE, "asset unknown" if asset is None else "asset not tradable"
        if signal.symbol not in prices:
            return DenialReason.INVALID_PRICE, f"price {signal.price}"
        if signal.symbol in buying:
            return DenialReason.ORDER_PENDING, "a buy order for this symbol is still open"
        return None

    # -- egress ---------------------------------------------------------------------------------------------------
    def _approve(self, signal: SignalGenerated, order: SizedOrder) -> OrderApproved:
        now = self._clock.now()
        approved = OrderApproved(
            ts_event=now,
            ts_init=now,
            correlation_id=signal.correlation_id,
            signal=signal,
            order=order,
            # The order's identity, fixed here once: execution, the store and the broker only carry it.
            client_order_id=client_order_id(signal.strategy, order.symbol, order.side, signal.bar_ts),
        )
        self._publish(approved)
        return approved

    def _deny(self, signal: SignalGenerated, reason: DenialReason, detail: str) -> OrderDenied:
        now = self._clock.now()
        denied = OrderDenied(
            ts_event=now,
            ts_init=now,
            correlation_id=signal.correlation_id,
            signal=signal,
            reason=reason,
            detail=detail,
        )
        self._publish(denied)
        return denied

    def _trip(self, breaker: Breaker, detail: str) -> None:
        log.warning("circuit_breaker_tripped", breaker=breaker.value, detail=detail)
        now = self._clock.now()
        self._publish(CircuitBreakerTripped(ts_event=now, ts_init=now, breaker=breaker, detail=detail))
        if self._engine.limits.action(breaker) is BreakerAction.FLATTEN:
            self._flatten(breaker, detail)

    def _flatten(self, breaker: Breaker, detail: str) -> None:
        """Ask for every owned position to be sold: a close request for all, which the exit-request agent carries
        out with the exits of this very iteration."""
        assert self._iteration is not None  # only ever called from begin_iteration
        symbols = tuple(sorted(s for s, p in self._iteration.snapshot.positions.items() if p.qty > 0))
        now = self._clock.now()
        self._requests.request(
            ALL, tag=FLATTEN_EXIT_TAG, reason=f"flatten: {breaker.value}: {detail}", now=now, breaker=breaker.value
        )
        log.warning("flatten_requested", breaker=breaker.value, symbols=list(symbols))
        self._publish(FlattenRequested(ts_event=now, ts_init=now, breaker=breaker, detail=detail, symbols=symbols))

    def _publish(self, message: Message) -> None:
        self._bus.publish(message)

    # -- status ---------------------------------------------------------------------------------------------------
    def exposure(self) -> dict[str, Any]:
        """Exposure by tier and symbol as of the last iteration (the run summary's `exposure_by_tier`)."""
        return self._tracker.snapshot()


def _log_state(view: StateView) -> None:
    """The `trading_state` line, at start and on every change of the state or its causes."""
    # Only a state that blocks orders is worth a warning; `active` is the normal case.
    emit = log.info if view.state is TradingState.ACTIVE else log.warning
    emit(
        "trading_state",
        state=view.state.value,
        reasons=[code.value for code, _ in view.reasons],
        detail="; ".join(detail for _, detail in view.reasons) or None,
    )


def _last_close(frame: BarFrame | None, symbol: str) -> Decimal | None:
    """The symbol's latest valid close in the frame: the price of last resort for an open whole-share order."""
    if frame is None or symbol not in frame.symbols:
        return None
    import numpy as np  # noqa: PLC0415 - here only: `halt`, `resume` and `status` import this module, not numpy

    column = frame.close[:, frame.column(symbol)]
    finite = column[np.isfinite(column) & (column > 0)]
    return bar_price(finite[-1]) if finite.size else None


def _usable_price(price: Decimal) -> Decimal | None:
    """A signal's price if an order can be sized at it (finite and positive), else None."""
    return price if price.is_finite() and price > 0 else None


def _parse_amount(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None
