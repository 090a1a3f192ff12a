"""Where each planned trial stands in the store: for `bnplace status` and `bnplace export`.

In: a `Plan` (every variant x seed of a config) and a tracking URI. Out: one `TrialRecord` per
planned trial, in plan order: done (a FINISHED run holds its key: resume skips it), failed (its
newest run FAILED), or pending (no run, or only runs left RUNNING or KILLED: it trains on the
next `bnplace run`), with the newest run's ids, params and metrics. A missing SQLite store or
experiment means every trial is pending. `records_frame` shapes the records into one row per
trial for export (csv, or parquet when pyarrow is importable). Reads only; trains nothing.
mlflow and pandas are imported inside the functions.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bnplace.names import tags as names
from bnplace.names.errors import MissingExtraError, StoreNotFound
from bnplace.names.states import FAILED, FINISHED, TrialState

if TYPE_CHECKING:
    import pandas as pd

    from bnplace.plan import Plan, Trial

# "not needed": no run, and seeds on demand or a search's race will never deal it (marked by
# bnplace.run.status, which knows the schedules; this module only reads the store)
Standing = Literal["done", "failed", "pending", "not needed"]
STANDINGS: tuple[Standing, ...] = ("done", "failed", "pending", "not needed")
EXPORT_FORMATS = ("csv", "parquet")


@dataclass(frozen=True)
class TrialRecord:
    variant: str
    variant_id: str
    seed: int
    trial_key: str
    status: Standing
    dataset: str = ""  # its name under `datasets:`; "" for a `data:` config
    run_status: str = ""  # the newest run's MLflow status ("" without a run)
    failure: str = ""  # bnplace.failure of a failed trial
    run_id: str = ""
    variant_run_id: str = ""
    sweep_run_id: str = ""
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    wall_s: float | None = None  # the newest run's wall time, once it ended


def wall_seconds(run: Any) -> float | None:
    """An MLflow run's wall time in seconds; None while it has no end."""
    if run.info.end_time and run.info.start_time:
        return float((run.info.end_time - run.info.start_time) / 1000)
    return None


def trial_records(plan: Plan, uri: str) -> tuple[list[TrialRecord], str]:
    """The plan's trials as the store holds them, and a note ("" or why all are pending)."""
    from bnplace.store.client import existing_client, search_all
    from bnplace.store.keys import key_runs
    from bnplace.store.read import mlflow_errors, role_filter

    try:
        client = existing_client(uri)
    except StoreNotFound:
        return [_pending(t) for t in plan.trials], f"no store at {uri} yet: nothing has run"
    with mlflow_errors(uri):
        experiment = client.get_experiment_by_name(plan.experiment)
        if experiment is None:
            note = f"no experiment '{plan.experiment}' in {uri} yet: nothing has run"
            return [_pending(t) for t in plan.trials], note
        runs = search_all(client, [experiment.experiment_id], role_filter(names.TRIAL))
    chosen_of = key_runs(runs)
    records = []
    for trial in plan.trials:
        chosen = chosen_of.get(trial.key)
        if chosen is None:
            records.append(_pending(trial))
            continue
        state = TrialState.of_run_status(chosen.info.status)
        status: Standing = (
            "done" if state == FINISHED else "failed" if state == FAILED else "pending"
        )
        run_tags = chosen.data.tags
        records.append(
            TrialRecord(
                trial.variant,
                trial.variant_id,
                trial.seed,
                trial.key,
                status,
                dataset=trial.dataset,
                run_status=chosen.info.status,
                failure=run_tags.get(names.FAILURE, ""),
                run_id=chosen.info.run_id,
                variant_run_id=run_tags.get(names.PARENT, ""),
                sweep_run_id=run_tags.get(names.SWEEP_ID, ""),
                params=dict(chosen.data.params),
                metrics=dict(chosen.data.metrics),
                wall_s=wall_seconds(chosen),
            )
        )
    return records, ""


def _pending(trial: Trial) -> TrialRecord:
    return TrialRecord(
        trial.variant, trial.variant_id, trial.seed, trial.key, "pending", dataset=trial.dataset
    )


def counts(records: Sequence[TrialRecord]) -> dict[Standing, int]:
    return {s: sum(1 for r in records if r.status == s) for s in STANDINGS}


def records_frame(plan: Plan, records: Sequence[TrialRecord]) -> pd.DataFrame:
    """One row per trial: ids, variant, axis labels, dataset (with several), seed, status,
    params, metrics."""
    import pandas as pd

    labels = {v.id: dict(v.labels) for v in plan.variants}
    rows = []
    for r in records:
        row: dict[str, object] = {
            "experiment": plan.experiment,
            "variant": r.variant,
            "variant_id": r.variant_id,
            **{f"axis.{axis}": label for axis, label in labels[r.variant_id].items()},
            **({"dataset": r.dataset} if r.dataset else {}),  # a config with `datasets:`
            "seed": r.seed,
            "status": r.status,
            "failure": r.failure,
            "trial_key": r.trial_key,
            "run_id": r.run_id,
            "variant_run_id": r.variant_run_id,
            "sweep_run_id": r.sweep_run_id,
        }
        row |= {f"param.{k}": v for k, v in sorted(r.params.items())}
        row |= {f"metric.{k}": v for k, v in sorted(r.metrics.items())}
        rows.append(row)
    return pd.DataFrame(rows)


def write_export(frame: pd.DataFrame, fmt: str, out: Path) -> Path:
    """Write the frame as csv or parquet (pyarrow); refuses parquet without pyarrow."""
    if fmt == "parquet":
        try:
            importlib.import_module("pyarrow")  # pandas' parquet engine; optional
        except ImportError:
            raise MissingExtraError(
                "pyarrow", "parquet", "bnplace export --format parquet"
            ) from None
        frame.to_parquet(out, engine="pyarrow", index=False)
    else:
        frame.to_csv(out, index=False)
    return out
