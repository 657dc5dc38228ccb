from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from agents.scanner import ScannerAgent, return_volatility
from agents.strategies.base import Holdings, Signals
from agents.strategies.zscore_mean_reversion import ZScoreMeanReversion, ZScoreParams
from core.bus import EventBus
from core.clock import SimClock
from core.messages import SignalGenerated
from core.portfolio import PortfolioView
from core.types import Account, BarFrame, OrderSide, PortfolioSnapshot, Position, bar_price
from tests.frames import frame_at

ZSCORE = ZScoreMeanReversion(ZScoreParams())


class _Portfolio(PortfolioView):
    def __init__(self, positions: dict[str, Position]) -> None:
        super().__init__(broker=None)  # type: ignore[arg-type]
        self._snapshot = PortfolioSnapshot(account=Account(Decimal(0), Decimal(0), Decimal(0)), positions=positions)


@dataclass
class _Fixed:
    """A strategy that answers what it is told, to see what the agent adds."""

    answer: Signals
    lookback: int = 2

    def signals(self, frame: BarFrame, holdings: Holdings) -> Signals:
        return self.answer


def _run(
    strategy: object,
    frame: BarFrame,
    positions: dict[str, Position],
    *,
    new_rows: int = 1,
    stop_loss_pct: float | None = 0.05,
) -> list[SignalGenerated]:
    bus = EventBus()
    clock = SimClock(datetime(2018, 3, 1, tzinfo=UTC))
    agent = ScannerAgent(bus, _Portfolio(positions), clock, strategy, tag="zscore_mr", stop_loss_pct=stop_loss_pct)  # type: ignore[arg-type]
    published: list[SignalGenerated] = []
    bus.subscribe(SignalGenerated, published.append)
    signals = agent.on_bars(frame, new_rows=new_rows)
    assert signals == published  # every signal returned is published, in the same order
    return signals


def _first_row_where(history: BarFrame, symbol: str, predicate: str) -> int:
    closes = pd.Series(history.close[:, history.symbols.index(symbol)])
    z = (closes - closes.rolling(20).mean()) / closes.rolling(20).std()
    hits = z[z <= -2.0] if predicate == "entry" else z[z >= 0.0]
    return int(hits.index[hits.index > 100][0])


def _position(history: BarFrame, symbol: str, row: int, entry_over_close: float) -> dict[str, Position]:
    close = Decimal(str(history.close[row, history.symbols.index(symbol)]))
    return {symbol: Position(symbol, Decimal(3), close * Decimal(str(entry_over_close)), close)}


def test_an_entry_signal_carries_the_bar_price_score_volatility_and_ids(small_history: BarFrame) -> None:
    row = _first_row_where(small_history, "AAPL", "entry")
    frame = frame_at(small_history, row)
    col = small_history.symbols.index("AAPL")
    signals = [s for s in _run(ZSCORE, frame, {}) if s.symbol == "AAPL"]
    assert len(signals) == 1
    sig = signals[0]
    assert (sig.side, sig.is_exit, sig.strategy) == (OrderSide.BUY, False, "zscore_mr")
    assert sig.score >= 2.0  # score = −z
    assert sig.price == bar_price(small_history.close[row, col])  # exact, as Decimal
    assert sig.volatility == return_volatility(frame.close[-20:])[col]
    assert sig.bar_ts == datetime.fromtimestamp(int(small_history.timestamps_ns[row]) / 1e9, tz=UTC)
    assert sig.correlation_id == f"zscore_mr:AAPL:buy:{sig.bar_ts:%Y%m%dT%H%M}"
    assert sig.reason.startswith("zscore -")
    assert sig.reason.endswith("<= entry")


def test_a_held_symbol_exits_on_the_strategys_signal_and_is_not_re_entered(small_history: BarFrame) -> None:
    row = _first_row_where(small_history, "MSFT", "exit")
    signals = list(_run(ZSCORE, frame_at(small_history, row), _position(small_history, "MSFT", row, 1.0)))
    assert [(s.symbol, s.side, s.is_exit) for s in signals if s.symbol == "MSFT"] == [("MSFT", OrderSide.SELL, True)]


def test_the_stop_loss_exits_below_average_entry_whatever_the_strategy_says(small_history: BarFrame) -> None:
    row = 500
    held = _position(small_history, "XOM", row, 1 / 0.90)  # 10 % under water, beyond the 5 % stop
    frame = frame_at(small_history, row)
    n = frame.n_symbols
    silent = _Fixed(Signals(entries=np.zeros(n, bool), exits=np.zeros(n, bool), score=np.zeros(n)))
    for strategy in (ZSCORE, silent):
        signals = [s for s in _run(strategy, frame, held) if s.symbol == "XOM"]
        assert len(signals) == 1
        assert signals[0].is_exit
        assert signals[0].reason.startswith("stop_loss: close ")
    # STOP_MODE fixed or trailing: the stops sit at the broker, the scanner adds no close-based exit.
    assert [s for s in _run(silent, frame, held, stop_loss_pct=None) if s.symbol == "XOM"] == []


def test_no_signal_at_all_on_a_frame_shorter_than_the_lookback_or_without_new_rows(small_history: BarFrame) -> None:
    row = 500
    held = _position(small_history, "XOM", row, 1 / 0.90)
    assert _run(ZSCORE, frame_at(small_history, row, rows=19), held) == []  # not even the stop: warm-up
    assert _run(ZSCORE, frame_at(small_history, row), held, new_rows=0) == []


def test_the_agent_keeps_entries_to_symbols_not_held_and_exits_to_held_ones_with_a_valid_bar(
    small_history: BarFrame,
) -> None:
    row = 1000
    frame = frame_at(small_history, row, rows=2)
    n = frame.n_symbols
    everything = _Fixed(Signals(entries=np.ones(n, bool), exits=np.ones(n, bool), score=np.full(n, np.nan)))
    held = _position(small_history, "JPM", row, 1.0)
    signals = _run(everything, frame, held)
    exits = [s.symbol for s in signals if s.is_exit]
    entries = [s.symbol for s in signals if not s.is_exit]
    valid = [s for i, s in enumerate(frame.symbols) if np.isfinite(frame.close[-1, i])]
    assert exits == ["JPM"]
    assert entries == [s for s in valid if s != "JPM"]  # exits first, then entries, each in column order
    assert {s.reason for s in signals} == {"zscore_mr exit", "zscore_mr entry"}  # no reason given: the tag
    assert {s.score for s in signals} == {0.0}  # NaN reads as 0


def test_a_strategy_answering_for_the_wrong_number_of_symbols_fails_loudly(small_history: BarFrame) -> None:
    frame = frame_at(small_history, 1000)
    wrong = _Fixed(Signals(entries=np.ones(3, bool), exits=np.zeros(3, bool), score=np.zeros(3)))
    bus = EventBus()
    clock = SimClock(datetime(2018, 3, 1, tzinfo=UTC))
    agent = ScannerAgent(bus, _Portfolio({}), clock, wrong, tag="x", stop_loss_pct=0.05)
    with pytest.raises(ValueError, match=r"signals\(\)\.entries has shape \(3,\)"):
        agent.on_bars(frame, new_rows=1)
