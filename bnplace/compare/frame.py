"""MLflow runs to DataFrames: how `bnplace compare` reads a sweep (`compare.record` writes back).

In: an `MlflowClient` and which sweep (an experiment name or a sweep run id, or neither: the
newest sweep in the store), found and searched through `bnplace.store.read`. Out: a
`SweepData` with the sweep's metadata (`SweepInfo`, from the sweep run's tags), a variants table
(one row per variant run of the sweep, in plan order, with its axis labels), a trials table (one
row per trial: variant, variant_id, seed, trial_key, status, failure, run ids, axis labels,
`dataset` when the plan has several datasets, every final metric as a column) and, on
request, a per-epoch history table (variant, variant_id, seed, run_id, epoch, metric, value).
The sweep's plan.json says which trials (keys) it consists of; their runs are taken from every
sweep of the experiment (a resumed or extended sweep counts once per trial: the newest FINISHED
run per key, else the newest run).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from bnplace.compare.search import SearchView, search_view
from bnplace.compare.stats import axis_column
from bnplace.names import tags as names
from bnplace.names.errors import TrackingError
from bnplace.names.states import FINISHED, MISSING, TrialState
from bnplace.stats.sequential import Decision
from bnplace.stats.verdicts import Design
from bnplace.store.client import search_all
from bnplace.store.keys import key_runs, trial_key
from bnplace.store.read import SweepInfo, find_sweep, mlflow_errors, read_plan, role_filter

if TYPE_CHECKING:  # MLflow's types, as the store hands them out
    from bnplace.store.read import MlflowClient, Run


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
    search: SearchView | None = None  # a search: what the race selected and eliminated
    # seeds on demand: {dataset ("" for one): {comparison: decision}} at the newest look the
    # sweep logged (`bnplace.store.looks`); None when compare must recompute them
    decisions: Mapping[str, Mapping[str, Decision]] | None = None


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
        all_variant_runs = search_all(client, exp, role_filter("variant"))
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
        trial_runs = search_all(client, exp, role_filter("trial"))

    sweep_of = {r.info.run_id: r.data.tags.get(names.PARENT, "") for r in all_variant_runs}
    own_variant_runs = {r.info.run_id for r in own_runs}

    def in_this_sweep(run: Run) -> bool:
        tags = run.data.tags
        return (
            tags.get(names.SWEEP_ID) == sweep.run_id
            or tags.get(names.PARENT, "") in own_variant_runs
        )

    rows: list[dict[str, Any]] = []
    datasets = [str(d) for d in plan.get("datasets", [])]  # several datasets: their order
    name_of = dict(zip(variants["variant_id"], variants["variant"], strict=True))
    planned: dict[str, dict[str, Any]] = {
        str(t["key"]): t
        for t in plan.get("trials", [])
        if isinstance(t, dict) and "key" in t and str(t.get("variant_id")) in name_of
    }
    candidates = [
        run
        for run in trial_runs
        if trial_key(run) in planned and (merge_sweeps or in_this_sweep(run))
    ]
    chosen = key_runs(candidates)  # a trial counts once: the run that stands for its key
    for run in candidates:
        key = trial_key(run)
        if chosen.get(key) is run:
            name = name_of[str(planned[key]["variant_id"])]
            rows.append(_trial_row(run, name, sweep_of))
            if datasets:  # from the plan, not the run's tag: a renamed dataset keeps its runs
                rows[-1]["dataset"] = str(planned[key].get("dataset", ""))

    metric_names = dict.fromkeys(k[1:] for row in rows for k in row if k.startswith("\0"))
    metric_columns = {
        key: (key if key not in FIXED_TRIAL_COLUMNS and key not in sweep.axes else f"metric.{key}")
        for key in metric_names
    }
    if rows:
        trials = pd.DataFrame(rows).rename(columns={f"\0{k}": v for k, v in metric_columns.items()})
    else:
        trials = pd.DataFrame({c: [] for c in FIXED_TRIAL_COLUMNS})
    if len(candidates) > len(rows):
        notes.append(
            f"{len(candidates) - len(rows)} older run(s) of the same trial key were superseded "
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
        }
        | ({"dataset": str(t.get("dataset", ""))} if datasets else {})
        for key, t in planned.items()
        if key not in seen
    ]
    design = Design.from_dict(plan.get("design") if plan is not None else None)
    search = search_view(own_runs, design, plan.get("search", {}).get("seeds", {}))
    missing = [
        m for m in missing if m["seed"] < search.eliminated_at.get(m["variant"], m["seed"] + 1)
    ]
    notes += search.notes
    if missing:
        trials = pd.concat([trials, pd.DataFrame(missing)], ignore_index=True)
    missing_seed = int(trials["seed"].isna().sum())
    if missing_seed:
        notes.append(f"{missing_seed} trial(s) have no 'bnplace.seed' tag and cannot be paired")

    axis_cols = [c for c in map(axis_column, sweep.axes) if c in variants.columns]
    if axis_cols:
        labels = variants.set_index("variant")[axis_cols]
        for axis in axis_cols:
            trials[axis] = trials["variant"].map(labels[axis])
    order = {name: i for i, name in enumerate(variants["variant"])}
    by = ["_order", "seed", "start_time"]
    if datasets:
        trials["dataset"] = trials.get("dataset", pd.Series("", index=trials.index)).fillna("")
        trials = trials.assign(_data=trials["dataset"].map({d: i for i, d in enumerate(datasets)}))
        by = ["_order", "_data", "seed", "start_time"]
    trials = (
        trials.assign(_order=trials["variant"].map(order))
        .sort_values(by, kind="stable")
        .drop(columns=["_order", "_data"], errors="ignore")
        .reset_index(drop=True)
    )
    contributed = tuple(dict.fromkeys(s for s in trials["sweep_run_id"] if s))
    if len(contributed) > 1:
        notes.append(f"trials merged from {len(contributed)} sweeps of the experiment")
    decisions = None
    if design.looks:
        with mlflow_errors(uri):
            decisions = _logged_decisions(client, sweep, datasets, notes)
    return SweepData(
        sweep=sweep,
        variants=variants,
        trials=trials,
        merged_sweeps=contributed or (sweep.run_id,),
        design=design,
        search=search if search.notes else None,
        metric_columns=tuple(metric_columns.values()),
        notes=tuple(notes),
        decisions=decisions,
    )


def _logged_decisions(
    client: MlflowClient, sweep: SweepInfo, datasets: Sequence[str], notes: list[str]
) -> dict[str, dict[str, Decision]] | None:
    """The decisions the sweep logged at its newest look of each dataset (None: none logged);
    a note when looks were passed but no decisions logged (an older bnplace ran the sweep):
    compare then recomputes them from the trials."""
    from bnplace.store.looks import logged_decisions

    logged = logged_decisions(client, sweep.run_id, datasets)
    if logged is None:
        notes.append(
            "seeds on demand: this sweep logged no decisions per look (an older bnplace ran "
            "it); they are recomputed from its trials"
        )
    return logged or None


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
