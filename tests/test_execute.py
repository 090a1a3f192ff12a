"""The local process pool: a worker killed mid-trial fails only that trial; workers recycle."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from bnplace.execute import EpochEnded, Event, TrialEnded, TrialStarted
from bnplace.execute.local import ProcessPool
from bnplace.sweep import prepare

pytestmark = pytest.mark.slow

CONFIG = """
experiment: pool
data: {source: synthetic, generator: sine_mix, length: 300, features: 2, window: 12}
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: lstm, units: 4}
train: {epochs: 3, batch_size: 32}
sweep: {seeds: 3}
"""


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory):
    path = Path(tmp_path_factory.mktemp("pool")) / "c.yaml"
    path.write_text(CONFIG)
    return prepare(path)


def test_a_worker_killed_mid_trial_fails_that_trial_only(prepared) -> None:
    pool = ProcessPool(jobs=2)
    events: list[Event] = []
    victim: list[str] = []

    def emit(event: Event) -> None:
        events.append(event)
        if isinstance(event, EpochEnded) and not victim:
            victim.append(event.trial_key)
            slot = next(s for s in pool._slots if s.trial and s.trial.key == event.trial_key)
            os.kill(slot.process.pid, signal.SIGKILL)

    pool.run(prepared.plan.trials, prepared.datasets, emit)
    ended = {e.result.trial_key: e.result for e in events if isinstance(e, TrialEnded)}
    assert set(ended) == {t.key for t in prepared.plan.trials}  # none missing
    assert ended[victim[0]].status == "failed"
    assert "worker died" in ended[victim[0]].reason
    assert all(r.status == "finished" for k, r in ended.items() if k != victim[0])


def test_workers_are_replaced_after_their_quota_of_trials(prepared) -> None:
    events: list[Event] = []
    trials = prepared.plan.trials[:2]
    ProcessPool(jobs=1, recycle_after=1).run(trials, prepared.datasets, events.append)
    workers = [e.worker for e in events if isinstance(e, TrialStarted)]
    assert workers == ["worker-1", "worker-2"]
    assert all(e.result.status == "finished" for e in events if isinstance(e, TrialEnded))


def test_workers_started_ahead_are_stopped_when_nothing_is_left_to_run(prepared) -> None:
    """`start` spawns workers before resume is decided; a sweep with nothing left stops them."""
    pool = ProcessPool(jobs=2)
    pool.start(prepared.datasets, len(prepared.plan.trials))
    processes = [slot.process for slot in pool._slots]
    assert len(processes) == 2 and all(p.is_alive() for p in processes)
    events: list[Event] = []
    pool.run([], prepared.datasets, events.append)
    assert events == [] and pool._slots == []
    assert not any(p.is_alive() for p in processes)
