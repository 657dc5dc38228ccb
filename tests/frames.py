"""Bar frames cut from the real bundled history, as the DataAgent would publish them."""

from __future__ import annotations

from core.types import BarFrame


def frame_at(history: BarFrame, row: int, rows: int = 21) -> BarFrame:
    """The `rows` bars ending at `row` (inclusive) for every symbol of `history`."""
    sl = slice(row - rows + 1, row + 1)
    return BarFrame(
        symbols=history.symbols,
        timestamps=history.timestamps[sl],
        open=history.open[sl],
        high=history.high[sl],
        low=history.low[sl],
        close=history.close[sl],
        volume=history.volume[sl],
    )
