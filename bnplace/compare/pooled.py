"""Several datasets: per-dataset verdicts, the pooled verdict and the across-dataset ranks.

In: a trials table with a `dataset` column (one row per variant x dataset x seed; see
`compare.frame`), the metric and its direction, the variants, the baseline and the `Design`.
Out: a frozen `DatasetsView`: each dataset's own `Statistics` (the usual comparison family,
judged by `compare_pairs` on that dataset's trials alone); per comparison and dataset the
effect that is pooled (`effects`); per comparison the pooled row (`pooled_rows`, a
`compare.rows.PooledRow`: random-effects estimate with its interval, τ², I², the prediction
interval at its level, the verdict, whether a new dataset is predicted on the same side, the
per-dataset verdicts counted and a sign test of direction over the datasets;
`bnplace.stats.pooling`); and, with 4 or more datasets, the rank view (Friedman over
datasets, mean ranks, Nemenyi critical difference; Demšar 2006).

The effect of a comparison on one dataset is the mean of its finite paired log ratios (a − b,
per seed), one observation of the pooled t interval (the standard error of that mean is
shown, and feeds τ² and I²; `stats.pooling` says why the datasets are not weighted by it; the
Hodges–Lehmann estimate of the per-dataset verdict is not a mean). Seeds where one side
failed (a ratio of ±inf under `failures: rank_worst`) are left out of the pooled effect and
counted (`n_failed`); the per-dataset verdicts still rank them worst. A metric that is not
positive everywhere is compared on differences relative to the compared-with variant's mean
on each dataset. The pooled verdicts are their own multiplicity family (Bonferroni over its m
comparisons), separate from each dataset's. Pure: pandas, numpy and scipy.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as st

from bnplace.compare.rows import PooledRow, contrast_fields, frame_of, judged_fields
from bnplace.compare.stats import Statistics, compute_statistics
from bnplace.stats.pairing import (
    LOG_RATIO,
    choose_scale,
    comparison_bounds,
    differences,
    transformed,
    values_by_seed,
)
from bnplace.stats.pooling import (
    MIN_PAIRS_TO_POOL,
    direction_across,
    mean_effect,
    pooled_verdict,
    random_effects,
    reading,
)
from bnplace.stats.sequential import Decision
from bnplace.stats.verdicts import Contrast, Design, family, level_for, margin_bounds

MIN_RANK_DATASETS = 4  # the across-dataset rank view needs this many datasets
EFFECT_CONFIDENCE = 0.95  # the per-dataset interval drawn in the forest plot (a description)
EFFECT_COLUMNS = (
    "comparison", "dataset", "effect", "se", "low", "high", "n", "n_failed", "delta_pct",
    "delta_pct_low", "delta_pct_high", "verdict",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class RankView:
    """Variants ranked on each dataset by their mean metric (1 = best), over the datasets."""

    datasets: int
    ranks: pd.DataFrame  # variant, mean_rank; best first
    per_dataset: pd.DataFrame  # dataset x variant ranks
    statistic: float  # Friedman χ² (NaN below 3 variants)
    pvalue: float
    critical_difference: float  # Nemenyi CD at alpha


@dataclass(frozen=True, eq=False)
class DatasetsView:
    datasets: tuple[str, ...]
    per: dict[str, Statistics]  # each dataset's own statistics and comparison family
    effects: pd.DataFrame  # EFFECT_COLUMNS: one row per comparison x dataset
    pooled_rows: tuple[PooledRow, ...]  # one per comparison
    ranks: RankView | None
    notes: tuple[str, ...]
    # the question asked of every dataset: `compute_statistics`'s keywords (`_question`)
    question: dict[str, Any] = field(default_factory=dict)

    @property
    def pooled(self) -> pd.DataFrame:
        """The pooled comparisons as a DataFrame (`compare.rows.frame_of`)."""
        return frame_of(self.pooled_rows)


def _relative_effects(
    trials: pd.DataFrame, metric: str, direction: str, contrasts: Sequence[Contrast], d: Design
) -> dict[str, tuple[pd.Series, str]]:
    """Per comparison: its paired differences by seed on this dataset, on the pooling scale
    (log ratios, or differences over the compared-with mean), and the scale."""
    values, failed = values_by_seed(trials, metric)
    scale = choose_scale(values)
    x = transformed(values, failed, scale, direction == "min")
    out = {}
    for c in contrasts:
        by_seed = differences(c, x, failed, d.failures)[0]
        if scale != LOG_RATIO:
            ref = abs(comparison_bounds(d, scale, values, c)[1]) or 1.0
            by_seed = by_seed / ref
        out[c.name] = (by_seed, scale)
    return out


def _effect_row(c: Contrast, dataset: str, by_seed: pd.Series, verdict: str) -> dict[str, object]:
    d = by_seed.to_numpy(dtype=float)
    effect, var, n = mean_effect(d)
    se = math.sqrt(var) if math.isfinite(var) else math.nan
    half = float(st.t.ppf(0.5 + EFFECT_CONFIDENCE / 2, n - 1)) * se if n >= 2 else math.nan
    low, high = effect - half, effect + half
    return {
        "comparison": c.name,
        "dataset": dataset,
        "effect": effect,
        "se": se,
        "low": low,
        "high": high,
        "n": n,
        "n_failed": int(np.isinf(d).sum()),
        "delta_pct": 100 * math.expm1(effect) if math.isfinite(effect) else math.nan,
        "delta_pct_low": 100 * math.expm1(low) if math.isfinite(low) else math.nan,
        "delta_pct_high": 100 * math.expm1(high) if math.isfinite(high) else math.nan,
        "verdict": verdict,
    }


def _pct(x: float) -> float:
    return 100 * math.expm1(x) if math.isfinite(x) else math.nan


def _pooled_row(
    c: Contrast, effects: pd.DataFrame, scale: str, design: Design, m: int, lower_is_better: bool
) -> PooledRow:
    level = level_for(design.alpha, m)
    mine = effects[effects["comparison"] == c.name]
    enough = (mine["n"] >= MIN_PAIRS_TO_POOL).to_numpy()
    y = np.where(enough, mine["effect"].to_numpy(float), np.nan)
    v = np.where(enough, mine["se"].to_numpy(float) ** 2, np.nan)
    pooled = random_effects(y, v, level)
    est, low, high = float(pooled.estimate), float(pooled.low), float(pooled.high)
    pi_low, pi_high = float(pooled.pi_low), float(pooled.pi_high)
    bounds = margin_bounds(design.margin)  # relative effects on the log-ratio scale
    verdict, new = pooled_verdict(
        low, high, pi_low, pi_high, bounds=bounds, lower_is_better=lower_is_better
    )
    p = float(pooled.p_value)
    counts = {v: int((mine["verdict"] == v).sum()) for v in ("better", "worse", "equivalent")}
    direction = direction_across(y, level, lower_is_better=lower_is_better)
    return PooledRow(
        **contrast_fields(c),
        scale=scale,
        k=int(pooled.k),
        n_pairs=int(mine["n"].sum()),
        n_failed_a=math.nan,
        n_failed_b=math.nan,
        n_excluded=int(mine["n_failed"].sum()),
        diff=math.nan,
        delta_pct=_pct(est),
        delta_pct_low=_pct(low),
        delta_pct_high=_pct(high),
        pi_low=_pct(pi_low),
        pi_high=_pct(pi_high),
        pi_level=level,
        tau2=float(pooled.tau2),
        i2=float(pooled.i2),
        **judged_fields(p, m, verdict, _pct(low), _pct(high)),
        level=level,
        reachable=bool(math.isfinite(low)),
        new_dataset=new,
        reading=reading(verdict, new),
        n_better=counts["better"],
        n_worse=counts["worse"],
        n_equivalent=counts["equivalent"],
        n_undecided=len(mine) - sum(counts.values()),  # per-dataset verdicts inconclusive
        sign_p=direction.p_value,
        direction=direction.text,
        within_margin=bool(math.isfinite(low) and bounds[0] < low and high < bounds[1]),
        seed_sd=math.nan,
        p_failures=math.nan,
        look=math.nan,
        look_seeds=int(mine["n"].sum()),
        decided=None,
    )


def _question(
    metric: str,
    direction: str,
    variants: Sequence[str],
    baseline: str,
    design: Design,
    axes: Sequence[str],
) -> dict[str, Any]:
    """`compute_statistics`'s keywords for the sweep's question (direction checked by the
    caller)."""
    return {
        "metric": metric, "direction": direction, "baseline": baseline,
        "variants": list(variants), "axes": axes, "design": design,
    }  # fmt: skip


def rank_view(
    means: pd.DataFrame, direction: str, alpha: float, minimum: int = MIN_RANK_DATASETS
) -> RankView | None:
    """Friedman over datasets on the per-dataset mean metric (rows: datasets, columns:
    variants) and Nemenyi's CD = q_alpha(k) / sqrt(2) · sqrt(k (k + 1) / (6 N)) (Demšar 2006);
    None below `minimum` complete datasets or 2 variants."""
    complete = means.dropna()
    n, k = complete.shape
    if n < minimum or k < 2:
        return None
    oriented = complete.to_numpy(float) * (1 if direction == "min" else -1)
    ranks = pd.DataFrame(
        st.rankdata(oriented, axis=1), index=complete.index, columns=complete.columns
    )
    stat = p = math.nan
    if k >= 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = st.friedmanchisquare(*[oriented[:, j] for j in range(k)])
        stat, p = float(res.statistic), float(res.pvalue)
        if not math.isfinite(p):  # every dataset ranks the variants the same, all tied
            stat, p = 0.0, 1.0
    q = float(st.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    mean_ranks = (
        ranks.mean(axis=0)
        .rename_axis("variant")
        .reset_index(name="mean_rank")
        .sort_values("mean_rank", kind="stable")
        .reset_index(drop=True)
    )
    return RankView(n, mean_ranks, ranks, stat, p, q * math.sqrt(k * (k + 1) / (6.0 * n)))


def per_dataset(trials: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Each dataset's trials, in order of first appearance (the one way to split by dataset)."""
    names = trials["dataset"].astype(str)
    return [
        (dataset, trials[names == dataset].reset_index(drop=True))
        for dataset in dict.fromkeys(names)
    ]


