"""Paired comparisons of a sweep: each comparison of the family judged by `bnplace.verdicts`.

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
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
from scipy import stats as st

from bnplace.errors import DataError
from bnplace.result import FAILED, FINISHED, KILLED
from bnplace.verdicts import (
    DROP,
    INCONCLUSIVE,
    Contrast,
    Design,
    decide,
    excluded_text,
    level_for,
    margin_bounds,
    percent,
    signed_rank_intervals,
)

FAILED_STATES = (FAILED, KILLED)  # a trial that ran and did not finish: ranks worst
LOG_RATIO = "log_ratio"
DIFFERENCE = "difference"

COMPARISON_COLUMNS = (
    "comparison", "origin", "a", "b", "a2", "b2", "scale", "n_pairs", "n_failed_a",
    "n_failed_b", "diff", "delta_pct", "delta_pct_low", "delta_pct_high", "p_value",
    "p_adjusted", "level", "reachable", "verdict", "within_margin", "excluded", "seed_sd",
    "p_failures",
)  # fmt: skip


def values_by_seed(trials: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(values, failed): seed x variant frames. `values` holds finite finished values (NaN
    elsewhere); `failed` is True where the trial ran and failed (or finished without a finite
    metric). A (variant, seed) in neither was not run. Raises on duplicate finished rows."""
    values = pd.to_numeric(trials[metric], errors="coerce").astype(float)
    status = trials["status"].astype(str)
    ok = (status == FINISHED) & np.isfinite(values)
    dup = trials[ok].duplicated(["variant", "seed"], keep=False)
    if dup.any():
        first = trials[ok][dup].iloc[0]
        raise DataError(
            f"variant {first['variant']!r} has several finished rows for seed {first['seed']}; "
            "one row per (variant, seed) is expected",
            file="trials table",
            column="seed",
        )
    failed = status.isin(FAILED_STATES) | ((status == FINISHED) & ~ok)
    frame = pd.DataFrame(
        {
            "variant": trials["variant"].astype(str),
            "seed": trials["seed"],
            "value": values.where(ok),
            "failed": failed & ~ok,
        }
    )
    # a finished row wins over a failed one for the same (variant, seed)
    frame = frame.sort_values("failed", kind="stable").drop_duplicates(["variant", "seed"])
    wide_values = frame.pivot(index="seed", columns="variant", values="value")
    wide_failed = frame.pivot(index="seed", columns="variant", values="failed")
    return wide_values.astype(float), wide_failed.fillna(False).astype(bool)


def choose_scale(values: pd.DataFrame) -> str:
    """Log ratios when every finished value is positive (a relative scale), else differences."""
    x = values.to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    return LOG_RATIO if x.size and bool(np.all(x > 0)) else DIFFERENCE


def _transformed(
    values: pd.DataFrame, failed: pd.DataFrame, scale: str, lower_is_better: bool
) -> pd.DataFrame:
    """Values on the comparison scale; a failed trial is the worst value (±inf)."""
    # np.log of a DataFrame is a DataFrame (numpy's stubs say ndarray)
    x = cast(pd.DataFrame, np.log(values)) if scale == LOG_RATIO else values.copy()
    worst = math.inf if lower_is_better else -math.inf
    return x.mask(failed.reindex_like(x).fillna(False).astype(bool), worst)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series(np.nan, index=frame.index)


