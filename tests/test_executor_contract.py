"""The executor contract, checked the same way on every executor, through public API only.

Parametrised over `InProcess`, `ProcessPool` (2 workers) and `RayExecutor` (on a 2-CPU Ray
started once for this module; skipped where Ray is not importable). One executor per kind
serves the whole module. One sweep per executor covers results, failure isolation (a trial that
raises), time limits and a worker SIGKILLed mid-trial; a second run covers Ctrl-C and the
stopping of a worker started ahead for a trial that turned out to need none; a third starts
workers and runs nothing. Workers are counted from outside: the pool's processes by name
(`multiprocessing.active_children`), Ray's actors by the CPUs they hold.
"""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import pytest

from bnplace.execute import EpochEnded, Event, Executor, TrialEnded, TrialStarted
from bnplace.execute.local import InProcess, ProcessPool
from bnplace.execute.ray import RayExecutor
from bnplace.execute.slots import Slot
from bnplace.names.states import FAILED, FINISHED
from bnplace.plan import Trial
from bnplace.run.sweep import Prepared, plan_sweep
from bnplace.trial.result import TIMEOUT, TrialResult
from tests.forked_python import local_ray

pytestmark = pytest.mark.slow

CONFIG = """
experiment: contract
data: {source: synthetic, generator: sine_mix, length: 240, features: 2, window: 8}
model:
  - conv1d: {id: conv, filters: 2, kernel_size: 3, padding: causal, activation: relu}
train: {epochs: 1, batch_size: 32}
sweep: {seeds: 4}
"""
KINDS = ("in_process", "process_pool", "ray")


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    pytest.importorskip("ray")
    with local_ray(tmp_path_factory.mktemp("ray"), cpus=2):
        yield


@pytest.fixture(scope="module", params=KINDS)
def executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    made: Executor
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
        made = RayExecutor()
    elif request.param == "process_pool":
        made = ProcessPool(jobs=2)
    else:
        made = InProcess()
    yield made
    made.close()


def with_train(trial: Trial, **changes: Any) -> Trial:
    """The trial with other training settings (unvalidated: a setting that makes it raise)."""
    config = trial.config
    train = config.train.model_copy(update=changes)
    return dataclasses.replace(trial, config=config.model_copy(update={"train": train}))


def live_workers(executor: Executor) -> int:
    if isinstance(executor, ProcessPool):
        return sum(1 for p in mp.active_children() if p.name.startswith("worker-"))
    if isinstance(executor, RayExecutor):
        ray = sys.modules["ray"]
        held = ray.cluster_resources().get("CPU", 0) - ray.available_resources().get("CPU", 0)
        return round(held / executor.cpus_per_trial)
    return 0  # trials run in the driver's own process


def eventually(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Whether `condition` holds within `timeout` (a killed Ray actor frees its CPU later)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def worker_pid(worker: str) -> int:
    """The process a TrialStarted event names: Ray's "ray-1 host:pid", or a pool process."""
    if ":" in worker:
        return int(worker.rsplit(":", 1)[1])
    (process,) = [p for p in mp.active_children() if p.name == worker]
    assert process.pid is not None
    return process.pid


def trial_key(event: Event) -> str:
    return event.result.trial_key if isinstance(event, TrialEnded) else event.trial_key


@dataclasses.dataclass
class Sweep:
    trials: dict[str, Trial]  # by role: finishes, raises, times_out, loses_worker
    events: list[Event]
    killed_pid: int | None
    fits_began: list[str]  # trial keys whose fit the worker said began (`Slot.fit_began`)

    def result(self, role: str) -> TrialResult:
        key = self.trials[role].key
        (ended,) = [e for e in self.events if isinstance(e, TrialEnded) and trial_key(e) == key]
        return ended.result


@pytest.fixture(scope="module")
def sweep(executor: Executor, prepared: Prepared) -> Sweep:
    first, second, third, fourth = prepared.plan.trials
    trials = {
        "finishes": first,
        "raises": with_train(second, optimizer="no-such-optimizer"),
        "times_out": with_train(third, time_limit=1e-6),
    }
    if not isinstance(executor, InProcess):  # its worker is the test process itself
        # killed at its first epoch; 50 of the conv model's epochs (~18 ms each on an idle
        # core) would end in ~2 of the Ray driver's 0.5 s event polls, 500 in ~18. Last:
        # nothing waits for it
        trials["loses_worker"] = with_train(fourth, epochs=500)
    events: list[Event] = []
    workers: dict[str, str] = {}
    killed: list[int] = []

    def emit(event: Event) -> None:
        events.append(event)
        if isinstance(event, TrialStarted):
            workers[event.trial_key] = event.worker
        victim = trials.get("loses_worker")
        if (
            isinstance(event, EpochEnded)
            and victim
            and event.trial_key == victim.key
            and not killed
        ):
            killed.append(worker_pid(workers[victim.key]))
            os.kill(killed[0], signal.SIGKILL)

    fits_began: list[str] = []
    fit_began = Slot.fit_began

    def recording(slot: Slot, key: str) -> None:  # the driver's side: where the word arrives
        fits_began.append(key)
        fit_began(slot, key)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Slot, "fit_began", recording)
        executor.start(prepared.datasets, len(trials))
        executor.run(list(trials.values()), prepared.datasets, emit)
    return Sweep(trials, events, killed[0] if killed else None, fits_began)


