"""Daily-scan compute (every stage after the snapshot) for 1k, 5k and 10k symbols x 252 daily bars of REAL data.

The bundled file has 505 symbols; larger markets are built from the same real series over shifted 252-session
windows (window k starts ~50 sessions after window k-1), so every column is a real price/volume path, never a random
walk. Per size it measures, in the same run:

- `vectorised`: `shortlist` (pre-rank, RVOL) → gather the shortlist's last 20 closes (stands in for the batched bars
  request) → `rank_shortlist` (z-score rank, explosion probability, top-N output with reasons);
- `pandas_loop`: the naive way — one pandas Series per symbol, rolling z-score, then a DataFrame sort.

and reports medians, the ratio, and whether both picked the same top N.
Target (docs/ARCHITECTURE.md §Performance): 10k < 5 ms, ≥ 300x.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.daily_scan import Laps, ScanConfig, SnapshotArrays, rank_shortlist, shortlist
from agents.scan_scoring import EXPLOSION_CAP, EXPLOSION_WEIGHTS
from core.bars import load_daily_bars
from core.types import BarFrame, FloatArray

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "sp500_daily_2013_2018.csv.xz"
SIZES = (1_000, 5_000, 10_000)
BARS = 252
WINDOW_STEP = 50


class Market:
    """N real symbol-windows: (252, N) closes and volumes, plus the snapshot and cache inputs of the last bar."""

    def __init__(self, history: BarFrame, n: int) -> None:
        windows = math.ceil(n / history.n_symbols)
        last_start = history.n_rows - BARS
        starts = [min(k * WINDOW_STEP, last_start) for k in range(windows)]
        if len(set(starts)) < windows:
            raise ValueError(f"{n} symbols need {windows} distinct windows; the data has room for fewer")
        self.close = np.hstack([history.close[s : s + BARS] for s in starts])[:, :n]
        self.volume = np.hstack([history.volume[s : s + BARS] for s in starts])[:, :n]
        self.symbols = tuple(f"{sym}.{k}" for k in range(windows) for sym in history.symbols)[:n]
        price = self.close[-1]
        self.snap = SnapshotArrays(
            symbols=self.symbols,
            present=np.isfinite(price),
            current=np.isfinite(price),
            price=price,
            prev_close=self.close[-2],
            volume=self.volume[-1],
        )
        self.avg_volume: FloatArray = self.volume[-21:-1].mean(axis=0)  # what the volume cache holds
        self.timestamps = history.timestamps[:BARS]


def vectorised(market: Market, config: ScanConfig) -> list[str]:
    laps = Laps()
    short = shortlist(market.snap, market.avg_volume, config, laps)
    closes = market.close[-config.window :, short.index]
    nan = np.broadcast_to(np.float64(np.nan), closes.shape)
    frame = BarFrame(
        symbols=tuple(market.symbols[i] for i in short.index),
        timestamps=market.timestamps[-config.window :],
        open=nan,
        high=nan,
        low=nan,
        close=closes,
        volume=market.volume[-config.window :, short.index],
    )
    names = [market.symbols[i] for i in short.index]
    candidates, _ = rank_shortlist(short, names, frame, {}, [None] * len(names), config, laps)
    return [c.symbol for c in candidates]


def pandas_loop(market: Market, config: ScanConfig) -> list[str]:
    rows = []
    for i, symbol in enumerate(market.symbols):
        close = pd.Series(market.close[:, i])
        volume = pd.Series(market.volume[:, i])
        price, prev, vol = close.iloc[-1], close.iloc[-2], volume.iloc[-1]
        if not (price > 0 and prev > 0 and vol > 0) or price < config.min_price:
            continue
        change = (price / prev - 1) * 100
        rolling = close.rolling(config.window)
        z = ((close - rolling.mean()) / rolling.std()).iloc[-1]
        rows.append(
            {
                "symbol": symbol,
                "price": price,
                "change": change,
                "momentum": abs(change) * 2 + math.log(vol),
                "rvol": vol / market.avg_volume[i] if market.avg_volume[i] > 0 else np.nan,
                "z": z,
            }
        )
    frame = pd.DataFrame(rows)
    frame["momentum_pct"] = frame["momentum"].rank(method="max", pct=True)
    frame = frame.nlargest(config.prerank_keep, "momentum")
    frame = frame[(frame["rvol"] >= config.min_rvol) & (frame["rvol"] <= config.max_rvol) & frame["z"].notna()]
    oversold = (-frame["z"] / 4).clip(0, 1)
    act = np.log10(frame["rvol"]).clip(0, 1)
    frame = frame.assign(score=100 * (0.5 * oversold + 0.3 * act + 0.2 * frame["momentum_pct"]))
    weights = {k: EXPLOSION_WEIGHTS[k] for k in ("momentum", "rvol", "change_pct", "price_level")}
    level = ((math.log10(500) - np.log10(frame["price"])) / 2).clip(0, 1)
    parts = frame["momentum_pct"] * weights["momentum"] + act * weights["rvol"]
    parts += (frame["change"].abs() / 10).clip(0, 1) * weights["change_pct"] + level * weights["price_level"]
    frame = frame.assign(explosion=EXPLOSION_CAP * parts / sum(weights.values()))
    return frame.sort_values("score", ascending=False, kind="stable").head(config.top_n)["symbol"].tolist()


def _median_ms(fn: Any, repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), result


def run(sizes: tuple[int, ...] = SIZES, repeats: int = 50, baseline_repeats: int = 3) -> dict[str, Any]:
    history = load_daily_bars(DATA_FILE)
    config = ScanConfig()
    results: dict[str, Any] = {}
    for n in sizes:
        market = Market(history, n)
        vectorised(market, config)  # warm-up: first-call costs are not the scan's
        fast_ms, fast_top = _median_ms(lambda m=market: vectorised(m, config), repeats)
        slow_ms, slow_top = _median_ms(lambda m=market: pandas_loop(m, config), baseline_repeats)
        results[f"{n}"] = {
            "vectorised_median_ms": round(fast_ms, 3),
            "pandas_loop_median_ms": round(slow_ms, 1),
            "speedup": round(slow_ms / fast_ms, 1),
            "same_top_n": fast_top == slow_top,
        }
    return {
        "scan_compute": results,
        "bars_per_symbol": BARS,
        "data": "bundled real bars, 505 symbols x shifted 252-session windows",
        "target": "10,000 symbols < 5 ms; >= 300x a per-symbol pandas loop",
    }


if __name__ == "__main__":
    print(run())
