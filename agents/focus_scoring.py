"""Intraday re-scoring of the daemon's focus symbols, every SCORING_INTERVAL_MINUTES while the market is open.

The daily scan's generic score (`agents.scan_scoring.oversold_score`, not the strategy's own entry score), adapted to
a session in progress:

- the z-score uses the previous 19 closes and the live price as today's would-be close (the daemon's entry signal
  if the session closed now);
- RVOL is a *pace*: today's volume so far / (20-day average × share of the session elapsed), undefined during the
  first interval (too little volume to extrapolate): the score is then left out and the explosion probability
  renormalises without the RVOL factor.

The previous sessions' bars are fetched once per session (the adapter batches them); each run then costs one
snapshot call (one request per chunk of symbols). Outside market hours `due` is False and `run` does nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from core.flags import FlagStore
from core.types import BarFrame

if TYPE_CHECKING:
    from core.broker.base import MarketData, Snapshot
    from core.clock import NyseCalendar

SCORES_FLAG: Final = "focus_scores"


@dataclass(frozen=True, slots=True)
class FocusScore:
    symbol: str
    score: float | None
    zscore: float | None
    rvol_pace: float | None
    price: float
    change_pct: float
    explosion_probability: float | None
    explosion_factors: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "score": self.score,
            "zscore": self.zscore,
            "rvol_pace": self.rvol_pace,
            "price": self.price,
            "change_pct": self.change_pct,
            "explosion_probability": self.explosion_probability,
            "explosion_factors": list(self.explosion_factors),
        }


@dataclass(frozen=True, slots=True)
class FocusScores:
    scored_at: datetime
    session: date
    scores: tuple[FocusScore, ...]  # best score first; unscored symbols last
    skipped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scored_at": self.scored_at.astimezone(UTC).isoformat(),
            "session": self.session.isoformat(),
            "scores": [s.as_dict() for s in self.scores],
            "skipped": dict(self.skipped),
        }


def _maybe(value: float, digits: int) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


def with_age(document: dict[str, Any] | None, now: datetime, interval_minutes: int) -> dict[str, Any]:
    """A scores document for `tradingd status`: adds `age_s` (None when nothing was scored yet)."""
    if document is None:
        return {"scored_at": None, "age_s": None, "interval_minutes": interval_minutes, "scores": [], "skipped": {}}
    age = (now - datetime.fromisoformat(document["scored_at"])).total_seconds()
    return {**document, "age_s": round(age, 1), "interval_minutes": interval_minutes}


def persisted_scores(store: FlagStore, now: datetime, interval_minutes: int) -> dict[str, Any]:
    """The latest scores another process (the daemon) persisted, with their age: what `tradingd status` shows."""
    raw = store.get_flag(SCORES_FLAG)
    try:
        document = json.loads(raw) if raw else None
        return with_age(document, now, interval_minutes)
    except (ValueError, KeyError, TypeError):
        return with_age(None, now, interval_minutes)


class FocusScorer:
    def __init__(
        self,
        market_data: MarketData,
        calendar: NyseCalendar,
        *,
        interval_minutes: int,
        window: int = 20,
        store: FlagStore | None = None,
    ) -> None:
        if interval_minutes < 1:
            raise ValueError("interval_minutes must be at least 1")
        self._md = market_data
        self._calendar = calendar
        self._interval = timedelta(minutes=interval_minutes)
        self._window = window
        self._store = store
        self._latest: FocusScores | None = None
        self._history_key: tuple[date, tuple[str, ...]] | None = None
        self._history: BarFrame | None = None

    @property
    def interval_minutes(self) -> int:
        return int(self._interval.total_seconds() // 60)

    def due(self, now: datetime) -> bool:
        if not self._calendar.is_open(now):
            return False
        return self._latest is None or now - self._latest.scored_at >= self._interval

    def latest_scores(self, now: datetime) -> dict[str, Any]:
        """Latest scores and their age in seconds (for `tradingd status`)."""
        return with_age(None if self._latest is None else self._latest.as_dict(), now, self.interval_minutes)

    async def run(self, symbols: Sequence[str], now: datetime) -> FocusScores | None:
        if not self._calendar.is_open(now):
            return None
        symbols = tuple(symbols)
        session = self._calendar.session_date(now)
        history = await self._previous_sessions(symbols, session)
        snapshots = await self._md.get_snapshots(symbols)
        self._latest = self._score(symbols, session, history, snapshots, now)
        if self._store is not None:
            self._store.set_flag(SCORES_FLAG, json.dumps(self._latest.as_dict()))
        return self._latest

    async def _previous_sessions(self, symbols: tuple[str, ...], session: date) -> BarFrame:
        from core.daily_window import fetch_daily_window, last_sessions  # noqa: PLC0415 - see _score

        key = (session, symbols)
        if self._history is None or self._history_key != key:
            sessions = last_sessions(self._calendar, self._calendar.previous_session(session), self._window)
            self._history = await fetch_daily_window(self._md, self._calendar, symbols, sessions)
            self._history_key = key
        return self._history

    def _score(
        self,
        symbols: tuple[str, ...],
        session: date,
        history: BarFrame,
        snapshots: dict[str, Snapshot],
        now: datetime,
    ) -> FocusScores:
        # Imported by the scorer, not the module: `tradingd status` reads `persisted_scores` only, and the daily
        # scan's module loads the universe reader (pandas).
        import numpy as np  # noqa: PLC0415

        from agents.daily_scan import snapshot_arrays  # noqa: PLC0415
        from agents.scan_scoring import (  # noqa: PLC0415
            change_pct,
            explosion_probability,
            first_failure,
            market_factors,
            momentum,
            oversold_score,
            percentile_rank,
            relative_volume,
        )
        from agents.strategies.zscore_mean_reversion import zscore  # noqa: PLC0415

        snap = snapshot_arrays(snapshots, symbols, session)
        price, prev, volume = snap.price, snap.prev_close, snap.volume
        with np.errstate(invalid="ignore"):
            valid, skipped = first_failure(
                len(symbols),
                [
                    ("no_snapshot", ~snap.present),
                    ("stale_snapshot", ~snap.current),
                    ("bad_price", ~(price > 0)),
                    ("bad_volume", ~(volume >= 0)),
                    ("no_prev_close", ~(prev > 0)),
                ],
            )
        price = np.where(valid, price, np.nan)
        change = change_pct(price, prev)
        mom = momentum(change, volume)
        mom_pct = percentile_rank(mom, mom)
        complete = np.isfinite(history.volume).all(axis=0)
        avg_volume = np.where(complete, history.volume.mean(axis=0), np.nan)
        opened = self._calendar.session_open(session)
        length = self._calendar.session_close(session) - opened
        elapsed = now - opened
        pace = elapsed / length if elapsed >= self._interval else float("nan")
        rvol = relative_volume(volume, avg_volume * pace)
        # The last `window` closes as if the session closed now: 19 previous closes, then the live price.
        closes = np.vstack([history.close[1:], price[None, :]])
        unknown = np.broadcast_to(np.float64(np.nan), closes.shape)  # zscore reads closes only
        today = np.datetime64(self._calendar.daily_bar_ts(session).replace(tzinfo=None), "ns")
        live = BarFrame(
            symbols=symbols,
            timestamps=np.append(history.timestamps[1:], today),
            open=unknown,
            high=unknown,
            low=unknown,
            close=closes,
            volume=np.vstack([history.volume[1:], volume[None, :]]),
        )
        z = zscore(live, self._window)
        score = oversold_score(z, rvol, mom_pct)
        boom = explosion_probability(market_factors(mom_pct, rvol, change, price))
        order = np.lexsort((np.arange(len(symbols)), -np.nan_to_num(score, nan=-np.inf)))
        scores = tuple(
            FocusScore(
                symbol=symbols[i],
                score=_maybe(float(score[i]), 3),
                zscore=_maybe(float(z[i]), 4),
                rvol_pace=_maybe(float(rvol[i]), 4),
                price=float(snap.price[i]),
                change_pct=float(np.round(change[i], 4)),
                explosion_probability=_maybe(float(boom.probability[i]), 2),
                explosion_factors=tuple(boom.factors_of(i)),
            )
            for i in order.tolist()
            if valid[i]
        )
        return FocusScores(scored_at=now, session=session, scores=scores, skipped=skipped)
