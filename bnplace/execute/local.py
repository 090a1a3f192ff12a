"""Local executors: in the driver's process, or in a pool of long-lived worker processes.

In: trials, datasets, `emit`. Out: events (see `bnplace.execute`). `ProcessPool` starts `jobs`
worker processes (forked from a forkserver that imported TensorFlow once, or spawned), each
limited to `threads` TensorFlow threads and holding the datasets it was given at start.
`start` starts them ahead of `run`, so their TensorFlow start overlaps the driver's opening of
the MLflow store. The driver hands each free worker one trial at a time over its own pipe, so a
worker that dies takes only its own trial with it: that trial ends FAILED ("worker died") and a
fresh worker takes its place.
Each worker process is named after its slot ("worker-1"), the name progress shows.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from bnplace.execute import interrupt
from bnplace.execute.contract import (
    Emit,
    EpochEnded,
    FitBegan,
    TrialEnded,
    TrialStarted,
    set_tf_threads,
    start_worker,
    telling,
)
from bnplace.execute.schedule import as_schedule
from bnplace.execute.slots import Slot, running, stop_unneeded
from bnplace.trial.result import TIMEOUT, WorkerLost, failed_result

if TYPE_CHECKING:
    from multiprocessing.context import ForkServerContext, SpawnContext
    from multiprocessing.process import BaseProcess

    from bnplace.data import Dataset
    from bnplace.execute.schedule import Schedule
    from bnplace.plan import Trial

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

    def run(
        self, trials: Sequence[Trial] | Schedule, datasets: Mapping[str, Dataset], emit: Emit
    ) -> None:
        schedule = as_schedule(trials)
        emit = telling(schedule, emit)
        set_tf_threads(self.threads)
        from bnplace.trial.train import TrialRunner

        runner = TrialRunner()  # keeps each variant's traced model for its next seed
        prefer: Trial | None = None
        while (trial := schedule.take(prefer)) is not None:
            prefer = trial
            emit(TrialStarted(trial.key, "main"))

            def on_epoch(epoch: int, metrics: dict[str, float], key: str = trial.key) -> None:
                emit(EpochEnded(key, epoch, metrics))

            emit(TrialEnded(runner.run(trial, datasets[trial.data_fingerprint], on_epoch)))


def _worker(conn: Connection, datasets: Mapping[str, Any], threads: int) -> None:
    """Worker process: receive trials, send events, until told to stop (None), or until the
    driver is gone (killed: its pipe is closed), quietly: the driver's next run resumes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    start_worker(threads)
    with contextlib.suppress(EOFError, BrokenPipeError, ConnectionResetError):
        _serve(conn, datasets)


def _serve(conn: Connection, datasets: Mapping[str, Any]) -> None:
    from bnplace.trial.train import TrialRunner

    runner = TrialRunner()  # keeps each variant's traced model for its next seed
    while True:
        trial = conn.recv()
        if trial is None:
            return

        def on_epoch(epoch: int, metrics: dict[str, float], key: str = trial.key) -> None:
            conn.send(EpochEnded(key, epoch, metrics))

        def on_fit(key: str = trial.key) -> None:
            conn.send(FitBegan(key))

        result = runner.run(trial, datasets[trial.data_fingerprint], on_epoch, on_fit)
        conn.send(TrialEnded(result))


def _worker_context() -> ForkServerContext | SpawnContext:
    """On Linux, a forkserver that imported what workers need (`bnplace.execute.preload`):
    each worker forks from it with nothing left to import, where a spawned one spends ~5 s of
    CPU importing TensorFlow. The forkserver is one per process and
    starts with the first worker, so a driver's later sweeps (and a test process's sweeps)
    reuse it. Linux only (forkserver is the default start method there from Python 3.14);
    spawn elsewhere (macOS frameworks do not survive a fork without exec; Windows has no
    fork). Never a plain fork of the driver: its threads (the store's heartbeat, TensorFlow's
    where it trained) do not survive one. tests/test_run.py checks that forked workers train
    to the same numbers as the driver's own process, bit for bit."""
    if not sys.platform.startswith("linux"):
        return mp.get_context("spawn")
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(["bnplace.execute.preload"])
    return context


@dataclass(kw_only=True)
class _WorkerSlot(Slot):
    process: BaseProcess  # named after the slot ("worker-1"), as multiprocessing lists it
    conn: Connection
    done: int = 0  # trials this worker has finished


