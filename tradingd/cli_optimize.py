"""`tradingd optimize`: walk-forward parameter search over the bundled bars (`tradingd/optimize.py`).

    from tradingd.cli_optimize import register
    register(app)

The command's options are declared here with typer only; the search (optuna, the wiring, numpy) is imported when the
command runs. Bad input (an unknown objective, --trials below 1, an empty or refused range, too few sessions, --ray
without ray) exits 2 with one line.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from tradingd.cli_options import EXIT_BAD_INPUT, JsonOpt

if TYPE_CHECKING:
    from config.settings import Settings
    from tradingd.optimize import SearchResult, Submit
    from tradingd.optimize_trial import TrialResult

DEFAULT_TRIALS = 20
DEFAULT_WINDOWS = 2
DEFAULT_TRAIN_DAYS = 252  # a year of sessions to choose on
DEFAULT_TEST_DAYS = 126  # the half year after it to check on


def optimize(
    trials: Annotated[int, typer.Option(help="Parameter sets to try")] = DEFAULT_TRIALS,
    objective: Annotated[
        str, typer.Option(help="sharpe, sortino, calmar, total_return, cagr, profit_factor or max_drawdown")
    ] = "sharpe",
    param: Annotated[
        list[str] | None,
        typer.Option(help="NAME=LOW:HIGH[:STEP], repeatable; replaces the default space", metavar="NAME=LOW:HIGH"),
    ] = None,
    jobs: Annotated[int | None, typer.Option(help="Parallel processes (default: one per core)")] = None,
    windows: Annotated[int, typer.Option(help="Rolling train/test windows")] = DEFAULT_WINDOWS,
    train_days: Annotated[int, typer.Option("--train-days", help="Sessions per train window")] = DEFAULT_TRAIN_DAYS,
    test_days: Annotated[int, typer.Option("--test-days", help="Sessions per test window")] = DEFAULT_TEST_DAYS,
    seed: Annotated[int, typer.Option(help="The sampler's seed (TPE)")] = 0,
    ray: Annotated[
        str | None, typer.Option("--ray", help="Run the trials on this Ray cluster (auto, host:6379, ray://host:10001)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search the strategy's and risk's parameters walk-forward on rolling train/test windows of the bundled bars (sim
    replays): each window's parameters are chosen on its train sessions and judged on its test sessions after them."""
    from core.types import TradingMode
    from tradingd.cli_common import load_cli_settings
    from tradingd.optimize import OptimizeError

    settings = load_cli_settings(broker=False, trading_mode=TradingMode.SIM)
    try:
        result = _run(settings, trials, objective, param or [], jobs, windows, train_days, test_days, seed, ray)
    except OptimizeError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if as_json:
        typer.echo(json.dumps(result.as_json()))
    else:
        _print(result)


def _run(
    settings: Settings,
    trials: int,
    objective: str,
    params: list[str],
    jobs: int | None,
    windows: int,
    train_days: int,
    test_days: int,
    seed: int,
    ray: str | None,
) -> SearchResult:
    import optuna

    from tradingd.optimize import (
        OBJECTIVES,
        OptimizeError,
        base_settings,
        check_space,
        default_space,
        parse_param,
        rolling_windows,
        search,
        sim_sessions,
    )

    if objective not in OBJECTIVES:
        raise OptimizeError(f"--objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
    if trials < 1:
        raise OptimizeError(f"--trials {trials}: must be at least 1")
    if jobs is not None and jobs < 1:
        raise OptimizeError(f"--jobs {jobs}: must be at least 1")
    if ray is not None:
        from tradingd.optimize_ray import import_ray

        import_ray()  # without ray installed: exit 2 before anything is computed
    space = tuple(parse_param(text) for text in params) or default_space(settings.strategy_name)
    base = base_settings(settings)
    check_space(space, base)
    chosen = rolling_windows(sim_sessions(settings), windows, train_days, test_days)
    sampler = optuna.samplers.TPESampler(seed=seed)
    with _workers(ray, jobs) as (submit, workers):
        typer.echo(
            f"optimize: {trials} trials of {len(space)} parameters, {len(chosen)} windows "
            f"({train_days} + {test_days} sessions), {workers} worker(s){' on Ray ' + ray if ray else ''}",
            err=True,
        )
        return search(
            space,
            chosen,
            base,
            objective=objective,
            trials=trials,
            submit=submit,
            workers=workers,
            sampler=sampler,
            on_result=lambda r: typer.echo(_progress(r, objective), err=True),
        )


@contextlib.contextmanager
def _workers(ray: str | None, jobs: int | None) -> Iterator[tuple[Submit, int]]:
    from tradingd.optimize import in_process, process_pool

    if ray is not None:
        from tradingd.optimize_ray import ray_cluster

        with ray_cluster(ray) as (submit, cpus):
            yield submit, jobs or cpus
        return
    workers = jobs or os.cpu_count() or 1
    if workers == 1:
        yield in_process, 1
        return
    with process_pool(workers) as submit:
        yield submit, workers


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _progress(result: TrialResult, objective: str) -> str:
    from tradingd.optimize import OBJECTIVES

    metric = OBJECTIVES[objective]
    params = ", ".join(f"{k}={v:g}" for k, v in result.params.items())
    if result.error is not None:
        return f"trial {result.number}: {params}: not run ({result.error})"
    inside, outside = result.in_sample[metric], result.out_of_sample[metric]
    return f"trial {result.number}: {params}: {metric} mean in-sample {_fmt(inside)}, out-of-sample {_fmt(outside)}"


def _print(result: SearchResult) -> None:
    from rich.table import Table

    from core.console import print_table
    from tradingd.optimize import DATA_NOTE, SELECTION_NOTE
    from tradingd.optimize_trial import METRICS

    chosen, inside, outside = result.chosen, result.in_sample, result.out_of_sample
    if not chosen or inside is None or outside is None:
        typer.echo(f"some window has no trial with a defined {result.metric} on its train sessions: nothing to choose")
        return
    title = f"walk-forward, {len(chosen)} windows, {len(result.trials)} trials, by train {result.objective}"
    table = Table(title=title, title_justify="left")
    table.add_column("metric", style="bold", no_wrap=True)
    table.add_column("in sample (train)", justify="right")
    table.add_column("out of sample (test)", justify="right")
    for name in METRICS:
        table.add_row(name, _fmt(inside[name]), _fmt(outside[name]))
    lines = [
        f"window {i + 1}: train {c.window.train_start}..{c.window.train_end} -> trial {c.trial} ({_params(c.params)}), "
        f"{result.metric} train {_fmt(c.in_sample[result.metric])}, "
        f"test {c.window.test_start}..{c.window.test_end} {_fmt(c.out_of_sample[result.metric])}"
        for i, c in enumerate(chosen)
    ]
    print_table(table, "\n".join([*lines, f"parameters to run next (the last window's): {_params(chosen[-1].params)}"]))
    if result.overfit():
        typer.echo(
            f"WARNING: over-fitting: {result.overfit_rule()}; these parameters fit the train periods, not the market"
        )
    typer.echo(SELECTION_NOTE)
    typer.echo(DATA_NOTE)


def _params(params: dict[str, int | float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in params.items())


def register(app: typer.Typer) -> None:
    """Add `optimize` to the `tradingd` app."""
    app.command("optimize")(optimize)
