"""The MLflow store as compare sees it: find the sweep, read plan.json, write the comparison.

In: a client from `bnplace.store.client`, and an experiment name or a run id (or neither: the
newest sweep in the store), read in the layout of bnplace/store/track.py (sweep run > variant
runs > trial runs, see docs/tracking.md). Out: the sweep to compare with its metadata from the
sweep run's tags (`find_sweep`, `SweepInfo`), the filter for the runs of one role
(`role_filter`), the sweep's plan.json (`read_plan`), the store's experiments
(`experiment_ids`), the trials' metric histories (`metric_histories`), the comparison written
back (`write_comparison`), and `mlflow_errors`, which turns MLflow's exceptions into
`TrackingError`. No DataFrames: `bnplace.compare.frame` shapes what is read here. mlflow is
imported inside the functions.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from bnplace.names import tags as names
from bnplace.names.errors import TrackingError, did_you_mean
from bnplace.store.client import all_experiments, make_client, search_all

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run


class StoreClient(Protocol):
    """The store as compare holds it: the client `bnplace.store.client.existing_client` made,
    which compare hands back to the store's functions and never calls (compare names no MLflow
    type)."""

    @property
    def tracking_uri(self) -> str: ...


def _mlflow(client: StoreClient) -> MlflowClient:
    """The MLflow client behind a `StoreClient` (the store made it)."""
    return cast("MlflowClient", client)


@dataclass(frozen=True)
class StoredRun:
    """A run as compare reads it: plain values."""

    run_id: str
    status: str  # MLflow's run status: FINISHED, FAILED, KILLED, RUNNING, SCHEDULED
    start_time: int  # ms since the epoch
    tags: Mapping[str, str]
    metrics: Mapping[str, float]


def stored_runs(
    client: StoreClient, experiment_ids: Sequence[str], filter_string: str
) -> list[StoredRun]:
    """Every run matching `filter_string` (every page read), as plain values."""
    return [
        StoredRun(
            r.info.run_id,
            str(r.info.status),
            int(r.info.start_time or 0),
            dict(r.data.tags),
            dict(r.data.metrics),
        )
        for r in search_all(_mlflow(client), experiment_ids, filter_string)
    ]


def metric_histories(
    client: StoreClient, wanted: Sequence[tuple[str, str]]
) -> Iterator[tuple[str, str, list[tuple[int, float]]]]:
    """(run id, metric, its (step, value) pairs) for each (run id, metric) in `wanted`: one
    `get_metric_history` each. Many reads from a SQLite store want its query statistics
    refreshed first (`bnplace.store.client.refresh_query_statistics`, which says why)."""
    for run_id, key in wanted:
        history = _mlflow(client).get_metric_history(run_id, key)
        yield run_id, key, [(m.step, m.value) for m in history]


@dataclass(frozen=True)
class SweepInfo:
    """The sweep run compared (the newest one when several are merged) and its tags."""

    run_id: str
    run_name: str
    experiment: str
    experiment_id: str
    task: str  # "forecast" | "classify" | "" when the tag is missing
    metric: str
    direction: str  # "min" | "max" | "" when the tag is missing
    baseline: str  # variant name, "" when the tag is missing
    axes: tuple[str, ...]
    config_digest: str
    version: str
    start_time: int  # ms since the epoch
    tracking_uri: str


@contextlib.contextmanager
def mlflow_errors(tracking_uri: str) -> Iterator[None]:
    """Turn MLflow exceptions into TrackingError naming the store."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        raise TrackingError(f"MLflow store {tracking_uri}: {exc.message}") from exc


def role_filter(role: str, parent: str | None = None) -> str:
    """The search filter for the runs of one role (sweep, variant, trial), under `parent`."""
    text = f"tags.`{names.ROLE}` = '{role}'"
    if parent:
        text += f" and tags.`mlflow.parentRunId` = '{parent}'"
    return text


