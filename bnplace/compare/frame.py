"""MLflow to DataFrames: how `bnplace compare` reads a sweep (`compare.record` writes back).

In: a tracking URI and an experiment name or a sweep run id (or neither: the newest sweep in the
store), read with `MlflowClient` in the layout of bnplace/track.py (sweep run > variant runs >
trial runs, see notes/TRACKING.md). Out: a `SweepData` with the sweep's metadata (`SweepInfo`,
from the sweep run's tags), a variants table (one row per variant run of the sweep, in plan
order, with its axis labels), a trials table (one row per trial: variant, variant_id, seed,
trial_key, status, failure, run ids, axis labels and every final metric as a column) and, on
request, a per-epoch history table (variant, variant_id, seed, run_id, epoch, metric, value).
The sweep's plan.json says which trials (keys) it consists of; their runs are taken from every
sweep of the experiment (a resumed or extended sweep counts once per trial: the newest FINISHED
run per key, else the newest run). mlflow is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bnplace import tags as names
from bnplace.compare.stats import axis_column
from bnplace.errors import TrackingError, did_you_mean
from bnplace.result import FINISHED, MISSING, TrialState
from bnplace.verdicts import Design

NOT_RUN_NOTE = "planned trial(s) have no run yet (listed as 'not run')"

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run


FIXED_TRIAL_COLUMNS = (
    "variant",
    "variant_id",
    "seed",
    "trial_key",
    "status",
    "failure",
    "run_id",
    "variant_run_id",
    "sweep_run_id",
    "start_time",
)
HISTORY_COLUMNS = ("variant", "variant_id", "seed", "run_id", "epoch", "metric", "value")


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


@dataclass(frozen=True, eq=False)
class SweepData:
    """What compare reads from MLflow for one sweep."""

    sweep: SweepInfo
    variants: pd.DataFrame  # variant, variant_id, run_id, layers, params_tag, <axis columns>
    trials: pd.DataFrame  # FIXED_TRIAL_COLUMNS + axis columns + one column per final metric
    merged_sweeps: tuple[str, ...]  # sweep run ids that contributed trials
    design: Design  # how the comparisons are judged, as the plan recorded it
    metric_columns: tuple[str, ...]  # the metric columns of `trials`
    notes: tuple[str, ...]


@contextlib.contextmanager
def mlflow_errors(tracking_uri: str) -> Iterator[None]:
    """Turn MLflow exceptions into TrackingError naming the store."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        raise TrackingError(f"MLflow store {tracking_uri}: {exc.message}") from exc


def client_for(tracking_uri: str) -> MlflowClient:
    """An `MlflowClient` for `tracking_uri`; a SQLite store must exist already (opening a
    missing one would create an empty store where the user mistyped a path)."""
    from mlflow import MlflowClient

    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri.removeprefix("sqlite:///").split("?", 1)[0])
        if str(path) not in ("", ":memory:") and not path.exists():
            raise TrackingError(
                f"MLflow store {tracking_uri}: the SQLite file {path} does not exist "
                "(run `bnplace run` first, or pass the store the sweep was logged to)"
            )
    return MlflowClient(tracking_uri=tracking_uri)


