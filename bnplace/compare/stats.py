"""Statistics of a sweep: per-variant summaries, the comparison family, verdicts, ranks.

In: a trials DataFrame, one row per trial (variant x seed) with the columns `variant`, `seed`,
`status` ("finished" | "failed" | "killed" | "running" | "missing"), `failure` (reason, may be
empty) and one column per logged final metric; the `Design` (alpha, margin, failure rule,
declared contrasts). Out: a frozen `Statistics`: one row per variant with n finished / failed,
mean, sd, t-interval of the mean, median, IQR, its comparison with the baseline (relative effect
in % with its exact interval, p-values, verdict; see `compare.paired`), skill against
persistence, Friedman mean ranks, cost and BN-diagnostic columns; one row per comparison of the
family (baseline comparisons, declared contrasts, interactions); failures; notes.

Pure: pandas, numpy and scipy only; no MLflow, no files, no plotting; deterministic.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats as st

from bnplace.compare.paired import compare_pairs, persistence_skill
from bnplace.compare.rows import ComparisonRow, Verdicts, frame_of
from bnplace.compare.side import side_metrics
from bnplace.names.errors import DataError
from bnplace.names.metrics import baseline_metric_for, direction_for
from bnplace.names.states import FINISHED, KILLED, RUNNING
from bnplace.stats.pairing import FamilyQuestion, values_by_seed
from bnplace.stats.sequential import Decision
from bnplace.stats.verdicts import BASELINE, DROP, Design, T, family, min_seeds

Direction = Literal["min", "max"]

REQUIRED_COLUMNS = ("variant", "seed", "status")
MEAN_CONFIDENCE = 0.95  # the per-variant t-interval of the mean (a description, not a verdict)

# The baseline comparison's columns copied into the per-variant table.
VERSUS_BASELINE = (
    "n_pairs", "diff", "delta_pct", "delta_pct_low", "delta_pct_high", "p_value", "p_adjusted",
    "level", "reachable", "verdict", "within_margin", "excluded", "seed_sd", "p_failures",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class FriedmanResult:
    """Friedman test over the seeds that every variant finished, with mean ranks (1 = best)."""

    statistic: float
    pvalue: float
    n_seeds: int
    n_variants: int
    ranks: pd.DataFrame  # columns: variant, mean_rank; sorted best (lowest rank) first
    critical_difference: float  # Nemenyi CD on mean ranks at alpha


@dataclass(frozen=True, eq=False)
class Statistics(Verdicts):
    """Everything `compute_statistics` derives from one trials table."""

    metric: str
    direction: Direction
    baseline: str
    table: pd.DataFrame  # one row per variant, best first (see `compute_statistics`)
    rows: tuple[ComparisonRow, ...]  # one per comparison of the family (`paired.compare_pairs`)
    failures: pd.DataFrame  # columns: variant, reason, n
    friedman: FriedmanResult | None
    notes: tuple[str, ...]
    design: Design


def axis_column(axis: str) -> str:
    """Column of a sweep axis's labels: namespaced, since an axis may be called "order"."""
    return f"axis:{axis}"


def _check_columns(trials: pd.DataFrame, metric: str) -> None:
    for column in REQUIRED_COLUMNS:
        if column not in trials.columns:
            raise DataError(
                f"the trials table has no {column!r} column "
                f"(columns: {', '.join(map(str, trials.columns))})",
                file="trials table",
                column=column,
            )


def _ok_mask(trials: pd.DataFrame, metric: str) -> pd.Series:
    """Trials that enter the statistics: finished with a finite value of `metric`."""
    if metric not in trials.columns:
        return pd.Series(False, index=trials.index)
    values = pd.to_numeric(trials[metric], errors="coerce").astype(float)
    return (trials["status"].astype(str) == FINISHED) & np.isfinite(values)


def _failure_reason(row: pd.Series, metric: str) -> str:
    status = str(row["status"])
    if status == FINISHED:
        return f"no finite {metric}"
    reason = row.get("failure")
    if isinstance(reason, str) and reason.strip():
        return reason.strip()
    shown: dict[str, str] = {KILLED: "killed", RUNNING: "unfinished"}
    return shown.get(status, "unknown")


