"""What every executor shares: the events, the `Executor` protocol, worker start-up.

In: a schedule and the driver's `emit`. Out: `TrialStarted`, `EpochEnded`, `TrialEnded` (the
events), `Executor` (the protocol tests/test_executor_contract.py checks on every executor),
`telling` (an emit that tells the schedule of each end), and `start_worker` /
`set_tf_threads` (a worker's TensorFlow threads and quiet start).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bnplace.data import Dataset
    from bnplace.execute.schedule import Schedule
    from bnplace.plan import Trial
    from bnplace.trial.result import TrialResult


@dataclass(frozen=True)
class TrialStarted:
    trial_key: str
    worker: str


@dataclass(frozen=True)
class EpochEnded:
    trial_key: str
    epoch: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class TrialEnded:
    result: TrialResult


Event = TrialStarted | EpochEnded | TrialEnded


@dataclass(frozen=True)
class FitBegan:
    """A worker's word to its executor that a trial's fit began (`Slot.fit_began`); kept within
    the executor, never emitted."""

    trial_key: str


Emit = Callable[[Event], None]


class Executor(Protocol):
    def start(self, datasets: Mapping[str, Dataset], size: int) -> None:
        """Start workers for up to `size` trials now, so that they import TensorFlow while the
        driver opens the store. Optional: `run` starts whatever is not running yet."""
        ...

    def run(
        self, trials: Sequence[Trial] | Schedule, datasets: Mapping[str, Dataset], emit: Emit
    ) -> None:
        """Run every trial the schedule deals; return when none is running and none is ready,
        with the workers stopped. Ctrl-C propagates as KeyboardInterrupt."""
        ...

    def close(self) -> None:
        """Stop the workers and release what `start` took, Ray included (idempotent): the
        sweep calls it once its record is written, and when it ends before `run`."""
        ...


def telling(schedule: Schedule, emit: Emit) -> Emit:
    """`emit`, then tell the schedule of each trial that ended (it may release more trials)."""

    def emit_and_tell(event: Event) -> None:
        emit(event)
        if isinstance(event, TrialEnded):
            schedule.ended(event.result)

    return emit_and_tell


# Keras imports these at start when they are installed (for its scikit-learn wrapper, its
# image plots and its pandas DataFrame input); trials never use them (they are fed numpy
# arrays), and in a worker they are ~1.5-2 s of a ~7 s start on 2 cores (pandas ~0.3 s of
# the ~3.4 s a Ray actor or a spawned pool's forkserver spends importing). Workers run no user
# code (configs are data), so hiding them there is safe.
_UNUSED_IN_WORKERS = ("sklearn", "matplotlib.pyplot", "pandas")


def import_worker_modules() -> None:
    """What a worker imports before its first trial: TensorFlow, Keras and the trial runner,
    quietly, with what it never uses hidden. Starts no TensorFlow runtime (no op runs), so a
    process that ran only this may fork workers (`bnplace.execute.preload`)."""
    for name in _UNUSED_IN_WORKERS:
        # `import` raises ImportError for a None entry, which Keras handles
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _quiet_stderr():
        import bnplace.trial.train  # noqa: F401  (TensorFlow and Keras with it)


def start_worker(threads: int) -> None:
    """What a worker process does first: its imports (done already in a forked worker), then
    TensorFlow's runtime with `threads` threads."""
    import_worker_modules()
    set_tf_threads(threads)


def set_tf_threads(threads: int) -> None:
    """One TensorFlow thread per trial by default: parallel trials are the lever on CPUs.

    TensorFlow ignores OMP_NUM_THREADS; the threading API must be called before any op runs.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _quiet_stderr():
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")  # retracing notes when many models share a process
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow already initialised in this process: keep its setting
            pass
        tf.constant(0)  # start the runtime here, while its start-up notes are silenced


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """TensorFlow 2.21 writes oneDNN and absl notes to fd 2 when it starts, whatever
    TF_CPP_MIN_LOG_LEVEL says; silence fd 2 meanwhile (Python errors still raise)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
