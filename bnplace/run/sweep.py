"""The `run` use case: config -> plan -> execute -> record, with resume and clean interruption.

In: `RunOptions` (the config path and the command-line overrides) and a `Progress` display.
Out: a `SweepOutcome` (counts, the sweep run, per-variant aggregates) once every trial has ended
or the user pressed Ctrl-C. The steps: load and plan (errors before anything is written), prepare
each distinct dataset once, start the executor's workers, open the store in this process (the
only writer) while they start, mark runs whose driver died (stale heartbeat) KILLED, skip trials
whose key already FINISHED, continue the plan's sweep run (or create it), hand the rest to the
executor through claims (`bnplace.store.claims`: several drivers may run one plan together; each
trial is trained by one of them, and each waits for the trials the others hold), and write each
event to MLflow whole as it arrives (Ctrl-C waits for the event being written).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bnplace.config import LoadedConfig, load_config
from bnplace.config.schema import Config
from bnplace.execute import interrupt
from bnplace.execute.schedule import (
    Claim,
    ClaimedSchedule,
    FixedSchedule,
    Schedule,
    SeedsOnDemand,
)
from bnplace.execute.schedule_datasets import SeedsOnDemandByDataset, seeds_on_demand
from bnplace.execute.schedule_search import Racing, Standing, standing
from bnplace.names.errors import BnplaceError, PlanError, TrackingError
from bnplace.plan import DataShape, Plan, make_plan
from bnplace.store.track_search import (
    record_eliminations,
    record_selection,
    record_survivors,
)

if TYPE_CHECKING:
    from bnplace.data import Dataset
    from bnplace.execute import Event, Executor
    from bnplace.plan import Trial
    from bnplace.store.claims import Claims
    from bnplace.store.track import Tracker
    from bnplace.trial.result import TrialResult

# Per-epoch metrics are flushed to MLflow at most this often per trial (and when it ends).
_FLUSH_EVERY_S = 5.0


@dataclass(frozen=True)
class Prepared:
    loaded: LoadedConfig
    plan: Plan  # every variant of the config: what a sweep records and compares
    selected: Plan  # the variants --filter names (all without one): what a sweep trains
    datasets: dict[str, Dataset]  # by fingerprint


def plan_sweep(
    config_path: str | Path,
    sets: Sequence[str] = (),
    seeds: int | None = None,
    only: Sequence[str] = (),
) -> Prepared:
    """Load, prepare each distinct data section once, plan. Raises before anything is written."""
    from bnplace.data import prepare as prepare_data
    from bnplace.plan import data_key

    loaded = load_config(config_path, sets)
    base_dir = Path(config_path).resolve().parent
    by_spec: dict[str, Dataset] = {}

    def shape_of(config: Config) -> DataShape:
        key = data_key(config)
        if key not in by_spec:
            by_spec[key] = prepare_data(config.section, base_dir)
        data = by_spec[key]
        return DataShape(
            data.task,
            data.window,
            data.features,
            data.outputs,
            data.fingerprint,
            data.n_windows("train"),
            data.masked,
        )

    plan = make_plan(loaded, shape_of, seeds=None if seeds is None else range(seeds))
    datasets = {data.fingerprint: data for data in by_spec.values()}
    return Prepared(loaded, plan, plan.only(only), datasets)


class Progress(Protocol):
    def planned(self, plan: Plan, todo: int, skipped: int, killed: int) -> None: ...
    def started(self, trial_key: str, worker: str) -> None: ...
    def epoch(self, trial_key: str, epoch: int, metrics: dict[str, float]) -> None: ...
    def ended(self, result: TrialResult) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class RunOptions:
    config: Path
    sets: tuple[str, ...] = ()
    seeds: int | None = None
    only: tuple[str, ...] = ()
    rerun: bool = False
    jobs: int = 1
    threads: int = 1
    executor: str = "local"
    executor_options: dict[str, object] = field(default_factory=dict)
    tracking_uri: str | None = None


@dataclass(frozen=True)
class SweepOutcome:
    plan: Plan
    tracking_uri: str
    experiment_id: str
    sweep_run_id: str
    skipped: int
    finished: int
    failed: int
    interrupted: bool
    aggregates: dict[str, dict[str, float]]
    failures: tuple[tuple[str, int, str], ...]  # (variant, seed, reason), here or elsewhere
    finished_elsewhere: int = 0  # trials of the selection other drivers ended meanwhile
    failed_elsewhere: int = 0
    search: Standing | None = None  # a search: selected and eliminated placements

    @property
    def exit_code(self) -> int:
        """130 interrupted; 1 when a trial of the selection failed, here or in another driver
        that ran the same plan meanwhile; else 0."""
        if self.interrupted:
            return 130
        return 1 if self.failed or self.failed_elsewhere else 0


def run_sweep(options: RunOptions, progress: Progress) -> SweepOutcome:
    """Run the sweep; Ctrl-C anywhere in it is acted on (`bnplace.execute.interrupt`)."""
    with interrupt.catching():
        try:
            return _run_sweep(options, progress)
        except Exception as exc:
            if isinstance(exc, BnplaceError) or not _from_the_store(exc):
                raise
            text = str(exc).strip().splitlines() or [type(exc).__name__]
            raise TrackingError(
                f"the MLflow store failed while the sweep recorded to it ({type(exc).__name__}: "
                f"{text[0][:300]}); the sweep stopped. Every trial recorded before is kept: "
                "once the store takes writes again (disk space, the server, a lock), run the "
                "same command to resume"
            ) from None


# Where the errors of a failing store come from: MLflow (a REST store past its retries), its
# SQL layer (SQLite locked past its busy timeout, a disk that is full) or the OS (ENOSPC, EFBIG).
_STORE_MODULES = ("mlflow", "sqlalchemy", "sqlite3", "psycopg2", "requests", "urllib3")


def _from_the_store(exc: BaseException) -> bool:
    return isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in _STORE_MODULES


def _run_sweep(options: RunOptions, progress: Progress) -> SweepOutcome:
    from bnplace.execute import make_executor
    from bnplace.store.track import resolve_tracking_uri

    prepared = plan_sweep(options.config, options.sets, options.seeds, options.only)
    selected = prepared.selected
    if prepared.loaded.config.search is not None and selected is not prepared.plan:
        raise PlanError("--filter cannot narrow a search: the race needs every placement")
    if prepared.loaded.config.search is not None and options.seeds is not None:
        raise PlanError("--seeds does not apply to a search: set search.seeds {min, max, step}")
    if selected.errors:
        lines = [f"  {f.variant}: [{f.rule}] {f.message}" for f in selected.errors]
        raise PlanError("the plan has errors; nothing was run:\n" + "\n".join(lines))
    uri = resolve_tracking_uri(options.tracking_uri, prepared.loaded.config.tracking.uri)
    # made before the store is opened: a missing extra (ray) fails with nothing written
    executor = make_executor(
        options.executor, options.jobs, options.threads, **options.executor_options
    )
    # workers import TensorFlow (seconds) while this process opens the store
    executor.start(prepared.datasets, len(selected.trials))
    try:
        return _record(prepared, uri, options.rerun, executor, progress)
    finally:
        executor.close()


def _record(
    prepared: Prepared,
    uri: str,
    rerun: bool,
    executor: Executor,
    progress: Progress,
) -> SweepOutcome:
    """Open the store, resume, run what is left, and write each event as it arrives.

    The sweep run records the whole plan (plan.json, a variant run per variant, aggregates over
    the newest finished trial of each key, whichever sweep ran it), so a --filter sweep is
    compared in the context of the whole question; only the selected trials run.
    """
    from bnplace.store.claims import Claims
    from bnplace.store.track import Tracker

    plan, selected = prepared.plan, prepared.selected
    # a new store is created (MLflow migrates its schema) whole: Ctrl-C midway left a SQLite
    # file every later run failed on ("table _alembic_tmp_metrics already exists")
    with interrupt.deferred():
        tracker = Tracker(uri, plan.experiment)
        tracker.describe_experiment(prepared.loaded.config.description)
    claims = Claims(tracker)
    killed = claims.kill_stale()
    # in this order: a trial that finishes elsewhere in between is skipped, not trained again
    claims.known_ended = tracker.ended_run_ids()
    finished = {} if rerun else tracker.finished_values(plan.metric)
    todo = [trial for trial in selected.trials if trial.key not in finished]
    skipped = len(selected.trials) - len(todo)
    progress.planned(selected, len(todo), skipped, killed)
    claims.heartbeat.start()
    try:
        # a press meanwhile waits for the executor's first check, which ends the sweep run
        with interrupt.deferred(until_check=True):
            claims.open_plan_sweep(plan, _config_text(prepared.loaded))
        return _run(prepared, tracker, claims, todo, finished, skipped, executor, progress)
    finally:
        claims.heartbeat.stop()


def _run(
    prepared: Prepared,
    tracker: Tracker,
    claims: Claims,
    todo: list[Trial],
    finished: dict[str, float],
    skipped: int,
    executor: Executor,
    progress: Progress,
) -> SweepOutcome:
    """Deal the trials left through claims, record each event, end the sweep run."""
    loop = _SweepLoop(prepared, tracker, claims, progress, todo, finished)
    interrupted = loop.execute(executor)
    return loop.finish(interrupted, skipped)


def dealing_schedule(
    plan: Plan, todo: Sequence[Trial], finished: dict[str, float], names: Sequence[str]
) -> Schedule:
    """The schedule that deals `todo` given the `finished` trials' metric values: a search's
    race, seeds on demand (`names`: the variants --filter kept), or all at once. What `bnplace
    status` asks too, so it shows what a rerun would train."""
    if plan.combinations:
        return Racing(plan, todo, finished)
    if plan.design.sequential:
        return seeds_on_demand(plan, todo, finished, names)
    return FixedSchedule(todo)


class _SweepLoop:
    """One driver's pass over the trials left: the schedule that deals them (fixed, seeds on
    demand or a search's race, behind claims), and the store records of each event the
    executor emits (epochs buffered, flushed every `_FLUSH_EVERY_S`), the looks and
    eliminations the schedule passed, and the counts the outcome reports."""

    def __init__(
        self,
        prepared: Prepared,
        tracker: Tracker,
        claims: Claims,
        progress: Progress,
        todo: list[Trial],
        finished: dict[str, float],
    ) -> None:
        self.prepared, self.plan = prepared, prepared.plan
        self.tracker, self.claims, self.progress = tracker, claims, progress
        self.trials = {t.key: t for t in todo}
        names = [v.name for v in prepared.selected.variants]
        inner = dealing_schedule(self.plan, todo, finished, names)
        self.racing = inner if isinstance(inner, Racing) else None
        self.survivors_logged = 0  # the seeds read when the race's survivors were last logged
        self.on_demand = (
            inner if isinstance(inner, SeedsOnDemand | SeedsOnDemandByDataset) else None
        )
        self.schedule = ClaimedSchedule(inner, _Deferred(claims), self.on_elsewhere)
        self.buffers: dict[str, list[tuple[int, dict[str, float]]]] = {}
        self.flushed: dict[str, float] = {}
        self.counts = dict.fromkeys(
            ("finished", "failed", "finished_elsewhere", "failed_elsewhere"), 0
        )
        self.failures: list[tuple[str, int, str]] = []

    # --- events, as the executor emits them ------------------------------------------------

    def on_event(self, event: Event) -> None:
        with interrupt.deferred():  # an event's records are written whole, or not begun
            self.record(event)

    def record(self, event: Event) -> None:
        from bnplace.execute import EpochEnded, TrialEnded, TrialStarted

        if isinstance(event, TrialStarted):
            self.tracker.start_trial(self.trials[event.trial_key])
            self.flushed[event.trial_key] = time.monotonic()
            self.progress.started(event.trial_key, event.worker)
        elif isinstance(event, EpochEnded):
            self.buffers.setdefault(event.trial_key, []).append((event.epoch, event.metrics))
            if time.monotonic() - self.flushed.get(event.trial_key, 0.0) > _FLUSH_EVERY_S:
                self.flush(event.trial_key)
            self.progress.epoch(event.trial_key, event.epoch, event.metrics)
        elif isinstance(event, TrialEnded):
            result = event.result
            self.flush(result.trial_key)
            self.claims.release(self.tracker.end_trial(result, self.claims.taken_over))
            self.counted(result, "")

    def flush(self, key: str) -> None:
        if self.buffers.get(key):
            self.tracker.log_epochs(key, self.buffers[key])
            self.buffers[key] = []
        self.flushed[key] = time.monotonic()

    def on_elsewhere(self, result: TrialResult) -> None:
        """A trial another driver ran ended: counted, and its look recorded, as if here."""
        self.counted(result, "_elsewhere")

    def counted(self, result: TrialResult, where: str) -> None:
        self.counts[("finished" if result.finished else "failed") + where] += 1
        self.record_looks()
        if not result.finished:
            self.failures.append((result.variant, result.seed, result.reason))
        self.progress.ended(result)

    def record_looks(self) -> None:
        """Seeds on demand: log the looks the schedule passed (it hears of this trial's end
        right after this event is written, so its newest looks come with the next event); a
        search: the eliminations, and the placements still in after each look, likewise."""
        if self.on_demand is not None:
            while self.on_demand.looks:
                self.tracker.log_look(self.on_demand.looks.pop(0))
        if self.racing is not None and self.racing.news:
            record_eliminations(self.tracker, self.plan, self.racing.news)
            self.racing.news.clear()
        if self.racing is not None and self.racing.read > self.survivors_logged:
            record_survivors(self.tracker, self.plan, self.racing)
            self.survivors_logged = self.racing.read

    # --- the pass --------------------------------------------------------------------------

    def execute(self, executor: Executor) -> bool:
        """Run the schedule to its end; True when Ctrl-C stopped it (open trials KILLED)."""
        self.record_looks()  # looks a resumed sweep had already passed
        try:
            executor.run(self.schedule, self.prepared.datasets, self.on_event)
            interrupt.check()  # pressed while the last events were written
        except KeyboardInterrupt:
            self.tracker.kill_open_trials()
            return True
        except Exception:
            # the executor or the store failed (Ray workers that keep dying, a full disk): leave
            # no run RUNNING where the store still takes writes (a dead driver's runs are
            # otherwise marked KILLED by the next run, once their heartbeat is stale)
            with contextlib.suppress(Exception):
                self.tracker.kill_open_trials()
                _end_sweep(self.tracker, self.claims, "FAILED")
            raise
        finally:
            self.progress.close()
        return False

    def finish(self, interrupted: bool, skipped: int) -> SweepOutcome:
        """The last looks, a search's selection, the aggregates; the sweep run ended."""
        self.record_looks()
        if self.racing is not None:
            record_selection(self.tracker, self.plan, self.racing)
        aggregates = self.tracker.write_aggregates(self.plan)
        # a sweep that ran to its end waits out a just-killed driver's fresh heartbeat tag;
        # Ctrl-C does not wait (the next run marks a dead driver's sweep KILLED)
        status = "KILLED" if interrupted else "FINISHED"
        _end_sweep(self.tracker, self.claims, status, wait=not interrupted)
        tracker, counts = self.tracker, self.counts
        return SweepOutcome(
            plan=self.plan,
            tracking_uri=tracker.uri,
            experiment_id=tracker.experiment_id,
            sweep_run_id=tracker.sweep_run_id,
            skipped=skipped,
            finished=counts["finished"],
            failed=counts["failed"],
            interrupted=interrupted,
            aggregates=aggregates,
            failures=tuple(self.failures),
            finished_elsewhere=counts["finished_elsewhere"],
            failed_elsewhere=counts["failed_elsewhere"],
            search=standing(self.racing) if self.racing is not None else None,
        )


def _end_sweep(tracker: Tracker, claims: Claims, status: str, *, wait: bool = False) -> None:
    """This driver leaves the sweep run; the last driver on it ends it (and its variant runs).
    `wait`: tell a just-killed driver's fresh heartbeat from a live one's (`others_on_sweep`)."""
    claims.heartbeat.stop()
    claims.leave_sweep(tracker.sweep_run_id)
    if not claims.others_on_sweep(tracker.sweep_run_id, wait=wait):
        tracker.end_sweep(status)


@dataclass(frozen=True)
class _Deferred:
    """The claimer, with Ctrl-C held back while a claim is written (none is left half-made)."""

    claims: Claims

    def claim(self, trial: Trial) -> Claim:
        with interrupt.deferred():
            return self.claims.claim(trial)


def _config_text(loaded: LoadedConfig) -> str:
    """The resolved config as YAML (defaults filled in), headed by where it came from."""
    import yaml

    body = yaml.safe_dump(loaded.config.model_dump(mode="json", exclude_none=True), sort_keys=False)
    return f"# resolved from {loaded.file}\n{body}"
