"""tradingd: a multi-agent trading daemon for US equities on Alpaca (sim, paper, live).

The application package and composition root, the top layer: the wiring (`app.py`, `configs.py`), the orchestrator,
the CLI (`python -m tradingd`, the `tradingd` console script) and the daily scan job and focus. It builds on the
`agents`, `config` and `core` packages beside it; none of them imports it (docs/ARCHITECTURE.md §Layers and packages).
"""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """`__version__`, read from the installed package's metadata when first asked for: importlib.metadata is slow to
    import, and every `tradingd` command imports this package while only `--version` needs it."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        found = version("tradingd")
    except PackageNotFoundError:  # running from a source tree that was never installed (e.g. PYTHONPATH=.)
        found = "0+unknown"
    globals()["__version__"] = found  # asked once: the next lookup finds it without calling this
    return found
