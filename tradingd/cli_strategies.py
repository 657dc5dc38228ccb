"""`tradingd strategies`: what `STRATEGY_NAME` can select, with every parameter's default and description.

    from tradingd.cli_strategies import register
    register(app)

Built-ins and installed plug-ins (entry points in `tradingd.strategies`) are listed alike; listing imports every
plug-in, so a broken one exits 2 with one line naming it, like `run` would if it were selected.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from tradingd.cli_options import JsonOpt

EXIT_BAD_INPUT = 2


def strategies(as_json: JsonOpt = False) -> None:
    """List the strategies STRATEGY_NAME can select (built-ins and plug-ins) with their parameters."""
    # Imported here, not at the top: registering the command must not load the strategies (`tradingd --help`).
    from agents.strategies.registry import ALIASES, StrategyError, catalog
    from config.settings import ConfigError, load_settings
    from core.console import parameters_table, print_table, strategies_table
    from core.redact import redact

    try:
        # Only for STRATEGY_NAME (which one is selected): the listing needs no keys and contacts nothing.
        name = load_settings(broker=False).strategy_name
        found = catalog()
    except (ConfigError, StrategyError) as error:
        typer.echo(redact(f"error: {error}" if isinstance(error, StrategyError) else str(error)), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    selected = ALIASES.get(name, name)
    rows: list[dict[str, Any]] = [{**info.as_dict(), "selected": info.name == selected} for info in found]
    if as_json:
        typer.echo(json.dumps({"strategy_name": name, "strategies": rows}))
        return
    known = any(row["selected"] for row in rows)
    note = f"STRATEGY_NAME={name}" + ("" if known else ": not one of these (run and scan would exit 2)")
    if name in ALIASES:
        note += f" (deprecated alias of {selected})"
    print_table(strategies_table(rows))
    print_table(parameters_table(rows), note)


def register(app: typer.Typer) -> None:
    """Add `strategies` to the `tradingd` app."""
    app.command("strategies")(strategies)
