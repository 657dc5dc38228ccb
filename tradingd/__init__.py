"""tradingd: a multi-agent trading daemon for US equities on Alpaca (sim, paper, live).

The application package: `python -m tradingd` and the `tradingd` console script start here. The agents, core and
config packages beside it hold the code.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tradingd")
except PackageNotFoundError:  # running from a source tree that was never installed (e.g. PYTHONPATH=.)
    __version__ = "0+unknown"

__all__ = ["__version__"]
