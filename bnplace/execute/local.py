"""Local executors: in the driver's process, or in a pool of long-lived worker processes.

In: trials, datasets, `emit`. Out: events (see `bnplace.execute`). `ProcessPool` starts `jobs`
spawned workers, each importing TensorFlow once, limited to `threads` TensorFlow threads, and
holding the datasets it was given at start. `start` spawns them ahead of `run`, so their ~2 s
of TensorFlow import overlaps the driver's opening of the MLflow store. The driver hands each
free worker one trial at a time over its own pipe, so a worker that dies takes only its own
trial with it: that trial ends FAILED ("worker died") and a fresh worker takes its place.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from bnplace.execute import (
    Emit,
    EpochEnded,
    TrialEnded,
    TrialStarted,
    set_tf_threads,
    start_worker,
)
from bnplace.result import TrialResult

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from bnplace.data import Dataset
    from bnplace.plan import Trial

# A trial past its time limit stops itself at the next batch; the pool kills its worker only
# when it has not stopped this long after the limit (a single batch that never ends).
_HARD_LIMIT_GRACE_S = 60.0
# Keras leaves ~15 MB per trial behind even after clear_session (keras-team/keras#17458):
# a worker is replaced by a fresh one after this many trials.
RECYCLE_AFTER = 50


@dataclass
class InProcess:
    """`--jobs 1`: trials run one after another in the driver's own process."""

    threads: int = 1

    def start(self, datasets: Mapping[str, Dataset], size: int) -> None:
        """Nothing to start ahead: TensorFlow loads in this process when `run` begins."""

    def close(self) -> None:
        """Nothing to stop."""

    def run(self, trials: Sequence[Trial], datasets: Mapping[str, Dataset], emit: Emit) -> None:
        set_tf_threads(self.threads)
        from bnplace.train import run_trial

        for trial in trials:
            emit(TrialStarted(trial.key, "main"))

            def on_epoch(epoch: int, metrics: dict[str, float], key: str = trial.key) -> None:
                emit(EpochEnded(key, epoch, metrics))

            emit(TrialEnded(run_trial(trial, datasets[trial.data_fingerprint], on_epoch)))


def _worker(conn: Connection, datasets: Mapping[str, Any], threads: int) -> None:
    """Worker process: receive trials, send events, until told to stop (None)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    start_worker(threads)
    from bnplace.train import run_trial

    while True:
        trial = conn.recv()
        if trial is None:
            return

        def on_epoch(epoch: int, metrics: dict[str, float], key: str = trial.key) -> None:
            conn.send(EpochEnded(key, epoch, metrics))

        conn.send(TrialEnded(run_trial(trial, datasets[trial.data_fingerprint], on_epoch)))


@dataclass
class _Slot:
    name: str
    process: BaseProcess
    conn: Connection
    trial: Trial | None = None
    started: float = 0.0
    done: int = 0  # trials this worker has finished


@dataclass
class ProcessPool:
    jobs: int = 2
    threads: int = 1
    recycle_after: int = RECYCLE_AFTER
    _slots: list[_Slot] = field(default_factory=list, repr=False)
    _spawned: int = 0

    def _spawn(self, datasets: Mapping[str, Dataset]) -> _Slot:
        context = mp.get_context("spawn")  # TensorFlow does not survive fork
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_worker, args=(theirs, dict(datasets), self.threads), daemon=True
        )
        process.start()
        theirs.close()
        self._spawned += 1
        return _Slot(f"worker-{self._spawned}", process, ours)

    def start(self, datasets: Mapping[str, Dataset], size: int) -> None:
        """Spawn the workers now; `run` hands them trials once the driver is ready."""
        missing = min(self.jobs, size) - len(self._slots)
        self._slots += [self._spawn(datasets) for _ in range(max(0, missing))]

    def run(self, trials: Sequence[Trial], datasets: Mapping[str, Dataset], emit: Emit) -> None:
        queue = deque(trials)
        self.start(datasets, len(trials))
        for slot in self._slots[len(trials) :]:  # started for trials that had already finished
            slot.process.kill()  # it holds nothing yet, and may still be importing TensorFlow
            slot.process.join(5)
            slot.conn.close()
        del self._slots[len(trials) :]
        try:
            while queue or any(slot.trial for slot in self._slots):
                for index, slot in enumerate(self._slots):
                    if slot.trial is None and queue and slot.done >= self.recycle_after:
                        self._retire(slot)
                        slot = self._slots[index] = self._spawn(datasets)
                    if slot.trial is None and queue:
                        slot.trial, slot.started = queue.popleft(), time.monotonic()
                        slot.conn.send(slot.trial)
                        emit(TrialStarted(slot.trial.key, slot.name))
                self._pump(emit, datasets, bool(queue))
        finally:
            self.close()

    def _pump(self, emit: Emit, datasets: Mapping[str, Dataset], more: bool) -> None:
        """Wait for events or dead workers, pass events on, replace dead workers."""
        busy = [slot for slot in self._slots if slot.trial is not None]
        ready = wait([s.conn for s in busy] + [s.process.sentinel for s in busy], timeout=1.0)
        for slot in busy:
            if slot.conn in ready:
                try:
                    while slot.conn.poll():
                        event = slot.conn.recv()
                        emit(event)
                        if isinstance(event, TrialEnded):
                            slot.trial = None
                            slot.done += 1
                            break
                except (EOFError, OSError):
                    pass  # the worker died while sending: handled below
            if slot.trial is None:
                continue
            limit = slot.trial.config.train.time_limit
            overdue = limit and time.monotonic() - slot.started > limit + _HARD_LIMIT_GRACE_S
            if not slot.process.is_alive() or overdue:
                self._fail(slot, emit, "timeout" if overdue else None)
                index = self._slots.index(slot)
                self._slots[index] = self._spawn(datasets) if more else slot

    def _fail(self, slot: _Slot, emit: Emit, reason: str | None) -> None:
        assert slot.trial is not None
        if slot.process.is_alive():
            slot.process.kill()
        slot.process.join(5)
        code = slot.process.exitcode
        why = reason or f"error: worker died (exit code {code}) while running the trial"
        emit(TrialEnded(TrialResult.failed(slot.trial, why)))
        slot.trial = None

    def _retire(self, slot: _Slot) -> None:
        """Let an idle worker exit (it is between trials, so nothing is lost)."""
        with contextlib.suppress(BrokenPipeError, OSError):
            slot.conn.send(None)
        slot.process.join(5)
        if slot.process.is_alive():
            slot.process.kill()
        slot.conn.close()

    def close(self) -> None:
        """Stop every worker: idle ones are asked to exit; busy ones (Ctrl-C) and ones that never
        got a trial (still importing TensorFlow, perhaps) are killed: they hold nothing."""
        for slot in self._slots:
            try:
                if slot.trial is None and slot.done and slot.process.is_alive():
                    slot.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        deadline = time.monotonic() + 5
        for slot in self._slots:
            if slot.trial is not None or not slot.done:
                slot.process.kill()
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(1)
            slot.conn.close()
        self._slots = []