def _sweep_info(client: MlflowClient, run: Run, tracking_uri: str) -> SweepInfo:
    tags = run.data.tags
    raw_axes = tags.get(names.AXES, "[]") or "[]"
    try:
        axes = json.loads(raw_axes)
        if not isinstance(axes, list):
            raise ValueError("not a list")
    except ValueError as exc:
        raise TrackingError(
            f"sweep run {run.info.run_id}: tag 'bnplace.axes' should be a JSON list of axis "
            f"names, got {raw_axes!r} ({exc})"
        ) from exc
    experiment = client.get_experiment(run.info.experiment_id)
    return SweepInfo(
        run_id=run.info.run_id,
        run_name=run.info.run_name or "",
        experiment=tags.get(names.EXPERIMENT, experiment.name),
        experiment_id=run.info.experiment_id,
        task=tags.get(names.TASK, ""),
        metric=tags.get(names.METRIC, ""),
        direction=tags.get(names.DIRECTION, ""),
        baseline=tags.get(names.BASELINE, ""),
        axes=tuple(str(a) for a in axes),
        config_digest=tags.get(names.CONFIG_DIGEST, ""),
        version=tags.get(names.VERSION, ""),
        start_time=int(run.info.start_time or 0),
        tracking_uri=tracking_uri,
    )


def find_sweep(
    store: StoreClient,
    *,
    experiment: str | None = None,
    sweep_run_id: str | None = None,
    tracking_uri: str = "",
) -> tuple[SweepInfo, tuple[str, ...]]:
    """The sweep to compare and notes on how it was found.

    `sweep_run_id` wins (a variant or trial run id is followed up to its sweep); else the newest
    sweep of `experiment`; else the newest sweep in the store. Raises TrackingError when none.
    """
    client = _mlflow(store)
    uri = tracking_uri or str(client.tracking_uri)
    notes: list[str] = []
    exp_id = _experiment_id(client, experiment, uri) if experiment is not None else None
    if sweep_run_id is not None:
        run = _sweep_above(client, sweep_run_id, uri, notes)
        if exp_id is not None and run.info.experiment_id != exp_id:
            raise TrackingError(
                f"MLflow store {uri}: sweep run {run.info.run_id} belongs to experiment id "
                f"{run.info.experiment_id}, not to experiment {experiment!r}"
            )
        return _sweep_info(client, run, uri), tuple(notes)
    exp_ids = [exp_id] if exp_id is not None else [e.experiment_id for e in all_experiments(client)]
    # the newest: the sweep run a driver last opened (a rerun of a plan continues its run)
    sweeps = sorted(search_all(client, exp_ids, role_filter("sweep")), key=_opened, reverse=True)
    if not sweeps:
        where = f"experiment {experiment!r}" if experiment is not None else "the store"
        raise TrackingError(
            f"MLflow store {uri}: no bnplace sweep run in {where}; run `bnplace run` first"
        )
    return _sweep_info(client, sweeps[0], uri), tuple(notes)


