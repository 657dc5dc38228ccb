"""What `ML_ENABLED=true` adds to the daemon, and what the `ml` commands share: the model's path, the exit rules its
labels simulate (from the settings the default run uses), and the risk agent's gate built from a saved model: over
the bundled bars in sim, over a history fetched through the `MarketData` port in paper/live (`ml_live.py`).

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
    from core.broker.base import MarketData
    from core.types import BarFrame
    from intelligence.labels import ExitRules
    from intelligence.model_file import SavedModel
    from tradingd.ml_live import LiveWinPredictor


log = structlog.get_logger(__name__)


def model_path(settings: Settings) -> Path:
    from intelligence.model_file import default_model_path  # noqa: PLC0415

    return settings.ml_model_path or default_model_path(settings.data_dir)


def exit_rules(settings: Settings) -> ExitRules:
    """The exits a label simulates: the daemon's STOP_MODE and STOP_LOSS_PCT, and the sim's SIM_SLIPPAGE_BPS."""
    from intelligence.labels import ExitRules  # noqa: PLC0415

    return ExitRules.of(settings.stop_mode, float(settings.stop_loss_pct), float(settings.sim_slippage_bps))


def load_model(settings: Settings, strategy: SelectedStrategy) -> SavedModel | None:
    """None with ML_ENABLED=false; else the saved model, or a SetupError (exit 2, one line): no model file, a model
    of other features, another strategy, other strategy parameters or exit rules; also a BAR_TIMEFRAME other than
    1Day (the features are daily: an intraday signal's bar is never in the model's history)."""
    if not settings.ml_enabled:
        return None
    if settings.bar_timeframe != "1Day":
        raise SetupError(
            f"BAR_TIMEFRAME={settings.bar_timeframe}: ML_ENABLED=true needs 1Day (the model's features are daily bars)"
        )
    from intelligence.model_file import check_made_for, load, plain_params  # noqa: PLC0415

    saved = load(model_path(settings), strategy=strategy.name)
    check_made_for(saved, strategy_params=plain_params(strategy.params), exit_rules=exit_rules(settings).as_dict())
    return saved


def ml_gate(
    settings: Settings, strategy: SelectedStrategy, history: BarFrame, *, first_session: date | None = None
) -> MlGate | None:
    """Sim: None with ML_ENABLED=false; else the saved model over `history` (the bundled bars), or the SetupError of
    `load_model`. A replay from `first_session` inside the model's training period is said (`ml_in_sample`)."""
    saved = load_model(settings, strategy)
    if saved is None:
        return None
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
    from agents.win_probability import MlGate  # noqa: PLC0415
    from intelligence.labels import cleaned, simulate, strategy_marks  # noqa: PLC0415
    from intelligence.predictor import MLPredictor  # noqa: PLC0415

    frame = cleaned(history)
    # The tracker features' trades: the strategy's simulated trades on the same bars; a decision on bar t reads only
    # those closed before t.
    trips = simulate(frame, strategy_marks(strategy.strategy, frame), exit_rules(settings))
    return MlGate(MLPredictor(saved.model, frame, trips), float(settings.ml_min_win_prob))


def live_ml_gate(
    settings: Settings, strategy: SelectedStrategy, saved: SavedModel | None, market_data: MarketData
) -> tuple[MlGate, LiveWinPredictor] | None:
    """Paper/live: the gate over a history the predictor fetches itself (`tradingd/ml_live.py`), and that predictor
    for the orchestrator to refresh; None without a model (ML_ENABLED=false)."""
    if saved is None:
        return None
    from agents.win_probability import MlGate  # noqa: PLC0415
    from core.clock import NyseCalendar  # noqa: PLC0415
    from tradingd.ml_live import LiveWinPredictor  # noqa: PLC0415

    predictor = LiveWinPredictor(saved.model, strategy.strategy, exit_rules(settings), market_data, NyseCalendar())
    return MlGate(predictor, float(settings.ml_min_win_prob)), predictor
