"""Ray executor: trials as calls on long-lived Ray actors, events streamed back to the driver.

In: trials, datasets and `emit` (see `bnplace.execute`), and where to run: an existing cluster
(`address`), the Ray this process already joined, or a local Ray started here (all cores, no
dashboard, token auth off) and shut down again by `close` (`run` stops only the actors). Out:
the same events, in the same order per trial, as the local executors, emitted in the driver's
thread. The datasets go into the object store once; one actor per concurrent slot
(`cpus_per_trial` / `gpus_per_trial` of the cluster) imports TensorFlow once, limited to
`threads` threads, and runs one trial per call with its own `bnplace.trial.train.TrialRunner`
(which keeps each variant's traced model for its next seed), sending per-epoch metrics to a
small event actor that the driver drains. Workers never touch MLflow. A worker lost mid-trial
(killed, out of memory, node gone) ends its trial FAILED ("error: worker died ...") or, with
`max_retries`, runs it again on a fresh actor. Each result carries the id of the Ray node that
ran it (the `bnplace.node` tag of its trial run).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bnplace.execute import interrupt
from bnplace.execute.contract import (
    Emit,
    EpochEnded,
    TrialEnded,
    TrialStarted,
    start_worker,
    telling,
)
from bnplace.execute.schedule import FixedSchedule, as_schedule
from bnplace.execute.slots import Slot, running, stop_unneeded
from bnplace.names.errors import BnplaceError, MissingExtraError
from bnplace.names.tags import NODE
from bnplace.trial.result import TIMEOUT, WorkerLost, failed_result

if TYPE_CHECKING:
    from bnplace.data import Dataset
    from bnplace.execute.schedule import Schedule
    from bnplace.plan import Trial
    from bnplace.trial.result import TrialResult

# How long the driver waits for a result before it drains per-epoch events again.
_POLL_S = 0.5
# Actors that die before they ever run a trial (not a failing constructor) are replaced at most
# this many times in one sweep; past that the cluster is taken to be unusable.
_MAX_LOST_STARTS = 3


def import_ray() -> Any:
    """The `ray` module, or a MissingExtraError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", "ray", "--executor ray") from None
    return ray


_BoxItem = tuple[str, int, int | None, dict[str, float]]


class _EventBox:
    """Ray actor (no CPU): holds per-epoch events from the trial actors until the driver drains.
    An item is (trial key, attempt, epoch, metrics); an epoch of None says a fit began."""

    def __init__(self) -> None:
        self.items: list[_BoxItem] = []

    def put(self, item: _BoxItem) -> None:
        self.items.append(item)

    def drain(self) -> list[_BoxItem]:
        items, self.items = self.items, []
        return items


class _TrialWorker:
    """Ray actor: imports TensorFlow once, then runs one trial per call."""

    def __init__(self, datasets: dict[str, Any], threads: int) -> None:
        start_worker(threads)
        from bnplace.trial.train import (
            TrialRunner,  # TensorFlow and Keras load here, once per worker
        )

        self.runner = TrialRunner()  # keeps each variant's traced model for its next seed

        self.refs = datasets  # fingerprint -> ObjectRef, fetched on first use and kept
        self.cache: dict[str, Dataset] = {}

    def where(self) -> tuple[str, str]:
        """host:pid of this worker, and the id of the Ray node it runs on."""
        import ray

        return f"{socket.gethostname()}:{os.getpid()}", ray.get_runtime_context().get_node_id()

    def run(self, trial: Trial, attempt: int, events: Any) -> TrialResult:
        """Run `trial`, sending its epochs to the event box `events` (the driver's current one:
        should the box's node be lost, the driver makes another and the epochs sent to the lost
        one are dropped; the result, with its whole history, still comes back)."""
        import ray

        fingerprint = trial.data_fingerprint
        if fingerprint not in self.cache:
            self.cache[fingerprint] = ray.get(self.refs[fingerprint])
        sent: list[Any] = []

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            sent.append(events.put.remote((trial.key, attempt, epoch, metrics)))

        def on_fit() -> None:  # an epoch of None: the fit began (`Slot.fit_began`)
            sent.append(events.put.remote((trial.key, attempt, None, {})))

        result = self.runner.run(trial, self.cache[fingerprint], on_epoch, on_fit)
        with contextlib.suppress(ray.exceptions.RayError):  # the box was lost: epochs dropped
            ray.get(sent)  # calls run in order: every epoch is in the box before the result
        node = ray.get_runtime_context().get_node_id()
        return dataclasses.replace(result, tags={**result.tags, NODE: node})


