from datetime import UTC, date, datetime, timedelta

import numpy as np

from agents.data import DataAgent, RollingWindow
from core.broker.replay import ReplayMarketData
from core.bus import EventBus
from core.clock import NyseCalendar, SimClock
from core.messages import BarsFetched, DataRejected
from core.types import BarFrame


def _agent(
    history: BarFrame, clock: SimClock, symbols: tuple[str, ...], chunk: int = 200
) -> tuple[DataAgent, ReplayMarketData, EventBus]:
    bus = EventBus()
    md = ReplayMarketData(history, clock, chunk_size=chunk)
    agent = DataAgent(bus, md, clock, symbols=symbols, lookback=21, bar_interval=timedelta(days=1))
    return agent, md, bus


async def test_real_bad_rows_are_rejected_with_a_reason(small_history: BarFrame, calendar: NyseCalendar) -> None:
    # DHR and O have empty open/high/low on 2015-07-17 in the source data: real bad input.
    clock = SimClock(calendar.session_close(date(2015, 7, 16)))
    agent, _, bus = _agent(small_history, clock, ("DHR", "O", "AAPL"))
    rejected: list[DataRejected] = []
    bus.subscribe(DataRejected, rejected.append)
    await agent.fetch(1)
    clock.set(calendar.session_close(date(2015, 7, 17)))
    event = await agent.fetch(2)
    assert sorted((r.symbol, r.reason) for r in rejected) == [("DHR", "missing_price"), ("O", "missing_price")]
    assert event.rejected == {"missing_price": 2}
    last = event.frame
    assert np.isnan(last.close[-1, 0])
    assert np.isnan(last.close[-1, 1])
    assert last.close[-1, 2] > 0  # AAPL's good bar passes


async def test_one_batched_call_the_adapter_counts_per_chunk_and_incremental_fetch(
    small_history: BarFrame, calendar: NyseCalendar
) -> None:
    clock = SimClock(calendar.session_close(date(2016, 3, 1)))
    symbols = ("AAPL", "MSFT", "XOM", "JPM", "DHR")
    agent, md, _ = _agent(small_history, clock, symbols, chunk=2)
    first = await agent.fetch(1)
    assert md.api_calls == 3  # ceil(5 / 2) requests, never one per symbol
    assert first.frame.n_rows == 21  # warm-up fills the lookback
    clock.set(calendar.session_close(date(2016, 3, 2)))
    second = await agent.fetch(2)
    assert md.api_calls == 6
    assert second.new_rows == 1
    assert second.frame.n_rows == 21
    assert second.frame.timestamps[-1] == np.datetime64(datetime(2016, 3, 2, 5, tzinfo=None), "ns")


async def test_never_sees_a_bar_after_now(small_history: BarFrame, calendar: NyseCalendar) -> None:
    clock = SimClock(calendar.session_open(date(2017, 5, 10)))  # before the close: today's bar isn't final
    agent, _, _ = _agent(small_history, clock, ("AAPL",))
    bars = await agent.fetch(1)
    latest = bars.frame.timestamps[-1].astype("datetime64[us]").item().replace(tzinfo=UTC)
    assert latest <= clock.now()


async def test_what_a_fetch_returns_is_what_it_publishes(small_history: BarFrame, calendar: NyseCalendar) -> None:
    clock = SimClock(calendar.session_close(date(2015, 7, 16)))
    agent, _, bus = _agent(small_history, clock, ("DHR", "O", "AAPL"))
    seen: list[BarsFetched] = []
    bus.subscribe(BarsFetched, seen.append)
    first = await agent.fetch(1)
    clock.set(calendar.session_close(date(2015, 7, 17)))
    second = await agent.fetch(2)
    assert [(e.iteration, e.new_rows, dict(e.rejected)) for e in seen] == [
        (1, first.new_rows, {}),
        (2, 1, {"missing_price": 2}),
    ]
    assert [e.frame for e in seen] == [first.frame, second.frame]  # the very window returned, not a copy
    assert (first.accepted, second.accepted) == (first.new_rows * 3, 1)


async def test_symbol_missing_from_data_yields_no_bars(small_history: BarFrame, calendar: NyseCalendar) -> None:
    clock = SimClock(calendar.session_close(date(2014, 6, 2)))
    agent, _, _ = _agent(small_history, clock, ("AAPL", "NOPE", "FTV"))  # FTV only lists in 2016
    event = await agent.fetch(1)
    assert np.isnan(event.frame.close[:, 1]).all()
    assert np.isnan(event.frame.close[:, 2]).all()
    assert not event.rejected  # absent is not "bad": there is simply nothing to trade on


def test_rolling_window_keeps_earlier_frames_immutable(small_history: BarFrame) -> None:

    window = RollingWindow(small_history.symbols, lookback=5, spare=3)
    frames = []
    for row in range(40):  # forces several re-allocations
        one = BarFrame(
            symbols=small_history.symbols,
            timestamps=small_history.timestamps[row : row + 1],
            open=small_history.open[row : row + 1],
            high=small_history.high[row : row + 1],
            low=small_history.low[row : row + 1],
            close=small_history.close[row : row + 1],
            volume=small_history.volume[row : row + 1],
        )
        frames.append((row, window.append(one)))
    for row, frame in frames:
        first = max(0, row - 4)
        np.testing.assert_array_equal(frame.close, small_history.close[first : row + 1])
        assert not frame.close.flags.writeable


async def test_switching_symbols_rewarms_without_counting_old_bars_again(
    small_history: BarFrame, calendar: NyseCalendar
) -> None:
    clock = SimClock(calendar.session_close(date(2015, 7, 20)))  # DHR's bad row of 2015-07-17 is in the warm-up
    agent, _, _ = _agent(small_history, clock, ("AAPL",))
    await agent.fetch(1)
    agent.set_symbols(("DHR", "MSFT"))
    clock.set(calendar.session_close(date(2015, 7, 21)))
    event = await agent.fetch(2)
    assert event.frame.symbols == ("DHR", "MSFT")
    assert event.frame.n_rows == 21  # warmed up again for the new symbols
    assert event.new_rows == 1  # only 2015-07-21 is a new bar
    assert event.accepted == 2  # its bars of DHR and MSFT, not the warm-up rows
    assert event.rejected == {}  # the bad warm-up row is blanked but not reported again
    row_0717 = int(np.searchsorted(event.frame.timestamps, np.datetime64("2015-07-17T04:00", "ns")))
    assert np.isnan(event.frame.close[row_0717, 0])


async def test_real_rows_with_open_or_close_outside_the_range_are_rejected(
    small_history: BarFrame, calendar: NyseCalendar
) -> None:
    # 2014-11-06 in the source: DHR opens at 78.47 under a low of 80.49, O opens at 44.74 under a low of 46.73.
    clock = SimClock(calendar.session_close(date(2014, 11, 5)))
    agent, _, bus = _agent(small_history, clock, ("DHR", "O", "AAPL"))
    rejected: list[DataRejected] = []
    bus.subscribe(DataRejected, rejected.append)
    await agent.fetch(1)
    clock.set(calendar.session_close(date(2014, 11, 6)))
    event = await agent.fetch(2)
    assert sorted((r.symbol, r.reason) for r in rejected) == [("DHR", "ohlc_inconsistent"), ("O", "ohlc_inconsistent")]
    assert event.rejected == {"ohlc_inconsistent": 2}
    assert event.accepted == 1  # AAPL's: the bad bars are not counted as bars
    assert np.isnan(event.frame.open[-1, :2]).all()
    assert event.frame.close[-1, 2] > 0
