"""What the risk agent asks a win-probability model, without knowing which one (the wiring gives it one).

The model itself (features, training, the skops file) is `intelligence/`, a layer above: it implements
`WinPredictor` over the same feature function it was trained with. The risk agent only sees `Prediction`s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from core.messages import SignalGenerated


@dataclass(frozen=True, slots=True)
class Prediction:
    """For one entry signal: the calibrated probability that the trade ends with a gain after slippage, the
    expected return p × average win + (1 − p) × average loss of the training set (a fraction), and a confidence in
    [0, 1) that grows with the number of training samples (README "Machine learning")."""

    win_probability: float
    expected_return: float
    confidence: float


@runtime_checkable
class WinPredictor(Protocol):
    def predict(self, signals: Sequence[SignalGenerated]) -> Mapping[str, Prediction]:
        """One batch per iteration: a prediction per signal's correlation id; a signal it cannot compute features
        for (symbol or bar outside its history) is left out."""
        ...

    def unavailable(self) -> str | None:
        """Why the model cannot answer at all right now (paper/live: its history could not be fetched), or None."""
        ...


@dataclass(frozen=True, slots=True)
class MlGate:
    """`ML_ENABLED=true`: entries below `min_win_prob` are denied (`ml_low_probability`); with
    `ALLOCATION_METHOD=ml` the sizer weights the others by their expected return."""

    predictor: WinPredictor
    min_win_prob: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_win_prob <= 1.0:
            raise ValueError(f"min_win_prob must be in [0, 1], got {self.min_win_prob}")