def failure_table(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Trials that do not enter the statistics, counted per variant and reason.

    A finished trial without a finite value of `metric` counts as failed ("no finite <metric>").
    """
    _check_columns(trials, metric)
    bad = trials[~_ok_mask(trials, metric)]
    if bad.empty:
        return pd.DataFrame({"variant": [], "reason": [], "n": []}).astype({"n": int})
    reasons = bad.apply(lambda row: _failure_reason(row, metric), axis=1)
    out = (
        pd.DataFrame({"variant": bad["variant"].astype(str).to_numpy(), "reason": reasons})
        .groupby(["variant", "reason"], sort=False)
        .size()
        .reset_index(name="n")
    )
    return out.sort_values(["variant", "n"], ascending=[True, False], kind="stable").reset_index(
        drop=True
    )


def mean_interval(
    values: Sequence[float] | np.ndarray, confidence: float = MEAN_CONFIDENCE
) -> tuple[float, float]:
    """Student-t interval of the mean (NaN below 2 values): exact for normal seeds, and close
    at 10 seeds for skewed ones, where a bootstrap interval undercovers (tests/test_verdicts)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return (math.nan, math.nan)
    half = float(st.t.ppf(0.5 + confidence / 2, x.size - 1)) * float(x.std(ddof=1))
    half /= math.sqrt(x.size)
    return (float(x.mean()) - half, float(x.mean()) + half)


def summarize_variants(
    trials: pd.DataFrame,
    metric: str,
    *,
    variants: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-variant summary of `metric` over finished trials, in `variants` order.

    Columns: variant, n_trials, n_finished, n_failed, failures ("reason: n; ..."), mean, sd,
    median, q1, q3, iqr, ci_low, ci_high (t-interval of the mean, `MEAN_CONFIDENCE`).
    """
    _check_columns(trials, metric)
    names = list(variants) if variants is not None else variant_order(trials)
    ok = _ok_mask(trials, metric)
    fails = failure_table(trials, metric)
    rows = []
    for name in names:
        mine = trials["variant"].astype(str) == name
        x = pd.to_numeric(trials.loc[mine & ok, metric], errors="coerce").to_numpy(dtype=float)
        f = fails[fails["variant"] == name]
        q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75]) if x.size else [math.nan] * 3
        low, high = mean_interval(x)
        rows.append(
            {
                "variant": name,
                "n_trials": int(mine.sum()),
                "n_finished": int(x.size),
                "n_failed": int(f["n"].sum()),
                "failures": "; ".join(
                    f"{r}: {n}" for r, n in zip(f["reason"], f["n"], strict=True)
                ),
                "mean": float(x.mean()) if x.size else math.nan,
                "sd": float(x.std(ddof=1)) if x.size >= 2 else math.nan,
                "median": float(med),
                "q1": float(q1),
                "q3": float(q3),
                "iqr": float(q3 - q1),
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pd.DataFrame(rows)


def friedman(
    trials: pd.DataFrame,
    metric: str,
    direction: Direction,
    *,
    variants: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> FriedmanResult | None:
    """Friedman test over seeds finished by every variant; None below 3 variants or 2 seeds.

    Ranks are taken within each seed (1 = best, honouring `direction`, ties averaged); the
    Nemenyi critical difference CD = q_alpha(k) / sqrt(2) * sqrt(k (k + 1) / (6 N)) says how far
    apart two mean ranks must be to differ (Demsar 2006).
    """
    _check_columns(trials, metric)
    names = list(variants) if variants is not None else variant_order(trials)
    if len(names) < 3:
        return None
    wide = values_by_seed(trials, metric)[0].reindex(columns=names)
    complete = wide.dropna()
    n, k = len(complete), len(names)
    if n < 2:
        return None
    values = complete.to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = st.friedmanchisquare(*[values[:, j] for j in range(k)])
    oriented = values if direction == "min" else -values
    ranks = st.rankdata(oriented, axis=1).mean(axis=0)
    q = float(st.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    cd = q * math.sqrt(k * (k + 1) / (6.0 * n))
    rank_frame = (
        pd.DataFrame({"variant": names, "mean_rank": ranks})
        .sort_values("mean_rank", kind="stable")
        .reset_index(drop=True)
    )
    stat, p = float(res.statistic), float(res.pvalue)
    if not math.isfinite(p):  # every seed ranks the variants identically tied
        stat, p = 0.0, 1.0
    return FriedmanResult(
        statistic=stat,
        pvalue=p,
        n_seeds=n,
        n_variants=k,
        ranks=rank_frame,
        critical_difference=cd,
    )


def variant_order(trials: pd.DataFrame) -> list[str]:
    """The variants of a trials table in order of first appearance."""
    return list(dict.fromkeys(trials["variant"].astype(str)))


def compute_statistics(
    trials: pd.DataFrame,
    *,
    metric: str,
    direction: Direction | None = None,
    baseline: str | None = None,
    variants: Sequence[str] | None = None,
    axes: Sequence[str] = (),
    design: Design | None = None,
    decisions: Mapping[str, Decision] | None = None,
) -> Statistics:
    """All statistics of one metric: the per-variant table, the comparison family, failures,
    Friedman, notes.

    `variants` fixes the variant order (config order; default: first appearance in `trials`),
    `baseline` defaults to the first variant, `direction` to `direction_for(metric)`. `axes` are
    trial columns holding sweep-axis labels, copied into the table. The table is sorted best
    first by mean (variants without a finished trial last) and has the columns: rank, variant,
    order (position in `variants`), is_baseline, the axes, the `summarize_variants` columns, the
    baseline comparison's `VERSUS_BASELINE` columns, skill / skill_low / skill_high /
    beats_persistence (forecasts), mean_rank (Friedman, when computed) and the `side_metrics`
    columns. `decisions`: a sequential design's decisions as the sweep logged them
    (`paired.compare_pairs`).
    """
    _check_columns(trials, metric)
    direction = direction or direction_for(metric)
    if direction not in ("min", "max"):
        raise DataError(f"direction must be 'min' or 'max', got {direction!r}", column=metric)
    names, baseline = _names_and_baseline(trials, variants, baseline)
    if metric not in trials.columns:
        trials = trials.assign(**{metric: math.nan})
    known = set(names)  # a contrast naming a variant this table lacks (--filter) is left out
    design = design or Design()
    design = replace(
        design, contrasts=tuple(c for c in design.contrasts if set(c.variants) <= known)
    )
    contrasts = family(names, baseline, design)
    rows = compare_pairs(trials, FamilyQuestion(metric, direction, contrasts, design), decisions)
    comparisons = frame_of(rows)
    fried = friedman(trials, metric, direction, variants=names, alpha=design.alpha)
    on = _Variants(trials, metric, direction, names, baseline, axes)
    table = _variant_table(on, comparisons, design, fried)
    notes = _notes(table, comparisons, metric, baseline, fried, design)
    return Statistics(
        metric=metric,
        direction=direction,
        baseline=baseline,
        table=table,
        rows=tuple(rows),
        failures=failure_table(trials, metric),
        friedman=fried,
        notes=tuple(notes),
        design=design,
    )


@dataclass(frozen=True)
class _Variants:
    """The per-variant table's inputs: the trials, the metric, its direction, the variants in
    order, the baseline and the axis columns."""

    trials: pd.DataFrame
    metric: str
    direction: str
    names: list[str]
    baseline: str
    axes: Sequence[str]


def _variant_table(
    on: _Variants, comparisons: pd.DataFrame, design: Design, fried: FriedmanResult | None
) -> pd.DataFrame:
    """One row per variant, best first (the columns `compute_statistics` lists)."""
    trials, metric, names, baseline = on.trials, on.metric, on.names, on.baseline
    summary = summarize_variants(trials, metric, variants=names)
    versus = comparisons[comparisons["origin"] == "baseline"]
    versus = versus.assign(variant=versus["a"])[["variant", *VERSUS_BASELINE]]
    side = side_metrics(trials, metric, variants=names)
    skill = persistence_skill(trials, metric, baseline_metric_for(metric), names, design.alpha)

    table = summary.merge(versus, on="variant", how="left").merge(side, on="variant", how="left")
    if skill["skill"].notna().any():
        table = table.merge(skill, on="variant", how="left")
        table["beats_persistence"] = pd.Series(  # True / False / None, never a NumPy bool
            [
                None if not isinstance(v, bool | np.bool_) else bool(v)
                for v in table["beats_persistence"]
            ],
            index=table.index,
            dtype=object,
        )
    table.loc[table["variant"] == baseline, "verdict"] = BASELINE
    table.insert(1, "order", range(len(names)))
    table.insert(2, "is_baseline", table["variant"] == baseline)
    for pos, column in enumerate(c for c in map(axis_column, on.axes) if c in trials.columns):
        labels = trials.groupby(trials["variant"].astype(str))[column].first()
        table.insert(3 + pos, column, table["variant"].map(labels))
    if fried is not None:
        table["mean_rank"] = table["variant"].map(
            dict(zip(fried.ranks["variant"], fried.ranks["mean_rank"], strict=True))
        )
    key = table["mean"] if on.direction == "min" else -table["mean"]
    table = (
        table.assign(_key=key)
        .sort_values(["_key", "order"], na_position="last", kind="stable")
        .drop(columns="_key")
        .reset_index(drop=True)
    )
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def _names_and_baseline(
    trials: pd.DataFrame, variants: Sequence[str] | None, baseline: str | None
) -> tuple[list[str], str]:
    """The variants in order (`variants`, then any other the trials name) and the baseline
    (default: the first); DataError for an empty table or an unknown baseline."""
    names = list(variants) if variants is not None else variant_order(trials)
    names += sorted(set(trials["variant"].astype(str)) - set(names))
    if not names:
        raise DataError("the trials table is empty: no variant to compare", file="trials table")
    baseline = baseline or names[0]
    if baseline not in names:
        raise DataError(
            f"baseline variant {baseline!r} is not among the variants ({', '.join(names)})",
            file="trials table",
            column="variant",
        )
    return names, baseline


def _is_true(value: object) -> bool:
    """A table flag that is True (Python or NumPy), not False, None or NaN."""
    return isinstance(value, bool | np.bool_) and bool(value)


def _notes(
    table: pd.DataFrame,
    comparisons: pd.DataFrame,
    metric: str,
    baseline: str,
    fried: FriedmanResult | None,
    design: Design,
) -> list[str]:
    notes: list[str] = []
    m = len(comparisons)
    base = table[table["variant"] == baseline].iloc[0]
    if base["n_finished"] == 0:
        notes.append(
            f"the baseline {baseline!r} has no finished trial: no paired comparison is possible"
        )
    if m and (~comparisons["reachable"].astype(bool)).any():
        notes.append(
            f"with {m} comparison{'s' if m != 1 else ''} the "
            f"{'t' if design.interval == T else 'exact signed-rank'} test needs at least "
            f"{min_seeds(m, design.alpha, design.interval)} paired seeds (finite on both sides) "
            "for any verdict; comparisons with "
            "fewer show the widest interval the seeds give (its level in the 'level' column) and "
            "stay inconclusive"
        )
    if design.interval == T:
        notes.append(
            "intervals: Student t on the mean paired log ratio (`compare.interval: t`); it "
            "assumes near-normal ratios (see `bnplace plan`)"
        )
    if design.failures == DROP:
        notes.append("failures: drop (a failed seed leaves the pairing of its comparisons)")
    elif (comparisons[["n_failed_a", "n_failed_b"]].to_numpy().sum() if m else 0) > 0:
        notes.append(
            "failures: rank_worst (a failed seed ranks worse than every finished seed in the "
            "paired test; an interaction pairs finished seeds only)"
        )
    if "beats_persistence" in table.columns and table["n_finished"].gt(0).any():
        best = table.iloc[0]
        if not _is_true(best["beats_persistence"]):
            why = (
                f"; {int(best['n_finished'])} seeds cannot reach the interval's level"
                if not isinstance(best["beats_persistence"], bool | np.bool_)
                and best["skill_low"] > 0
                else ""
            )
            notes.append(
                f"the best variant {best['variant']!r} is not shown to beat the persistence "
                f"baseline (last value): skill {best['skill']:.3g} "
                f"[{best['skill_low']:.3g}, {best['skill_high']:.3g}]{why}"
            )
    if fried is None and len(table) >= 3:
        notes.append("Friedman test skipped: fewer than 2 seeds finished by every variant")
    return notes
