import copy
import csv
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.sizing import (
    Denial,
    EntryCandidate,
    TierConfig,
    TieredPositionSizer,
    TierExposureTracker,
    effective_positions,
    herfindahl,
)
from config.settings import BUNDLED_DATA_DIR
from core.messages import SignalGenerated, SizedOrder
from core.reasons import DenialReason
from core.types import Fill, OrderSide, Position, Tier, bar_price

T0 = datetime(2018, 2, 7, 21, tzinfo=UTC)
D = Decimal


def real_prices() -> dict[str, Decimal]:
    """Last prices of the S&P 500 constituents as of February 2018 (bundled data)."""
    with (BUNDLED_DATA_DIR / "sp500_constituents_2018-02.csv").open() as f:
        return {row["Symbol"]: D(row["Price"]) for row in csv.DictReader(f)}


PRICES = real_prices()
# The 20 largest S&P 500 stocks by market cap in February 2018: the sim default's Tier-3 shape.
LARGE_CAPS = (
    "AAPL GOOGL GOOG MSFT AMZN FB JPM JNJ XOM BAC WMT WFC V BRK.B T HD CVX UNH INTC PFE".split()  # noqa: SIM905
)


def signal(symbol: str, *, score: float = 1.0, volatility: float = 0.2, price: float = 100.0) -> SignalGenerated:
    return SignalGenerated(
        ts_event=T0,
        ts_init=T0,
        correlation_id=f"c-{symbol}",
        strategy="zscore_mr",
        symbol=symbol,
        side=OrderSide.BUY,
        is_exit=False,
        price=bar_price(price),
        score=score,
        volatility=volatility,
        bar_ts=T0,
        reason="zscore",
    )


def candidate(
    symbol: str, price: Decimal | str, *, score: float = 1.0, volatility: float = 0.2, fractionable: bool = True
) -> EntryCandidate:
    price = D(price)
    return EntryCandidate(signal(symbol, score=score, volatility=volatility, price=float(price)), price, fractionable)


def config(**overrides: object) -> TierConfig:
    base: dict[str, object] = {
        "allocations": {Tier.TIER1: D("0.40"), Tier.TIER2: D("0.30"), Tier.TIER3: D("0.30")},
        "symbol_tiers": {"SPY": Tier.TIER1, "QQQ": Tier.TIER1, "XLK": Tier.TIER2},
    }
    base.update(overrides)
    return TierConfig(**base)  # type: ignore[arg-type]


def size(
    cfg: TierConfig,
    candidates: list[EntryCandidate],
    *,
    equity: str = "10000",
    buying_power: str | None = None,
    positions: Mapping[str, Position] | None = None,
    open_positions: int | None = None,
) -> list[SizedOrder | Denial]:
    tracker = TierExposureTracker(cfg)
    tracker.rebuild(positions or {})
    return TieredPositionSizer(cfg).size_entries(
        candidates,
        equity=D(equity),
        buying_power=D(buying_power if buying_power is not None else equity),
        tracker=tracker,
        open_positions=len(positions or {}) if open_positions is None else open_positions,
    )


def approved(results: list[SizedOrder | Denial]) -> list[SizedOrder]:
    return [r for r in results if isinstance(r, SizedOrder)]


def split(results: list[SizedOrder | Denial]) -> tuple[dict[str, SizedOrder], dict[str, str]]:
    """Approved orders by symbol, and denial reasons by symbol."""
    orders = {r.symbol: r for r in results if isinstance(r, SizedOrder)}
    reasons = {r.symbol: r.reason for r in results if isinstance(r, Denial)}
    return orders, reasons


# ----------------------------------------------------------------------------------------------------------------------
# TierConfig
# ----------------------------------------------------------------------------------------------------------------------


