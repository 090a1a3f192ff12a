"""What only the process pool does (recycling workers), and the shared rules on their own.

The behaviour every executor shares (results, failure isolation, time limits, a lost worker,
Ctrl-C, workers started ahead) is checked on all of them in tests/test_executor_contract.py.
Here: a pool worker is replaced after its quota of trials, and starts with TensorFlow imported
(forked from a forkserver); the overdue rule and the stopping of workers started ahead
(`bnplace.execute.slots`); the trial states and the wording of failures
(`bnplace.trial.result`).
"""

from __future__ import annotations

import dataclasses
import re
import sys
from multiprocessing.connection import Connection

import pytest

from bnplace.execute import Event, TrialEnded, TrialStarted
from bnplace.execute.local import ProcessPool, _worker_context
from bnplace.execute.slots import HARD_LIMIT_GRACE_S, SETUP_GRACE_S, Slot, stop_unneeded
from bnplace.names.errors import BnplaceError
from bnplace.names.states import FAILED, FINISHED, KILLED, MISSING, RUNNING, TrialState
from bnplace.plan import Trial
from bnplace.run.sweep import Prepared
from bnplace.trial.result import TIMEOUT, TrialResult, WorkerLost, failed_result

CONFIG = """
experiment: pool
data: {source: synthetic, generator: sine_mix, length: 300, features: 2, window: 12}
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
train: {epochs: 3, batch_size: 32}
sweep: {seeds: 3}
"""


@pytest.mark.slow
def test_workers_are_replaced_after_their_quota_of_trials(prepared: Prepared) -> None:
    events: list[Event] = []
    trials = prepared.plan.trials[:2]
    ProcessPool(jobs=1, recycle_after=1).run(trials, prepared.datasets, events.append)
    workers = [e.worker for e in events if isinstance(e, TrialStarted)]
    assert workers == ["worker-1", "worker-2"]
    assert all(e.result.status == "finished" for e in events if isinstance(e, TrialEnded))


def _send_what_is_imported(conn: Connection) -> None:
    conn.send({name: name in sys.modules for name in ("tensorflow", "bnplace.trial.train")})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a forkserver on Linux only")
def test_pool_workers_start_with_tensorflow_imported_on_linux() -> None:
    """The pool's workers fork from a forkserver that imported TensorFlow and the trial runner
    (`bnplace.execute.preload`), so none of them imports it again; that they train to the same
    numbers as the driver's own process is tests/test_run.py's."""
    context = _worker_context()
    assert context.get_start_method() == "forkserver"
    ours, theirs = context.Pipe()
    process = context.Process(target=_send_what_is_imported, args=(theirs,))
    process.start()
    assert ours.recv() == {"tensorflow": True, "bnplace.trial.train": True}
    process.join(30)
    assert process.exitcode == 0


def limited(trial: Trial, seconds: float | None) -> Trial:
    train = trial.config.train.model_copy(update={"time_limit": seconds})
    return dataclasses.replace(trial, config=trial.config.model_copy(update={"train": train}))


def test_a_slot_is_overdue_only_past_its_time_limit_and_the_grace(prepared: Prepared) -> None:
    slot = Slot("worker-1")
    assert not slot.overdue()  # idle
    slot.assign(limited(prepared.plan.trials[0], 10.0))
    # before its fit begins (build, a worker's TensorFlow import): the longer setup grace
    assert not slot.overdue(now=slot.started + 10.0 + HARD_LIMIT_GRACE_S + 0.1)
    assert not slot.overdue(now=slot.started + 10.0 + SETUP_GRACE_S - 0.1)
    assert slot.overdue(now=slot.started + 10.0 + SETUP_GRACE_S + 0.1)
    handed_over = slot.started
    slot.fit_began("another trial's key")  # a late word from a trial the slot no longer runs
    assert (slot.started, slot.fitting) == (handed_over, False)
    slot.fit_began(prepared.plan.trials[0].key)  # the clock restarts when the fit begins
    assert slot.fitting and slot.started >= handed_over
    assert not slot.overdue(now=slot.started + 10.0 + HARD_LIMIT_GRACE_S - 0.1)
    assert slot.overdue(now=slot.started + 10.0 + HARD_LIMIT_GRACE_S + 0.1)
    slot.assign(limited(prepared.plan.trials[0], None))
    assert not slot.overdue(now=slot.started + 1e9)  # no limit: never
    assert slot.release().key == prepared.plan.trials[0].key and slot.trial is None


def test_workers_past_the_trials_to_run_are_stopped() -> None:
    slots = [Slot(f"worker-{n}") for n in (1, 2, 3)]
    stopped: list[str] = []
    stop_unneeded(slots, 1, lambda slot: stopped.append(slot.name))
    assert [s.name for s in slots] == ["worker-1"] and stopped == ["worker-2", "worker-3"]


def test_failures_are_worded_one_way(prepared: Prepared) -> None:
    trial = prepared.plan.trials[0]
    try:
        raise ValueError("bad")
    except ValueError as exc:
        raised = failed_result(trial, exc)
    assert raised.status == FAILED
    assert re.fullmatch(r"error: ValueError: bad \(test_execute\.py:\d+\)", raised.reason)
    assert failed_result(trial, BnplaceError("no data")).reason == "error: no data"
    assert failed_result(trial, TIMEOUT, metrics={"epochs_run": 1.0}).metrics == {"epochs_run": 1.0}
    lost = failed_result(trial, WorkerLost("worker-2 pid 7", "exit code -9"))
    assert (
        lost.reason == "error: worker died while running the trial (worker-2 pid 7: exit code -9)"
    )
    again = failed_result(trial, WorkerLost("ray-1 h:7", "actor died", attempts=2))
    assert (
        again.reason
        == "error: worker died after 2 attempts while running the trial (ray-1 h:7: actor died)"
    )


def test_a_result_is_finished_or_failed_with_a_reason(prepared: Prepared) -> None:
    trial = prepared.plan.trials[0]
    ids = (trial.key, trial.variant_id, trial.variant, trial.seed)
    assert TrialResult(*ids, "finished").status is FINISHED  # a plain string becomes the state
    for status, reason in ((KILLED, ""), (RUNNING, ""), (FAILED, ""), (FINISHED, "timeout")):
        with pytest.raises(ValueError):
            TrialResult(*ids, status, reason)


def test_states_map_to_mlflow_run_statuses() -> None:
    with_runs = [s for s in TrialState if s is not MISSING]  # MISSING: planned, no run yet
    assert [s.run_status for s in with_runs] == ["RUNNING", "FINISHED", "FAILED", "KILLED"]
    assert TrialState.of_run_status("KILLED") is KILLED
    assert TrialState.of_run_status("SCHEDULED") is RUNNING
    assert FINISHED == "finished"  # the tag value, and what compare's frames hold
