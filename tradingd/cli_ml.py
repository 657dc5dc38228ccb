"""`tradingd ml train | evaluate | show`: the win-probability model (README "Machine learning (win probability)").

    from tradingd.cli_ml import register
    register(app)

Every body imports what it uses when it runs: `tradingd --help` loads neither scikit-learn nor numpy. The model learns
from the bundled daily bars (`SIM_DATA_FILE`) and the selected strategy's signals (`STRATEGY_NAME`), labelled by its
exits under `STOP_MODE`/`STOP_LOSS_PCT` and `SIM_SLIPPAGE_BPS`. Bad input exits 2 with one line.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from core.types import TradingMode
from tradingd.cli_options import EXIT_BAD_INPUT, JsonOpt

if TYPE_CHECKING:
    from config.settings import Settings
    from intelligence.dataset import Dataset

TreesOpt = Annotated[int, typer.Option("--trees", help="Trees in the random forest", min=10)]


def _settings() -> Settings:
    from tradingd.cli_common import load_cli_settings

    # The model learns from the bundled bars whatever the mode; no keys needed.
    return load_cli_settings(broker=False, trading_mode=TradingMode.SIM)


def _fail(error: Exception) -> typer.Exit:
    from core.redact import redact

    typer.echo(redact(f"error: {error}"), err=True)
    return typer.Exit(EXIT_BAD_INPUT)


def _dataset(settings: Settings) -> Dataset:
    from core.bars import load_daily_bars_cached
    from intelligence.dataset import build_dataset
    from tradingd.app import check_sim_files
    from tradingd.configs import select_strategy
    from tradingd.local_state import BARS_CACHE_DIR, state_db_path
    from tradingd.ml_runtime import exit_rules

    strategy = select_strategy(settings)
    rules = exit_rules(settings)
    check_sim_files(settings)
    history = load_daily_bars_cached(settings.sim_data_file, state_db_path(settings).parent / BARS_CACHE_DIR)
    return build_dataset(history, strategy.strategy, rules)


def train(
    holdout_sessions: Annotated[
        int, typer.Option("--holdout-sessions", help="Final sessions held out of training (scored, never seen)", min=1)
    ] = 252,
    trees: TreesOpt = 200,
    as_json: JsonOpt = False,
) -> None:
    """Train the model on the bundled bars before a held-out final period; save it (skops) to ML_MODEL_PATH."""
    from core.errors import SetupError
    from intelligence.model import ForestParams
    from intelligence.model_file import save
    from intelligence.training import train as train_model
    from tradingd.configs import select_strategy
    from tradingd.ml_runtime import exit_rules, model_path

    settings = _settings()
    try:
        dataset = _dataset(settings)
        strategy = select_strategy(settings)
        saved = train_model(
            dataset,
            strategy=strategy.name,
            strategy_params=strategy.params,
            rules=exit_rules(settings),
            holdout_sessions=holdout_sessions,
            params=ForestParams(n_estimators=trees),
            data_file=settings.sim_data_file.name,
        )
    except (SetupError, ValueError) as error:
        raise _fail(error) from None
    path = model_path(settings)
    save(path, saved)
    described = {"path": str(path), **saved.describe()}
    if as_json:
        typer.echo(json.dumps(described))
        return
    _print_model(described)


def evaluate(
    trees: TreesOpt = 200,
    test_sessions: Annotated[int, typer.Option("--test-sessions", help="Sessions per test period", min=1)] = 126,
    min_train_sessions: Annotated[
        int, typer.Option("--min-train-sessions", help="Sessions before the first test period", min=1)
    ] = 504,
    as_json: JsonOpt = False,
) -> None:
    """Walk-forward evaluation on the bundled bars: per fold and overall, against shuffled labels and the strategy's
    own score."""
    from core.errors import SetupError
    from intelligence.model import ForestParams
    from intelligence.walk_forward import evaluate as walk_forward

    settings = _settings()
    try:
        dataset = _dataset(settings)
        result = walk_forward(
            dataset,
            ForestParams(n_estimators=trees),
            min_train_sessions=min_train_sessions,
            test_sessions=test_sessions,
            on_fold=None if as_json else lambda n, total: typer.echo(f"fold {n}/{total} done", err=True),
        )
    except (SetupError, ValueError) as error:
        raise _fail(error) from None
    if as_json:
        typer.echo(json.dumps(result.as_json()))
        return
    typer.echo(evaluation_table(result.as_json()))


def show(as_json: JsonOpt = False) -> None:
    """Describe the saved model: features, training window, held-out metrics."""
    from core.errors import SetupError
    from intelligence.model_file import load
    from tradingd.ml_runtime import model_path

    settings = _settings()
    path = model_path(settings)
    try:
        saved = load(path)
    except SetupError as error:
        raise _fail(error) from None
    described = {"path": str(path), **saved.describe()}
    if as_json:
        typer.echo(json.dumps(described))
        return
    _print_model(described)


def _number(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def evaluation_table(result: dict[str, Any]) -> str:
    """The walk-forward result as plain text: one line per fold, then overall, control and baseline, and the
    calibration table."""
    head = (
        f"{'test period':23} {'train to':10} {'n_train':>7} {'n_test':>6} {'base':>5} "
        f"{'AUC':>6} {'Brier':>6} {'logloss':>7} | {'ctl AUC':>7} {'base AUC':>8}"
    )
    lines = [f"walk-forward, embargo {result['embargo_days']} sessions, {result['n_samples']} samples", head]
    for f in result["folds"]:
        lines.append(
            f"{f['test_start']}..{f['test_end'][5:]:5}   {f['train_end']} {f['n_train']:>7} {f['n_test']:>6} "
            f"{_number(f['base_rate'], 2):>5} {_number(f['auc']):>6} {_number(f['brier']):>6} "
            f"{_number(f['log_loss']):>7} | {_number(f['control']['auc']):>7} {_number(f['baseline']['auc']):>8}"
        )
    lines.append("")
    lines.append(f"{'pooled':10} {'n':>6} {'base':>5} {'AUC':>6} {'Brier':>6} {'logloss':>7}")
    for name in ("overall", "control", "baseline"):
        m = result[name]
        lines.append(
            f"{name:10} {m['n']:>6} {_number(m['base_rate'], 2):>5} {_number(m['auc']):>6} "
            f"{_number(m['brier']):>6} {_number(m['log_loss']):>7}"
        )
    lines.append("")
    lines.append(f"calibration (model, pooled)  {'n':>6} {'mean p':>7} {'observed':>8}")
    for row in result["calibration"]:
        lines.append(f"p {row['bin']:25} {row['n']:>6} {_number(row['mean_p']):>7} {_number(row['observed']):>8}")
    return "\n".join(lines)


def _print_model(described: dict[str, Any]) -> None:
    held = described.get("holdout_metrics", {})
    typer.echo(
        "\n".join(
            [
                f"model        {described['path']}",
                f"strategy     {described.get('strategy')} {described.get('strategy_params')}",
                f"exits        {described.get('exit_rules')}",
                f"trained on   signals {described.get('train_start')} .. labels known by {described.get('train_end')}"
                f" ({described['n_train']} samples, embargo {described.get('embargo_days')} sessions)",
                f"held out     {described.get('holdout_start')} .. {described.get('holdout_end')}: "
                f"n {held.get('n')}, base rate {_number(held.get('base_rate'), 3)}, AUC {_number(held.get('auc'))}, "
                f"Brier {_number(held.get('brier'))}, log loss {_number(held.get('log_loss'))}",
                f"outputs      avg win {described['avg_win']:+.4f}, avg loss {described['avg_loss']:+.4f}, "
                f"confidence {described['confidence']:.3f}",
                f"features     {', '.join(described['features'])}",
            ]
        )
    )


def register(app: typer.Typer) -> None:
    """Add the `ml` group (`ml train`, `ml evaluate`, `ml show`) to the `tradingd` app."""
    ml_app = typer.Typer(no_args_is_help=True, help="The win-probability model: train, evaluate, show.")
    ml_app.command("train")(train)
    ml_app.command("evaluate")(evaluate)
    ml_app.command("show")(show)
    app.add_typer(ml_app, name="ml")
