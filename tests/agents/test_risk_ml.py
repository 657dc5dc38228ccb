"""ML_ENABLED: the risk agent asks the model once per iteration, denies below ML_MIN_WIN_PROB, and with
ALLOCATION_METHOD=ml the sizer weights the rest by expected return. Without a gate nothing changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

import pytest

from agents.risk import RiskAgent, RiskLimits
from agents.sizing import EntryCandidate, TierConfig, TieredPositionSizer, TierExposureTracker
from agents.win_probability import MlGate, Prediction, WinPredictor
from core.messages import OrderApproved, OrderDenied, SignalGenerated
from core.reasons import DenialReason
from core.types import Tier
from tests.agents.test_risk import MON, Harness, answers, signal, snapshot

D = Decimal


class FixedPredictor:
    """Answers from a table by symbol; records each batch it is asked."""

    def __init__(self, table: Mapping[str, Prediction]) -> None:
        self.table = table
        self.batches: list[list[str]] = []
        self.down: str | None = None  # why the model cannot answer (paper/live: its history fetch failed)

    def unavailable(self) -> str | None:
        return self.down

    def predict(self, signals: Sequence[SignalGenerated]) -> Mapping[str, Prediction]:
        self.batches.append([s.symbol for s in signals])
        return {s.correlation_id: self.table[s.symbol] for s in signals if s.symbol in self.table}


def with_gate(h: Harness, predictor: WinPredictor, min_win_prob: float = 0.55) -> Harness:
    h.risk = RiskAgent(
        h.bus,
        TieredPositionSizer(h.config),
        h.tracker,
        RiskLimits(),
        h.flags,
        h.clock,
        session=MON,
        ml=MlGate(predictor, min_win_prob),
    )
    return h


def p(win: float, expected: float = 0.01) -> Prediction:
    return Prediction(win_probability=win, expected_return=expected, confidence=0.9)


def test_entries_below_the_threshold_or_without_a_prediction_are_denied_ml_low_probability() -> None:
    predictor = FixedPredictor({"SPY": p(0.70), "QQQ": p(0.40), "XLK": p(0.55)})
    h = with_gate(Harness(), predictor)
    out = h.iterate(snapshot("10000"), [signal("SPY", score=3), signal("QQQ", score=2), signal("XLK"), signal("AAPL")])
    assert sorted(answers(out)) == [
        ("AAPL", DenialReason.ML_LOW_PROBABILITY),
        ("QQQ", DenialReason.ML_LOW_PROBABILITY),
        ("SPY", "approved"),
        ("XLK", "approved"),  # at the threshold: allowed
    ]
    assert predictor.batches == [["SPY", "QQQ", "AAPL", "XLK"]]  # one batch, best score first, after the checks
    denied = {m.signal.symbol: m.detail for m in out if isinstance(m, OrderDenied)}
    assert denied["QQQ"].startswith("win probability 0.400 < 0.550")
    assert denied["AAPL"].startswith("no prediction")


def test_an_unavailable_model_denies_every_entry_ml_unavailable_without_being_asked() -> None:
    predictor = FixedPredictor({"SPY": p(0.90)})
    predictor.down = "the model's history could not be fetched (TransientBrokerError: 503)"
    h = with_gate(Harness(), predictor)
    out = h.iterate(snapshot("10000"), [signal("SPY", score=3), signal("QQQ")])
    assert sorted(answers(out)) == [("QQQ", DenialReason.ML_UNAVAILABLE), ("SPY", DenialReason.ML_UNAVAILABLE)]
    assert predictor.batches == []  # not asked: nothing it says could be trusted
    assert {m.detail for m in out if isinstance(m, OrderDenied)} == {predictor.down}


def test_the_model_is_not_asked_about_exits_or_entries_other_checks_denied() -> None:
    predictor = FixedPredictor({})
    h = with_gate(Harness(), predictor)
    h.iterate(snapshot("10000"), [signal("SPY", is_exit=True), signal("NOPE")])
    assert predictor.batches == []


def test_without_a_gate_the_same_signals_are_answered_as_before() -> None:
    signals = [signal("SPY", score=3), signal("QQQ", score=2)]
    plain = Harness().iterate(snapshot("10000"), signals)
    assert answers(plain) == [("SPY", "approved"), ("QQQ", "approved")]


def _candidate(symbol: str, expected: float | None) -> EntryCandidate:
    return EntryCandidate(signal(symbol), D(100), True, expected_return=expected)


def test_allocation_ml_weights_by_expected_return_and_gives_the_floor_to_none_or_negative() -> None:
    config = TierConfig(
        allocations={Tier.TIER1: D("0.40"), Tier.TIER2: D("0.30"), Tier.TIER3: D("0.30")},
        symbol_tiers={},
        allocation_method="ml",
        tier_max_position_pct=D(1),
        max_position_pct=D(1),
    )
    sized = TieredPositionSizer(config).size_entries(
        [_candidate("AAPL", 0.03), _candidate("MSFT", 0.01), _candidate("NVDA", -0.02)],
        equity=D(10000),
        buying_power=D(10000),
        tracker=TierExposureTracker(config),
        open_positions=0,
    )
    notional = {o.symbol: o.notional for o in sized if not hasattr(o, "reason")}
    assert notional["NVDA"] == D(10)  # no positive expectation: the minimum order only
    assert notional["AAPL"] == pytest.approx(3 * notional["MSFT"], rel=Decimal("0.01"))  # type: ignore[operator]


def test_allocation_method_ml_is_a_known_method() -> None:
    with pytest.raises(ValueError, match="'equal', 'score_vol' or 'ml'"):
        TierConfig(allocations={}, symbol_tiers={}, allocation_method="kelly")  # type: ignore[arg-type]


def test_an_approved_entry_is_still_sized_by_the_ordinary_rules() -> None:
    h = with_gate(Harness(), FixedPredictor({"SPY": p(0.9)}))
    out = h.iterate(snapshot("10000"), [signal("SPY")])
    approved = [m for m in out if isinstance(m, OrderApproved)]
    assert len(approved) == 1
    assert approved[0].order.est_notional <= D(10000) * D("0.10")
