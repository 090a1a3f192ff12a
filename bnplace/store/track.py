"""Record: the MLflow layout of a sweep, written by the driver process alone.

In: the `Plan`, then events from the executor (a trial started, an epoch ended, a trial ended).
Out: MLflow runs: one sweep run per plan (a rerun of the same plan, or a second driver on it,
continues it; see `bnplace.store.claims`), a variant run per variant under it, a trial run per
variant x seed under that, with readable params, `bnplace.*` tags, per-epoch metrics and
artifacts; and the resume look-ups (which trial keys already finished, which runs a killed sweep
left RUNNING). Only the driver writes, so a SQLite store never sees concurrent writers, and
writes are batched (`log_batch`). The layout is documented in docs/tracking.md.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from bnplace import __version__
from bnplace.names import metrics
from bnplace.names.errors import TrackingError
from bnplace.names.metrics import N_FAILED, N_FINISHED, aggregate_name
from bnplace.names.states import (
    FAILED,
    FINISHED,
    KILLED,
    RUNNING,
    UNFINISHED_STATES,
    TrialState,
)
from bnplace.names.tags import (
    AXES,
    BASELINE,
    CONFIG_ARTIFACT,
    CONFIG_DIGEST,
    CUDNN,
    DATA,
    DATASET,
    DIRECTION,
    EXPERIMENT,
    EXPERIMENT_NOTE,
    FAILURE,
    HISTORY_ARTIFACT,
    LAYERS,
    METRIC,
    OPENED,
    PARAM_SEED,
    PARAM_SEEDS,
    PARAM_TRIALS,
    PARAM_VARIANTS,
    PARAMS,
    PARENT,
    PLAN_ARTIFACT,
    PLAN_DIGEST,
    ROLE,
    SEED,
    STATUS,
    SUMMARY_ARTIFACT,
    SUPERSEDED,
    SWEEP,
    SWEEP_ID,
    TASK,
    TRIAL,
    TRIAL_KEY,
    VARIANT,
    VARIANT_ID,
    VARIANT_NAME,
    VERSION,
)
from bnplace.store.client import make_client, search_all, sqlite_path
from bnplace.store.records import (
    config_digest,
    finite,
    flat_params,
    history_csv,
    library_versions,
    plan_digest,
)
from bnplace.store.retrying import Retrying

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from bnplace.execute.schedule import LookRecord
    from bnplace.plan import Plan, Trial, Variant
    from bnplace.trial.result import TrialResult

KIND = ROLE  # the tag naming a run's role (sweep, variant, trial)


def resolve_tracking_uri(cli: str | None, config: str | None, cwd: Path | None = None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else the config's, else ./mlflow.db (absolute)."""
    uri = cli or os.environ.get("MLFLOW_TRACKING_URI") or config or "sqlite:///mlflow.db"
    base = cwd or Path.cwd()
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{(base / uri.removeprefix('sqlite:///')).resolve()}"
    elif "://" not in uri:
        raise TrackingError(
            f"tracking URI {uri!r} is not a URI; use sqlite:///path/to/mlflow.db or "
            "http://host:port (bnplace never uses MLflow's file store)"
        )
    return uri


def _now_ms() -> int:
    return int(time.time() * 1000)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'"