def compare_datasets(
    trials: pd.DataFrame,
    *,
    metric: str,
    direction: str,
    variants: Sequence[str],
    baseline: str,
    design: Design,
    axes: Sequence[str] = (),
    decisions: Mapping[str, Mapping[str, Decision]] | None = None,
) -> DatasetsView:
    """Per-dataset statistics, pooled comparisons and ranks (see the module docstring);
    `decisions`: per dataset, a sequential design's decisions as the sweep logged them."""
    names = list(variants)
    parts = per_dataset(trials)
    datasets = tuple(dataset for dataset, _ in parts)
    contrasts = family(names, baseline, design)
    m = len(contrasts)
    per: dict[str, Statistics] = {}
    rows: list[dict[str, object]] = []
    scales: dict[str, str] = {}
    means: dict[str, pd.Series] = {}
    on = _question(metric, direction, names, baseline, design, axes)
    for dataset, mine in parts:
        stats = compute_statistics(mine, **on, decisions=(decisions or {}).get(dataset))
        per[dataset] = stats
        means[dataset] = stats.table.set_index("variant")["mean"].reindex(names)
        verdicts = {r.comparison: r.verdict for r in stats.rows}
        for name, (by_seed, scale) in _relative_effects(
            mine, metric, direction, contrasts, design
        ).items():
            scales[dataset] = scale
            c = next(c for c in contrasts if c.name == name)
            rows.append(_effect_row(c, dataset, by_seed, str(verdicts.get(name, ""))))
    effects = pd.DataFrame(rows, columns=list(EFFECT_COLUMNS))
    scale = LOG_RATIO if all(s == LOG_RATIO for s in scales.values()) else "relative_difference"
    lower_is_better = direction == "min"
    pooled = tuple(_pooled_row(c, effects, scale, design, m, lower_is_better) for c in contrasts)
    ranks = rank_view(pd.DataFrame(means).T, direction, design.alpha)
    notes = _notes(datasets, effects, ranks, scales, m)
    return DatasetsView(datasets, per, effects, pooled, ranks, tuple(notes), on)


