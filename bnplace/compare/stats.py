"""Statistics of a sweep: per-variant summaries, paired tests against a baseline, verdicts.

In: a trials DataFrame, one row per trial (variant x seed) with the columns `variant`, `seed`,
`status` ("finished" | "failed" | "killed" | "running"), `failure` (reason, may be empty) and one
column per logged final metric. Out: DataFrames and frozen dataclasses (`Statistics`): one row
per variant with n finished / failed, mean, sd, median, IQR, bootstrap CI, the paired difference
to the baseline (pairs by seed, bootstrap CI, Wilcoxon and paired t p-values, Holm-corrected
across variants, paired effect size d_z, seeds needed to detect it, verdict), Friedman mean ranks,
and cost / persistence / BN-diagnostic columns where those metrics are present.

Pure: pandas, numpy and scipy only; no MLflow, no files, no plotting. Deterministic: every
bootstrap uses a `numpy.random.Generator` seeded from `StatsOptions.seed`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats as st

from bnplace.errors import DataError
from bnplace.plan import direction_for

Direction = Literal["min", "max"]

FINISHED = "finished"
BASELINE_VERDICT = "baseline"
REQUIRED_COLUMNS = ("variant", "seed", "status")

# Metrics shown beside the main metric when the trials carry them: (column, summary, label).
SIDE_METRICS: tuple[tuple[str, str, str], ...] = (
    ("time_per_epoch_s", "mean", "time_per_epoch_s"),
    ("train_time_s", "mean", "train_time_s"),
    ("epochs_run", "mean", "epochs_run"),
    ("params", "median", "params"),
)
# Diagnostics shown with their mean and their range over seeds ("above 1 on every seed" is a
# claim about the minimum): labels <name>, <name>_lo, <name>_hi (a "_max" suffix dropped).
DIAGNOSTICS = ("bn_shift_max", "bn_train_vs_infer_max", "infer_vs_train_loss")


def range_labels(column: str) -> tuple[str, str]:
    """The labels of a diagnostic's smallest and largest value over seeds."""
    stem = column.removesuffix("_max")
    return f"{stem}_lo", f"{stem}_hi"


@dataclass(frozen=True)
class StatsOptions:
    """Knobs of the statistics; the defaults are what `bnplace compare` uses."""

    alpha: float = 0.05  # family-wise error rate (Holm) and per-test level for seeds_needed
    power: float = 0.8  # power targeted by seeds_needed
    confidence: float = 0.95  # bootstrap CI level
    n_boot: int = 10_000  # bootstrap resamples
    seed: int = 0  # seed of the bootstrap generator


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
class Statistics:
    """Everything `compute_statistics` derives from one trials table."""

    metric: str
    direction: Direction
    baseline: str
    table: pd.DataFrame  # one row per variant, best first (see `compute_statistics`)
    failures: pd.DataFrame  # columns: variant, reason, n
    friedman: FriedmanResult | None
    notes: tuple[str, ...]
    options: StatsOptions

    @property
    def verdicts(self) -> dict[str, str]:
        return dict(zip(self.table["variant"], self.table["verdict"], strict=True))


def axis_column(axis: str) -> str:
    """Column of a sweep axis's labels: namespaced, since an axis may be called "order"."""
    return f"axis:{axis}"


def no_evidence(n_pairs: int) -> str:
    """The verdict text when a difference is not established: says how many seeds were used."""
    return f"no evidence at {n_pairs} seed{'' if n_pairs == 1 else 's'}"


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values; NaN entries stay NaN and do not count in m."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    if m == 0:
        return adjusted
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for i, idx in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[idx]))
        adjusted[idx] = running
    return adjusted


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap CI (BCa, percentile as a fallback) of the mean; NaN when fewer than 2 values."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return (math.nan, math.nan)
    if np.ptp(x) == 0.0:  # every resample has the same mean
        return (float(x[0]), float(x[0]))
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = st.bootstrap(
                (x,),
                np.mean,
                n_resamples=n_boot,
                confidence_level=confidence,
                method=method,
                rng=np.random.default_rng(seed),
            )
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return (low, high)
    return (math.nan, math.nan)


