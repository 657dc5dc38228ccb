"""The fake's intraday price path and the stop triggering that follows it: a test device, not market data.

The bundled data is daily, so the fake invents one documented path through each session: the price moves in a
straight line open → low → high → close when the bar closes at or above its open, open → high → low → close when
it closes below, each leg a third of the session (09:30, 11:40, 13:50, 16:00 ET). Outside a session the price stands
still at the last close. The snapshots the fake serves during a session and the moment a stop triggers both read
this same path, so "the stop triggered at t" always agrees with "the price served at t".

A resting sell stop sees the session from the moment it exists, never earlier (no lookahead): if the first price it
sees (the open, or the path's price when placed mid-session) is at or below its level it fills at that price (a gap
through); otherwise it fills at its level at the instant the path falls to it. A trailing stop's high-water mark
starts at the price when placed and rises with the path; its level is the mark less the trail (price or percent).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from tests.fakes.alpaca_tape import CLOSE_OFFSET_NS, OPEN_OFFSET_NS, SymbolTape

LEG_NS = (CLOSE_OFFSET_NS - OPEN_OFFSET_NS) // 3

Point = tuple[int, float]  # (UTC ns, price)


@dataclass(frozen=True, slots=True)
class StopRule:
    """A sell stop's level: fixed (`stop_price`) or trailing the high-water mark by a price or a percentage."""

    stop_price: float | None = None
    trail_price: float | None = None
    trail_percent: float | None = None

    def level(self, hwm: float) -> float:
        if self.stop_price is not None:
            return self.stop_price
        if self.trail_price is not None:
            return hwm - self.trail_price
        return hwm * (1 - (self.trail_percent or 0.0) / 100)


@dataclass(frozen=True, slots=True)
class Walk:
    hwm: float
    fill: Point | None  # when and at what price the stop filled, if it did


def waypoints(bars: SymbolTape, index: int) -> tuple[Point, Point, Point, Point]:
    start = int(bars.t[index])
    opened, low, high, close = (float(a[index]) for a in (bars.open, bars.low, bars.high, bars.close))
    first, second = (low, high) if close >= opened else (high, low)
    opens = start + OPEN_OFFSET_NS
    return (opens, opened), (opens + LEG_NS, first), (opens + 2 * LEG_NS, second), (start + CLOSE_OFFSET_NS, close)


def session_index(bars: SymbolTape, now_ns: int) -> int:
    """The first bar whose session has not closed by `now_ns` (len(bars) when there is none)."""
    return int(np.searchsorted(bars.t + CLOSE_OFFSET_NS, now_ns, side="right"))


def path_price(bars: SymbolTape, now_ns: int) -> float | None:
    """The path's price at `now_ns` during a session, None outside one."""
    index = session_index(bars, now_ns)
    if index >= len(bars) or now_ns < int(bars.t[index]) + OPEN_OFFSET_NS:
        return None
    return _at(waypoints(bars, index), now_ns)


def price_when_placed(bars: SymbolTape, now_ns: int) -> float | None:
    """The path's price in a session, else the last close before `now_ns` (None before the first bar closes)."""
    price = path_price(bars, now_ns)
    if price is not None:
        return price
    closed = session_index(bars, now_ns)
    return float(bars.close[closed - 1]) if closed > 0 else None


def walk(bars: SymbolTape, rule: StopRule, since_ns: int, until_ns: int, hwm: float) -> Walk:
    """Follow the path from `since_ns` to `until_ns` for a stop that was open and untriggered at `since_ns`."""
    index = session_index(bars, since_ns)
    t = since_ns
    while index < len(bars):
        points = waypoints(bars, index)
        if points[0][0] > until_ns:
            break
        first = points[0] if t <= points[0][0] else (t, _at(points, t))
        hwm = max(hwm, first[1])
        if first[1] <= rule.level(hwm):
            return Walk(hwm, first)
        for (ta, pa), (tb, pb) in pairwise(points):
            lo, hi = max(ta, t), min(tb, until_ns)
            if lo >= hi:
                continue
            start, end = _line(ta, pa, tb, pb, lo), _line(ta, pa, tb, pb, hi)
            if end >= start:
                hwm = max(hwm, end)  # on a rise the price is its own high-water mark: a trailing stop only follows
                continue
            level = rule.level(hwm)
            if end <= level:
                crossed = lo + round((start - level) / (start - end) * (hi - lo))
                return Walk(hwm, (crossed, level))
        if until_ns < points[-1][0]:
            break
        t = points[-1][0]
        index += 1
    return Walk(hwm, None)


def _at(points: tuple[Point, ...], now_ns: int) -> float:
    for (ta, pa), (tb, pb) in pairwise(points):
        if now_ns <= tb:
            return _line(ta, pa, tb, pb, max(now_ns, ta))
    return points[-1][1]


def _line(ta: int, pa: float, tb: int, pb: float, t: int) -> float:
    return pa + (pb - pa) * (t - ta) / (tb - ta)
