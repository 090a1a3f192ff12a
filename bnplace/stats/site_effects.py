"""A search's site effects: each option at a site against the site's baseline, averaged over
the other sites, with simultaneous intervals.

In: a search's losses, one per placement and seed (the log of the metric, signed so that lower
is better; with several datasets a seed's mean over them, as the race reads it), each
placement's option at every site, the seeds to read, alpha and the margin. Out: per site and
option a `SiteEffect` against the site's baseline (the caller's preferred option, compare's
"none", where the site's menu has it, else its first option): over the pairs of placements
that differ only at that site (every other site alike, both in the space), the paired
difference per seed averaged over the pairs, one number per seed; its mean and Student t
interval over the seeds at the Bonferroni level over every
option of every site, and the verdict read off the interval as every bnplace verdict is
(`bnplace.stats.verdicts.decide`: worse or better when it excludes 0, equivalent inside the
margin, else inconclusive). All intervals hold together with probability >= 1 - alpha.

The estimand is the main effect of a factorial design (Montgomery, *Design and Analysis of
Experiments*, 9th ed., 2017, ch. 5-6: an effect as the average of the contrasts between levels
over the other factors' levels), over the pairs the space allows (`max_norm` and kinds that
must not meet leave some out; each effect says how many pairs). With interactions it is an
average over the other sites' options, not the effect inside any one placement: the race's
ranking answers for single placements; this answers "where should BN go?" across the model.

Which seeds: the race's first stage (`search.seeds.min`), which every placement trains before
any elimination, so the seeds read do not depend on the race's outcomes. A seed without a loss
for some placement (a failed trial; with several datasets, one not finished on every dataset)
leaves the contrasts whose pairs touch it, as it leaves the race's ranking; each effect says
how many seeds it read. Later seeds reach only
the placements still in: an interval over "the seeds both sides of every pair have" would
stop where a placement looked bad, the sequential bias the race's own bounds pay for.

Why Student t (Student 1908; paired: Hollander, Wolfe & Chicken 2014 §3.1 for the rank
alternative, which cannot reach a Bonferroni level at 5 seeds): a per-seed contrast is a mean
over the pairs and the datasets, hence near normal; and the two sides of a pair share the seed,
so shared seed noise cancels and the difference of like noises is symmetric.
tests/test_site_effects.py simulates the rule as shipped (normal, skewed and t3 trial noise,
the study's 32-placement space and a small one): simultaneous coverage and the A/A rate of a
worse-or-better verdict, both at most alpha in error.

Pure: NumPy (SciPy's t quantile through `verdicts.t_intervals`); vectorised over simulated
repeats (`contrast_weights`, `effect_intervals`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bnplace.stats.verdicts import (
    Intervals,
    decide,
    level_for,
    margin_bounds,
    percent,
    t_intervals,
)


@dataclass(frozen=True)
class SiteContrast:
    site: str
    option: str
    baseline: str
    pairs: tuple[tuple[int, int], ...]  # (placement with `option`, its twin with `baseline`)


@dataclass(frozen=True)
class SiteEffect:
    """One option at one site against the site's baseline, averaged over the other sites."""

    site: str
    option: str
    baseline: str
    pairs: int  # placement pairs averaged over
    seeds: int  # seeds the interval is over
    delta_pct: float  # the mean per-seed contrast, as a relative effect (+: worse)
    low_pct: float
    high_pct: float
    verdict: str
    # several datasets: on how many the option's point estimate is worse / better (no verdict)
    datasets_worse: int | None = None
    datasets_better: int | None = None
    datasets: int | None = None


def site_contrasts(
    options: Sequence[Mapping[str, str]], preferred: str
) -> tuple[SiteContrast, ...]:
    """Every (site, option other than the baseline) with its pairs of twin placements: sites
    and options in the order the placements first show them (the plan's menu order). A site's
    baseline is its `preferred` option where its menu has it (the caller's word for an empty
    site: `bnplace.config.sweep.NOTHING`), else its first."""
    sites = list(dict.fromkeys(site for placement in options for site in placement))
    out = []
    for site in sites:
        menu = list(dict.fromkeys(p[site] for p in options if site in p))
        baseline = preferred if preferred in menu else menu[0]

        def rest(p: Mapping[str, str], site: str = site) -> tuple[tuple[str, str], ...]:
            return tuple(sorted((k, v) for k, v in p.items() if k != site))

        twins = {rest(p): i for i, p in enumerate(options) if p.get(site) == baseline}
        for option in menu:
            if option == baseline:
                continue
            pairs = tuple(
                (i, twins[rest(p)])
                for i, p in enumerate(options)
                if p.get(site) == option and rest(p) in twins
            )
            if pairs:
                out.append(SiteContrast(site, option, baseline, pairs))
    return tuple(out)


