"""Paired comparisons of a sweep: each comparison of the family judged by `bnplace.stats.verdicts`.

In: a trials table (variant, seed, status, one column per metric; see `compare.stats`), the
metric and its direction, the baseline, the `Design` (alpha, margin, failure rule, declared
contrasts). Out: one DataFrame row per comparison — every variant against the baseline, then the
declared contrasts and interactions, one multiplicity family — with the Hodges–Lehmann estimate
and its exact interval as a relative effect in percent, the exact p-value (raw and Bonferroni),
the verdict, what an inconclusive interval excludes, failures on each side with an exact
McNemar test, and the measured seed-to-seed sd of the paired log ratio; and, for forecasts, each
variant's skill against persistence with its interval.

Scale: log ratios of the metric (effects read as percentages, the margin is relative) when every
finished value is positive, else plain differences expressed relative to the compared-with
variant's mean. Pure: pandas, numpy and scipy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as st

from bnplace.compare.rows import ComparisonRow, contrast_fields, judged_fields
from bnplace.names.states import FINISHED
from bnplace.stats.pairing import (
    LOG_RATIO,
    FamilyQuestion,
    choose_scale,
    column,
    comparison_bounds,
    differences,
    family_decisions,
    flag,
    transformed,
    values_by_seed,
)
from bnplace.stats.sequential import Decision
from bnplace.stats.verdicts import (
    INCONCLUSIVE,
    Contrast,
    Design,
    Intervals,
    decide,
    level_for,
    paired_intervals,
    percent,
    signed_rank_intervals,
)


def _mcnemar(failed: pd.DataFrame, x: pd.DataFrame, contrast: Contrast) -> float:
    """Exact McNemar test of failure counts between a and b over seeds both ran (NaN when no
    seed failed on one side only)."""
    both = column(x, contrast.a).notna() & column(x, contrast.b).notna()
    fa, fb = flag(failed, contrast.a)[both], flag(failed, contrast.b)[both]
    only_a, only_b = int((fa & ~fb).sum()), int((fb & ~fa).sum())
    if only_a + only_b == 0:
        return math.nan
    return float(st.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def _relative(x: np.ndarray, scale: str, reference: float) -> np.ndarray:
    """Effects on the comparison scale as percent of the compared-with variant."""
    if scale == LOG_RATIO:
        with np.errstate(over="ignore"):
            return np.asarray(percent(x))
    return 100.0 * x / reference if reference else np.full_like(x, np.nan)


@dataclass(frozen=True)
class _Family:
    """What every comparison of a family is judged from: the metric by seed (`values`), failed
    seeds, the values on the comparison scale (`x`, oriented: lower is better), the scale and
    the values that fixed it, and the family's question."""

    values: pd.DataFrame
    failed: pd.DataFrame
    x: pd.DataFrame
    scale: str
    values_for_scale: pd.DataFrame
    question: FamilyQuestion

    @property
    def design(self) -> Design:
        return self.question.design

    @property
    def m(self) -> int:
        """The family's size: its Bonferroni divisor."""
        return len(self.question.contrasts)


def compare_pairs(
    trials: pd.DataFrame, question: FamilyQuestion, logged: Mapping[str, Decision] | None = None
) -> list[ComparisonRow]:
    """One row per comparison of the question's family (m = its number of comparisons).
    "better" means a is better than b (for an interaction: a's effect over b is more favourable
    than a2's over b2). In a sequential design each row is the comparison at the look that
    decided it (or the last look complete), at that look's level: as the sweep logged it
    (`logged`), else recomputed (`stats.pairing.family_decisions`)."""
    design, contrasts = question.design, question.contrasts
    values, failed = values_by_seed(trials, question.metric)
    decisions = family_decisions(trials, question, logged) if design.looks else {}
    # a sequential design fixes its scale and margin reference at the first look (judge_family)
    values_for_scale = values[values.index < design.looks[0]] if design.looks else values
    scale = choose_scale(values_for_scale)
    x = transformed(values, failed, scale, question.lower_is_better)
    family = _Family(values, failed, x, scale, values_for_scale, question)
    return [_pair_row(c, family, decisions.get(c.name)) for c in contrasts]


def _judged(
    d: np.ndarray, f: _Family, bounds: tuple[float, float], decision: Decision | None
) -> tuple[Intervals | None, str]:
    """The interval and verdict of a comparison's paired differences `d`: the decision's in a
    sequential design, else the design's interval (signed-rank or t) at the family's Bonferroni
    level."""
    if decision is not None:
        iv, verdict = decision.intervals, decision.verdict
    else:
        iv = paired_intervals(d, level_for(f.design.alpha, f.m), f.design.interval)
        verdict = str(
            decide(
                iv.low, iv.high, bounds=bounds, reachable=iv.reachable,
                lower_is_better=f.question.lower_is_better,
            )[0]
        )  # fmt: skip
    if iv is None or not d.size:
        return None, INCONCLUSIVE
    return iv, verdict


