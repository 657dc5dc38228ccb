"""What `ML_ENABLED=true` adds to the daemon, and what the `ml` commands share: the model's path, the exit rules its
labels simulate (from the settings the default run uses), and the risk agent's gate built from a saved model.

scikit-learn and skops are imported only here, and only when a model is used: `ML_ENABLED=false` (the default) loads
none of them and leaves the daemon exactly as it was.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from core.errors import SetupError

if TYPE_CHECKING:
    from agents.strategies.registry import SelectedStrategy
    from agents.win_probability import MlGate
    from config.settings import Settings
    from core.types import BarFrame
    from intelligence.labels import ExitRules


log = structlog.get_logger(__name__)


def model_path(settings: Settings) -> Path:
    from intelligence.model_file import default_model_path  # noqa: PLC0415

    return settings.ml_model_path or default_model_path(settings.data_dir)


def exit_rules(settings: Settings) -> ExitRules:
    """The exits a label simulates: the daemon's STOP_MODE and STOP_LOSS_PCT, and the sim's SIM_SLIPPAGE_BPS."""
    from intelligence.labels import ExitRules  # noqa: PLC0415

    return ExitRules.of(settings.stop_mode, float(settings.stop_loss_pct), float(settings.sim_slippage_bps))


def ml_gate(
    settings: Settings, strategy: SelectedStrategy, history: BarFrame | None, *, first_session: date | None = None
) -> MlGate | None:
    """None with ML_ENABLED=false; else the saved model over `history` (the sim's bundled bars), or a SetupError
    (exit 2, one line): no history (paper/live), no model file, a model of other features or another strategy."""
    if not settings.ml_enabled:
        return None
    if history is None:
        raise SetupError(
            "ML_ENABLED=true: the win-probability model runs in sim mode only for now (its features need a year of "
            "daily bars per decision, which the paper/live data window does not keep yet)"
        )
    from agents.win_probability import MlGate  # noqa: PLC0415
    from intelligence.labels import cleaned, simulate, strategy_marks  # noqa: PLC0415
    from intelligence.model_file import check_made_for, load, plain_params  # noqa: PLC0415
    from intelligence.predictor import MLPredictor  # noqa: PLC0415

    saved = load(model_path(settings), strategy=strategy.name)
    check_made_for(saved, strategy_params=plain_params(strategy.params), exit_rules=exit_rules(settings).as_dict())
    holdout = saved.meta.get("holdout_start")
    if first_session is not None and isinstance(holdout, str) and first_session.isoformat() < holdout:
        # Not refused (a demo over the whole data is legitimate), but said: these decisions are the model's own
        # training period, so a replay's result with it says nothing about its skill (README "Machine learning").
        log.warning(
            "ml_in_sample",
            first_session=first_session.isoformat(),
            holdout_start=holdout,
            detail="the model was trained on labels of these sessions; compare from holdout_start for an honest test",
        )
    frame = cleaned(history)
    # The tracker features' trades: the strategy's simulated trades on the same bars; a decision on bar t reads only
    # those closed before t.
    trips = simulate(frame, strategy_marks(strategy.strategy, frame), exit_rules(settings))
    return MlGate(MLPredictor(saved.model, frame, trips), float(settings.ml_min_win_prob))