def contrast_weights(contrasts: Sequence[SiteContrast], placements: int) -> np.ndarray:
    """(C, P): row c averages its pairs' differences, +1/pairs on each option's placement and
    -1/pairs on its twin."""
    weights = np.zeros((len(contrasts), placements))
    for c, contrast in enumerate(contrasts):
        for i, j in contrast.pairs:
            weights[c, i] += 1.0 / len(contrast.pairs)
            weights[c, j] -= 1.0 / len(contrast.pairs)
    return weights


def effect_intervals(
    weights: np.ndarray, losses: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`losses` (R, P, S) of R simulated searches, complete seeds: each contrast's (R, C) mean,
    low and high, through the same steps as `site_effects` (`_contrasted`, `_intervals`)."""
    repeats, placements, seeds = losses.shape
    flat, _ = _contrasted(weights, losses.transpose(1, 0, 2).reshape(placements, -1))
    per_seed = flat.reshape(len(weights), repeats, seeds).transpose(1, 0, 2)  # (R, C, S)
    found = _intervals(per_seed.reshape(-1, seeds), alpha, family=len(weights))
    shape = (repeats, len(weights))
    return found.estimate.reshape(shape), found.low.reshape(shape), found.high.reshape(shape)


def _intervals(per_seed: np.ndarray, alpha: float, family: int) -> Intervals:
    """Rows of per-seed contrasts -> Student t intervals at the Bonferroni level over the
    `family` of effects: the one place the level is set, for the tool and the simulations."""
    return t_intervals(per_seed, level_for(alpha, family))


def site_effects(
    losses: np.ndarray,
    options: Sequence[Mapping[str, str]],
    *,
    preferred: str,
    seeds: int,
    alpha: float,
    margin: float,
    by_dataset: np.ndarray | None = None,
) -> tuple[SiteEffect, ...]:
    """Each site's options against its baseline over the first `seeds` columns of `losses`
    (P placements x seeds, NaN where a placement has no loss for a seed: that seed leaves the
    contrasts whose pairs it touches). `by_dataset` (D x P x seeds, the losses per dataset):
    each effect also counts the datasets where its point estimate (the contrast of the
    placements' means over those seeds) is worse and better, a description, not a verdict."""
    contrasts = site_contrasts(options, preferred)
    if not contrasts:
        return ()
    weights = contrast_weights(contrasts, len(options))
    per_seed, missing = _contrasted(weights, np.asarray(losses, dtype=float)[:, :seeds])
    counts: list[tuple[int | None, int | None, int | None]] = [(None, None, None)] * len(contrasts)
    if by_dataset is not None:
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a placement with no seed: NaN
            means = np.nanmean(np.asarray(by_dataset, dtype=float)[:, :, :seeds], axis=2)
        per_dataset, lacking = _contrasted(weights, means.T)  # (C, D)
        counts = [
            (
                int(((per_dataset[c] > 0) & ~lacking[c]).sum()),
                int(((per_dataset[c] < 0) & ~lacking[c]).sum()),
                int((~lacking[c]).sum()),
            )
            for c in range(len(contrasts))
        ]
    out = []
    for c, contrast in enumerate(contrasts):
        kept = per_seed[c, ~missing[c]]  # each effect over the seeds all its pairs have
        found = _intervals(kept[None, :], alpha, family=len(contrasts))
        verdict = decide(
            found.low,
            found.high,
            bounds=margin_bounds(margin),
            reachable=found.reachable,
            lower_is_better=True,
        )[0]
        mean, low, high = (float(percent(x[0])) for x in (found.estimate, found.low, found.high))
        out.append(
            SiteEffect(
                contrast.site,
                contrast.option,
                contrast.baseline,
                len(contrast.pairs),
                int(kept.size),
                mean,
                low,
                high,
                str(verdict),
                *counts[c],
            )
        )
    return tuple(out)


def _contrasted(weights: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contrasts of `values` (P x columns): (C x columns), and where a pair lacks a value."""
    involved = (weights != 0).astype(float)
    lacking = involved @ ~np.isfinite(values) > 0
    return weights @ np.where(np.isfinite(values), values, 0.0), lacking
