"""What a trial produces, as frozen data that crosses process and Ray boundaries.

In: nothing (types only). Out: `TrialResult`, made by `bnplace.train.run_trial` (or by an
executor for a trial whose worker died), consumed by the tracker and the progress display.
TensorFlow-free, so the driver of a process pool never imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from bnplace.plan import Trial

Status = Literal["finished", "failed", "killed"]


@dataclass(frozen=True)
class TrialResult:
    trial_key: str
    variant_id: str
    variant: str
    seed: int
    status: Status
    reason: str = ""  # "diverged", "timeout", "error: ..." when failed
    metrics: dict[str, float] = field(default_factory=dict)
    history: tuple[dict[str, float], ...] = ()  # per epoch: loss, val_loss, mae, ...
    summary: str = ""  # the Keras model summary

    @classmethod
    def failed(cls, trial: Trial, reason: str, **kwargs: Any) -> TrialResult:
        return cls(
            trial.key, trial.variant_id, trial.variant, trial.seed, "failed", reason, **kwargs
        )