def _pair_row(c: Contrast, f: _Family, decision: Decision | None) -> ComparisonRow:
    """Comparison `c` of the family (at `decision`'s look in a sequential design)."""
    by_seed, n_fail_a, n_fail_b = differences(c, f.x, f.failed, f.design.failures)
    bounds, ref = comparison_bounds(f.design, f.scale, f.values_for_scale, c)
    if decision is not None:
        by_seed = by_seed[by_seed.index < decision.seeds]
    d = by_seed.dropna().to_numpy(dtype=float)
    iv, verdict = _judged(d, f, bounds, decision)
    est, low, high = (
        _relative(np.array([iv.estimate[0], iv.low[0], iv.high[0]]), f.scale, abs(ref))
        if iv is not None
        else (math.nan,) * 3
    )
    finite = d[np.isfinite(d)]
    used = f.values[f.values.index < decision.seeds] if decision is not None else f.values
    both = pd.concat([column(used, v).notna() for v in c.variants], axis=1).all(axis=1)
    raw = column(used, c.a)[both] - column(used, c.b)[both]
    reachable = bool(iv is not None and iv.reachable)
    inside = bool(iv is not None and reachable and bounds[0] < iv.low[0] and iv.high[0] < bounds[1])
    p = float(iv.p_value[0]) if iv is not None else math.nan
    return ComparisonRow(
        **contrast_fields(c),
        scale=f.scale,
        n_pairs=int(d.size),
        n_failed_a=n_fail_a,
        n_failed_b=n_fail_b,
        diff=float(raw.mean()) if len(raw) and not c.is_interaction else math.nan,
        delta_pct=est,
        delta_pct_low=low,
        delta_pct_high=high,
        **judged_fields(p, f.m, verdict, low, high),
        level=iv.level if iv is not None else math.nan,
        reachable=reachable,
        within_margin=inside,
        seed_sd=float(np.std(finite, ddof=1)) if finite.size >= 2 else math.nan,
        p_failures=_mcnemar(f.failed, f.x, c),
        look=_look_number(decision),
        look_seeds=decision.seeds if decision is not None else len(d),
        decided=bool(decision.decided) if decision is not None else None,
    )


def _look_number(decision: Decision | None) -> float:
    """The 1-based look a sequential comparison stands at (NaN: fixed design, or no look yet)."""
    if decision is None or decision.look is None:
        return math.nan
    return float(decision.look + 1)


def persistence_skill(
    trials: pd.DataFrame, metric: str, persistence: str, variants: Sequence[str], alpha: float
) -> pd.DataFrame:
    """Skill against persistence per variant, 1 − metric / persistence (paired by seed), with
    its exact interval at the Bonferroni level over the variants; `beats_persistence` only when
    the whole interval is above 0. Columns: variant, skill, skill_low, skill_high,
    beats_persistence (True / False / None when undecided)."""
    columns = ["variant", "skill", "skill_low", "skill_high", "beats_persistence"]
    if persistence not in trials.columns:
        return pd.DataFrame(columns=columns)
    ok = trials["status"].astype(str) == FINISHED
    m_val = pd.to_numeric(trials[metric], errors="coerce")
    p_val = pd.to_numeric(trials[persistence], errors="coerce")
    ok &= np.isfinite(m_val) & np.isfinite(p_val) & (m_val > 0) & (p_val > 0)
    level = level_for(alpha, len(variants))
    rows: list[dict[str, Any]] = []
    for name in variants:
        mine = ok & (trials["variant"].astype(str) == name)
        log_ratio = np.log(m_val[mine] / p_val[mine]).to_numpy(dtype=float)
        if log_ratio.size == 0:
            rows.append({"variant": name})
            continue
        iv = signed_rank_intervals(log_ratio, level)
        beats = None
        if iv.reachable:
            beats = True if iv.high[0] < 0 else (False if iv.low[0] > 0 else None)
        rows.append(
            {
                "variant": name,
                "skill": float(-np.expm1(iv.estimate[0])),
                "skill_low": float(-np.expm1(iv.high[0])),
                "skill_high": float(-np.expm1(iv.low[0])),
                "beats_persistence": beats,
            }
        )
    return pd.DataFrame(rows, columns=columns)