def _notes(
    datasets: Sequence[str],
    effects: pd.DataFrame,
    ranks: RankView | None,
    scales: dict[str, str],
    m: int,
) -> list[str]:
    notes = [
        f"per-dataset verdicts: one family per dataset (Bonferroni over its {m} "
        f"comparison{'s' if m != 1 else ''}); pooled verdicts: a separate family over the "
        f"{len(datasets)} datasets (Bonferroni over its {m})"
    ]
    excluded = int(effects["n_failed"].sum())
    if excluded:
        notes.append(
            f"{excluded} paired seed(s) with a failed side are left out of the pooled effects "
            "(the per-dataset verdicts rank them worst)"
        )
    if any(s != LOG_RATIO for s in scales.values()):
        odd = ", ".join(d for d, s in scales.items() if s != LOG_RATIO)
        notes.append(f"{odd}: metric not positive, pooled as differences over the mean of b")
    thin = effects[effects["n"] < MIN_PAIRS_TO_POOL]
    if len(thin):
        notes.append(
            f"{len(thin)} dataset effect(s) with fewer than {MIN_PAIRS_TO_POOL} finite pairs "
            "are not pooled"
        )
    if len(datasets) < 3:
        notes.append("a prediction interval for a new dataset needs at least 3 datasets")
    if len(datasets) < MIN_RANK_DATASETS:
        notes.append(f"the across-dataset rank view needs {MIN_RANK_DATASETS} or more datasets")
    elif ranks is None:
        notes.append("rank view skipped: too few datasets with a mean for every variant")
    return notes