def test_every_trial_starts_reports_its_epochs_in_order_and_ends_once(sweep: Sweep) -> None:
    for trial in sweep.trials.values():
        mine = [e for e in sweep.events if trial_key(e) == trial.key]
        assert isinstance(mine[0], TrialStarted) and isinstance(mine[-1], TrialEnded), trial.key
        assert sum(isinstance(e, TrialEnded) for e in mine) == 1
        epochs = [e.epoch for e in mine if isinstance(e, EpochEnded)]
        assert epochs == sorted(set(epochs))


def test_a_finished_trial_carries_its_metrics_and_history(sweep: Sweep) -> None:
    result = sweep.result("finishes")
    assert (result.status, result.reason) == (FINISHED, ""), result.reason
    assert result.finished and "test_rmse" in result.metrics and len(result.history) == 1


def test_a_trial_that_raises_fails_alone_with_its_error(sweep: Sweep) -> None:
    result = sweep.result("raises")
    assert result.status == FAILED
    assert result.reason.startswith("error: KeyError: 'no-such-optimizer'"), result.reason
    assert sweep.result("finishes").finished


def test_a_trial_past_its_time_limit_fails_with_timeout(sweep: Sweep) -> None:
    result = sweep.result("times_out")
    assert (result.status, result.reason) == (FAILED, TIMEOUT)
    assert result.metrics["epochs_run"] == 1  # what it reached is kept


def test_workers_say_when_a_fit_begins_so_the_hard_limit_counts_the_fit(
    executor: Executor, sweep: Sweep
) -> None:
    """The executor's hard limit restarts when the worker's fit begins: the build (and, on a
    loaded machine, a worker's TensorFlow import) is not charged to a trial's time limit."""
    if isinstance(executor, InProcess):
        pytest.skip("trials run in the driver's own process: there is no hard limit to restart")
    for role in ("finishes", "times_out"):
        assert sweep.fits_began.count(sweep.trials[role].key) >= 1, role
    assert sweep.trials["raises"].key not in sweep.fits_began  # it fails at compile, before


def test_a_worker_lost_mid_trial_fails_that_trial_only(sweep: Sweep) -> None:
    if "loses_worker" not in sweep.trials:
        pytest.skip("trials run in the driver's own process: there is no worker to lose")
    result = sweep.result("loses_worker")
    assert result.status == FAILED
    assert result.reason.startswith("error: worker died while running the trial ("), result.reason
    assert str(sweep.killed_pid) in result.reason
    assert sweep.result("finishes").finished
    assert sweep.result("raises").reason.startswith("error: KeyError")


