"""MLflow runs to DataFrames: how `bnplace compare` reads a sweep (`compare.record` writes back).

In: the store (`store.read.StoreClient`: no MLflow type here; runs come as plain
`store.read.StoredRun`s) and which sweep (an experiment name or a sweep run id, or neither: the
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
from typing import Any

import pandas as pd

from bnplace.compare.search import SearchView, search_view
from bnplace.compare.stats import axis_column, variant_order
from bnplace.names import tags as names
from bnplace.names.errors import TrackingError
from bnplace.names.metrics import SURVIVORS
from bnplace.names.states import FINISHED, MISSING, TrialState
from bnplace.stats.sequential import Decision
from bnplace.stats.verdicts import Design
from bnplace.store.keys import key_runs, trial_key
from bnplace.store.read import (
    StoreClient,
    StoredRun,
    SweepInfo,
    find_sweep,
    metric_histories,
    mlflow_errors,
    read_plan,
    role_filter,
    stored_runs,
)

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

    @classmethod
    def of_trials(
        cls, trials: pd.DataFrame, sweep: SweepInfo, design: Design | None = None
    ) -> SweepData:
        """A trials table made without MLflow (variant, seed, status, a column per metric), as
        compare reads a sweep: its variants in order of appearance, judged by `design`."""
        return cls(
            sweep=sweep,
            variants=pd.DataFrame({"variant": variant_order(trials)}),
            trials=trials,
            merged_sweeps=(),
            design=design or Design(),
            metric_columns=(),
            notes=(),
        )


def _trial_status(run: StoredRun) -> str:
    tag = run.tags.get(names.STATUS, "")
    if tag:
        return tag
    return TrialState.of_run_status(run.status).value


def _seed(value: str) -> int | float:
    try:
        return int(value)
    except (TypeError, ValueError):
        return math.nan


def _plan_variants(
    plan: dict[str, Any], own_runs: Sequence[StoredRun], axes: Sequence[str]
) -> pd.DataFrame:
    """Variants in plan order, with the sweep's variant run where one exists."""
    run_of = {r.tags.get(names.VARIANT_ID, ""): r.run_id for r in own_runs}
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


def _trial_row(
    run: StoredRun, variant: str, sweep_of_variant_run: Mapping[str, str]
) -> dict[str, Any]:
    tags = run.tags
    parent = tags.get(names.PARENT, "")
    row: dict[str, Any] = {
        "variant": variant,
        "variant_id": tags.get(names.VARIANT_ID, ""),
        "seed": _seed(tags.get(names.SEED, "")),
        "trial_key": tags.get(names.TRIAL_KEY, "") or run.run_id,
        "status": _trial_status(run),
        "failure": tags.get(names.FAILURE, ""),
        "run_id": run.run_id,
        "variant_run_id": parent,
        "sweep_run_id": tags.get(names.SWEEP_ID, "") or sweep_of_variant_run.get(parent, ""),
        "start_time": run.start_time,
    }
    for key, value in run.metrics.items():
        row[f"\0{key}"] = value
    return row


@dataclass(frozen=True)
class _Stored:
    """What `load_sweep` reads from the store before it shapes the tables."""

    sweep: SweepInfo
    notes: tuple[str, ...]  # how the sweep was found
    variant_runs: list[StoredRun]  # every variant run of the experiment
    own_runs: list[StoredRun]  # this sweep's variant runs, oldest first
    plan: dict[str, Any]
    variants: pd.DataFrame  # `_plan_variants`
    trial_runs: list[StoredRun]  # every trial run of the experiment

    @property
    def datasets(self) -> list[str]:
        """Several datasets: their names in plan order (empty for one)."""
        return [str(d) for d in self.plan.get("datasets", [])]

    @property
    def name_of(self) -> dict[str, str]:
        return dict(zip(self.variants["variant_id"], self.variants["variant"], strict=True))

    @property
    def planned(self) -> dict[str, dict[str, Any]]:
        """Trial key -> its entry in plan.json, for the planned variants."""
        known = self.name_of
        return {
            str(t["key"]): t
            for t in self.plan.get("trials", [])
            if isinstance(t, dict) and "key" in t and str(t.get("variant_id")) in known
        }


def _read_store(
    client: StoreClient, uri: str, experiment: str | None, sweep_run_id: str | None
) -> _Stored:
    """Find the sweep, read its plan and the experiment's variant and trial runs."""
    sweep, notes = find_sweep(
        client, experiment=experiment, sweep_run_id=sweep_run_id, tracking_uri=uri
    )
    exp = [sweep.experiment_id]
    variant_runs = stored_runs(client, exp, role_filter("variant"))
    own_runs = [r for r in variant_runs if r.tags.get(names.PARENT) == sweep.run_id]
    own_runs.sort(key=lambda r: r.start_time)
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
    trial_runs = stored_runs(client, exp, role_filter("trial"))
    return _Stored(sweep, notes, variant_runs, own_runs, plan, variants, trial_runs)


