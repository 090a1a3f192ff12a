"""The comparison written back to MLflow: files, tables, per-variant numbers and verdicts.

In: the store (`store.read.StoreClient`), the compared sweep (`store.SweepInfo`), its variants
table, the statistics table, the comparison rows, and the report files. Out: artifacts on the
sweep run (report files, plots, `statistics.json` and `comparisons.json` via `log_table`), and
metrics and tags on each variant run (`VARIANT_METRICS`, the verdict, the declared contrasts;
with several datasets also each dataset's verdict and the pooled comparison's numbers). Reading
the sweep is `compare.frame`; the MLflow calls are `bnplace.store.read.write_comparison`'s (this
module only decides what is written where).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bnplace.compare.format import rows_of
from bnplace.compare.rows import ComparisonRow, frame_of, of_origin
from bnplace.names import tags as names
from bnplace.names.metrics import POOLED_METRICS, on_dataset, pooled
from bnplace.store.read import SweepInfo, VariantNumbers, write_comparison

if TYPE_CHECKING:
    from bnplace.compare.pooled import DatasetsView
    from bnplace.store.read import StoreClient


def log_comparison(
    client: StoreClient,
    sweep: SweepInfo,
    variants: pd.DataFrame,
    table: pd.DataFrame,
    comparisons: Sequence[ComparisonRow],
    *,
    metric: str,
    files: Mapping[str, Path],
    artifact_dir: str,
    tracking_uri: str = "",
    datasets: DatasetsView | None = None,
    note: str = "",
) -> tuple[str, ...]:
    """Log a comparison to MLflow; returns the artifact paths written to the sweep run.

    Sweep run: every file of `files` under `artifact_dir` (PNGs under `<artifact_dir>/plots`),
    the statistics `table` and the `comparisons` with `log_table` as
    `<artifact_dir>/statistics.json` and `<artifact_dir>/comparisons.json`. Variant runs of the
    sweep: the metrics `VARIANT_METRICS` (non-finite values skipped) and the tag
    bnplace.verdict; the first variant (`a`) of each declared contrast or interaction i gets
    contrast<i>.delta_pct, contrast<i>.delta_pct_low, contrast<i>.delta_pct_high,
    contrast<i>.p_adjusted and the tag bnplace.contrast<i> ("<name>: <verdict> ..."). For a
    metric other than the sweep's main metric the names get the prefix "<metric>." (tags:
    the suffix ".<metric>"). A `note` (the answer in Markdown) becomes the sweep run's
    description in the UI (MLflow's `mlflow.note.content` tag).
    """
    prefix = "" if metric == sweep.metric else f"{metric}."
    suffix = "" if not prefix else f".{metric}"
    numbers = _variant_numbers(table, comparisons, prefix, suffix)
    if datasets is not None:
        _dataset_numbers(datasets, prefix, suffix, numbers)
    run_of = dict(zip(variants["variant"], variants["run_id"], strict=True))
    # a planned variant without a run in this sweep has nothing to carry its numbers
    by_run = {run_of[name]: n for name, n in numbers.items() if run_of.get(name)}
    return write_comparison(
        client,
        tracking_uri or str(client.tracking_uri),
        sweep.run_id,
        files=[
            (f"{artifact_dir}/plots" if path.suffix == ".png" else artifact_dir, path)
            for path in files.values()
        ],
        tables=[
            (f"{artifact_dir}/{name}.json", _jsonable(frame))
            for name, frame in (("statistics", table), ("comparisons", frame_of(comparisons)))
        ],
        numbers=by_run,
        note=note,
    )


def _variant_numbers(
    table: pd.DataFrame, comparisons: Sequence[ComparisonRow], prefix: str, suffix: str
) -> dict[str, VariantNumbers]:
    """Each variant's numbers and verdict from the table, and the declared contrasts' on their
    first variant (see `log_comparison`)."""
    numbers: dict[str, VariantNumbers] = {}
    for row in rows_of(table):
        name = str(row["variant"])
        mine = numbers.setdefault(name, VariantNumbers())
        for col, logged_name in VARIANT_METRICS.items():
            if col in row and _finite(row[col]):
                mine.metrics[prefix + logged_name] = float(row[col])
        verdict = row.get("verdict")  # none when only the declared contrasts are judged
        if isinstance(verdict, str):
            mine.tags[names.VERDICT + suffix] = verdict
    for i, declared in enumerate(of_origin(comparisons, baseline=False), start=1):
        mine = numbers.setdefault(declared.a, VariantNumbers())
        for col, value in _effect_numbers(declared):
            mine.metrics[f"{prefix}contrast{i}.{col}"] = value
        mine.tags[f"{names.CONTRAST_PREFIX}{i}{suffix}"] = contrast_tag(declared)
    return numbers


def _dataset_numbers(
    view: DatasetsView,
    prefix: str,
    suffix: str,
    numbers: dict[str, VariantNumbers],
) -> None:
    """Several datasets: each variant's baseline comparison on every dataset (metrics
    `<dataset>/delta_pct`..., tag bnplace.verdict_on.<dataset>) and the pooled one's numbers
    (`pooled/tau2`...; its verdict is the table's, in bnplace.verdict)."""
    for dataset, stats in view.per.items():
        for row in of_origin(stats.rows, baseline=True):
            mine = numbers.setdefault(row.a, VariantNumbers())
            for col, value in _effect_numbers(row):
                mine.metrics[prefix + on_dataset(col, dataset)] = value
            mine.tags[f"{names.DATASET_VERDICT_PREFIX}{dataset}{suffix}"] = row.verdict
    for row in of_origin(view.pooled_rows, baseline=True):
        mine = numbers.setdefault(row.a, VariantNumbers())
        for col in POOLED_METRICS:
            if _finite(getattr(row, col)):
                mine.metrics[prefix + pooled(col)] = float(getattr(row, col))


def _effect_numbers(row: ComparisonRow) -> list[tuple[str, float]]:
    """A comparison's effect, interval and adjusted p as metrics (the finite ones)."""
    columns = ("delta_pct", "delta_pct_low", "delta_pct_high", "p_adjusted")
    return [(col, float(getattr(row, col))) for col in columns if _finite(getattr(row, col))]


# Per-variant numbers logged to the variant runs: table column -> MLflow metric name.
VARIANT_METRICS = {
    "ci_low": "ci_low",
    "ci_high": "ci_high",
    "diff": "diff_vs_baseline",
    "delta_pct": "delta_pct",
    "delta_pct_low": "delta_pct_low",
    "delta_pct_high": "delta_pct_high",
    "p_value": "p_raw_vs_baseline",
    "p_adjusted": "p_vs_baseline",
    "seed_sd": "seed_sd",
    "skill": "skill",
    "skill_low": "skill_low",
    "skill_high": "skill_high",
    "mean_rank": "mean_rank",
}


def contrast_tag(row: ComparisonRow) -> str:
    """A declared comparison as one readable tag value: name, verdict, effect and interval."""
    return (
        f"{row.comparison}: {row.verdict} ({float(row.delta_pct):+.2f}% "
        f"[{float(row.delta_pct_low):+.2f}, {float(row.delta_pct_high):+.2f}])"
    )


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _jsonable(table: pd.DataFrame) -> pd.DataFrame:
    """The table with infinite numbers as the strings "inf"/"-inf" (JSON has no infinity)."""
    out = table.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            values = out[col]
            if values.isin([math.inf, -math.inf]).any():
                out[col] = values.map(
                    lambda v: ("inf" if v > 0 else "-inf") if v in (math.inf, -math.inf) else v
                ).astype(object)
    return out
