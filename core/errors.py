"""Errors shared across layers: `SetupError` is raised by core's loaders (`core.bars`) and by the agents' strategy
registry, and reported by the application (`tradingd`) as one line, exit code 2."""

from __future__ import annotations


class SetupError(Exception):
    """The pipeline cannot be built (bad data file, unknown symbols, …): exit code 2."""