@dataclass(kw_only=True)
class _ActorSlot(Slot):
    actor: Any  # None once the actor is gone and no trial is left to replace it for
    ready: Any  # the ObjectRef of `where()` until the actor has started, then None
    label: str = ""  # the name and where the actor runs: "ray-1 host:pid"
    node: str = ""  # the id of the Ray node the actor runs on
    call: Any = None  # the ObjectRef of the running `run()`


@dataclass
class RayExecutor:
    """`--executor ray`: trials on a Ray cluster; the driver stays the only MLflow writer."""

    threads: int = 1
    address: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_retries: int = 0
    _ray: Any = field(default=None, init=False, repr=False)
    _session: _Session | None = field(default=None, init=False, repr=False)
    _joined: bool = field(default=False, init=False, repr=False)  # we started or joined Ray

    def __post_init__(self) -> None:
        for name, value, least in (
            ("--cpus-per-trial", self.cpus_per_trial, 0),
            ("--gpus-per-trial", self.gpus_per_trial, 0),
            ("--max-retries", self.max_retries, 0),
            ("--threads", self.threads, 1),
        ):
            if value < least:
                raise BnplaceError(f"{name} must be at least {least}, got {value}")
        if self.cpus_per_trial == 0 and self.gpus_per_trial == 0:
            raise BnplaceError(
                "--cpus-per-trial and --gpus-per-trial are both 0; a trial needs one"
            )
        if not self._address() and "ray" not in sys.modules:
            # A Ray started here serves this process alone: keep it on 127.0.0.1 (Ray binds the
            # machine's network address otherwise; it reads this switch when first imported).
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        self._ray = import_ray()  # fail before anything is written when the extra is missing

    def _address(self) -> str | None:
        """--ray-address, else Ray's own RAY_ADDRESS; None: start a local Ray."""
        return self.address or os.environ.get("RAY_ADDRESS") or None

    def start(self, datasets: Mapping[str, Dataset], size: int) -> None:
        """Join the cluster and start the actors now: they import TensorFlow meanwhile."""
        if self._session is not None or size == 0:
            return
        self._joined = self._connect()
        self._session = _Session(self, self._ray)
        self._session.start(datasets, size)

    def run(
        self, trials: Sequence[Trial] | Schedule, datasets: Mapping[str, Dataset], emit: Emit
    ) -> None:
        schedule = as_schedule(trials)
        try:
            if schedule.remaining():
                self.start(datasets, schedule.remaining())
                assert self._session is not None
                self._session.run(schedule, emit)
        finally:
            self._end_session()

    def close(self) -> None:
        """Stop the actors and leave Ray. `run` stops only the actors: the driver records the
        sweep's end before leaving, because a Ray shutdown can end the process (its core worker
        exits when a thread reaches it after the shutdown, seen once a worker had been killed)
        and must not take the sweep's record with it."""
        self._end_session()
        if self._joined:
            self._ray.shutdown()
            self._joined = False

    def _end_session(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _connect(self) -> bool:
        """Join the cluster (or start a local Ray); True when this call did, so it leaves too."""
        ray = self._ray
        if ray.is_initialized():
            return False  # the caller's Ray (a notebook, a test): use it, leave it running
        address = self._address()
        quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        try:
            if address:
                ray.init(address=address, **quiet)
            else:
                # a local init turns token auth on otherwise; nothing but this process joins it
                os.environ.setdefault("RAY_AUTH_MODE", "disabled")
                # "local": a new Ray even when `ray start` left one running on this machine
                ray.init(
                    address="local",
                    num_cpus=os.cpu_count() or 1,
                    include_dashboard=False,
                    **quiet,
                )
        except Exception as exc:  # ConnectionError, RuntimeError, ValueError ... by version
            where = f"the Ray cluster at {address!r}" if address else "a local Ray"
            raise BnplaceError(f"cannot start or join {where}: {_first_line(exc)}") from None
        return True

    def slots_for(self, trials: int) -> int:
        """How many trials can run at once: the cluster's CPUs (and GPUs) over a trial's share."""
        total = self._ray.cluster_resources()
        fits = [trials]
        for resource, share in (("CPU", self.cpus_per_trial), ("GPU", self.gpus_per_trial)):
            if share > 0:
                fits.append(int(total.get(resource, 0.0) / share + 1e-9))
        if min(fits) < 1:
            raise BnplaceError(
                f"the Ray cluster has {_amount(total.get('CPU', 0), 'CPU')} and "
                f"{_amount(total.get('GPU', 0), 'GPU')}; a trial asks for "
                f"{_amount(self.cpus_per_trial, 'CPU')} and {_amount(self.gpus_per_trial, 'GPU')}"
                " (--cpus-per-trial, --gpus-per-trial), so none fits"
            )
        return min(fits)


@dataclass
class _Session:
    """The driver's side of one sweep on Ray: slots, queue, attempts, events."""

    executor: RayExecutor
    ray: Any
    emit: Emit = field(default=lambda event: None)  # set by `run`
    schedule: Schedule = field(default_factory=lambda: FixedSchedule(()))  # set by `run`
    retries: deque[Trial] = field(default_factory=deque)  # lost trials to run again first
    slots: list[_ActorSlot] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)  # trial key -> workers lost so far
    last_epoch: dict[str, int] = field(default_factory=dict)
    open: set[str] = field(default_factory=set)  # trials started and not yet ended
    refs: dict[str, Any] = field(default_factory=dict)
    events: Any = None
    worker_class: Any = None
    spawned: int = 0
    lost_starts: int = 0

    def start(self, datasets: Mapping[str, Dataset], size: int) -> None:
        ray, executor = self.ray, self.executor
        self.refs = {fp: ray.put(datasets[fp]) for fp in sorted(datasets)}  # once, not per trial
        self.events = self._event_box()
        self.worker_class = ray.remote(_TrialWorker).options(
            num_cpus=executor.cpus_per_trial,
            num_gpus=executor.gpus_per_trial,
            max_restarts=0,
            max_task_retries=0,
        )
        self.slots = [self._spawn() for _ in range(executor.slots_for(size))]

    def run(self, schedule: Schedule, emit: Emit) -> None:
        self.emit = telling(schedule, emit)
        self.schedule = schedule
        stop_unneeded(self.slots, schedule.remaining(), lambda slot: _kill(self.ray, slot.actor))
        self.loop()

    def _more(self) -> bool:
        """Whether a trial is ready, or may become ready when a running one ends."""
        return bool(self.retries or self.schedule.ready()) or any(
            slot.trial is not None for slot in self.slots
        )

    def _next(self, slot: _ActorSlot) -> Trial | None:
        if self.retries:
            return self.retries.popleft()
        return self.schedule.take(slot.last, running(self.slots))

    def _event_box(self) -> Any:
        return self.ray.remote(_EventBox).options(num_cpus=0, **_near_driver(self.ray)).remote()

    def _spawn(self) -> _ActorSlot:
        self.spawned += 1
        actor = self.worker_class.remote(self.refs, self.executor.threads)
        return _ActorSlot(f"ray-{self.spawned}", actor=actor, ready=actor.where.remote())

    def loop(self) -> None:
        ray = self.ray
        while self._more():
            interrupt.check()  # a Ctrl-C whose KeyboardInterrupt Python dropped: raise it again
            for slot in self.slots:
                idle = slot.actor is not None and slot.ready is None and slot.trial is None
                trial = self._next(slot) if idle else None
                if trial is not None:
                    self._dispatch(slot, trial)
            pending = [
                s.ready if s.ready is not None else s.call
                for s in self.slots
                if s.ready is not None or s.call is not None
            ]
            if not pending:  # every slot is gone while trials wait: start one more
                self.slots = [slot for slot in self.slots if slot.actor is not None]
                self.slots.append(self._spawn())
                continue
            ray.wait(pending, num_returns=1, timeout=_POLL_S)
            done, _ = ray.wait(pending, num_returns=len(pending), timeout=0)
            self._drain()
            finished = set(done)
            for index, slot in enumerate(self.slots):
                if slot.ready is not None and slot.ready in finished:
                    self._started(index, slot)
                elif slot.call is not None and slot.call in finished:
                    self._ended(index, slot)
                elif slot.overdue():
                    self._give_up(index, slot, lost=None)

    def _dispatch(self, slot: _ActorSlot, trial: Trial) -> None:
        slot.assign(trial)
        self.attempts.setdefault(trial.key, 0)
        slot.call = slot.actor.run.remote(trial, self.attempts[trial.key], self.events)
        if trial.key not in self.open:  # a retry goes on under the run it already has
            self.open.add(trial.key)
            self.emit(TrialStarted(trial.key, slot.label))

    def _started(self, index: int, slot: _ActorSlot) -> None:
        ray = self.ray
        try:
            where, slot.node = ray.get(slot.ready)
            slot.label = f"{slot.name} {where}"
            slot.ready = None
        except ray.exceptions.RayError as exc:  # the actor died before it could run a trial
            if getattr(exc, "actor_init_failed", False):
                raise BnplaceError(
                    f"a Ray worker could not start: {_first_line(exc)}\n  every Ray node needs "
                    "bnplace and its dependencies installed: pip install 'bnplace[ray]'"
                ) from None
            self.lost_starts += 1
            if self.lost_starts > _MAX_LOST_STARTS:
                raise BnplaceError(
                    f"Ray workers keep dying before they start ({self.lost_starts} times); "
                    f"last: {_first_line(exc)}"
                ) from None
            self._replace(index, slot)

    def _ended(self, index: int, slot: _ActorSlot) -> None:
        ray, trial, call = self.ray, slot.trial, slot.call
        assert trial is not None
        try:
            result = ray.get(call)
        except ray.exceptions.RayTaskError as exc:  # our worker code raised outside run_trial
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            result = failed_result(trial, cause, tags={NODE: slot.node})
        except ray.exceptions.RayError as exc:  # the worker process or its node is gone
            self._give_up(index, slot, lost=_first_line(exc))
            return
        slot.release()
        slot.call = None
        self._end(result)

    def _give_up(self, index: int, slot: _ActorSlot, lost: str | None) -> None:
        """The slot's worker is lost (`lost`: what Ray said; retried up to --max-retries) or
        overdue (None: never retried, it would be again): fail or requeue; replace the worker."""
        trial = slot.release()
        slot.call = None
        self._drain()
        self.attempts[trial.key] += 1
        tries = self.attempts[trial.key]
        if lost is not None and tries <= self.executor.max_retries:
            self.retries.appendleft(trial)
        else:
            cause = TIMEOUT if lost is None else WorkerLost(slot.label, lost, tries)
            self._end(failed_result(trial, cause, tags={NODE: slot.node}))
        self._replace(index, slot)

    def _replace(self, index: int, slot: _ActorSlot) -> None:
        _kill(self.ray, slot.actor)
        if self._more():
            self.slots[index] = self._spawn()
        else:
            slot.actor, slot.ready, slot.trial, slot.call = None, None, None, None

    def _end(self, result: TrialResult) -> None:
        self._drain()
        self.open.discard(result.trial_key)
        self.emit(TrialEnded(result))

    def _drain(self) -> None:
        """Emit the per-epoch events that arrived, dropping stale attempts and repeated epochs."""
        try:
            drained = self.ray.get(self.events.drain.remote())
        except self.ray.exceptions.RayError:  # its node is gone: a new box for the next calls
            _kill(self.ray, self.events)
            self.events, drained = self._event_box(), []
        for key, attempt, epoch, metrics in drained:
            if key not in self.open or attempt != self.attempts.get(key):
                continue
            if epoch is None:
                for slot in self.slots:
                    slot.fit_began(key)
                continue
            if epoch <= self.last_epoch.get(key, -1):
                continue  # a retry re-trains epochs the driver has already logged
            self.last_epoch[key] = epoch
            self.emit(EpochEnded(key, epoch, metrics))

    def close(self) -> None:
        for slot in self.slots:
            _kill(self.ray, slot.actor)
        _kill(self.ray, self.events)
        self.slots, self.refs = [], {}


def _kill(ray: Any, actor: Any) -> None:
    if actor is None:
        return
    with contextlib.suppress(Exception):  # already dead, or Ray itself is going down (Ctrl-C)
        ray.kill(actor, no_restart=True)


def _near_driver(ray: Any) -> dict[str, Any]:
    """Scheduling options that keep the event box on the driver's node when Ray allows it."""
    try:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        node = ray.get_runtime_context().get_node_id()
        return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=True)}
    except Exception:  # Ray Client and older versions: anywhere will do
        return {}


def _amount(value: float, unit: str) -> str:
    """A count with its unit, plural unless one: "1 CPU", "0 GPUs", "0.5 GPUs"."""
    return f"{value:g} {unit}" + ("" if value == 1 else "s")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    line = text.splitlines()[0]
    return line if len(line) <= 300 else line[:297] + "..."
