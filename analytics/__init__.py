"""Analytics: what a run did, computed from the state store (round trips, statistics, the benchmark, the report).

Imports `core` only; `agents` and `tradingd` may import it (see docs/ARCHITECTURE.md, Layers and packages).
"""
