"""`python -m tradingd` and the `tradingd` console script: the same entry point."""

from __future__ import annotations

from tradingd.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
