"""`ML_ENABLED=true` in paper/live: the saved model over a daily history fetched through the `MarketData` port.

In sim the model reads the bundled bars. Paper/live keep only the strategy's short window, so this fetches its own:
`HISTORY_SESSIONS` daily bars of every symbol the DataAgent watches, in one batched `get_bars` call (the adapter
makes one request per chunk of symbols, and its bar cache means a rebuild asks the API only for the bars it has
not seen), cleaned and traded by the strategy exactly as `ml_runtime.ml_gate` does over the bundled bars.

It is rebuilt, not extended, whenever the DataAgent's window holds a bar newer than the history's last one (once a
session with daily bars) or a symbol the history lacks: the strategy's simulated trades (the tracker features)
end on the newest bar, and a rebuild is a few hundred milliseconds a session (README "Machine learning").

A fetch that fails (a `BrokerError` after the adapter's retries) leaves no model: until the next iteration's retry
succeeds, `unavailable()` says why and the risk agent denies every entry `ml_unavailable`; exits never ask it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Final

import numpy as np
import structlog

from agents.strategies.base import Strategy
from agents.win_probability import Prediction
from core.broker.base import AuthenticationError, BrokerError, MarketData
from core.clock import NyseCalendar
from core.daily_window import last_sessions
from core.messages import SignalGenerated
from core.timeconv import datetime64_to_datetime, ny_date
from core.types import BarFrame
from intelligence.features import FEATURE_LOOKBACK
from intelligence.labels import ExitRules, cleaned, simulate, strategy_marks
from intelligence.model import WinModel
from intelligence.predictor import MLPredictor

log = structlog.get_logger(__name__)

# A year for the longest feature window, and a year before it of the strategy's simulated trades for the tracker
# features (training counts every trade of the bundled period; a year keeps a symbol's record meaningful). 504
# sessions are about 731 calendar days.
HISTORY_SESSIONS: Final = 2 * FEATURE_LOOKBACK


class LiveWinPredictor:
    """The risk agent's `WinPredictor` (and the dashboard's) in paper/live: an `MLPredictor` over a fetched history,
    rebuilt by `refresh` (the orchestrator calls it with the DataAgent's window before the strategy runs)."""

    def __init__(
        self,
        model: WinModel,
        strategy: Strategy,
        rules: ExitRules,
        market_data: MarketData,
        calendar: NyseCalendar,
        *,
        sessions: int = HISTORY_SESSIONS,
    ) -> None:
        self._model = model
        self._strategy = strategy
        self._rules = rules
        self.market_data = market_data  # the port it fetches through (public: a test wraps it to inject failures)
        self._calendar = calendar
        self._sessions = sessions
        self._current: MLPredictor | None = None
        self._covers: frozenset[str] = frozenset()
        self._last_bar: np.datetime64 | None = None
        self._failure: str | None = "the model's history is not fetched yet"
        self.rebuilds = 0

    @property
    def history_symbols(self) -> frozenset[str]:
        return self._covers

    def _fresh_for(self, window: BarFrame) -> bool:
        if self._current is None:
            return False
        newest = window.timestamps[-1]
        return set(window.symbols) <= self._covers and self._last_bar is not None and newest <= self._last_bar

    async def refresh(self, window: BarFrame) -> None:
        """Rebuild the history when `window` (the DataAgent's bars) has a symbol or a bar it lacks; a failed fetch
        is logged and leaves the model unavailable until a later call succeeds."""
        if window.n_rows == 0 or self._fresh_for(window):
            return
        symbols = tuple(window.symbols)
        newest_day = ny_date(datetime64_to_datetime(window.timestamps[-1]))
        calendar = self._calendar
        through = newest_day if calendar.is_trading_day(newest_day) else calendar.previous_session(newest_day)
        sessions = last_sessions(self._calendar, through, self._sessions)
        start = self._calendar.daily_bar_ts(sessions[0])
        end = self._calendar.daily_bar_ts(through + timedelta(days=1))
        try:
            history = await self.market_data.get_bars(symbols, start, end)
        except AuthenticationError:
            raise  # bad keys do not heal: the orchestrator stops with the clear message
        except BrokerError as error:
            self._fail(f"the model's history could not be fetched ({type(error).__name__}: {error})", len(symbols))
            return
        frame = cleaned(history)
        try:
            trips = simulate(frame, strategy_marks(self._strategy, frame), self._rules)
        except Exception as error:  # a plug-in strategy's bug costs the entries their model, not the daemon its life
            self._fail(f"the strategy's trades could not be simulated ({type(error).__name__}: {error})", len(symbols))
            return
        self._current = MLPredictor(self._model, frame, trips)
        # What was asked, not what came back: a symbol without bars gets no prediction instead of a refetch each time.
        self._covers = frozenset(symbols)
        self._last_bar = window.timestamps[-1]
        self._failure = None
        self.rebuilds += 1
        log.info(
            "ml_history_built",
            symbols=len(symbols),
            sessions=frame.n_rows,
            first=str(sessions[0]),
            through=str(through),
            simulated_trades=len(trips),
        )

    def _fail(self, why: str, symbols: int) -> None:
        self._current, self._covers, self._last_bar = None, frozenset(), None
        self._failure = why
        log.error("ml_history_failed", symbols=symbols, reason=why)

    def unavailable(self) -> str | None:
        return self._failure

    def predict(self, signals: Sequence[SignalGenerated]) -> Mapping[str, Prediction]:
        return {} if self._current is None else self._current.predict(signals)

    def predict_as_of(self, symbols: Sequence[str], as_of: date) -> Mapping[str, Prediction]:
        return {} if self._current is None else self._current.predict_as_of(symbols, as_of)