def _experiment_id(client: MlflowClient, experiment: str, uri: str) -> str:
    """The id of the experiment named `experiment`; an unknown name lists the known ones."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        known = [e.name for e in all_experiments(client)]
        hint = did_you_mean(experiment, known)
        raise TrackingError(
            f"MLflow store {uri}: no experiment named {experiment!r}"
            + (f" (did you mean {hint!r}?)" if hint else "")
            + (f"; experiments: {', '.join(sorted(known))}" if known else "; it is empty")
        )
    return str(exp.experiment_id)


def _sweep_above(client: MlflowClient, sweep_run_id: str, uri: str, notes: list[str]) -> Run:
    """The sweep run `sweep_run_id` is, or is under (a variant or trial run is followed up to its
    sweep, with a note in `notes` per step)."""
    from mlflow.exceptions import MlflowException

    run_id = sweep_run_id
    for _ in range(3):
        try:
            run = client.get_run(run_id)
        except MlflowException as exc:
            raise TrackingError(
                f"MLflow store {uri}: no run with id {run_id!r} ({exc.message})"
            ) from exc
        kind = run.data.tags.get(names.ROLE, "")
        if kind == "sweep":
            return run
        parent = run.data.tags.get(names.PARENT)
        if kind not in ("variant", "trial") or not parent:
            raise TrackingError(
                f"MLflow store {uri}: run {run_id} is not a bnplace sweep run "
                f"(tag {names.ROLE}={kind or '<missing>'}); pass a sweep run id or an "
                "experiment"
            )
        notes.append(f"run {run_id} is a {kind} run; comparing its sweep")
        run_id = parent
    raise TrackingError(  # pragma: no cover - the layout has at most two levels
        f"MLflow store {uri}: no sweep run above run {sweep_run_id}"
    )


def _opened(run: Run) -> tuple[int, int]:
    """When a driver last opened the sweep run (its start when the tag is missing)."""
    start = int(run.info.start_time or 0)
    opened = run.data.tags.get(names.OPENED, "")
    return (int(opened) if opened.isdigit() else start, start)


def read_plan(store: StoreClient, sweep_run_id: str) -> dict[str, Any] | None:
    """The sweep run's plan.json (variants in plan order, planned trial keys), or None."""
    import tempfile

    from mlflow.exceptions import MlflowException

    client = _mlflow(store)
    paths = {f.path for f in client.list_artifacts(sweep_run_id)}
    if "plan.json" not in paths:
        return None
    with tempfile.TemporaryDirectory(prefix="bnplace-plan-") as tmp:
        try:
            local = client.download_artifacts(sweep_run_id, "plan.json", tmp)
            plan = json.loads(Path(local).read_text(encoding="utf-8"))
        except (MlflowException, OSError, ValueError) as exc:
            raise TrackingError(
                f"sweep run {sweep_run_id}: cannot read its plan.json artifact ({exc})"
            ) from exc
    if not isinstance(plan, dict) or not isinstance(plan.get("variants"), list):
        raise TrackingError(
            f"sweep run {sweep_run_id}: plan.json has no 'variants' list "
            f"(keys: {', '.join(plan) if isinstance(plan, dict) else type(plan).__name__})"
        )
    return plan


def experiment_ids(tracking_uri: str) -> list[tuple[str, str, str]]:
    """Every experiment of the store but MLflow's "Default", as (name, id, the id of its newest
    sweep run or ""). A SQLite store that does not exist yet is created (as `mlflow server` on
    it does), so it lists nothing."""
    client = make_client(tracking_uri)
    with mlflow_errors(tracking_uri):
        found = []
        for exp in all_experiments(client):
            if exp.name == "Default":
                continue
            newest = search_all(
                client,
                [exp.experiment_id],
                role_filter(names.SWEEP),
                order_by=["attributes.start_time DESC"],
                limit=1,
            )
            found.append((exp.name, exp.experiment_id, newest[0].info.run_id if newest else ""))
        return found


@dataclass
class VariantNumbers:
    """What a comparison writes on one variant run: metrics (name -> value) and tags."""

    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def write_comparison(
    store: StoreClient,
    tracking_uri: str,
    sweep_run_id: str,
    *,
    files: Sequence[tuple[str, Path]],
    tables: Sequence[tuple[str, Any]],
    numbers: Mapping[str, VariantNumbers],
    note: str = "",
) -> tuple[str, ...]:
    """Log a comparison: `files` as artifacts of the sweep run (artifact folder, local path),
    `tables` with `log_table` (artifact file, DataFrame), and each variant run's `numbers`
    (by run id) in one batch, all at one timestamp; a `note` becomes the sweep run's description
    (MLflow's `mlflow.note.content` tag). Returns the artifact paths written."""
    from mlflow.entities import Metric, RunTag

    client = _mlflow(store)
    logged: list[str] = []
    now = int(time.time() * 1000)
    with mlflow_errors(tracking_uri):
        for folder, path in files:
            client.log_artifact(sweep_run_id, str(path), artifact_path=folder)
            logged.append(f"{folder}/{path.name}")
        for artifact_file, frame in tables:
            client.log_table(sweep_run_id, data=frame, artifact_file=artifact_file)
            logged.append(artifact_file)
        if note:
            client.set_tag(sweep_run_id, names.RUN_NOTE, note)
        for run_id, mine in numbers.items():
            metrics = [Metric(k, v, now, 0) for k, v in mine.metrics.items()]
            tags = [RunTag(k, v) for k, v in mine.tags.items()]
            if metrics or tags:
                client.log_batch(run_id, metrics=metrics, tags=tags)
    return tuple(logged)
