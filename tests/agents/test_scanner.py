from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from agents.scanner import ScannerAgent, ZScoreParams, zscores
from core.bus import EventBus
from core.clock import SimClock
from core.messages import BarsFetched, SignalGenerated
from core.portfolio import PortfolioView
from core.types import Account, BarFrame, OrderSide, PortfolioSnapshot, Position


def frame_at(history: BarFrame, row: int, rows: int = 21) -> BarFrame:
    sl = slice(row - rows + 1, row + 1)
    return BarFrame(
        symbols=history.symbols,
        timestamps=history.timestamps[sl],
        open=history.open[sl],
        high=history.high[sl],
        low=history.low[sl],
        close=history.close[sl],
        volume=history.volume[sl],
    )


def test_zscores_match_pandas_rolling_on_real_closes(small_history: BarFrame) -> None:
    row = 900
    stats = zscores(frame_at(small_history, row), 20)
    closes = pd.DataFrame(small_history.close[: row + 1], columns=small_history.symbols)
    rolling = closes.rolling(20)
    expected = ((closes - rolling.mean()) / rolling.std()).iloc[-1].to_numpy()
    np.testing.assert_allclose(stats.zscore, expected, rtol=1e-9, equal_nan=True)


def test_incomplete_window_gives_no_score(small_history: BarFrame) -> None:
    stats = zscores(frame_at(small_history, 10, rows=11), 20)
    assert np.isnan(stats.zscore).all()


class _Portfolio(PortfolioView):
    def __init__(self, positions: dict[str, Position]) -> None:
        super().__init__(broker=None)  # type: ignore[arg-type]
        self._snapshot = PortfolioSnapshot(account=Account(Decimal(0), Decimal(0), Decimal(0)), positions=positions)


def _run_scanner(history: BarFrame, row: int, positions: dict[str, Position]) -> list[SignalGenerated]:
    bus = EventBus()
    clock = SimClock(datetime(2018, 3, 1, tzinfo=UTC))
    ScannerAgent(bus, _Portfolio(positions), clock, ZScoreParams(), strategy="zscore_mr")
    seen: list[SignalGenerated] = []
    bus.subscribe(SignalGenerated, seen.append)
    frame = frame_at(history, row)
    bus.publish(
        BarsFetched(ts_event=clock.now(), ts_init=clock.now(), iteration=1, frame=frame, new_rows=1, rejected={})
    )
    return seen


def _first_row_where(history: BarFrame, symbol: str, predicate: str) -> int:
    closes = pd.Series(history.close[:, history.symbols.index(symbol)])
    z = (closes - closes.rolling(20).mean()) / closes.rolling(20).std()
    hits = z[z <= -2.0] if predicate == "entry" else z[z >= 0.0]
    return int(hits.index[hits.index > 100][0])


def test_entry_signal_when_zscore_at_or_below_minus_two(small_history: BarFrame) -> None:
    row = _first_row_where(small_history, "AAPL", "entry")
    signals = [s for s in _run_scanner(small_history, row, {}) if s.symbol == "AAPL"]
    assert len(signals) == 1
    sig = signals[0]
    assert sig.side is OrderSide.BUY
    assert not sig.is_exit
    assert sig.score >= 2.0  # score = −z
    assert sig.price == pytest.approx(small_history.close[row, small_history.symbols.index("AAPL")])
    assert sig.bar_ts == datetime.fromtimestamp(int(small_history.timestamps_ns[row]) / 1e9, tz=UTC)


def test_held_symbol_exits_on_mean_reversion_and_is_not_re_entered(small_history: BarFrame) -> None:
    row = _first_row_where(small_history, "MSFT", "exit")
    col = small_history.symbols.index("MSFT")
    price = Decimal(str(small_history.close[row, col]))
    held = {"MSFT": Position("MSFT", Decimal(3), price, price)}
    signals = [s for s in _run_scanner(small_history, row, held) if s.symbol == "MSFT"]
    assert [(s.side, s.is_exit) for s in signals] == [(OrderSide.SELL, True)]


def test_stop_loss_exit_below_average_entry(small_history: BarFrame) -> None:
    row = 500
    col = small_history.symbols.index("XOM")
    close = Decimal(str(small_history.close[row, col]))
    entry = close / Decimal("0.90")  # 10% under water, beyond the 5% stop
    held = {"XOM": Position("XOM", Decimal(2), entry, close)}
    signals = [s for s in _run_scanner(small_history, row, held) if s.symbol == "XOM"]
    assert len(signals) == 1
    assert signals[0].is_exit
    assert signals[0].reason.startswith("stop_loss")


def test_no_signal_from_a_missing_latest_bar(small_history: BarFrame) -> None:
    frame = frame_at(small_history, 700)
    close = frame.close.copy()
    close[-1, :] = np.nan
    broken = BarFrame(frame.symbols, frame.timestamps, frame.open, frame.high, frame.low, close, frame.volume)
    assert np.isnan(zscores(broken, 20).zscore).all()