@dataclass
class ProcessPool:
    jobs: int = 2
    threads: int = 1
    recycle_after: int = RECYCLE_AFTER
    _slots: list[_WorkerSlot] = field(default_factory=list, repr=False)
    _spawned: int = 0

    def _spawn(self, datasets: Mapping[str, Dataset]) -> _WorkerSlot:
        context = _worker_context()
        ours, theirs = context.Pipe()
        self._spawned += 1
        name = f"worker-{self._spawned}"
        process = context.Process(
            target=_worker, args=(theirs, dict(datasets), self.threads), daemon=True, name=name
        )
        process.start()
        theirs.close()
        return _WorkerSlot(name, process=process, conn=ours)

    def start(self, datasets: Mapping[str, Dataset], size: int) -> None:
        """Spawn the workers now; `run` hands them trials once the driver is ready."""
        missing = min(self.jobs, size) - len(self._slots)
        self._slots += [self._spawn(datasets) for _ in range(max(0, missing))]

    def run(
        self, trials: Sequence[Trial] | Schedule, datasets: Mapping[str, Dataset], emit: Emit
    ) -> None:
        schedule = as_schedule(trials)
        emit = telling(schedule, emit)
        self.start(datasets, schedule.remaining())
        stop_unneeded(self._slots, schedule.remaining(), lambda slot: _stop(slot, asked=False))
        try:
            while True:
                interrupt.check()  # a Ctrl-C whose KeyboardInterrupt Python dropped: raise it again
                for index, slot in enumerate(self._slots):
                    spent = slot.done >= self.recycle_after or slot.conn.closed  # or lost
                    if slot.trial is None and schedule.ready() and spent:
                        _stop(slot, asked=_ask_to_exit(slot))  # between trials: nothing lost
                        slot = self._slots[index] = self._spawn(datasets)
                    idle = slot.trial is None
                    trial = schedule.take(slot.last, running(self._slots)) if idle else None
                    if trial is not None:
                        slot.assign(trial)
                        slot.conn.send(trial)
                        emit(TrialStarted(trial.key, slot.name))
                if not any(slot.trial for slot in self._slots):
                    break  # nothing running and nothing ready: the schedule is done
                self._pump(emit, datasets, schedule)
        finally:
            self.close()

    def _pump(self, emit: Emit, datasets: Mapping[str, Dataset], schedule: Schedule) -> None:
        """Wait for events or dead workers, pass events on, replace dead workers."""
        busy = [slot for slot in self._slots if slot.trial is not None]
        ready = wait([s.conn for s in busy] + [s.process.sentinel for s in busy], timeout=1.0)
        for slot in busy:
            if slot.conn in ready:
                try:
                    while slot.conn.poll():
                        event = slot.conn.recv()
                        if isinstance(event, FitBegan):
                            slot.fit_began(event.trial_key)
                            continue
                        emit(event)
                        if isinstance(event, TrialEnded):
                            slot.release()
                            slot.done += 1
                            break
                except (EOFError, OSError):
                    pass  # the worker died while sending: handled below
            if slot.trial is None:
                continue
            overdue = slot.overdue()
            if overdue or not slot.process.is_alive():
                self._fail(slot, emit, overdue)
                more = schedule.ready() > 0 or any(s.trial for s in self._slots)
                index = self._slots.index(slot)
                self._slots[index] = self._spawn(datasets) if more else slot

    def _fail(self, slot: _WorkerSlot, emit: Emit, overdue: bool) -> None:
        """End the slot's trial FAILED: its worker is dead, or overdue (and killed here)."""
        trial = slot.release()
        _stop(slot, asked=False)
        where = f"{slot.name} pid {slot.process.pid}"
        lost = WorkerLost(where, f"exit code {slot.process.exitcode}")
        emit(TrialEnded(failed_result(trial, TIMEOUT if overdue else lost)))

    def close(self) -> None:
        """Stop every worker: idle ones are asked to exit; busy ones (Ctrl-C) and ones that never
        got a trial (still importing TensorFlow, perhaps) are killed: they hold nothing."""
        asked = [
            slot.trial is None and slot.done > 0 and _ask_to_exit(slot) for slot in self._slots
        ]
        deadline = time.monotonic() + 5
        for slot, polite in zip(self._slots, asked, strict=True):
            _stop(slot, asked=polite, wait_s=max(0.0, deadline - time.monotonic()))
        self._slots = []


def _ask_to_exit(slot: _WorkerSlot) -> bool:
    """Tell an idle worker to exit; False when it cannot hear it (already gone)."""
    if not slot.process.is_alive():
        return False
    try:
        slot.conn.send(None)
    except (BrokenPipeError, OSError):
        return False
    return True


def _stop(slot: _WorkerSlot, asked: bool, wait_s: float = 5.0) -> None:
    """Stop a worker (idempotent): wait up to `wait_s` for one that was asked to exit, kill the
    rest at once; then close its pipe."""
    if not asked:
        slot.process.kill()
    slot.process.join(wait_s)
    if slot.process.is_alive():
        slot.process.kill()
        slot.process.join(1)
    slot.conn.close()
