"""`make bench-peers`: the z-score strategy on the 505 bundled symbols in tradingd, backtesting.py and backtrader.

Not part of `make bench` (the peers are the optional extra `peers`, installed from requirements-peers.lock by the
make target). One run of each peer and three of ours (before, between and after them; the median counts), on the
same bars (loaded once with the project's loader) and the same rules (`benchmarks/peers/rules.py`); prints one JSON
line per engine run (bars, seconds, bars/s, trades), then the ratios ours/theirs from this run, then the trade
agreement at N=50 symbols: our 50-symbol replay (its own $100k account) against the peers' trades for those symbols
(per-symbol accounts, so the same as a 50-symbol run of theirs). Agreement is printed, never asserted.
`python -m benchmarks.bench_peers N` runs the first N symbols only.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from typing import Any

from benchmarks.peers.agreement import compare
from benchmarks.peers.backtesting_py import run_backtesting_py
from benchmarks.peers.backtrader_engine import run_backtrader
from benchmarks.peers.ours import run_ours
from benchmarks.peers.rules import EngineRun, load_bars, per_symbol_frames

AGREEMENT_SYMBOLS = 50


def _line(run: EngineRun) -> dict[str, Any]:
    return {
        "benchmark": "bench_peers",
        "engine": run.engine,
        "symbols": run.symbols,
        "bars": run.bars,
        "seconds": round(run.seconds, 2),
        "bars_per_s": round(run.bars_per_s),
        "trades": run.n_trades,
        **run.notes,
    }


def _printed(run: EngineRun) -> EngineRun:
    print(json.dumps(_line(run)), flush=True)
    return run


def run(n_symbols: int | None = None) -> dict[str, Any]:
    bars = load_bars(n_symbols)
    frames = per_symbol_frames(bars)
    # Ours runs three times, before, between and after the peers, and counts by its median: on a shared machine the
    # load moves during the minutes the peers take, and one sample of ours would catch only one moment of it.
    ours_runs = [_printed(run_ours(bars.symbols))]
    backtesting_py = _printed(run_backtesting_py(frames))
    ours_runs.append(_printed(run_ours(bars.symbols)))
    backtrader = _printed(run_backtrader(frames))
    ours_runs.append(_printed(run_ours(bars.symbols)))
    ours = sorted(ours_runs, key=lambda r: r.bars_per_s)[1]
    runs = [ours, backtesting_py, backtrader]

    subset = bars.symbols[:AGREEMENT_SYMBOLS]
    ours_subset = ours if len(bars.symbols) <= AGREEMENT_SYMBOLS else run_ours(subset)
    agreement = {
        "tradingd_vs_backtesting.py": compare(subset, ours_subset.trades, backtesting_py.trades),
        "tradingd_vs_backtrader": compare(subset, ours_subset.trades, backtrader.trades),
        "backtesting.py_vs_backtrader": compare(subset, backtesting_py.trades, backtrader.trades),
    }
    print(json.dumps({"benchmark": "bench_peers", "agreement": agreement, "ours_notes": ours_subset.notes}), flush=True)
    return {
        "symbols": len(bars.symbols),
        "tradingd_bars_per_s": round(ours.bars_per_s),
        "tradingd_bars_per_s_runs": [round(r.bars_per_s) for r in ours_runs],
        "backtesting.py_bars_per_s": round(backtesting_py.bars_per_s),
        "backtrader_bars_per_s": round(backtrader.bars_per_s),
        "ratio_vs_backtesting.py": round(ours.bars_per_s / backtesting_py.bars_per_s, 2),
        "ratio_vs_backtrader": round(ours.bars_per_s / backtrader.bars_per_s, 2),
        "seconds": {run.engine: round(run.seconds, 2) for run in runs},
        "agreement_symbols_agreeing": {pair: result["symbols_agreeing"] for pair, result in agreement.items()},
        "versions": {name: version(name) for name in ("backtesting", "backtrader")},
        "target": ">= 6x backtesting.py in the same run (bars/s)",
    }


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else None)))