def paired_pvalues(diffs: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(Wilcoxon signed-rank p, paired t p) for paired differences; NaN below 2 pairs.

    All-zero differences give p = 1 for both (scipy's t-test would give NaN).
    """
    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        return (math.nan, math.nan)
    if np.all(d == 0.0):
        return (1.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p_w = float(st.wilcoxon(d).pvalue)
        # ttest_rel(variant, baseline) == ttest_rel(diffs, 0); a constant non-zero diff: t = inf
        p_t = 0.0 if np.ptp(d) == 0.0 else float(st.ttest_rel(d, np.zeros_like(d)).pvalue)
    return (p_w, p_t)


def effect_size(diffs: Sequence[float] | np.ndarray) -> float:
    """Paired Cohen's d_z = mean / sd of the differences (signed like the differences)."""
    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        return math.nan
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0.0:
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean / sd


def wilcoxon_min_pairs(alpha: float = 0.05) -> int:
    """Fewest pairs at which the exact two-sided Wilcoxon test can reach p < alpha (2^(1-n))."""
    n = 1
    while 2.0 ** (1 - n) >= alpha:
        n += 1
    return n


def seeds_needed(d: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Seeds a paired test needs to detect effect size `d` (two-sided `alpha`, `power`).

    Normal approximation with the usual t-correction, n = ((z_{1-a/2} + z_power) / d)^2
    + z_{1-a/2}^2 / 2, rounded up, and never below the fewest pairs at which Wilcoxon can reach
    `alpha`. Infinite for d = 0, NaN for an unknown d. d = 1 needs 10 seeds, d = 0.5 needs 34.
    """
    if d is None or math.isnan(d):
        return math.nan
    if d == 0.0:
        return math.inf
    z_a = float(st.norm.ppf(1 - alpha / 2))
    z_b = float(st.norm.ppf(power))
    n = ((z_a + z_b) / abs(d)) ** 2 + z_a**2 / 2 if math.isfinite(d) else 0.0
    return float(max(math.ceil(n), wilcoxon_min_pairs(alpha)))


def persistence_metric_for(metric: str) -> str:
    """The persistence-baseline column matching a forecast metric: test_rmse -> persistence_rmse."""
    return "persistence_" + metric.removeprefix("test_")


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
    return {"killed": "killed", "running": "unfinished"}.get(status, "unknown")


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


def _paired_frame(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Finished values as a seed x variant frame; raises on duplicate (variant, seed) rows."""
    ok = trials[_ok_mask(trials, metric)]
    dup = ok.duplicated(["variant", "seed"], keep=False)
    if dup.any():
        first = ok[dup].iloc[0]
        raise DataError(
            f"variant {first['variant']!r} has several finished rows for seed {first['seed']}; "
            "one row per (variant, seed) is expected",
            file="trials table",
            column="seed",
        )
    values = pd.to_numeric(ok[metric], errors="coerce").astype(float)
    frame = pd.DataFrame(
        {"variant": ok["variant"].astype(str), "seed": ok["seed"], "value": values}
    )
    return frame.pivot(index="seed", columns="variant", values="value")


def describe(
    trials: pd.DataFrame,
    metric: str,
    *,
    variants: Sequence[str] | None = None,
    options: StatsOptions = StatsOptions(),
) -> pd.DataFrame:
    """Per-variant summary of `metric` over finished trials, in `variants` order.

    Columns: variant, n_trials, n_finished, n_failed, failures ("reason: n; ..."), mean, sd,
    median, q1, q3, iqr, ci_low, ci_high (bootstrap CI of the mean).
    """
    _check_columns(trials, metric)
    names = list(variants) if variants is not None else _variant_order(trials)
    ok = _ok_mask(trials, metric)
    fails = failure_table(trials, metric)
    rows = []
    for name in names:
        mine = trials["variant"].astype(str) == name
        x = pd.to_numeric(trials.loc[mine & ok, metric], errors="coerce").to_numpy(dtype=float)
        f = fails[fails["variant"] == name]
        q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75]) if x.size else [math.nan] * 3
        low, high = bootstrap_ci(
            x, confidence=options.confidence, n_boot=options.n_boot, seed=options.seed
        )
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


def paired_vs_baseline(
    trials: pd.DataFrame,
    metric: str,
    direction: Direction,
    baseline: str,
    *,
    variants: Sequence[str] | None = None,
    options: StatsOptions = StatsOptions(),
) -> pd.DataFrame:
    """Each variant against `baseline`, paired by seed (only seeds finished by both).

    Columns: variant, n_pairs, diff (mean of variant - baseline), diff_median, diff_ci_low,
    diff_ci_high (bootstrap CI of the mean difference), p_wilcoxon, p_ttest, p_holm (Holm over
    the non-baseline variants' Wilcoxon p), effect_size (d_z, signed like diff), seeds_needed,
    verdict ("baseline", "better", "worse", or "no evidence at n seeds"). "better" / "worse"
    need p_holm < alpha AND a CI that excludes 0; "better" honours `direction`.
    """
    _check_columns(trials, metric)
    names = list(variants) if variants is not None else _variant_order(trials)
    if baseline not in names:
        raise DataError(
            f"baseline variant {baseline!r} is not among the variants ({', '.join(names)})",
            file="trials table",
            column="variant",
        )
    wide = _paired_frame(trials, metric)
    rows = []
    for name in names:
        if name == baseline:
            n_base = int(wide[name].notna().sum()) if name in wide.columns else 0
            rows.append({"variant": name, "n_pairs": n_base, "verdict": BASELINE_VERDICT})
            continue
        if name in wide.columns and baseline in wide.columns:
            pair = wide[[name, baseline]].dropna()
            d = (pair[name] - pair[baseline]).to_numpy(dtype=float)
        else:
            d = np.array([], dtype=float)
        p_w, p_t = paired_pvalues(d)
        es = effect_size(d)
        low, high = bootstrap_ci(
            d, confidence=options.confidence, n_boot=options.n_boot, seed=options.seed
        )
        rows.append(
            {
                "variant": name,
                "n_pairs": int(d.size),
                "diff": float(d.mean()) if d.size else math.nan,
                "diff_median": float(np.median(d)) if d.size else math.nan,
                "diff_ci_low": low,
                "diff_ci_high": high,
                "p_wilcoxon": p_w,
                "p_ttest": p_t,
                "effect_size": es,
                "seeds_needed": seeds_needed(es, alpha=options.alpha, power=options.power),
            }
        )
    out = pd.DataFrame(rows)
    for col in ("diff", "diff_median", "diff_ci_low", "diff_ci_high", "p_wilcoxon", "p_ttest"):
        if col not in out.columns:
            out[col] = math.nan
    for col in ("effect_size", "seeds_needed"):
        if col not in out.columns:
            out[col] = math.nan
    out["p_holm"] = holm(out["p_wilcoxon"].to_numpy(dtype=float))
    sign = 1.0 if direction == "max" else -1.0
    verdicts = []
    for row in out.itertuples(index=False):
        if isinstance(row.verdict, str) and row.verdict == BASELINE_VERDICT:
            verdicts.append(BASELINE_VERDICT)
            continue
        excludes_zero = row.diff_ci_low > 0 or row.diff_ci_high < 0
        if row.n_pairs >= 2 and row.p_holm < options.alpha and excludes_zero:
            side = 1.0 if row.diff_ci_low > 0 else -1.0
            verdicts.append("better" if side * sign > 0 else "worse")
        else:
            verdicts.append(no_evidence(int(row.n_pairs)))
    out["verdict"] = verdicts
    return out[
        [
            "variant",
            "n_pairs",
            "diff",
            "diff_median",
            "diff_ci_low",
            "diff_ci_high",
            "p_wilcoxon",
            "p_ttest",
            "p_holm",
            "effect_size",
            "seeds_needed",
            "verdict",
        ]
    ]


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
    names = list(variants) if variants is not None else _variant_order(trials)
    if len(names) < 3:
        return None
    wide = _paired_frame(trials, metric).reindex(columns=names)
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


def side_metrics(
    trials: pd.DataFrame, metric: str, *, variants: Sequence[str] | None = None
) -> pd.DataFrame:
    """Cost, persistence and BN-diagnostic columns per variant, over finished trials.

    Columns (each only when the trials carry it): persistence (mean of the persistence twin of
    `metric`, e.g. persistence_rmse for test_rmse), time_per_epoch_s, train_time_s, epochs_run
    (means), params (median), and the `DIAGNOSTICS` (means, and their range over seeds as
    `range_labels`).
    """
    _check_columns(trials, metric)
    names = list(variants) if variants is not None else _variant_order(trials)
    finished = trials[trials["status"].astype(str) == FINISHED]
    out = pd.DataFrame({"variant": names})
    specs = [(persistence_metric_for(metric), "mean", "persistence"), *SIDE_METRICS]
    for column in DIAGNOSTICS:
        lo, hi = range_labels(column)
        specs += [(column, "mean", column), (column, "min", lo), (column, "max", hi)]
    for column, how, label in specs:
        if column not in trials.columns or column == metric:
            continue
        values = pd.to_numeric(finished[column], errors="coerce").astype(float)
        grouped = values.groupby(finished["variant"].astype(str))
        agg = grouped.agg(how)
        out[label] = out["variant"].map(agg).astype(float)
        if out[label].isna().all():
            out = out.drop(columns=label)
    return out


def _variant_order(trials: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(trials["variant"].astype(str)))


def compute_statistics(
    trials: pd.DataFrame,
    *,
    metric: str,
    direction: Direction | None = None,
    baseline: str | None = None,
    variants: Sequence[str] | None = None,
    axes: Sequence[str] = (),
    options: StatsOptions = StatsOptions(),
) -> Statistics:
    """All statistics of one metric: the per-variant table, failures, Friedman, notes.

    `variants` fixes the variant order (config order; default: first appearance in `trials`),
    `baseline` defaults to the first variant, `direction` to `direction_for(metric)`. `axes` are
    trial columns holding sweep-axis labels, copied into the table. The table is sorted best
    first by mean (variants without a finished trial last) and has the columns: rank, variant,
    order (position in `variants`), is_baseline, the axes, the `describe` columns, the
    `paired_vs_baseline` columns, mean_rank (Friedman, when computed) and the `side_metrics`
    columns.
    """
    _check_columns(trials, metric)
    direction = direction or direction_for(metric)
    if direction not in ("min", "max"):
        raise DataError(f"direction must be 'min' or 'max', got {direction!r}", column=metric)
    names = list(variants) if variants is not None else _variant_order(trials)
    unknown = sorted(set(trials["variant"].astype(str)) - set(names))
    names += unknown
    if not names:
        raise DataError("the trials table is empty: no variant to compare", file="trials table")
    baseline = baseline or names[0]
    summary = describe(trials, metric, variants=names, options=options)
    paired = paired_vs_baseline(
        trials, metric, direction, baseline, variants=names, options=options
    )
    fried = friedman(trials, metric, direction, variants=names, alpha=options.alpha)
    side = side_metrics(trials, metric, variants=names)

    table = summary.merge(paired, on="variant", how="left").merge(side, on="variant", how="left")
    table.insert(1, "order", range(len(names)))
    table.insert(2, "is_baseline", table["variant"] == baseline)
    for pos, column in enumerate(c for c in map(axis_column, axes) if c in trials.columns):
        labels = trials.groupby(trials["variant"].astype(str))[column].first()
        table.insert(3 + pos, column, table["variant"].map(labels))
    if fried is not None:
        table["mean_rank"] = table["variant"].map(
            dict(zip(fried.ranks["variant"], fried.ranks["mean_rank"], strict=True))
        )
    key = table["mean"] if direction == "min" else -table["mean"]
    table = (
        table.assign(_key=key)
        .sort_values(["_key", "order"], na_position="last", kind="stable")
        .drop(columns="_key")
        .reset_index(drop=True)
    )
    table.insert(0, "rank", range(1, len(table) + 1))

    notes = _notes(table, metric, direction, baseline, fried, options)
    return Statistics(
        metric=metric,
        direction=direction,
        baseline=baseline,
        table=table,
        failures=failure_table(trials, metric),
        friedman=fried,
        notes=tuple(notes),
        options=options,
    )


def _notes(
    table: pd.DataFrame,
    metric: str,
    direction: Direction,
    baseline: str,
    fried: FriedmanResult | None,
    options: StatsOptions,
) -> list[str]:
    notes: list[str] = []
    base = table[table["variant"] == baseline].iloc[0]
    if base["n_finished"] == 0:
        notes.append(
            f"the baseline {baseline!r} has no finished trial: no paired comparison is possible"
        )
    n_min = wilcoxon_min_pairs(options.alpha)
    others = table[~table["is_baseline"]]
    if len(others) and (others["n_pairs"] < n_min).any():
        notes.append(
            f"the Wilcoxon test cannot reach p < {options.alpha:g} with fewer than {n_min} "
            "paired seeds; variants with fewer pairs can only get 'no evidence'"
        )
    if len(others) > 1:
        notes.append(
            f"p-values are Holm-corrected over {int(others['p_wilcoxon'].notna().sum())} "
            "comparisons with the baseline"
        )
    if "persistence" in table.columns and table["n_finished"].gt(0).any():
        best = table.iloc[0]
        pers = best["persistence"]
        if math.isfinite(best["mean"]) and math.isfinite(pers):
            beats = best["mean"] < pers if direction == "min" else best["mean"] > pers
            if not beats:
                notes.append(
                    f"the best variant {best['variant']!r} ({metric} {best['mean']:.4g}) does not "
                    f"beat the persistence baseline (last value, {pers:.4g})"
                )
    if fried is None and len(table) >= 3:
        notes.append("Friedman test skipped: fewer than 2 seeds finished by every variant")
    return notes