def _trial_rows(stored: _Stored, merge_sweeps: bool) -> tuple[list[dict[str, Any]], int]:
    """One row per planned trial that has a run (the run that stands for its key; only this
    sweep's runs without `merge_sweeps`), and how many runs were passed over."""
    sweep_of = {r.run_id: r.tags.get(names.PARENT, "") for r in stored.variant_runs}
    own_variant_runs = {r.run_id for r in stored.own_runs}
    sweep_id = stored.sweep.run_id

    def in_this_sweep(run: StoredRun) -> bool:
        return (
            run.tags.get(names.SWEEP_ID) == sweep_id
            or run.tags.get(names.PARENT, "") in own_variant_runs
        )

    planned, name_of, datasets = stored.planned, stored.name_of, stored.datasets
    candidates = [
        run
        for run in stored.trial_runs
        if trial_key(run) in planned and (merge_sweeps or in_this_sweep(run))
    ]
    chosen = key_runs(candidates)  # a trial counts once: the run that stands for its key
    rows: list[dict[str, Any]] = []
    for run in candidates:
        key = trial_key(run)
        if chosen.get(key) is run:
            rows.append(_trial_row(run, name_of[str(planned[key]["variant_id"])], sweep_of))
            if datasets:  # from the plan, not the run's tag: a renamed dataset keeps its runs
                rows[-1]["dataset"] = str(planned[key].get("dataset", ""))
    return rows, len(candidates) - len(rows)


