"""`make bench-peers`: the same z-score strategy in tradingd, backtesting.py and backtrader (see bench_peers)."""
