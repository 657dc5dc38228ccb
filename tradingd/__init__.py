"""tradingd: a multi-agent trading daemon for US equities on Alpaca (sim, paper, live).

The application package and composition root, the top layer: the wiring (`app.py`, `configs.py`), the orchestrator,
the CLI (`python -m tradingd`, the `tradingd` console script) and the daily scan job and focus. It builds on the
`agents`, `config` and `core` packages beside it; none of them imports it (docs/ARCHITECTURE.md §Layers and packages).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tradingd")
except PackageNotFoundError:  # running from a source tree that was never installed (e.g. PYTHONPATH=.)
    __version__ = "0+unknown"

__all__ = ["__version__"]
