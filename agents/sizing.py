"""Tiered position sizing: how much of each validated entry the account can fund, and why not when it cannot.

Three pools of money (tiers) each get a fixed share of equity. A new position is capped at a fraction of its tier's
allocation and at a fraction of equity, whichever is tighter, and may only spend what its tier has not already put to
work (positions held and buy orders still open). Sizing is done for a whole iteration's candidates at once because
two rules need to see them together: Tier compression (fund fewer, higher-scored positions rather than many below the
minimum order) and score/volatility weighting.

Everything here is pure: no clock, no I/O, `Decimal` for money. The configuration is immutable and never changes
while sizing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from types import MappingProxyType
from typing import Any, Literal

from core.messages import SignalGenerated, SizedOrder
from core.reasons import DenialReason
from core.types import CENT, OrderSide, Position, Tier

AllocationMethod = Literal["equal", "score_vol", "ml"]
ALPACA_MIN_NOTIONAL = Decimal(1)
_ZERO = Decimal(0)
_ONE = Decimal(1)
_EMPTY: Mapping[str, Decimal] = MappingProxyType({})
# Sums and differences of prices and budgets stay exact at this precision; only the weighting division rounds.
_PRECISION = 50


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a candidate gets no order; `detail` is for humans."""

    symbol: str
    reason: DenialReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class EntryCandidate:
    """A validated entry signal with the price to size it at and whether the asset trades in fractions."""

    signal: SignalGenerated
    price: Decimal
    fractionable: bool
    expected_return: float | None = None  # the ML model's, when ML_ENABLED (what ALLOCATION_METHOD=ml weights by)

    def __post_init__(self) -> None:
        if not self.price.is_finite() or self.price <= 0:
            raise ValueError(f"{self.signal.symbol}: price must be a positive finite Decimal, got {self.price}")

    @property
    def symbol(self) -> str:
        return self.signal.symbol


# ----------------------------------------------------------------------------------------------------------------------
# CONFIGURATION
# ----------------------------------------------------------------------------------------------------------------------


def _fraction(name: str, value: Decimal) -> None:
    if not value.is_finite() or not 0 <= value <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


@dataclass(frozen=True, slots=True)
class TierConfig:
    """Immutable sizing configuration. Mappings are read-only views over private copies."""

    allocations: Mapping[Tier, Decimal]
    symbol_tiers: Mapping[str, Tier]
    tier_max_position_pct: Decimal = Decimal("0.20")
    max_position_pct: Decimal = Decimal("0.10")
    min_order_notional: Decimal = Decimal(10)
    fractional_enabled: bool = True
    allocation_method: AllocationMethod = "equal"
    enable_tiered_allocation: bool = True
    max_open_positions: int = 20

    def __post_init__(self) -> None:
        allocations = {Tier(tier): Decimal(value) for tier, value in self.allocations.items()}
        for tier in Tier:
            allocations.setdefault(tier, _ZERO)
            _fraction(f"{tier.value} allocation", allocations[tier])
        if sum(allocations.values()) > 1:
            raise ValueError(f"tier allocations sum to {sum(allocations.values())}, above 1")
        _fraction("tier_max_position_pct", self.tier_max_position_pct)
        _fraction("max_position_pct", self.max_position_pct)
        if not self.min_order_notional.is_finite() or self.min_order_notional < ALPACA_MIN_NOTIONAL:
            raise ValueError(
                f"min_order_notional must be at least ${ALPACA_MIN_NOTIONAL}, got {self.min_order_notional}"
            )
        if self.allocation_method not in ("equal", "score_vol", "ml"):
            raise ValueError(f"allocation_method must be 'equal', 'score_vol' or 'ml', got {self.allocation_method!r}")
        if self.max_open_positions < 1:
            raise ValueError(f"max_open_positions must be at least 1, got {self.max_open_positions}")
        # Copies behind read-only views: neither the caller's dicts nor anyone holding the config can change it.
        symbol_tiers = {symbol: Tier(tier) for symbol, tier in self.symbol_tiers.items()}
        object.__setattr__(self, "allocations", MappingProxyType(allocations))
        object.__setattr__(self, "symbol_tiers", MappingProxyType(symbol_tiers))

    def __copy__(self) -> TierConfig:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> TierConfig:
        return self

    def tier_of(self, symbol: str) -> Tier:
        """Unlisted symbols (e.g. scanner finds) are single stocks: the most constrained tier."""
        return self.symbol_tiers.get(symbol, Tier.TIER3)

    def pool_of(self, symbol: str) -> Tier | None:
        """The budget a symbol draws from: its tier, or None for the single whole-equity pool when tiering is off."""
        return self.tier_of(symbol) if self.enable_tiered_allocation else None

    def pool_allocation(self, pool: Tier | None, equity: Decimal) -> Decimal:
        share = self.allocations[pool] if pool is not None else _ONE
        return share * max(equity, _ZERO)

    def position_cap(self, pool: Tier | None, equity: Decimal) -> Decimal:
        """The most one new position may cost: 20% of its tier's allocation or 10% of equity, the tighter."""
        equity_cap = self.max_position_pct * max(equity, _ZERO)
        if pool is None:
            return equity_cap
        return min(self.tier_max_position_pct * self.pool_allocation(pool, equity), equity_cap)