def _search(
    client: MlflowClient,
    experiment_ids: Sequence[str],
    filter_string: str,
    *,
    order_by: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[Run]:
    """All runs matching `filter_string` (paginated), optionally only the first `limit`."""
    runs: list[Run] = []
    token: str | None = None
    while True:
        page = client.search_runs(
            list(experiment_ids),
            filter_string,
            max_results=min(limit, 1000) if limit else 1000,
            order_by=list(order_by) if order_by else None,
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token or (limit is not None and len(runs) >= limit):
            return runs[:limit] if limit else runs


def _kind_filter(kind: str, parent: str | None = None) -> str:
    text = f"tags.`{names.ROLE}` = '{kind}'"
    if parent:
        text += f" and tags.`mlflow.parentRunId` = '{parent}'"
    return text


def _all_experiments(client: MlflowClient) -> list[Any]:
    experiments: list[Any] = []
    token: str | None = None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        experiments.extend(page)
        token = page.token
        if not token:
            return experiments


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
    client: MlflowClient,
    *,
    experiment: str | None = None,
    sweep_run_id: str | None = None,
    tracking_uri: str = "",
) -> tuple[SweepInfo, tuple[str, ...]]:
    """The sweep to compare and notes on how it was found.

    `sweep_run_id` wins (a variant or trial run id is followed up to its sweep); else the newest
    sweep of `experiment`; else the newest sweep in the store. Raises TrackingError when none.
    """
    from mlflow.exceptions import MlflowException

    uri = tracking_uri or str(client.tracking_uri)
    notes: list[str] = []
    exp_id: str | None = None
    if experiment is not None:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            known = [e.name for e in _all_experiments(client)]
            hint = did_you_mean(experiment, known)
            raise TrackingError(
                f"MLflow store {uri}: no experiment named {experiment!r}"
                + (f" (did you mean {hint!r}?)" if hint else "")
                + (f"; experiments: {', '.join(sorted(known))}" if known else "; it is empty")
            )
        exp_id = exp.experiment_id
    if sweep_run_id is not None:
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
                break
            parent = run.data.tags.get(names.PARENT)
            if kind not in ("variant", "trial") or not parent:
                raise TrackingError(
                    f"MLflow store {uri}: run {run_id} is not a bnplace sweep run "
                    f"(tag {names.ROLE}={kind or '<missing>'}); pass a sweep run id or an "
                    "experiment"
                )
            notes.append(f"run {run_id} is a {kind} run; comparing its sweep")
            run_id = parent
        else:  # pragma: no cover - the layout has at most two levels
            raise TrackingError(f"MLflow store {uri}: no sweep run above run {sweep_run_id}")
        if exp_id is not None and run.info.experiment_id != exp_id:
            raise TrackingError(
                f"MLflow store {uri}: sweep run {run.info.run_id} belongs to experiment id "
                f"{run.info.experiment_id}, not to experiment {experiment!r}"
            )
        return _sweep_info(client, run, uri), tuple(notes)
    exp_ids = (
        [exp_id] if exp_id is not None else [e.experiment_id for e in _all_experiments(client)]
    )
    sweeps = _search(
        client, exp_ids, _kind_filter("sweep"), order_by=["attributes.start_time DESC"], limit=1
    )
    if not sweeps:
        where = f"experiment {experiment!r}" if experiment is not None else "the store"
        raise TrackingError(
            f"MLflow store {uri}: no bnplace sweep run in {where}; run `bnplace run` first"
        )
    return _sweep_info(client, sweeps[0], uri), tuple(notes)


def _trial_status(run: Run) -> str:
    tag = run.data.tags.get(names.STATUS, "")
    if tag:
        return tag
    return TrialState.of_run_status(run.info.status).value


def _seed(value: str) -> int | float:
    try:
        return int(value)
    except (TypeError, ValueError):
        return math.nan


def read_plan(client: MlflowClient, sweep_run_id: str) -> dict[str, Any] | None:
    """The sweep run's plan.json (variants in plan order, planned trial keys), or None."""
    import tempfile

    from mlflow.exceptions import MlflowException

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


def _plan_variants(
    plan: dict[str, Any], own_runs: Sequence[Run], axes: Sequence[str]
) -> pd.DataFrame:
    """Variants in plan order, with the sweep's variant run where one exists."""
    run_of = {r.data.tags.get(names.VARIANT_ID, ""): r.info.run_id for r in own_runs}
    rows = []
    for v in plan["variants"]:
        labels = v.get("labels") or {}
        row: dict[str, Any] = {
            "variant": str(v["name"]),
            "variant_id": str(v["id"]),
            "run_id": run_of.get(str(v["id"]), ""),
            "layers": str(v.get("layers", "")),
            "params_tag": str(v.get("params", "")),
        }
        for axis in axes:
            row[axis_column(axis)] = str(labels.get(axis, ""))
        rows.append(row)
    columns = ["variant", "variant_id", "run_id", "layers", "params_tag"]
    return pd.DataFrame(rows, columns=columns + [axis_column(a) for a in axes])


def _trial_row(run: Run, variant: str, sweep_of_variant_run: Mapping[str, str]) -> dict[str, Any]:
    tags = run.data.tags
    parent = tags.get(names.PARENT, "")
    row: dict[str, Any] = {
        "variant": variant,
        "variant_id": tags.get(names.VARIANT_ID, ""),
        "seed": _seed(tags.get(names.SEED, "")),
        "trial_key": tags.get(names.TRIAL_KEY, "") or run.info.run_id,
        "status": _trial_status(run),
        "failure": tags.get(names.FAILURE, ""),
        "run_id": run.info.run_id,
        "variant_run_id": parent,
        "sweep_run_id": tags.get(names.SWEEP_ID, "") or sweep_of_variant_run.get(parent, ""),
        "start_time": int(run.info.start_time or 0),
        "_finished_run": run.info.status == "FINISHED",
    }
    for key, value in run.data.metrics.items():
        row[f"\0{key}"] = value
    return row


def load_sweep(
    client: MlflowClient,
    *,
    experiment: str | None = None,
    sweep_run_id: str | None = None,
    merge_sweeps: bool = True,
    tracking_uri: str = "",
) -> SweepData:
    """Read one sweep (see `find_sweep`) into DataFrames.

    The sweep's plan.json (written by the runner) fixes the variants, their order and the
    planned trials (trial keys). With `merge_sweeps` (the default) a planned trial counts from
    any sweep of the experiment: per trial key the newest FINISHED run, else the newest run; a
    planned trial without any run is listed with status "missing" (failure "not run"). Without
    `merge_sweeps` only the runs of this sweep count. A sweep run without a plan.json is
    refused: nothing else says which trials it consists of.
    """
    uri = tracking_uri or str(client.tracking_uri)
    with mlflow_errors(uri):
        sweep, notes_found = find_sweep(
            client, experiment=experiment, sweep_run_id=sweep_run_id, tracking_uri=uri
        )
        notes = list(notes_found)
        exp = [sweep.experiment_id]
        all_variant_runs = _search(client, exp, _kind_filter("variant"))
        own_runs = [r for r in all_variant_runs if r.data.tags.get(names.PARENT) == sweep.run_id]
        own_runs.sort(key=lambda r: int(r.info.start_time or 0))
        plan = read_plan(client, sweep.run_id)
        if plan is None:  # bnplace run writes it before the first trial
            raise TrackingError(
                f"MLflow store {uri}: sweep run {sweep.run_id} ({sweep.run_name}) has no "
                "plan.json artifact, so its variants and trials are unknown; was it written "
                "by `bnplace run`?"
            )
        variants = _plan_variants(plan, own_runs, sweep.axes)
        if variants.empty:
            raise TrackingError(
                f"MLflow store {uri}: sweep run {sweep.run_id} ({sweep.run_name}) plans no "
                "variants; nothing to compare"
            )
        trial_runs = _search(client, exp, _kind_filter("trial"))

    sweep_of = {r.info.run_id: r.data.tags.get(names.PARENT, "") for r in all_variant_runs}
    own_variant_runs = {r.info.run_id for r in own_runs}

    def in_this_sweep(run: Run) -> bool:
        tags = run.data.tags
        return (
            tags.get(names.SWEEP_ID) == sweep.run_id
            or tags.get(names.PARENT, "") in own_variant_runs
        )

    rows: list[dict[str, Any]] = []
    name_of = dict(zip(variants["variant_id"], variants["variant"], strict=True))
    planned: dict[str, dict[str, Any]] = {
        str(t["key"]): t
        for t in plan.get("trials", [])
        if isinstance(t, dict) and "key" in t and str(t.get("variant_id")) in name_of
    }
    for run in trial_runs:
        key = run.data.tags.get(names.TRIAL_KEY, "")
        if key in planned and (merge_sweeps or in_this_sweep(run)):
            name = name_of[str(planned[key]["variant_id"])]
            rows.append(_trial_row(run, name, sweep_of))

    metric_names = dict.fromkeys(k[1:] for row in rows for k in row if k.startswith("\0"))
    metric_columns = {
        key: (key if key not in FIXED_TRIAL_COLUMNS and key not in sweep.axes else f"metric.{key}")
        for key in metric_names
    }
    if rows:
        trials = pd.DataFrame(rows).rename(columns={f"\0{k}": v for k, v in metric_columns.items()})
    else:
        trials = pd.DataFrame({c: [] for c in (*FIXED_TRIAL_COLUMNS, "_finished_run")})

    n_before = len(trials)
    trials = _newest_per(trials, ["trial_key"])
    if len(trials) < n_before:
        notes.append(
            f"{n_before - len(trials)} older run(s) of the same trial key were superseded "
            "(resumed or repeated trials count once)"
        )
    seen = set(trials["trial_key"])
    missing = [
        {
            "variant": name_of[str(t["variant_id"])],
            "variant_id": str(t["variant_id"]),
            "seed": _seed(str(t.get("seed", ""))),
            "trial_key": key,
            "status": MISSING.value,
            "failure": "not run",
            "run_id": "",
            "variant_run_id": "",
            "sweep_run_id": "",
            "start_time": 0,
            "_finished_run": False,
        }
        for key, t in planned.items()
        if key not in seen
    ]
    if missing:
        trials = pd.concat([trials, pd.DataFrame(missing)], ignore_index=True)
        notes.append(f"{len(missing)} {NOT_RUN_NOTE}")
    missing_seed = int(trials["seed"].isna().sum())
    if missing_seed:
        notes.append(f"{missing_seed} trial(s) have no 'bnplace.seed' tag and cannot be paired")

    axis_cols = [c for c in map(axis_column, sweep.axes) if c in variants.columns]
    if axis_cols:
        labels = variants.set_index("variant")[axis_cols]
        for axis in axis_cols:
            trials[axis] = trials["variant"].map(labels[axis])
    order = {name: i for i, name in enumerate(variants["variant"])}
    trials = (
        trials.assign(_order=trials["variant"].map(order))
        .sort_values(["_order", "seed", "start_time"], kind="stable")
        .drop(columns=["_order", "_finished_run"])
        .reset_index(drop=True)
    )
    contributed = tuple(dict.fromkeys(s for s in trials["sweep_run_id"] if s))
    if len(contributed) > 1:
        notes.append(f"trials merged from {len(contributed)} sweeps of the experiment")
    return SweepData(
        sweep=sweep,
        variants=variants,
        trials=trials,
        merged_sweeps=contributed or (sweep.run_id,),
        design=Design.from_dict(plan.get("design") if plan is not None else None),
        metric_columns=tuple(metric_columns.values()),
        notes=tuple(notes),
    )


def _newest_per(trials: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group of `keys`: the newest run whose MLflow status is FINISHED, else the newest."""
    if trials.empty:
        return trials
    ranked = trials.sort_values(["_finished_run", "start_time"], ascending=False, kind="stable")
    return ranked.drop_duplicates(keys).sort_index()


def load_history(
    client: MlflowClient,
    trials: pd.DataFrame,
    *,
    metrics: Sequence[str] = ("loss", "val_loss"),
    tracking_uri: str = "",
) -> pd.DataFrame:
    """Per-epoch values of `metrics` for every finished trial (one `get_metric_history` each).

    Columns: variant, variant_id, seed, run_id, epoch (the MLflow step), metric, value.
    """
    uri = tracking_uri or str(client.tracking_uri)
    finished = trials[trials["status"] == FINISHED] if "status" in trials else trials.iloc[:0]
    records: list[tuple[Any, ...]] = []
    with mlflow_errors(uri):
        for key in metrics:
            if key not in finished.columns:
                continue  # no trial logged it: skip the round trips
            logged = finished[finished[key].notna()]
            ids = logged[["variant", "variant_id", "seed", "run_id"]].itertuples(index=False)
            for variant, variant_id, seed, run_id in ids:
                for m in client.get_metric_history(run_id, key):
                    records.append((variant, variant_id, seed, run_id, m.step, key, m.value))
    history = pd.DataFrame.from_records(records, columns=list(HISTORY_COLUMNS))
    return history.astype({"epoch": int, "value": float}) if len(history) else history
