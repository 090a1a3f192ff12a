"""How long a sweep will train, estimated before it runs: trials x epochs x steps x step cost.

In: a `Prepared` sweep (the plan, and the prepared data that says how many training windows
each variant has) and a tracking URI. Out: a `TimeEstimate`: the training steps of every
planned trial (epochs x ceil(train windows / batch size); early stopping can only shorten it),
and, where the store holds finished trials of this experiment, a per-step cost measured from
them (their `time_per_epoch_s` over the steps of an epoch, plus what a trial spends beyond its
epochs: building and tracing; medians per variant, and a variant not measured yet gets the
median of those that are), hence seconds: an upper bound, every fit run to its budget. Beside
it, the time at the trial lengths measured: the median wall time of the finished trials of each
variant on each dataset (early stopping, every `choose:` candidate and tracing included; a pair
not measured yet gets its dataset's median, else the overall one), summed over the planned
trials; with early stopping it is the figure to plan by (experiments/search: 1,250 h
at the budget, 95 h at the lengths measured), and for a search also over its first stage alone
(every placement's first seeds). Without a measurement the steps are all it says.
Reads the store only when it exists (a missing SQLite file is not created, and MLflow is not
imported for it).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bnplace.names import metrics as metric_names
from bnplace.names import tags as names

if TYPE_CHECKING:
    from bnplace.plan import Plan
    from bnplace.run.sweep import Prepared


@dataclass(frozen=True)
class TimeEstimate:
    trials: int
    steps: int  # training steps over all planned trials
    seconds: float | None  # None: no per-step cost measured in the store
    step_cost_s: dict[str, float] = field(default_factory=dict)  # variant id -> s per step
    measured_trials: int = 0  # finished trials the costs come from
    typical_seconds: float | None = None  # at the trial lengths measured (see the module)
    first_stage: tuple[int, float] | None = None  # a race's first seeds, and their typical time

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `bnplace plan --json`: a key per field."""
        return asdict(self)

    def describe(self) -> str:
        steps = f"{self.trials:,} trials, {self.steps:,} training steps in all"
        if self.seconds is None:
            return (
                f"training time: {steps}; no per-step cost measured in the store yet (after a "
                "first `bnplace run`, plan estimates the time)"
            )
        measured = f"{self.measured_trials:,} finished trial(s) in the store"
        typical = (
            f"~{duration(self.typical_seconds)} of trial time at the trial lengths measured "
            f"on {measured} (early stopping included), at most ~{duration(self.seconds)} if "
            f"every fit ran to its budget ({steps}, at their per-step cost)"
            if self.typical_seconds is not None
            else f"~{duration(self.seconds)} of trial time ({steps}, at the per-step cost "
            f"measured on {measured})"
        )
        stage = (
            f"; a race deals its first {self.first_stage[0]} seeds to every placement: "
            f"~{duration(self.first_stage[1])} at the lengths measured"
            if self.first_stage is not None
            else ""
        )
        return f"training time, estimated: {typical}, shared among the --jobs workers{stage}"


def duration(seconds: float) -> str:
    """Seconds as a person reads them: "40 s", "12 min", "3.5 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def steps_per_epoch(prepared: Prepared) -> dict[str, int]:
    """Variant id -> training steps in one epoch (batches of its training windows)."""
    windows = {
        t.variant_id: prepared.datasets[t.data_fingerprint].n_windows("train")
        for t in prepared.plan.trials
        if t.data_fingerprint in prepared.datasets
    }
    return {
        v.id: max(1, math.ceil(windows.get(v.id, 0) / v.config.train.batch_size))
        for v in prepared.plan.variants
    }


@dataclass(frozen=True)
class StepCost:
    per_step: float  # seconds per training step
    per_trial: float  # seconds a trial spends beyond its epochs (build, first-epoch tracing)


def finished_trials(plan: Plan, uri: str) -> list[Any]:
    """The experiment's finished trial runs in the store; none when the store or experiment
    does not exist."""
    from bnplace.store.client import existing_client, search_all, sqlite_path
    from bnplace.store.read import mlflow_errors, role_filter

    path = sqlite_path(uri)
    if path is not None and not path.exists():
        return []

    client = existing_client(uri)
    with mlflow_errors(uri):
        experiment = client.get_experiment_by_name(plan.experiment)
        if experiment is None:
            return []
        return search_all(
            client,
            [experiment.experiment_id],
            role_filter(names.TRIAL) + " and attributes.status = 'FINISHED'",
        )


def measured_step_costs(
    runs: list[Any], per_epoch: Mapping[str, int]
) -> tuple[dict[str, StepCost], int]:
    """Variant id -> median step cost over its finished trial `runs`; and how many trials
    that is."""
    samples: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        variant, measured = run.data.tags.get(names.VARIANT_ID, ""), run.data.metrics
        per_epoch_s = measured.get(metric_names.TIME_PER_EPOCH_S)
        if variant not in per_epoch or not per_epoch_s or per_epoch_s <= 0:
            continue
        # what the epochs do not explain: building, tracing (the first epoch), evaluating
        epochs_run = measured.get(metric_names.EPOCHS_RUN, 0.0)
        fixed = measured.get(metric_names.TRAIN_TIME_S, 0.0) - epochs_run * per_epoch_s
        samples.setdefault(variant, []).append((per_epoch_s / per_epoch[variant], max(0.0, fixed)))
    costs = {
        v: StepCost(
            statistics.median(c for c, _ in values), statistics.median(f for _, f in values)
        )
        for v, values in samples.items()
    }
    return costs, sum(len(values) for values in samples.values())


class Placed(Protocol):
    """A trial's variant and dataset: a planned `Trial`, or a `TrialRecord` of the store."""

    @property
    def variant_id(self) -> str: ...
    @property
    def dataset(self) -> str: ...


