"""Do two engines make the same trades? Per symbol, the same entry and exit fill dates, in the same order."""

from __future__ import annotations

from typing import Any

from benchmarks.peers.rules import Trade, Trades

SHOWN = 5  # disagreements printed per pair of engines


def _text(trade: Trade | None) -> str:
    if trade is None:
        return "none"
    entry, exit_ = trade
    return f"{entry}..{exit_ or 'open'}"


def compare(symbols: tuple[str, ...], ours: Trades, theirs: Trades) -> dict[str, Any]:
    """Agreement counts over `symbols` and the first disagreements (symbol, first differing trade of each side)."""
    agreeing_symbols = 0
    matched_trades = 0
    first: list[str] = []
    for symbol in symbols:
        a, b = ours.get(symbol, []), theirs.get(symbol, [])
        matched_trades += len(set(a) & set(b))
        if a == b:
            agreeing_symbols += 1
            continue
        if len(first) < SHOWN:
            at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            left = a[at] if at < len(a) else None
            right = b[at] if at < len(b) else None
            first.append(f"{symbol} trade {at + 1}: {_text(left)} vs {_text(right)} ({len(a)} vs {len(b)} trades)")
    return {
        "symbols": len(symbols),
        "symbols_agreeing": agreeing_symbols,
        "trades": [sum(len(ours.get(s, [])) for s in symbols), sum(len(theirs.get(s, [])) for s in symbols)],
        "trades_matched": matched_trades,
        "first_disagreements": first,
    }
