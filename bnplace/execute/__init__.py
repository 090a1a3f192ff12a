"""Execute: run trials somewhere and stream what happens back to the driver as events.

In: the trials to run (a sequence, or a `bnplace.schedule.Schedule` that deals them as they
become ready: seeds on demand), the prepared datasets (keyed by fingerprint, sent to each worker
once), and an `emit` function. Out: `TrialStarted`, `EpochEnded` and `TrialEnded` events,
emitted in the driver's thread in the order they arrive. Every trial handed to a worker ends in
exactly one `TrialEnded`, even when its worker dies; the schedule hears of each end (`ended`)
right after it is emitted, and a free worker asks it for the next trial, preferring the variant
it ran last. An executor returns once no trial is running and none is ready. Executors:
`InProcess` (`--jobs 1`), `ProcessPool` (`--jobs N`, long-lived single-threaded workers) and
`RayExecutor` (`--executor ray`). What the pool and Ray share (the time-limit grace, slot
bookkeeping, stopping workers started ahead) is in `bnplace.execute.slots`; every FAILED result
is made by `bnplace.result.failed_result`. tests/test_executor_contract.py checks this contract
on every executor.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bnplace.data import Dataset
    from bnplace.plan import Trial
    from bnplace.result import TrialResult
    from bnplace.schedule import Schedule


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
        """Stop the workers (idempotent): for a sweep that ends before `run` is called."""
        ...


def telling(schedule: Schedule, emit: Emit) -> Emit:
    """`emit`, then tell the schedule of each trial that ended (it may release more trials)."""

    def emit_and_tell(event: Event) -> None:
        emit(event)
        if isinstance(event, TrialEnded):
            schedule.ended(event.result)

    return emit_and_tell


# Keras imports these at start when they are installed (for its scikit-learn wrapper and its
# image plots); trials never use them, and in a worker they are ~1.5-2 s of a ~7 s start on
# 2 cores. Workers run no user code (configs are data), so hiding them there is safe.
_UNUSED_IN_WORKERS = ("sklearn", "matplotlib.pyplot")


def start_worker(threads: int) -> None:
    """What a worker process does first: hide what it never uses, then start TensorFlow."""
    for name in _UNUSED_IN_WORKERS:
        # `import` raises ImportError for a None entry, which Keras handles
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
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


def make_executor(kind: str, jobs: int, threads: int = 1, **options: Any) -> Executor:
    if kind == "ray":
        from bnplace.execute.ray import RayExecutor

        return RayExecutor(threads=threads, **options)
    if jobs <= 1:
        from bnplace.execute.local import InProcess

        return InProcess(threads=threads)
    from bnplace.execute.local import ProcessPool

    return ProcessPool(jobs=jobs, threads=threads)