# ----------------------------------------------------------------------------------------------------------------------
# EXPOSURE
# ----------------------------------------------------------------------------------------------------------------------


class TierExposureTracker:
    """Market value held per symbol and per tier, from positions (which hold the fills) and price marks."""

    def __init__(self, config: TierConfig) -> None:
        self._config = config
        self._qty: dict[str, Decimal] = {}
        self._price: dict[str, Decimal] = {}

    def rebuild(self, positions: Mapping[str, Position]) -> None:
        """Replace everything with the given positions (from the store at start-up, the broker each iteration)."""
        self._qty = {p.symbol: p.qty for p in positions.values() if p.qty != 0}
        self._price = {p.symbol: p.market_price for p in positions.values() if p.qty != 0}

    def mark(self, prices: Mapping[str, Decimal]) -> None:
        """Revalue held symbols; unknown symbols and non-positive or non-finite prices are ignored."""
        for symbol in self._qty.keys() & prices.keys():
            price = prices[symbol]
            if price.is_finite() and price > 0:
                self._price[symbol] = price

    def holds(self, symbol: str) -> bool:
        return symbol in self._qty

    def qty(self, symbol: str) -> Decimal:
        return self._qty.get(symbol, _ZERO)

    def price(self, symbol: str) -> Decimal | None:
        return self._price.get(symbol)

    def symbol_exposure(self, symbol: str) -> Decimal:
        return self._qty.get(symbol, _ZERO) * self._price.get(symbol, _ZERO)

    def tier_exposure(self, tier: Tier) -> Decimal:
        tier_of = self._config.tier_of
        return sum((self.symbol_exposure(s) for s in self._qty if tier_of(s) is tier), _ZERO)

    def total_exposure(self) -> Decimal:
        return sum((self.symbol_exposure(s) for s in self._qty), _ZERO)

    def pool_exposure(self, pool: Tier | None) -> Decimal:
        return self.total_exposure() if pool is None else self.tier_exposure(pool)

    def exposures(self) -> dict[str, Decimal]:
        return {symbol: self.symbol_exposure(symbol) for symbol in self._qty}

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready view for `tradingd status`: money as strings rounded to cents, quantities as strings."""
        symbols = {
            symbol: {
                "tier": self._config.tier_of(symbol).value,
                "qty": str(self._qty[symbol]),
                "price": str(self._price[symbol]),
                "market_value": _cents(self.symbol_exposure(symbol)),
            }
            for symbol in sorted(self._qty)
        }
        return {
            "tiers": {tier.value: _cents(self.tier_exposure(tier)) for tier in Tier},
            "symbols": symbols,
            "total": _cents(self.total_exposure()),
            "positions": len(symbols),
        }


def _cents(value: Decimal) -> str:
    return str(value.quantize(CENT))


def herfindahl(values: Iterable[Decimal]) -> Decimal:
    """Concentration of a portfolio: the sum of squared weights (1 = everything in one position, 0 = empty)."""
    sizes = [abs(v) for v in values]
    total = sum(sizes, _ZERO)
    if total == 0:
        return _ZERO
    return sum(((v / total) ** 2 for v in sizes), _ZERO)


def effective_positions(values: Iterable[Decimal]) -> Decimal:
    """How many equal-sized positions the portfolio is worth in diversification terms (1 / Herfindahl)."""
    h = herfindahl(values)
    return _ZERO if h == 0 else _ONE / h


# ----------------------------------------------------------------------------------------------------------------------
# SIZER
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Plan:
    """An accepted candidate while the batch is being sized."""

    index: int
    candidate: EntryCandidate
    pool: Tier | None
    fractional: bool
    floor: Decimal  # the cheapest valid order: the minimum notional, or enough whole shares to reach it
    cap: Decimal
    weight: Decimal
    target: Decimal = _ZERO


class TieredPositionSizer:
    def __init__(self, config: TierConfig) -> None:
        self.config = config

    def size_entries(
        self,
        candidates: Sequence[EntryCandidate],
        *,
        equity: Decimal,
        buying_power: Decimal,
        tracker: TierExposureTracker,
        open_positions: int,
        pending: Mapping[str, Decimal] = _EMPTY,
    ) -> list[SizedOrder | Denial]:
        """Size a batch of entries; `result[i]` answers `candidates[i]`.

        Candidates are served highest score first: open-position slots, tier budgets and buying power go to the best
        signals. `buying_power` is what the account can still spend (the caller nets out open orders); `pending` is
        the notional of buy orders still open per symbol, which counts against its tier like a held position.
        """
        if not equity.is_finite() or not buying_power.is_finite():
            raise ValueError(f"equity and buying power must be finite, got {equity} and {buying_power}")
        if open_positions < 0:
            raise ValueError(f"open_positions must not be negative, got {open_positions}")
        cfg = self.config
        results: list[SizedOrder | Denial | None] = [None] * len(candidates)
        with localcontext(prec=_PRECISION):
            pool_left = self._pool_budgets(equity, tracker, pending)
            bp_left = max(buying_power, _ZERO)
            slots = max(cfg.max_open_positions - open_positions, 0)
            reserved_pool = dict.fromkeys(pool_left, _ZERO)
            reserved_bp = _ZERO
            taken: set[str] = set()
            plans: list[_Plan] = []
            for index in _ranked(candidates):
                candidate = candidates[index]
                plan = self._plan(index, candidate, equity)
                denial = self._admit(plan, tracker, taken, slots)
                taken.add(candidate.symbol)
                if denial is None:
                    if reserved_pool[plan.pool] + plan.floor > pool_left[plan.pool]:
                        denial = self._compressed(candidate, plan, pool_left[plan.pool], reserved_pool[plan.pool])
                    elif reserved_bp + plan.floor > bp_left:
                        denial = Denial(
                            candidate.symbol,
                            DenialReason.INSUFFICIENT_BUYING_POWER,
                            f"minimum order ${plan.floor:.2f} exceeds the ${bp_left - reserved_bp:.2f} of buying power "
                            "left",
                        )
                if denial is not None:
                    results[index] = denial
                    continue
                reserved_pool[plan.pool] += plan.floor
                reserved_bp += plan.floor
                slots -= 1
                plans.append(plan)
            self._set_targets(plans, pool_left)
            self._spend(plans, results, pool_left, bp_left)
        return [r for r in results if r is not None]

    # -- pre-trade checks -------------------------------------------------------------------------------------------
    def _pool_budgets(
        self, equity: Decimal, tracker: TierExposureTracker, pending: Mapping[str, Decimal]
    ) -> dict[Tier | None, Decimal]:
        """Effective allocation per pool: configured share of equity minus what it holds, never above configured."""
        cfg = self.config
        pools: list[Tier | None] = list(Tier) if cfg.enable_tiered_allocation else [None]
        used: dict[Tier | None, Decimal] = {pool: tracker.pool_exposure(pool) for pool in pools}
        for symbol, notional in pending.items():
            used[cfg.pool_of(symbol)] += max(notional, _ZERO)
        budgets = {}
        for pool in pools:
            configured = cfg.pool_allocation(pool, equity)
            budgets[pool] = min(max(configured - used[pool], _ZERO), configured)
        return budgets

    def _plan(self, index: int, candidate: EntryCandidate, equity: Decimal) -> _Plan:
        cfg = self.config
        pool = cfg.pool_of(candidate.symbol)
        fractional = cfg.fractional_enabled and candidate.fractionable
        min_notional = cfg.min_order_notional.quantize(CENT, rounding=ROUND_CEILING)
        if fractional:
            floor = min_notional
        else:
            shares = (cfg.min_order_notional / candidate.price).to_integral_value(rounding=ROUND_CEILING)
            floor = max(shares, _ONE) * candidate.price
        cap = cfg.position_cap(pool, equity)
        weight = (
            _weight(candidate.signal)
            if cfg.allocation_method == "score_vol"
            else _ml_weight(candidate)
            if cfg.allocation_method == "ml"
            else _ONE
        )
        return _Plan(index, candidate, pool, fractional, floor, cap, weight)

    def _admit(self, plan: _Plan, tracker: TierExposureTracker, taken: set[str], slots: int) -> Denial | None:
        candidate = plan.candidate
        symbol = candidate.symbol
        if symbol in taken or tracker.holds(symbol):
            return Denial(symbol, DenialReason.POSITION_EXISTS, "already held or sized in this iteration")
        if slots <= 0:
            return Denial(symbol, DenialReason.MAX_OPEN_POSITIONS, f"{self.config.max_open_positions} reached")
        min_notional = self.config.min_order_notional
        if plan.cap < min_notional:
            return Denial(
                symbol, DenialReason.BELOW_MIN_NOTIONAL, f"position cap ${plan.cap:.2f} < minimum ${min_notional}"
            )
        if not plan.fractional and candidate.price > plan.cap:
            why = "fractional shares are off" if not self.config.fractional_enabled else "asset is not fractionable"
            return Denial(
                symbol,
                DenialReason.ZERO_SHARES,
                f"one share at ${candidate.price} exceeds the ${plan.cap:.2f} position cap and {why}",
            )
        if plan.floor > plan.cap:
            return Denial(
                symbol,
                DenialReason.BELOW_MIN_NOTIONAL,
                f"the smallest order of at least ${min_notional} costs ${plan.floor:.2f}, above the "
                f"${plan.cap:.2f} cap",
            )
        return None

    def _compressed(self, candidate: EntryCandidate, plan: _Plan, budget: Decimal, reserved: Decimal) -> Denial:
        """Tier compression: the tier cannot fund this one at minimum size after the higher-scored ones."""
        name = plan.pool.value if plan.pool is not None else "portfolio"
        return Denial(
            candidate.symbol,
            DenialReason.TIER_BUDGET_EXHAUSTED,
            f"{name} has ${budget - reserved:.2f} left after higher-scored entries; the minimum order is "
            f"${plan.floor:.2f}",
        )

    # -- sizing ---------------------------------------------------------------------------------------------------
    def _set_targets(self, plans: list[_Plan], pool_left: Mapping[Tier | None, Decimal]) -> None:
        for pool, budget in pool_left.items():
            members = [p for p in plans if p.pool is pool]
            if not members:
                continue
            if all(p.weight == 0 for p in members):
                for p in members:
                    p.weight = _ONE
            for p, target in zip(members, _water_fill(members, budget), strict=True):
                p.target = target

    def _spend(
        self,
        plans: list[_Plan],
        results: list[SizedOrder | Denial | None],
        pool_left: dict[Tier | None, Decimal],
        bp_left: Decimal,
    ) -> None:
        """Turn targets into orders in rank order.

        Each tier keeps at least the floor of every later plan (compression promised them that), so rounding can
        never push a tier over budget. Buying power is first come, first served: when it runs short the best signals
        get their full size and the rest are denied, rather than every order shrinking toward the minimum.
        """
        later_pool = {pool: sum((p.floor for p in plans if p.pool is pool), _ZERO) for pool in pool_left}
        for plan in plans:
            later_pool[plan.pool] -= plan.floor
            budget = min(plan.target, pool_left[plan.pool] - later_pool[plan.pool], bp_left)
            if budget < plan.floor:
                results[plan.index] = Denial(
                    plan.candidate.symbol,
                    DenialReason.INSUFFICIENT_BUYING_POWER,
                    f"${bp_left:.2f} of buying power left after higher-scored entries; the minimum order is "
                    f"${plan.floor:.2f}",
                )
                continue
            order = self._order(plan, budget)
            pool_left[plan.pool] -= order.est_notional
            bp_left -= order.est_notional
            results[plan.index] = order

    def _order(self, plan: _Plan, budget: Decimal) -> SizedOrder:
        candidate = plan.candidate
        tier = self.config.tier_of(candidate.symbol) if plan.pool is not None else None
        if plan.fractional:
            notional = budget.quantize(CENT, rounding=ROUND_FLOOR)
            return SizedOrder(
                symbol=candidate.symbol,
                side=OrderSide.BUY,
                tier=tier,
                qty=None,
                notional=notional,
                est_price=candidate.price,
                est_notional=notional,
                fractional=True,
            )
        qty = (budget / candidate.price).to_integral_value(rounding=ROUND_FLOOR)
        return SizedOrder(
            symbol=candidate.symbol,
            side=OrderSide.BUY,
            tier=tier,
            qty=qty,
            notional=None,
            est_price=candidate.price,
            est_notional=qty * candidate.price,
            fractional=False,
        )


def _score(candidate: EntryCandidate) -> float:
    score = candidate.signal.score
    return score if math.isfinite(score) else -math.inf


def _ranked(candidates: Sequence[EntryCandidate]) -> list[int]:
    """Indices by score, highest first; ties broken by symbol so a batch always sizes the same way."""
    return sorted(range(len(candidates)), key=lambda i: (-_score(candidates[i]), candidates[i].symbol))


def _weight(signal: SignalGenerated) -> Decimal:
    """score / (volatility + 1); a non-positive or non-finite input earns no extra weight (the floor only)."""
    score, vol = signal.score, signal.volatility
    if not (math.isfinite(score) and math.isfinite(vol)) or score <= 0 or vol < 0:
        return _ZERO
    return Decimal(repr(score)) / (Decimal(repr(vol)) + 1)


def _ml_weight(candidate: EntryCandidate) -> Decimal:
    """The model's expected return; none, not positive or not finite earns no extra weight (the floor only)."""
    expected = candidate.expected_return
    if expected is None or not math.isfinite(expected) or expected <= 0:
        return _ZERO
    return Decimal(repr(expected))