@dataclass
class Tracker:
    """The single writer of a sweep's runs. Create it in the driver process only."""

    uri: str
    experiment: str
    client: MlflowClient = field(init=False, repr=False)
    experiment_id: str = field(init=False)
    sweep_run_id: str = ""
    _variant_runs: dict[str, str] = field(default_factory=dict, repr=False)
    _trial_runs: dict[str, str] = field(default_factory=dict, repr=False)
    _variants: dict[str, Variant] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # MLflow logs each failed SQL write with its traceback before it raises; the sweep says
        # what failed in one message of its own (bnplace.run.sweep), so keep the console readable
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)

        try:
            self.client = cast("MlflowClient", Retrying(make_client(self.uri)))
            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                self.experiment_id = self._create_experiment()
            elif found.lifecycle_stage == "deleted":
                raise TrackingError(
                    f"experiment '{self.experiment}' is deleted in {self.uri}; restore it "
                    "(mlflow experiments restore) or choose another name (--experiment)"
                )
            else:
                self.experiment_id = found.experiment_id
        except TrackingError:
            raise
        except Exception as exc:  # MLflow raises many types for an unreachable store
            raise TrackingError(f"cannot open the MLflow store {self.uri}: {exc}") from None

    def describe_experiment(self, description: str) -> None:
        """Set the experiment's description (the UI shows MLflow's `mlflow.note.content` tag) to
        the config's, when it has one."""
        if not description.strip():
            return
        current = self.client.get_experiment(self.experiment_id).tags.get(EXPERIMENT_NOTE)
        if current != description:
            self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_NOTE, description)

    def _create_experiment(self) -> str:
        """Create the experiment; another driver that created it meanwhile wins."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.create_experiment(
                self.experiment, artifact_location=self._artifact_location()
            )
        except MlflowException:
            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                raise
            return str(found.experiment_id)

    def _artifact_location(self) -> str | None:
        """Next to a SQLite file (not ./mlruns of wherever the command ran); servers decide."""
        db = sqlite_path(self.uri)
        return None if db is None else (db.parent / "mlartifacts" / self.experiment).as_uri()

    # --- look-ups for resume ---------------------------------------------------------------

    def _runs(self, filter_string: str) -> Iterator[Run]:
        yield from search_all(self.client, [self.experiment_id], filter_string)

    def finished_values(self, metric: str) -> dict[str, float]:
        """Trial key -> `metric` of its newest FINISHED run (NaN without it): what resume skips,
        and what seeds on demand has seen."""
        return {
            key: float(run.data.metrics.get(metric, math.nan))
            for key, run in self.latest_finished().items()
        }

    def runs(self, filter_string: str) -> Iterator[Run]:
        """Every run of the experiment matching `filter_string` (paginated)."""
        return self._runs(filter_string)

    def ended_run_ids(self) -> set[str]:
        """The FINISHED and FAILED trial runs now: a claim treats later ones as ended elsewhere."""
        return {
            run.info.run_id
            for state in (FINISHED, FAILED)
            for run in self._runs(
                f"tags.`{KIND}` = '{TRIAL}' and attributes.status = '{state.run_status}'"
            )
        }

    def mark_killed(self, run_id: str, trial: bool) -> None:
        """A run a dead (or interrupted) driver left RUNNING: KILLED (a trial's status tag too)."""
        if trial:
            self.client.set_tag(run_id, STATUS, KILLED.value)
        self.client.set_terminated(run_id, KILLED.run_status)

    # --- writing ---------------------------------------------------------------------------

    def create_sweep_run(self, plan: Plan, config_text: str, claim_tags: dict[str, str]) -> Run:
        """A new sweep run for the plan, tagged with its digests and `claim_tags` (the claim
        `bnplace.store.claims.Claims.open_sweep` contends with)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        tags = {
            KIND: SWEEP,
            EXPERIMENT: plan.experiment,
            TASK: plan.task,
            METRIC: plan.metric,
            DIRECTION: plan.direction,
            BASELINE: plan.baseline,
            AXES: json.dumps(list(plan.axes)),
            CONFIG_DIGEST: config_digest(config_text),
            PLAN_DIGEST: plan_digest(plan, config_text),
            VERSION: __version__,
            OPENED: str(_now_ms()),
            **library_versions(),
            **claim_tags,
        }
        return self.client.create_run(self.experiment_id, run_name=f"sweep {stamp}", tags=tags)

    def set_up_sweep(self, plan: Plan, config_text: str, run_id: str) -> None:
        """Fill a sweep run this driver won: params, config.yaml, plan.json, variant runs."""
        from mlflow.entities import Param

        self._variants = {v.id: v for v in plan.variants}
        self.sweep_run_id = run_id
        params = [
            Param(PARAM_VARIANTS, str(len(plan.variants))),
            Param(PARAM_SEEDS, ",".join(map(str, plan.seeds))),
            Param(PARAM_TRIALS, str(len(plan.trials))),
        ]
        self.client.log_batch(run_id, params=params)
        self.client.log_text(run_id, config_text, CONFIG_ARTIFACT)
        self.client.log_dict(run_id, plan.to_dict(), PLAN_ARTIFACT)
        for variant in plan.variants:  # every variant shows in the UI, run or resumed
            self.variant_run(variant)

    def attach_sweep(self, plan: Plan, run_id: str, created: bool) -> None:
        """Write into the plan's sweep run from now on; one made before (by this driver's
        earlier run or another driver) is continued: RUNNING again, its variant runs found."""
        self._variants = {v.id: v for v in plan.variants}
        self.sweep_run_id = run_id
        if not created:
            self._reopen(plan)

    def _reopen(self, plan: Plan) -> None:
        """Continue the sweep run: RUNNING again, its variant runs found (and any missing made)."""
        sweep = self.sweep_run_id
        self.client.update_run(sweep, status=RUNNING.run_status)
        self.client.set_tag(sweep, OPENED, str(_now_ms()))
        for run in self._runs(f"tags.`{KIND}` = '{VARIANT}' and tags.`{PARENT}` = '{sweep}'"):
            variant_id = run.data.tags.get(VARIANT_ID, "")
            if variant_id in self._variants and variant_id not in self._variant_runs:
                self._variant_runs[variant_id] = run.info.run_id
                if run.info.status != RUNNING.run_status:
                    self.client.update_run(run.info.run_id, status=RUNNING.run_status)
        for variant in plan.variants:
            self.variant_run(variant)

    def variant_run(self, variant: Variant) -> str:
        """The variant's run under this sweep (created once, when the sweep starts)."""
        from mlflow.entities import Param

        if variant.id in self._variant_runs:
            return self._variant_runs[variant.id]
        run = self.client.create_run(
            self.experiment_id,
            run_name=variant.name,
            tags={
                KIND: VARIANT,
                PARENT: self.sweep_run_id,
                SWEEP_ID: self.sweep_run_id,
                VARIANT_NAME: variant.name,
                VARIANT_ID: variant.id,
                LAYERS: variant.layer_order,
                PARAMS: str(variant.params),
                CUDNN: str(variant.cudnn).lower(),
            },
        )
        params = [Param(axis, label) for axis, label in variant.labels]
        if params:
            self.client.log_batch(run.info.run_id, params=params)
        self._variant_runs[variant.id] = run.info.run_id
        return run.info.run_id

    def create_trial_run(self, trial: Trial, claim_tags: dict[str, str]) -> Run:
        """A RUNNING trial run under its variant run: a claim on the trial (store.claims)."""
        variant = self._variants[trial.variant_id]
        return self.client.create_run(
            self.experiment_id,
            run_name=f"{trial.variant} seed={trial.seed}",
            tags={
                KIND: TRIAL,
                PARENT: self.variant_run(variant),
                SWEEP_ID: self.sweep_run_id,
                VARIANT_NAME: trial.variant,
                VARIANT_ID: trial.variant_id,
                SEED: str(trial.seed),
                TRIAL_KEY: trial.key,
                LAYERS: trial.model.layer_order,
                PARAMS: str(variant.params),
                CUDNN: str(variant.cudnn).lower(),
                DATA: trial.data_fingerprint,
                STATUS: RUNNING.value,
                **({DATASET: trial.dataset} if trial.dataset else {}),
                **claim_tags,
            },
        )

    def claimed(self, trial: Trial, run_id: str) -> None:
        """This driver won the claim `run_id` on `trial`: the run is open from here on."""
        self._trial_runs[trial.key] = run_id

    def start_trial(self, trial: Trial) -> str:
        """The trial's worker started it: its params go to the run its claim created."""
        from mlflow.entities import Param

        run_id = self._trial_runs[trial.key]
        params = [Param(k, v) for k, v in flat_params(trial)] + [Param(PARAM_SEED, str(trial.seed))]
        self.client.log_batch(run_id, params=params)
        return run_id

    def log_epochs(self, trial_key: str, epochs: Iterable[tuple[int, dict[str, float]]]) -> None:
        from mlflow.entities import Metric

        now = _now_ms()
        metrics = [
            Metric(name, float(value), now, epoch)
            for epoch, values in epochs
            for name, value in values.items()
            if finite(value)
        ]
        if metrics:
            self.client.log_batch(self._trial_runs[trial_key], metrics=metrics)

    def end_trial(
        self, result: TrialResult, taken_over: Callable[[str, str], str | None] | None = None
    ) -> str:
        """Record the trial's result in the run its claim made. Fencing (`taken_over`, from
        `Claims`; docs/tracking.md): checked before the run is ended and again after, so a
        driver whose claim was taken over (it was frozen past the stale period) keeps its result
        in a KILLED run tagged with the run that superseded it, never a second FINISHED one."""
        from mlflow.entities import Metric, RunTag

        key = result.trial_key
        run_id = self._trial_runs[key]
        taker = taken_over(key, run_id) if taken_over else None
        now = _now_ms()
        metrics = [
            Metric(name, float(value), now, 0)
            for name, value in result.metrics.items()
            if finite(value)
        ]
        tags = [RunTag(STATUS, (KILLED if taker else result.status).value)]
        if result.reason:
            tags.append(RunTag(FAILURE, result.reason[:4000]))
        tags += [RunTag(name, value[:4000]) for name, value in result.tags.items()]
        if taker:
            tags.append(RunTag(SUPERSEDED, taker))
        self.client.log_batch(run_id, metrics=metrics, tags=tags)
        if result.summary:
            self.client.log_text(run_id, result.summary, SUMMARY_ARTIFACT)
        if result.history:
            self.client.log_text(run_id, history_csv(result.history), HISTORY_ARTIFACT)
        self.client.set_terminated(run_id, (KILLED if taker else result.status).run_status)
        if not taker and taken_over and (taker := taken_over(key, run_id)):
            self.client.set_tag(run_id, SUPERSEDED, taker)  # taken over while it was written
            self.mark_killed(run_id, trial=True)
        del self._trial_runs[key]  # open until here: a failed write leaves it open
        return run_id

    def kill_open_trials(self) -> int:
        """Ctrl-C: mark the trials still running KILLED (their results are lost, not wrong)."""
        count = 0
        for run_id in self._trial_runs.values():
            self.client.set_tag(run_id, STATUS, KILLED.value)
            self.client.set_terminated(run_id, KILLED.run_status)
            count += 1
        self._trial_runs.clear()
        return count

    def write_aggregates(self, plan: Plan) -> dict[str, dict[str, float]]:
        """Per variant: mean/sd/min/max of the main metric over all its finished trials, with
        the count of trials that ran and did not finish (a trial never trained, as a stopped
        sweep or a search leaves some, is neither)."""
        import statistics

        from mlflow.entities import Metric

        from bnplace.store.keys import key_runs

        standing = key_runs(self._runs(f"tags.`{KIND}` = '{TRIAL}'"))
        ended = {k: TrialState.of_run_status(str(run.info.status)) for k, run in standing.items()}
        out: dict[str, dict[str, float]] = {}

        def aggregate(trials: list[Trial]) -> dict[str, float]:
            keys = [t.key for t in trials]
            values = [
                standing[k].data.metrics[plan.metric]
                for k in keys
                if ended.get(k) == FINISHED and plan.metric in standing[k].data.metrics
            ]
            failed = sum(1 for k in keys if ended.get(k) in UNFINISHED_STATES)
            agg: dict[str, float] = {N_FINISHED: len(values), N_FAILED: failed}
            if values:
                agg |= {
                    aggregate_name(plan.metric, "mean"): statistics.fmean(values),
                    aggregate_name(plan.metric, "sd"): (
                        statistics.stdev(values) if len(values) > 1 else 0.0
                    ),
                    aggregate_name(plan.metric, "min"): min(values),
                    aggregate_name(plan.metric, "max"): max(values),
                }
            return agg

        for variant in plan.variants:
            mine = [t for t in plan.trials if t.variant_id == variant.id]
            agg = aggregate(mine)  # several datasets: over all of them, and per dataset
            for dataset in plan.datasets:
                on = aggregate([t for t in mine if t.dataset == dataset])
                agg |= {metrics.on_dataset(k, dataset): v for k, v in on.items()}
            now = _now_ms()
            self.client.log_batch(
                self.variant_run(variant),
                metrics=[Metric(k, float(v), now, 0) for k, v in agg.items()],
            )
            out[variant.name] = agg
        return out

    def log_look(self, record: LookRecord) -> None:
        """Seeds on demand: the sweep run's state after a look, with the look as step, and the
        look's decisions (per dataset with several: each dataset's looks are its own; see
        `bnplace.store.looks`)."""
        from bnplace.store.looks import log_look

        log_look(self.client, self.sweep_run_id, record)

    def latest_finished(self, keys: Iterable[str] | None = None) -> dict[str, Run]:
        """The newest FINISHED run of each trial key in `keys` (None: every key); it may have
        finished in an earlier sweep (`bnplace.store.keys`: the one rule for a key's run)."""
        from bnplace.store.keys import key_runs

        wanted = None if keys is None else set(keys)
        runs = self._runs(
            f"tags.`{KIND}` = '{TRIAL}' and attributes.status = '{FINISHED.run_status}'"
        )
        latest = key_runs(runs, finished_only=True)
        return {k: run for k, run in latest.items() if wanted is None or k in wanted}

    def open_trials(self) -> list[str]:
        """The run ids of the trials this driver holds and has not ended."""
        return list(self._trial_runs.values())

    def end_sweep(self, status: str) -> None:
        for run_id in self._variant_runs.values():
            self.client.set_terminated(run_id, status)
        if self.sweep_run_id:
            self.client.set_terminated(self.sweep_run_id, status)
