"""What a trial produces, as frozen data that crosses process and Ray boundaries.

In: a `Trial` and what happened to it. Out: `TrialResult` (made by `bnplace.trial.train.run_trial`,
or by an executor for a trial whose worker was lost or stuck), consumed by the tracker and the
progress display (its state is a `bnplace.names.states.TrialState`); and `failed_result`,
the one place where an
exception, a timeout or a lost worker becomes a FAILED result with its reason.
TensorFlow-free, so the driver of a process pool never imports TensorFlow.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from bnplace.names.states import FAILED, FINISHED, RESULT_STATES, TrialState

if TYPE_CHECKING:
    from bnplace.plan import Trial


# The reasons for a FAILED trial that are not errors (every other reason starts "error: ").
# Typed as their Literals, so that either one passes where a `Stopped` is wanted.
# DIVERGED: a non-finite loss in training, or non-finite test metrics.
# TIMEOUT: past `train.time_limit`: stopped at a batch, or its worker killed.
DIVERGED: Final[Literal["diverged"]] = "diverged"
TIMEOUT: Final[Literal["timeout"]] = "timeout"
Stopped = Literal["diverged", "timeout"]


@dataclass(frozen=True)
class TrialResult:
    trial_key: str
    variant_id: str
    variant: str
    seed: int
    status: TrialState  # FINISHED or FAILED (see TrialState)
    reason: str = ""  # why it FAILED: "diverged", "timeout", "error: ..."; "" when FINISHED
    metrics: dict[str, float] = field(default_factory=dict)
    history: tuple[dict[str, float], ...] = ()  # per epoch: loss, val_loss, mae, ...
    summary: str = ""  # the Keras model summary
    tags: dict[str, str] = field(
        default_factory=dict
    )  # bnplace.names.tags name -> value, e.g. reuse

    def __post_init__(self) -> None:
        state = TrialState(self.status)
        if state not in RESULT_STATES:
            raise ValueError(f"a trial result is finished or failed, not {state}")
        if (state is FAILED) != bool(self.reason):
            raise ValueError("a failed result needs a reason, and only a failed one has one")
        object.__setattr__(self, "status", state)  # a plain "finished" becomes the enum

    @property
    def finished(self) -> bool:
        return self.status is FINISHED


@dataclass(frozen=True)
class WorkerLost:
    """The process running a trial died (killed, out of memory, its node gone)."""

    worker: str  # which worker: "worker-2 pid 4711", "ray-1 host:4711"
    detail: str  # what the executor saw: "exit code -9", Ray's error
    attempts: int = 1  # how many workers the trial lost in all (Ray's --max-retries)


Failure = BaseException | WorkerLost | Stopped


def failure_reason(cause: Failure) -> str:
    """The `reason` of a FAILED result, worded one way whichever executor saw the failure."""
    from bnplace.names.errors import BnplaceError

    if isinstance(cause, WorkerLost):
        after = f" after {cause.attempts} attempts" if cause.attempts > 1 else ""
        return f"error: worker died{after} while running the trial ({cause.worker}: {cause.detail})"
    if isinstance(cause, BnplaceError):  # our own errors are already worded for the user
        return f"error: {cause}"
    if isinstance(cause, BaseException):
        last = traceback.extract_tb(cause.__traceback__)[-1:]  # none once it crossed to Ray
        where = f" ({last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
        return f"error: {type(cause).__name__}: {cause}{where}"
    return cause


def failed_result(
    trial: Trial,
    cause: Failure,
    *,
    metrics: Mapping[str, float] | None = None,
    history: Sequence[dict[str, float]] = (),
    tags: Mapping[str, str] | None = None,
) -> TrialResult:
    """The FAILED result of `trial`: an exception it raised, a lost worker, or a stop
    ("diverged", "timeout"), with whatever metrics, history and tags it reached."""
    return TrialResult(
        trial.key,
        trial.variant_id,
        trial.variant,
        trial.seed,
        FAILED,
        failure_reason(cause),
        dict(metrics or {}),
        tuple(history),
        tags=dict(tags or {}),
    )