def _trials_frame(
    rows: list[dict[str, Any]], axes: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The rows as a DataFrame, a column per metric (one named like a fixed column or an axis
    gets the prefix "metric."); and {metric: its column}."""
    metric_names = dict.fromkeys(k[1:] for row in rows for k in row if k.startswith("\0"))
    metric_columns = {
        key: (key if key not in FIXED_TRIAL_COLUMNS and key not in axes else f"metric.{key}")
        for key in metric_names
    }
    if not rows:
        return pd.DataFrame({c: [] for c in FIXED_TRIAL_COLUMNS}), metric_columns
    renamed = {f"\0{k}": v for k, v in metric_columns.items()}
    return pd.DataFrame(rows).rename(columns=renamed), metric_columns


def _missing_rows(stored: _Stored, seen: set[str], search: SearchView) -> list[dict[str, Any]]:
    """A "missing" row ("not run") per planned trial without a run; in a search, only within
    the seeds the race dealt its placement (`_dealt`): the rest were never, or not yet, meant
    to run."""
    name_of, several = stored.name_of, bool(stored.datasets)
    missing: list[dict[str, Any]] = [
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
        | ({"dataset": str(t.get("dataset", ""))} if several else {})
        for key, t in stored.planned.items()
        if key not in seen
    ]
    if search.rule is None and not search.eliminated_at:  # not a search
        return missing
    dealt = _dealt(stored, seen, search)
    return [m for m in missing if m["seed"] < dealt.get(m["variant"], 0)]


def _dealt(stored: _Stored, seen: set[str], search: SearchView) -> dict[str, int]:
    """Per placement of a search, the seeds the race has dealt it: its seeds up to the
    elimination, else the first stage's and every later seed it has a run of (the race deals
    a seed to every survivor at once: a trial of that seed without a run is a gap to fill)."""
    first = search.rule.first if search.rule is not None else 0
    name_of = stored.name_of
    dealt = {name: first for name in name_of.values()}
    for key, t in stored.planned.items():
        seed = _seed(str(t.get("seed", "")))
        if key in seen and not math.isnan(seed):
            name = name_of[str(t["variant_id"])]
            dealt[name] = max(dealt[name], int(seed) + 1)
    return dealt | search.eliminated_at


def _in_order(trials: pd.DataFrame, stored: _Stored) -> pd.DataFrame:
    """The axis labels added; sorted by variant (plan order), dataset, seed and start time."""
    variants, datasets = stored.variants, stored.datasets
    axis_cols = [c for c in map(axis_column, stored.sweep.axes) if c in variants.columns]
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
    return (
        trials.assign(_order=trials["variant"].map(order))
        .sort_values(by, kind="stable")
        .drop(columns=["_order", "_data"], errors="ignore")
        .reset_index(drop=True)
    )


def load_sweep(
    client: StoreClient,
    *,
    experiment: str | None = None,
    sweep_run_id: str | None = None,
    merge_sweeps: bool = True,
    tracking_uri: str = "",
) -> SweepData:
    """Read one sweep (see `find_sweep`) into DataFrames.

    The sweep's plan.json (written by the runner) fixes the variants, their order and the
    planned trials (trial keys). With `merge_sweeps` (the default) a planned trial counts from
    any sweep of the experiment: per trial key the newest FINISHED run, else the newest run
    (`bnplace.store.keys`); a planned trial without any run is listed with status "missing"
    (failure "not run"). Without `merge_sweeps` only the runs of this sweep count. A sweep run
    without a plan.json is refused: nothing else says which trials it consists of.
    """
    uri = tracking_uri or str(client.tracking_uri)
    with mlflow_errors(uri):
        stored = _read_store(client, uri, experiment, sweep_run_id)
    sweep, notes = stored.sweep, list(stored.notes)
    rows, passed_over = _trial_rows(stored, merge_sweeps)
    trials, metric_columns = _trials_frame(rows, sweep.axes)
    if passed_over:
        notes.append(
            f"{passed_over} older run(s) of the same trial key were superseded "
            "(resumed or repeated trials count once)"
        )
    design = Design.from_dict(stored.plan.get("design"))
    seeds = stored.plan.get("search", {}).get("seeds", {})
    looks: list[tuple[int, int]] = []
    if seeds:  # a search: the placements still in after each look, as the sweep logged them
        with mlflow_errors(uri):
            ((_run, _key, logged),) = metric_histories(client, [(sweep.run_id, SURVIVORS)])
        looks = [(step, round(value)) for step, value in logged]
    search = search_view(stored.own_runs, design, seeds, stored.datasets, looks)
    seen = set(trials["trial_key"])
    missing = _missing_rows(stored, seen, search)
    notes += search.notes
    if search.notes and (undealt := sum(k not in seen for k in stored.planned) - len(missing)):
        notes.append(
            f"search: {undealt} planned trial(s) the race has not dealt (past an elimination "
            "or the seeds it has read so far) are left out"
        )
    if missing:
        trials = pd.concat([trials, pd.DataFrame(missing)], ignore_index=True)
    missing_seed = int(trials["seed"].isna().sum())
    if missing_seed:
        notes.append(f"{missing_seed} trial(s) have no 'bnplace.seed' tag and cannot be paired")
    trials = _in_order(trials, stored)
    contributed = tuple(dict.fromkeys(s for s in trials["sweep_run_id"] if s))
    if len(contributed) > 1:
        notes.append(f"trials merged from {len(contributed)} sweeps of the experiment")
    decisions = None
    if design.looks:
        with mlflow_errors(uri):
            decisions = _logged_decisions(client, sweep, stored.datasets, notes)
    return SweepData(
        sweep=sweep,
        variants=stored.variants,
        trials=trials,
        merged_sweeps=contributed or (sweep.run_id,),
        design=design,
        search=search if search.notes else None,
        metric_columns=tuple(metric_columns.values()),
        notes=tuple(notes),
        decisions=decisions,
    )


def _logged_decisions(
    client: StoreClient, sweep: SweepInfo, datasets: Sequence[str], notes: list[str]
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
    client: StoreClient,
    trials: pd.DataFrame,
    *,
    metrics: Sequence[str] = ("loss", "val_loss"),
    tracking_uri: str = "",
) -> pd.DataFrame:
    """Per-epoch values of `metrics` for every finished trial (`store.read.metric_histories`).

    Columns: variant, variant_id, seed, run_id, epoch (the MLflow step), metric, value.
    """
    uri = tracking_uri or str(client.tracking_uri)
    finished = trials[trials["status"] == FINISHED] if "status" in trials else trials.iloc[:0]
    trial_of = {
        run_id: (variant, variant_id, seed)
        for variant, variant_id, seed, run_id in finished[
            ["variant", "variant_id", "seed", "run_id"]
        ].itertuples(index=False)
    }
    wanted = [
        (run_id, key)
        for key in metrics
        if key in finished.columns  # no trial logged it: skip the round trips
        for run_id in finished.loc[finished[key].notna(), "run_id"]
    ]
    records: list[tuple[Any, ...]] = []
    with mlflow_errors(uri):
        for run_id, key, logged in metric_histories(client, wanted):
            for step, value in logged:
                records.append((*trial_of[run_id], run_id, step, key, value))
    history = pd.DataFrame.from_records(records, columns=list(HISTORY_COLUMNS))
    return history.astype({"epoch": int, "value": float}) if len(history) else history