def test_config_cannot_be_mutated_even_through_the_callers_dict() -> None:
    tiers = {"SPY": Tier.TIER1}
    cfg = config(symbol_tiers=tiers)
    tiers["SPY"] = Tier.TIER3
    assert cfg.tier_of("SPY") is Tier.TIER1
    with pytest.raises(TypeError):
        cfg.allocations[Tier.TIER1] = D(1)  # type: ignore[index]
    with pytest.raises(AttributeError):
        cfg.max_position_pct = D(1)  # type: ignore[misc]
    assert copy.deepcopy(cfg) is cfg


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"allocations": {Tier.TIER1: D("0.6"), Tier.TIER2: D("0.5")}}, "sum"),
        ({"allocations": {Tier.TIER1: D("-0.1")}}, "TIER1"),
        ({"min_order_notional": D("0.5")}, "min_order_notional"),
        ({"max_position_pct": D("1.5")}, "max_position_pct"),
        ({"allocation_method": "kelly"}, "allocation_method"),
    ],
)
def test_config_rejects_bad_values(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config(**overrides)


def test_position_cap_is_the_tighter_of_tier_and_equity_caps() -> None:
    cfg = config()
    # Tier 1: 20% of 40% = 8% of equity, tighter than 10%.
    assert cfg.position_cap(Tier.TIER1, D(10_000)) == D(800)
    # A tier holding everything: 20% of 100% = 20%, so the 10% equity cap wins.
    wide = config(allocations={Tier.TIER1: D(1)})
    assert wide.position_cap(Tier.TIER1, D(10_000)) == D(1000)
    # Tiering off: one pool, capped only by MAX_POSITION_PCT.
    assert config(enable_tiered_allocation=False).position_cap(None, D(10_000)) == D(1000)


# ----------------------------------------------------------------------------------------------------------------------
# TierExposureTracker and concentration
# ----------------------------------------------------------------------------------------------------------------------


def test_tracker_follows_positions_fills_and_marks() -> None:
    cfg = config()
    tracker = TierExposureTracker(cfg)
    tracker.rebuild({"SPY": Position("SPY", D(10), D(270), D(275)), "AAPL": Position("AAPL", D("2.5"), D(150), D(155))})
    assert tracker.tier_exposure(Tier.TIER1) == D(2750)
    assert tracker.tier_exposure(Tier.TIER3) == D("387.5")

    tracker.apply_fill(Fill("e1", "o1", "XLK", OrderSide.BUY, D(4), D(70), T0))
    tracker.apply_fill(Fill("e2", "o2", "AAPL", OrderSide.SELL, D("2.5"), D(156), T0))
    assert tracker.tier_exposure(Tier.TIER2) == D(280)
    assert not tracker.holds("AAPL")
    assert tracker.tier_exposure(Tier.TIER3) == 0

    tracker.mark({"SPY": D(280), "XLK": D("NaN"), "MSFT": D(90)})
    assert tracker.symbol_exposure("SPY") == D(2800)
    assert tracker.symbol_exposure("XLK") == D(280)  # a NaN mark is ignored, never priced at zero
    assert not tracker.holds("MSFT")

    snap = tracker.snapshot()
    assert snap["tiers"] == {"TIER1": "2800.00", "TIER2": "280.00", "TIER3": "0.00"}
    assert snap["symbols"]["XLK"] == {"tier": "TIER2", "qty": "4", "price": "70", "market_value": "280.00"}
    assert snap["total"] == "3080.00"


def test_tracker_rejects_nonsense_fills() -> None:
    tracker = TierExposureTracker(config())
    with pytest.raises(ValueError, match="positive"):
        tracker.apply_fill(Fill("e1", "o1", "SPY", OrderSide.BUY, D(0), D(270), T0))


def test_herfindahl_and_effective_number_of_positions() -> None:
    assert herfindahl([]) == 0
    assert effective_positions([]) == 0
    assert herfindahl([D(500)]) == 1
    assert effective_positions([D(100)] * 4) == 4
    # One big and three small positions are worth fewer than four equal ones.
    assert D(1) < effective_positions([D(700), D(100), D(100), D(100)]) < D(4)


# ----------------------------------------------------------------------------------------------------------------------
# Scenarios
# ----------------------------------------------------------------------------------------------------------------------


def test_expensive_stock_with_fractional_on_gets_a_notional_order_at_the_cap() -> None:
    # $10k account: Tier 3 holds $3,000, a position at most 20% of that = $600. One share costs $900.
    [order] = size(config(), [candidate("NVDA", "900")])
    assert isinstance(order, SizedOrder)
    assert order.fractional
    assert order.qty is None
    assert order.notional == D("600.00")
    assert order.tier is Tier.TIER3


def test_expensive_stock_with_fractional_off_is_denied_zero_shares_not_rounded_up() -> None:
    [denial] = size(config(fractional_enabled=False), [candidate("NVDA", "900")])
    assert isinstance(denial, Denial)
    assert denial.reason == "zero_shares"
    # Same when fractional trading is on but the asset is not fractionable.
    [denial] = size(config(), [candidate("NVDA", "900", fractionable=False)])
    assert isinstance(denial, Denial)
    assert denial.reason == "zero_shares"


def test_whole_shares_are_rounded_down_under_the_cap() -> None:
    [order] = size(config(fractional_enabled=False), [candidate("AAPL", PRICES["AAPL"])])
    assert isinstance(order, SizedOrder)
    assert order.qty == 3  # $600 / $155.15 = 3.87 shares
    assert order.notional is None
    assert order.est_notional == 3 * PRICES["AAPL"]


def test_tier3_compression_funds_the_highest_scored_and_leaves_other_tiers_alone() -> None:
    # $500 account: Tier 3 has $150, enough for 15 of the 20 large caps at the $10 minimum.
    large_caps = [candidate(s, PRICES[s], score=20 - i) for i, s in enumerate(LARGE_CAPS)]
    spy = candidate("SPY", "263.07", score=0.5)
    results = size(config(), [*large_caps, spy], equity="500")

    orders, reasons = split(results)
    funded = [s for s in LARGE_CAPS if s in orders]
    assert funded == list(LARGE_CAPS[:15])
    assert {reasons[s] for s in LARGE_CAPS[15:]} == {"tier_budget_exhausted"}
    assert sum(orders[s].est_notional for s in funded) == D(150)
    assert all(orders[s].est_notional >= D(10) for s in funded)
    # Tier 1 gets exactly what it would get alone: 20% of its $200.
    assert [orders["SPY"]] == size(config(), [spy], equity="500")
    assert orders["SPY"].est_notional == D(40)


def test_compression_skips_a_stock_the_tier_cannot_fund_and_funds_a_cheaper_lower_scored_one() -> None:
    # $20k, whole shares: Tier 3 has $6,000, of which $4,500 is held; a position costs at most $1,200.
    cfg = config(fractional_enabled=False)
    cands = [
        candidate("AMZN", PRICES["AMZN"], score=5),  # one share ($1,350.50) is above the cap
        candidate("GOOGL", PRICES["GOOGL"], score=4),  # one share fits
        candidate("GOOG", PRICES["GOOG"], score=3),  # a second $1,000 share does not fit in the $1,500 left
        candidate("UNH", PRICES["UNH"], score=2),  # but a $216 one does
    ]
    held = {"BA": Position("BA", D(15), D(300), D(300))}
    orders, reasons = split(size(cfg, cands, equity="20000", positions=held))
    assert reasons == {"AMZN": "zero_shares", "GOOG": "tier_budget_exhausted"}
    assert {s: o.qty for s, o in orders.items()} == {"GOOGL": 1, "UNH": 2}  # $1,007.71 + 2 x $216.46 <= $1,500


def test_tier_budget_exhausted_when_the_tier_is_full() -> None:
    held = {"SPY": Position("SPY", D(15), D(260), D(270))}  # $4,050 of Tier 1's $4,000
    [denial] = size(config(), [candidate("QQQ", "160")], positions=held)
    assert isinstance(denial, Denial)
    assert denial.reason == "tier_budget_exhausted"


def test_effective_allocation_is_reduced_by_what_the_tier_holds() -> None:
    held = {"SPY": Position("SPY", D(14), D(260), D(270))}  # $3,780 of $4,000: $220 left, below the $800 cap
    [order] = size(config(), [candidate("QQQ", "160")], positions=held)
    assert isinstance(order, SizedOrder)
    assert order.notional == D(220)


def test_below_min_notional_and_position_exists_and_slots() -> None:
    # A $50 account: Tier 3 cap = min(20% of $15, 10% of $50) = $3, below the $10 minimum.
    [denial] = size(config(), [candidate("AAPL", "155.15")], equity="50")
    assert isinstance(denial, Denial)
    assert denial.reason == "below_min_notional"

    held = {"AAPL": Position("AAPL", D(1), D(150), D(155))}
    results = size(
        config(), [candidate("AAPL", "155"), candidate("MSFT", "85", score=0), candidate("MSFT", "85")], positions=held
    )
    assert [r.reason if isinstance(r, Denial) else "ok" for r in results] == [
        "position_exists",
        "position_exists",
        "ok",
    ]

    results = size(
        config(max_open_positions=3), [candidate("MSFT", "85"), candidate("V", "113", score=2)], open_positions=2
    )
    assert [r.reason if isinstance(r, Denial) else "ok" for r in results] == ["max_open_positions", "ok"]


def test_buying_power_goes_to_the_best_signals_first() -> None:
    cands = [
        candidate("MSFT", "85.01", score=1),
        candidate("JPM", "107.88", score=3),
        candidate("V", "113.86", score=2),
    ]
    results = size(config(), cands, equity="10000", buying_power="1000")
    orders, reasons = split(results)
    assert orders["JPM"].est_notional == D(600)
    assert orders["V"].est_notional == D(400)
    assert reasons == {"MSFT": "insufficient_buying_power"}


def test_score_vol_weights_split_the_tier_then_caps_redistribute() -> None:
    loose = config(allocation_method="score_vol", tier_max_position_pct=D(1), max_position_pct=D(1))
    strong = candidate("JPM", "107.88", score=3.0, volatility=0.0)
    weak = candidate("V", "113.86", score=1.0, volatility=0.0)
    results = size(loose, [strong, weak])
    assert [r.est_notional for r in approved(results)] == [D(2250), D(750)]
    # Volatility shrinks a weight: score 3 with volatility 2 weighs the same as score 1 with none.
    results = size(loose, [candidate("JPM", "107.88", score=3.0, volatility=2.0), weak])
    assert [r.est_notional for r in approved(results)] == [D(1500), D(1500)]
    # With a $1,500 cap the strong one is capped and the weak one takes the rest instead of leaving it idle.
    capped = replace(loose, tier_max_position_pct=D("0.5"))
    assert [r.est_notional for r in approved(size(capped, [strong, weak]))] == [D(1500), D(1500)]


def test_tiering_off_uses_one_pool_and_the_equity_cap() -> None:
    cfg = config(enable_tiered_allocation=False)
    held = {"SPY": Position("SPY", D(34), D(260), D(270))}  # $9,180 of $10,000 invested
    [order] = size(cfg, [candidate("AAPL", "155.15")], positions=held)
    assert isinstance(order, SizedOrder)
    assert order.tier is None
    assert order.notional == D(820)  # below the $1,000 equity cap: only $820 of equity is not invested


# ----------------------------------------------------------------------------------------------------------------------
# Properties
# ----------------------------------------------------------------------------------------------------------------------

SYMBOLS = ("SPY", "QQQ", "DIA", "IWM", "XLK", "XLF", "XLV", *LARGE_CAPS)
money = st.decimals(min_value=D("0.01"), max_value=D(5000), places=2)
# Equity from $100 to $10M, spread evenly over orders of magnitude.
equities = st.builds(
    lambda mantissa, exponent: (mantissa * D(10) ** exponent).quantize(D("0.01")),
    st.decimals(min_value=D(1), max_value=D(10), places=3),
    st.integers(2, 6),
)


@st.composite
def configs(draw: st.DrawFn) -> TierConfig:
    a1 = draw(st.integers(0, 100))
    a2 = draw(st.integers(0, 100 - a1))
    a3 = draw(st.integers(0, 100 - a1 - a2))
    tiers = {s: draw(st.sampled_from(Tier)) for s in SYMBOLS if draw(st.booleans())}
    return TierConfig(
        allocations={Tier.TIER1: D(a1) / 100, Tier.TIER2: D(a2) / 100, Tier.TIER3: D(a3) / 100},
        symbol_tiers=tiers,
        tier_max_position_pct=draw(st.decimals(min_value=D("0.01"), max_value=D(1), places=2)),
        max_position_pct=draw(st.decimals(min_value=D("0.01"), max_value=D(1), places=2)),
        min_order_notional=draw(st.decimals(min_value=D(1), max_value=D(50), places=3)),
        fractional_enabled=draw(st.booleans()),
        allocation_method=draw(st.sampled_from(["equal", "score_vol"])),
        enable_tiered_allocation=draw(st.booleans()),
        max_open_positions=draw(st.integers(3, 25)),
    )


candidates_st = st.lists(
    st.builds(
        lambda symbol, price, score, vol, frac: candidate(
            symbol, price, score=score, volatility=vol, fractionable=frac
        ),
        st.sampled_from(SYMBOLS),
        money,
        st.one_of(st.floats(min_value=-5, max_value=10), st.just(float("nan"))),
        st.floats(min_value=0, max_value=3, allow_nan=False),
        st.booleans(),
    ),
    min_size=1,
    max_size=12,
)
positions_st = st.dictionaries(
    st.sampled_from(SYMBOLS),
    st.tuples(st.decimals(min_value=D("0.001"), max_value=D(200), places=3), money),
    max_size=3,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cfg=configs(),
    cands=candidates_st,
    held=positions_st,
    equity=equities,
    bp_ratio=st.decimals(min_value=D(0), max_value=D(2), places=2),
    extra_open=st.integers(0, 5),
    pending=st.dictionaries(st.sampled_from(SYMBOLS), money, max_size=3),
)
def test_sizing_never_breaks_a_limit(
    cfg: TierConfig,
    cands: list[EntryCandidate],
    held: dict[str, tuple[Decimal, Decimal]],
    equity: Decimal,
    bp_ratio: Decimal,
    extra_open: int,
    pending: dict[str, Decimal],
) -> None:
    positions = {s: Position(s, qty, price, price) for s, (qty, price) in held.items()}
    tracker = TierExposureTracker(cfg)
    tracker.rebuild(positions)
    buying_power = equity * bp_ratio
    open_positions = len(positions) + extra_open
    twin = TierConfig(
        allocations=dict(cfg.allocations),
        symbol_tiers=dict(cfg.symbol_tiers),
        tier_max_position_pct=cfg.tier_max_position_pct,
        max_position_pct=cfg.max_position_pct,
        min_order_notional=cfg.min_order_notional,
        fractional_enabled=cfg.fractional_enabled,
        allocation_method=cfg.allocation_method,
        enable_tiered_allocation=cfg.enable_tiered_allocation,
        max_open_positions=cfg.max_open_positions,
    )
    allocations_view = cfg.allocations
    sizer = TieredPositionSizer(cfg)

    results = sizer.size_entries(
        cands, equity=equity, buying_power=buying_power, tracker=tracker, open_positions=open_positions, pending=pending
    )
    sizer.size_entries(
        cands, equity=equity, buying_power=buying_power, tracker=tracker, open_positions=open_positions
    )  # a second call sees the same config

    assert len(results) == len(cands)
    assert [r.symbol for r in results] == [c.symbol for c in cands]
    assert cfg == twin
    assert cfg.allocations is allocations_view
    assert dict(cfg.allocations) == dict(twin.allocations)

    orders = approved(results)
    assert len(orders) <= max(cfg.max_open_positions - open_positions, 0)
    assert len({o.symbol for o in orders}) == len(orders)
    assert not any(o.symbol in positions for o in orders)
    assert sum((o.est_notional for o in orders), D(0)) <= buying_power
    spent_by_pool: dict[Tier | None, Decimal] = {}
    price_of = {id(r): c.price for c, r in zip(cands, results, strict=True)}
    for order in orders:
        pool = cfg.pool_of(order.symbol)
        assert order.side is OrderSide.BUY
        assert order.est_notional <= cfg.position_cap(pool, equity)
        assert order.est_notional <= cfg.max_position_pct * equity
        assert order.est_notional >= cfg.min_order_notional
        if order.fractional:
            assert order.qty is None
            assert order.notional == order.est_notional
            assert order.notional == order.notional.quantize(D("0.01"))
        else:
            assert order.notional is None
            assert order.qty is not None
            assert order.qty > 0
            assert order.qty == order.qty.to_integral_value()
            assert order.est_notional == order.qty * price_of[id(order)]
        spent_by_pool[pool] = spent_by_pool.get(pool, D(0)) + order.est_notional
    for pool, spent in spent_by_pool.items():
        held_value = tracker.pool_exposure(pool) + sum((v for s, v in pending.items() if cfg.pool_of(s) is pool), D(0))
        assert spent <= max(cfg.pool_allocation(pool, equity) - held_value, D(0))
    reasons = {r.reason for r in results if isinstance(r, Denial)}
    assert reasons <= {r.value for r in DenialReason}


@settings(max_examples=200, deadline=None)
@given(price=money, equity=st.decimals(min_value=D(1000), max_value=D(1_000_000), places=2))
def test_a_lone_affordable_candidate_is_always_funded(price: Decimal, equity: Decimal) -> None:
    """Liveness: with room in the tier and fractional shares, a single entry is never denied."""
    [result] = size(config(), [candidate("AAPL", price)], equity=str(equity))
    assert isinstance(result, SizedOrder)
    assert result.notional == config().position_cap(Tier.TIER3, equity).quantize(D("0.01"), rounding=ROUND_FLOOR)


def test_candidate_price_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        candidate("AAPL", "0")
    with pytest.raises(ValueError, match="positive"):
        candidate("AAPL", "NaN")