# The pooled baseline comparison's columns put into the per-variant table of a sweep with
# several datasets (in place of a single dataset's `stats.VERSUS_BASELINE`).
POOLED_VERSUS = (
    "n_pairs", "diff", "delta_pct", "delta_pct_low", "delta_pct_high", "p_value", "p_adjusted",
    "level", "reachable", "verdict", "within_margin", "excluded", "seed_sd", "p_failures", "k",
    "pi_low", "pi_high", "pi_level", "tau2", "i2", "new_dataset", "reading", "n_better",
    "n_worse", "n_equivalent", "n_undecided", "direction",
)  # fmt: skip


def pooled_statistics(trials: pd.DataFrame, view: DatasetsView) -> Statistics:
    """The sweep's `Statistics` over all datasets: the per-variant table (counts, failures,
    side metrics over every trial; the pooled comparison with the baseline; mean rank over
    datasets, best first) and the pooled comparisons as the family. Seeds are paired within a
    dataset only: a (dataset, seed) pair is one block of the description, never a pair across
    datasets. The question (metric, baseline, design...) is the view's."""
    on = view.question
    variants, baseline, direction = on["variants"], on["baseline"], on["direction"]
    codes = {d: i for i, d in enumerate(view.datasets)}
    seeds = pd.to_numeric(trials["seed"], errors="coerce")
    stride = int(seeds.max()) + 1 if seeds.notna().any() else 1
    stacked = trials.assign(seed=trials["dataset"].astype(str).map(codes) * stride + seeds)
    base = compute_statistics(stacked, **on)
    pooled = view.pooled
    versus = pooled[pooled["origin"] == "baseline"].set_index("a")
    table = base.table.drop(columns=["rank", "mean_rank"], errors="ignore")
    for column in POOLED_VERSUS:
        table[column] = table["variant"].map(versus[column]) if len(versus) else math.nan
    table["verdict"] = table["verdict"].astype(object)  # NaN when only contrasts are judged
    table.loc[table["variant"] == baseline, "verdict"] = "baseline"
    means = pd.DataFrame(
        {
            d: s.table.set_index("variant")["mean"].reindex(list(variants))
            for d, s in view.per.items()
        }
    ).T
    ranks = rank_view(means, direction, on["design"].alpha, minimum=2)
    if ranks is not None:
        table["mean_rank"] = table["variant"].map(ranks.ranks.set_index("variant")["mean_rank"])
        table = table.sort_values(["mean_rank", "order"], kind="stable", na_position="last")
    table = table.reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    # the stacked statistics' question, failures and design; the pooled table and family
    return replace(base, table=table, rows=view.pooled_rows, friedman=None, notes=view.notes)
