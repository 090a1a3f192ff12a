"""Pairing by seed: a trials table in; per-seed values and per-comparison paired differences out.

In: a trials table (variant, seed, status, one column per metric) and the family's question
(`FamilyQuestion`: the metric, its direction, the comparisons, the design with its failure
rule). Out: seed x variant frames of finished values and failures, the comparison scale (log
ratios when every value is positive, else differences), the values on that scale with a failed
trial as the worst value (±inf), and each comparison's paired differences by seed; for a
sequential design, where each comparison stands (`judge_family`: the look that decided it, by
`bnplace.stats.sequential.judge`). `compare` builds its tables on these, and the run's
scheduler decides which seeds to train next with `judge_family` on the results so far, so both
read the same data the same way. Pure: pandas and numpy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from bnplace.names.errors import DataError
from bnplace.names.states import FINISHED, UNFINISHED_STATES
from bnplace.stats.sequential import Decision, SequentialRule, judge, next_look_seeds
from bnplace.stats.verdicts import DROP, Contrast, Design, margin_bounds

LOG_RATIO = "log_ratio"
DIFFERENCE = "difference"


@dataclass(frozen=True)
class FamilyQuestion:
    """What a comparison family asks of a trials table: the metric, which way it is better
    ("min" or "max"), the comparisons (one multiplicity family) and the design they are judged
    under. The scheduler, `compare` and the decisions replay ask it of their trials alike."""

    metric: str
    direction: str
    contrasts: tuple[Contrast, ...]
    design: Design

    @property
    def lower_is_better(self) -> bool:
        return self.direction == "min"


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
    failed = status.isin(UNFINISHED_STATES) | ((status == FINISHED) & ~ok)
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


def transformed(
    values: pd.DataFrame, failed: pd.DataFrame, scale: str, lower_is_better: bool
) -> pd.DataFrame:
    """Values on the comparison scale; a failed trial is the worst value (±inf)."""
    # np.log of a DataFrame is a DataFrame (numpy's stubs say ndarray)
    x = cast(pd.DataFrame, np.log(values)) if scale == LOG_RATIO else values.copy()
    worst = math.inf if lower_is_better else -math.inf
    return x.mask(failed.reindex_like(x).fillna(False).astype(bool), worst)


def column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series(np.nan, index=frame.index)


def flag(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame[name].fillna(False).astype(bool)


def differences(
    contrast: Contrast, x: pd.DataFrame, failed: pd.DataFrame, failures: str
) -> tuple[pd.Series, int, int]:
    """Per-seed differences of one comparison, indexed by seed (the seeds every side ran, less
    those the failure rule drops; NaN where both sides failed: the seed says nothing about the
    metric), and the failed seeds on each side (a, b)."""
    present = pd.concat([column(x, v).notna() for v in contrast.variants], axis=1).all(axis=1)
    fail_a, fail_b = flag(failed, contrast.a), flag(failed, contrast.b)
    n_failed = (int((fail_a & present).sum()), int((fail_b & present).sum()))
    if contrast.is_interaction or failures == DROP:  # interactions pair finished seeds only
        any_failed = pd.concat([flag(failed, v) for v in contrast.variants], axis=1).any(axis=1)
        present &= ~any_failed
    with np.errstate(invalid="ignore"):
        d = column(x, contrast.a) - column(x, contrast.b)
        if contrast.is_interaction:
            d = d - (column(x, contrast.a2) - column(x, contrast.b2))
    return d[present].astype(float), *n_failed


def comparison_bounds(
    design: Design, scale: str, values: pd.DataFrame, contrast: Contrast
) -> tuple[tuple[float, float], float]:
    """±margin on the comparison scale, and the reference a difference is relative to (the
    compared-with variant's mean; 1 on the log-ratio scale)."""
    if scale == LOG_RATIO:
        return margin_bounds(design.margin), 1.0
    b_values = column(values, contrast.b).dropna()
    ref = float(b_values.mean()) if len(b_values) else 1.0
    return (-design.margin * abs(ref), design.margin * abs(ref)), ref


def complete_seeds(
    ended: Mapping[str, AbstractSet[int]], variants: Iterable[str], seeds: Sequence[int]
) -> int:
    """How many of `seeds`, in order from the first, have ended for every one of `variants`
    (`ended`: variant -> its ended seeds). The one count of complete seeds: the scheduler asks
    it whether a look can be judged, `judge_family` how far a comparison's looks reach."""
    sets = [ended.get(v, frozenset()) for v in variants]
    count = 0
    for seed in seeds:
        if not all(seed in got for got in sets):
            break
        count += 1
    return count


def _ended_seeds(trials: pd.DataFrame) -> dict[str, set[int]]:
    """Variant -> the seeds whose trial ended (finished, failed or killed) in `trials`."""
    ended = trials[trials["status"].astype(str).isin((FINISHED, *UNFINISHED_STATES))]
    return {str(v): set(group["seed"]) for v, group in ended.groupby("variant")}


def judge_family(trials: pd.DataFrame, question: FamilyQuestion) -> dict[str, Decision]:
    """Where each comparison of a sequential design stands, from the trials ended so far
    (seeds 0 .. max − 1 in order; look k covers the first `design.looks[k]`).

    The scale and, on the difference scale, the reference of the margin are fixed by the first
    look's seeds (data that later seeds cannot change), so that a comparison decided at a look
    stays decided, with the same verdict, however many seeds other comparisons add later.
    """
    design, lower_is_better = question.design, question.lower_is_better
    rule = SequentialRule.of(design, len(question.contrasts))
    seeds = range(design.looks[-1])
    first = set(seeds[: design.looks[0]])
    values, failed = values_by_seed(trials, question.metric)
    early = values[values.index.isin(first)]
    scale = choose_scale(early)
    x = transformed(values, failed, scale, lower_is_better)
    out: dict[str, Decision] = {}
    ended = _ended_seeds(trials)
    for c in question.contrasts:
        by_seed = differences(c, x, failed, design.failures)[0]
        d = np.array([by_seed.get(s, math.nan) for s in seeds], dtype=float)
        bounds, _ref = comparison_bounds(design, scale, early, c)
        complete = complete_seeds(ended, c.variants, seeds)
        out[c.name] = judge(d, complete, rule, bounds=bounds, lower_is_better=lower_is_better)
    return out


def family_decisions(
    trials: pd.DataFrame, question: FamilyQuestion, logged: Mapping[str, Decision] | None = None
) -> dict[str, Decision]:
    """Where each comparison of a sequential design stands: as the sweep logged it (`logged`,
    {comparison: decision} at its newest look) when that covers the family, else recomputed
    from the trials (`judge_family`; a sweep an older bnplace ran logged none)."""
    contrasts = question.contrasts
    if logged is not None and all(c.name in logged for c in contrasts):
        return {c.name: logged[c.name] for c in contrasts}
    return judge_family(trials, question)


def seeds_needed(
    decisions: dict[str, Decision], contrasts: Sequence[Contrast], design: Design
) -> dict[str, int]:
    """Seeds per variant the family asks for: through the look that decided each comparison,
    or through the next look of an undecided one (all looks, once undecided at the last)."""
    rule = SequentialRule.of(design, len(contrasts))
    needed: dict[str, int] = {}
    for c in contrasts:
        d = decisions[c.name]
        n = d.seeds if d.decided else (next_look_seeds(d, rule) or design.looks[-1])
        for v in c.variants:
            needed[v] = max(needed.get(v, 0), n)
    return needed
