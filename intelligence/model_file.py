"""The model file: skops, never pickle, so loading a file cannot run code from it.

`skops.io.load` rebuilds only the types it is told to trust: scikit-learn's own estimators, plus exactly the three
internal types a calibrated forest holds (`TRUSTED_TYPES`). A file asking for anything else is refused before it is
loaded. The file holds one dict: the classifier, the feature list it was trained on, the strategy and exit rules of
its labels, its training window, the held-out period and its metrics there.

Default path: `DATA_DIR/models/win_probability.skops` (`ML_MODEL_PATH` to choose another). Written to a temporary
file in the same folder and renamed, so a reader never sees half a model.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, Final

from core.errors import SetupError
from intelligence.dataset import FEATURE_NAMES
from intelligence.model import ForestParams, WinModel

FORMAT: Final = 1
DEFAULT_NAME: Final = "win_probability.skops"
TRUSTED_TYPES: Final = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.model_selection._split.KFold",
    "sklearn.tree._tree.Tree",
)


def default_model_path(data_dir: Path) -> Path:
    return data_dir / "models" / DEFAULT_NAME


@dataclass(frozen=True, slots=True)
class SavedModel:
    model: WinModel
    feature_names: tuple[str, ...]
    meta: dict[str, Any]  # strategy, strategy_params, exit_rules, train_start, train_end, holdout_start, metrics …

    def describe(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "features": list(self.feature_names),
            "n_train": self.model.n_train,
            "base_rate": self.model.base_rate,
            "avg_win": self.model.avg_win,
            "avg_loss": self.model.avg_loss,
            "confidence": self.model.confidence,
            "params": self.model.params.as_dict(),
            **self.meta,
        }


def save(path: Path, saved: SavedModel) -> None:
    import skops.io as sio  # noqa: PLC0415 - only `ml train` writes one

    payload = {
        "format": FORMAT,
        "classifier": saved.model.classifier,
        "feature_names": list(saved.feature_names),
        "n_train": saved.model.n_train,
        "avg_win": saved.model.avg_win,
        "avg_loss": saved.model.avg_loss,
        "base_rate": saved.model.base_rate,
        "params": saved.model.params.as_dict(),
        "meta": saved.meta,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        sio.dump(payload, temp)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def plain_params(strategy_params: Any) -> dict[str, Any]:
    """A strategy's parameters as the plain mapping a model file records (and is compared by)."""
    if is_dataclass(strategy_params) and not isinstance(strategy_params, type):
        return asdict(strategy_params)
    return dict(strategy_params)


def check_made_for(
    saved: SavedModel,
    *,
    strategy_params: Mapping[str, Any],
    exit_rules: Mapping[str, Any],
    name: str = "ML_MODEL_PATH",
) -> None:
    """A model labelled with other strategy parameters or other exit rules (STOP_MODE, STOP_LOSS_PCT, slippage) learnt
    what other trades did: refuse it with a one-line `SetupError` naming what differs."""
    for what, now, key in (
        ("strategy parameters", strategy_params, "strategy_params"),
        ("exit rules", exit_rules, "exit_rules"),
    ):
        recorded = saved.meta.get(key)
        if _canonical(recorded) != _canonical(now):
            was, given = _canonical(recorded), _canonical(now)
            raise SetupError(
                f"{name}: the model was trained with {what} {was}, the settings give {given}; "
                "retrain with `tradingd ml train`"
            )


def _canonical(value: Any) -> str:
    # A saved file gives lists where the settings give tuples: compare the JSON text, keys sorted.
    return json.dumps(value, sort_keys=True, default=str)


def load(path: Path, *, name: str = "ML_MODEL_PATH", strategy: str | None = None) -> SavedModel:
    """The model at `path`, or a one-line `SetupError` naming `name`: no file, not a model file, a type outside the
    allowlist, another format, or a feature list (or strategy) other than this version's."""
    import skops.io as sio  # noqa: PLC0415 - scikit-learn and skops only when a model is used

    where = f"{name}: {path}"
    if not path.is_file():
        raise SetupError(f"{where}: no model file (train one with `tradingd ml train`)")
    try:
        untrusted = sio.get_untrusted_types(file=path)
        unexpected = sorted(set(untrusted) - set(TRUSTED_TYPES))
        if unexpected:
            raise SetupError(f"{where}: refusing to load types outside the allowlist: {', '.join(unexpected)}")
        payload = sio.load(path, trusted=list(TRUSTED_TYPES))
    except SetupError:
        raise
    except (zipfile.BadZipFile, ValueError, KeyError, TypeError, OSError, AttributeError) as error:
        text = " ".join(str(error).split())[:160] or type(error).__name__
        raise SetupError(f"{where}: not a model file ({text})") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise SetupError(
            f"{where}: model format {found!r}, this version reads {FORMAT}; retrain with `tradingd ml train`"
        )
    features = tuple(payload.get("feature_names", ()))
    if features != FEATURE_NAMES:
        missing = [f for f in FEATURE_NAMES if f not in features]
        extra = [f for f in features if f not in FEATURE_NAMES]
        detail = f"missing {missing}, extra {extra}" if missing or extra else "same names, another order"
        raise SetupError(
            f"{where}: the model's features differ from this version's ({detail}); retrain with `tradingd ml train`"
        )
    meta = dict(payload.get("meta", {}))
    if strategy is not None and meta.get("strategy") != strategy:
        raise SetupError(
            f"{where}: trained on the signals of {meta.get('strategy')!r}, STRATEGY_NAME selects {strategy!r}; "
            "retrain with `tradingd ml train`"
        )
    params = ForestParams(**payload.get("params", {}))
    model = WinModel(
        classifier=payload["classifier"],
        n_train=int(payload["n_train"]),
        avg_win=float(payload["avg_win"]),
        avg_loss=float(payload["avg_loss"]),
        base_rate=float(payload["base_rate"]),
        params=params,
    )
    return SavedModel(model=model, feature_names=features, meta=meta)