def test_ctrl_c_stops_every_worker_and_one_started_for_no_trial_stops_first(
    executor: Executor, prepared: Prepared
) -> None:
    """Workers for two trials are started; resume leaves one to run: the other is stopped
    before it starts. Ctrl-C (KeyboardInterrupt out of `emit`) mid-trial stops the rest."""
    one_worker = 0 if isinstance(executor, InProcess) else 1
    executor.start(prepared.datasets, 2)
    seen: list[Event] = []
    while_running: list[bool] = []

    def emit(event: Event) -> None:
        seen.append(event)
        if isinstance(event, EpochEnded):
            while_running.append(eventually(lambda: live_workers(executor) == one_worker))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        executor.run([with_train(prepared.plan.trials[0], epochs=500)], prepared.datasets, emit)
    assert while_running == [True]
    assert not any(isinstance(e, TrialEnded) for e in seen)
    assert eventually(lambda: live_workers(executor) == 0)


def test_workers_started_ahead_are_stopped_when_nothing_is_left_to_run(
    executor: Executor, prepared: Prepared
) -> None:
    """`start` runs before resume is decided; a sweep with nothing left stops its workers."""
    two_workers = 0 if isinstance(executor, InProcess) else 2
    executor.start(prepared.datasets, 2)
    assert eventually(lambda: live_workers(executor) == two_workers)
    events: list[Event] = []
    executor.run([], prepared.datasets, events.append)
    assert events == []
    assert eventually(lambda: live_workers(executor) == 0)


@dataclasses.dataclass
class Releasing:
    """A schedule that starts with one trial ready and releases two more as each ends (what
    seeds on demand does at a look), variant by variant in plan order."""

    waiting: list[Trial]
    ready_now: list[Trial] = dataclasses.field(default_factory=list)
    heard: list[str] = dataclasses.field(default_factory=list)
    busy: list[list[str]] = dataclasses.field(default_factory=list)  # what each take was told

    def __post_init__(self) -> None:
        self.ready_now.append(self.waiting.pop(0))

    def take(self, prefer: Trial | None = None, busy: Collection[Trial] = ()) -> Trial | None:
        ended = set(self.heard)
        self.busy.append([t.key for t in busy])
        assert not ended & set(self.busy[-1]), "a trial that ended was passed as running"
        for index, trial in enumerate(self.ready_now):
            if prefer is not None and trial.variant_id == prefer.variant_id:
                return self.ready_now.pop(index)
        return self.ready_now.pop(0) if self.ready_now else None

    def ready(self) -> int:
        return len(self.ready_now)

    def remaining(self) -> int:
        return len(self.ready_now) + len(self.waiting)

    def ended(self, result: TrialResult) -> None:
        self.heard.append(result.trial_key)
        for _ in range(2):
            if self.waiting:
                self.ready_now.append(self.waiting.pop(0))


def test_trials_released_as_others_end_all_run_once_and_workers_keep_their_variant(
    executor: Executor, prepared: Prepared, tmp_path: Path
) -> None:
    """A schedule that deals trials only as others end: every trial runs once, the schedule
    hears of every end, a free worker asks with the trials the others run (none ended), and a
    worker keeps to one variant while that variant has trials ready (each variant's trials on
    a worker form one unbroken run)."""
    path = tmp_path / "two.yaml"
    path.write_text(
        CONFIG.replace("sweep: {seeds: 4}", "sweep: {axes: {conv.filters: [2, 3]}, seeds: 3}")
    )
    two = plan_sweep(path)
    schedule = Releasing(list(two.plan.trials))
    events: list[Event] = []
    executor.start(two.datasets, 2)
    executor.run(schedule, two.datasets, events.append)
    ended = [e.result.trial_key for e in events if isinstance(e, TrialEnded)]
    assert sorted(ended) == sorted(t.key for t in two.plan.trials)
    assert schedule.heard == ended
    # a free worker is told what the others run (`Schedule.take`'s busy); alone, nothing
    assert any(schedule.busy) == (not isinstance(executor, InProcess))
    by_key = {t.key: t for t in two.plan.trials}
    runs: dict[str, list[str]] = {}
    for event in events:
        if isinstance(event, TrialStarted):
            runs.setdefault(event.worker.split()[0], []).append(by_key[event.trial_key].variant_id)
    for worker, variants in runs.items():
        switches = sum(1 for a, b in itertools.pairwise(variants) if a != b)
        assert switches <= 1, (worker, variants)
