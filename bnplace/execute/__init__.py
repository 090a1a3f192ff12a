"""Execute: run trials somewhere and stream what happens back to the driver as events.

In: the trials to run (a sequence, or a `bnplace.execute.schedule.Schedule` that deals them as they
become ready: seeds on demand), the prepared datasets (keyed by fingerprint, sent to each worker
once), and an `emit` function. Out: `TrialStarted`, `EpochEnded` and `TrialEnded` events,
emitted in the driver's thread in the order they arrive. Every trial handed to a worker ends in
exactly one `TrialEnded`, even when its worker dies; the schedule hears of each end (`ended`)
right after it is emitted, and a free worker asks it for the next trial with the trial it ran
last (the schedule prefers that variant on that dataset, then on one of the same shapes: the
worker keeps its model). An executor returns once no trial is running and none is ready.
Executors: `InProcess` (`--jobs 1`), `ProcessPool` (`--jobs N`, long-lived single-threaded
workers) and `RayExecutor` (`--executor ray`). What the pool and Ray share (the time-limit
grace, slot bookkeeping, stopping workers started ahead) is in `bnplace.execute.slots`; every
FAILED result is made by `bnplace.trial.result.failed_result`. tests/test_executor_contract.py
checks this contract on every executor.
"""

from __future__ import annotations

from typing import Any

from bnplace.execute.contract import (
    EpochEnded,
    Event,
    Executor,
    TrialEnded,
    TrialStarted,
    set_tf_threads,
)

__all__ = [
    "EpochEnded",
    "Event",
    "Executor",
    "TrialEnded",
    "TrialStarted",
    "make_executor",
    "set_tf_threads",
]


def make_executor(kind: str, jobs: int, threads: int = 1, **options: Any) -> Executor:
    if kind == "ray":
        from bnplace.execute.ray import RayExecutor

        return RayExecutor(threads=threads, **options)
    if jobs <= 1:
        from bnplace.execute.local import InProcess

        return InProcess(threads=threads)
    from bnplace.execute.local import ProcessPool

    return ProcessPool(jobs=jobs, threads=threads)