Wall = tuple[str, str, float]  # a finished trial's variant id, dataset, and wall time (s)


def run_walls(runs: list[Any]) -> list[Wall]:
    """The wall times of finished trial `runs` (MLflow's), by variant and dataset."""
    from bnplace.store.inventory import wall_seconds

    return [
        (run.data.tags.get(names.VARIANT_ID, ""), run.data.tags.get(names.DATASET, ""), wall)
        for run in runs
        if (wall := wall_seconds(run)) is not None
    ]


def typical_seconds(trials: Sequence[Placed], walls: Sequence[Wall]) -> float | None:
    """The `trials`' time at the lengths measured: per trial, the median wall time of the
    finished trials of its variant on its dataset (else of its dataset, else of all)."""
    by_pair: dict[tuple[str, str], list[float]] = {}
    for variant, dataset, wall in walls:
        by_pair.setdefault((variant, dataset), []).append(wall)
    if not by_pair:
        return None
    by_dataset: dict[str, list[float]] = {}
    for (_, dataset), seconds in by_pair.items():
        by_dataset.setdefault(dataset, []).extend(seconds)
    overall = statistics.median(s for seconds in by_pair.values() for s in seconds)
    medians = {pair: statistics.median(seconds) for pair, seconds in by_pair.items()}
    of_dataset = {dataset: statistics.median(seconds) for dataset, seconds in by_dataset.items()}
    return sum(
        medians.get((t.variant_id, t.dataset), of_dataset.get(t.dataset, overall)) for t in trials
    )


def estimate_time(prepared: Prepared, uri: str) -> TimeEstimate:
    plan = prepared.plan
    per_epoch = steps_per_epoch(prepared)
    from bnplace.trial.choose import count

    # a budget in steps gives its whole epochs; every `choose:` candidate trains the budget once
    epochs = {
        v.id: v.config.train.epochs_for(per_epoch[v.id]) * count(v.config.train)
        for v in plan.variants
    }
    steps_of = {v: epochs[v] * per_epoch[v] for v in epochs}
    steps = sum(steps_of[t.variant_id] for t in plan.trials)
    runs = finished_trials(plan, uri)
    costs, measured = measured_step_costs(runs, per_epoch)
    if not costs:
        return TimeEstimate(len(plan.trials), steps, None)
    fallback = StepCost(
        statistics.median(c.per_step for c in costs.values()),
        statistics.median(c.per_trial for c in costs.values()),
    )
    seconds = 0.0
    for trial in plan.trials:
        cost = costs.get(trial.variant_id, fallback)
        seconds += cost.per_trial + steps_of[trial.variant_id] * cost.per_step
    step_cost = {v: c.per_step for v, c in costs.items()}
    walls = run_walls(runs)
    typical = typical_seconds(plan.trials, walls)
    search = plan.variants[0].config.search
    first_stage = None
    if typical is not None and search is not None and search.seeds.min is not None:
        first = search.seeds.min
        staged = typical_seconds([t for t in plan.trials if t.seed < first], walls)
        first_stage = (first, staged or 0.0)
    return TimeEstimate(len(plan.trials), steps, seconds, step_cost, measured, typical, first_stage)