def _water_fill(plans: Sequence[_Plan], budget: Decimal) -> list[Decimal]:
    """Split `budget` in proportion to weight, each share clamped to [floor, cap]; targets rounded down to cents.

    Finds the level λ with Σ clamp(λ·wᵢ, floorᵢ, capᵢ) = budget. The sum is piecewise linear and non-decreasing in
    λ, so it is solved exactly between the two breakpoints that bracket the budget. Callers guarantee Σ floor ≤
    budget and floor ≤ cap.
    """

    def level(lam: Decimal) -> list[Decimal]:
        return [min(max(lam * p.weight, p.floor), p.cap) for p in plans]

    if sum((p.cap for p in plans), _ZERO) <= budget:
        shares = [p.cap for p in plans]
    else:
        breaks = sorted({b for p in plans if p.weight > 0 for b in (p.floor / p.weight, p.cap / p.weight)})
        lo, lo_sum = _ZERO, sum(level(_ZERO), _ZERO)
        lam = breaks[-1] if breaks else _ZERO  # zero-weight plans stay at their floor even past the last break
        for hi in breaks:
            hi_sum = sum(level(hi), _ZERO)
            if hi_sum >= budget:
                lam = hi if hi_sum == lo_sum else lo + (budget - lo_sum) * (hi - lo) / (hi_sum - lo_sum)
                break
            lo, lo_sum = hi, hi_sum
        shares = level(lam)
    return [max(s.quantize(CENT, rounding=ROUND_FLOOR), p.floor) for s, p in zip(shares, plans, strict=True)]