def _flag(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame[name].fillna(False).astype(bool)


def _differences(
    contrast: Contrast, x: pd.DataFrame, failed: pd.DataFrame, failures: str
) -> tuple[np.ndarray, int, int]:
    """Per-seed differences of one comparison, and the failed seeds on each side (a, b)."""
    present = pd.concat([_column(x, v).notna() for v in contrast.variants], axis=1).all(axis=1)
    fail_a, fail_b = _flag(failed, contrast.a), _flag(failed, contrast.b)
    n_failed = (int((fail_a & present).sum()), int((fail_b & present).sum()))
    if contrast.is_interaction or failures == DROP:  # interactions pair finished seeds only
        any_failed = pd.concat([_flag(failed, v) for v in contrast.variants], axis=1).any(axis=1)
        present &= ~any_failed
    with np.errstate(invalid="ignore"):
        d = _column(x, contrast.a) - _column(x, contrast.b)
        if contrast.is_interaction:
            d = d - (_column(x, contrast.a2) - _column(x, contrast.b2))
    kept = d[present].to_numpy(dtype=float)
    return kept[~np.isnan(kept)], *n_failed  # both failed: the seed says nothing about the metric


def _mcnemar(failed: pd.DataFrame, x: pd.DataFrame, contrast: Contrast) -> float:
    """Exact McNemar test of failure counts between a and b over seeds both ran (NaN when no
    seed failed on one side only)."""
    both = _column(x, contrast.a).notna() & _column(x, contrast.b).notna()
    fa, fb = _flag(failed, contrast.a)[both], _flag(failed, contrast.b)[both]
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


def family(variants: Sequence[str], baseline: str, design: Design) -> tuple[Contrast, ...]:
    """The comparison family: every variant against the baseline, then the declared contrasts."""
    against = tuple(Contrast(f"{v} vs {baseline}", v, baseline) for v in variants if v != baseline)
    return against + tuple(design.contrasts)


def compare_pairs(
    trials: pd.DataFrame,
    metric: str,
    direction: str,
    contrasts: Sequence[Contrast],
    design: Design,
) -> pd.DataFrame:
    """One row per comparison of `contrasts` (one family: m = len(contrasts)); columns
    `COMPARISON_COLUMNS`. "better" means a is better than b (for an interaction: a's effect
    over b is more favourable than a2's over b2)."""
    values, failed = values_by_seed(trials, metric)
    lower_is_better = direction == "min"
    scale = choose_scale(values)
    x = _transformed(values, failed, scale, lower_is_better)
    m = len(contrasts)
    level = level_for(design.alpha, m)
    rows = []
    for c in contrasts:
        d, n_fail_a, n_fail_b = _differences(c, x, failed, design.failures)
        b_values = _column(values, c.b).dropna()
        ref = float(b_values.mean()) if scale == DIFFERENCE and len(b_values) else 1.0
        bounds = margin_bounds(design.margin)
        if scale == DIFFERENCE:
            bounds = (-design.margin * abs(ref), design.margin * abs(ref))
        iv = signed_rank_intervals(d, level)
        verdict = (
            decide(
                iv.low,
                iv.high,
                bounds=bounds,
                reachable=iv.reachable,
                lower_is_better=lower_is_better,
            )[0]
            if d.size
            else INCONCLUSIVE
        )
        est, low, high = (
            _relative(np.array([iv.estimate[0], iv.low[0], iv.high[0]]), scale, abs(ref))
            if d.size
            else (math.nan,) * 3
        )
        finite = d[np.isfinite(d)]
        both = pd.concat([_column(values, v).notna() for v in c.variants], axis=1).all(axis=1)
        raw = _column(values, c.a)[both] - _column(values, c.b)[both]
        inside = bool(iv.reachable and d.size and bounds[0] < iv.low[0] and iv.high[0] < bounds[1])
        p = float(iv.p_value[0]) if d.size else math.nan
        rows.append(
            {
                "comparison": c.name,
                "origin": c.origin,
                "a": c.a,
                "b": c.b,
                "a2": c.a2,
                "b2": c.b2,
                "scale": scale,
                "n_pairs": int(d.size),
                "n_failed_a": n_fail_a,
                "n_failed_b": n_fail_b,
                "diff": float(raw.mean()) if len(raw) and not c.is_interaction else math.nan,
                "delta_pct": est,
                "delta_pct_low": low,
                "delta_pct_high": high,
                "p_value": p,
                "p_adjusted": min(1.0, p * m) if math.isfinite(p) else math.nan,
                "level": iv.level,
                "reachable": bool(iv.reachable),
                "verdict": str(verdict),
                "within_margin": inside,
                "excluded": excluded_text(low, high) if verdict == INCONCLUSIVE else "",
                "seed_sd": float(np.std(finite, ddof=1)) if finite.size >= 2 else math.nan,
                "p_failures": _mcnemar(failed, x, c),
            }
        )
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))


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
