"""The two interval families a verdict can be read from, and the t family's sequential levels.

In: paired differences (R x n, log ratios), a confidence level, and the family's name
(`compare.interval`: "signed_rank" or "t"); for a sequential design with t intervals, the looks
and the alpha each look may have spent by then. Out: `Intervals` (estimate, interval, p-value,
level, reachable) from `paired_intervals`, the one place that picks the family; and
`t_nominal_levels`, the per-look levels of repeated t confidence intervals.

- **signed_rank** (default): the exact signed-rank interval of the Hodges–Lehmann estimate
  (`bnplace.stats.verdicts.signed_rank_intervals`). Distribution-free for symmetric
  differences, ranks a failed seed (±inf), but no verdict below 2^(1−n) ≤ alpha/m (8 seeds
  for 6 comparisons at 0.05).
- **t**: the Student t interval of the mean paired log ratio, mean ± t_{n−1} s/√n. Exact under
  normal differences at any n ≥ 2, so a look at 4-6 seeds can decide; it covers the mean, and
  with skewed differences it covers less than promised (tests/test_t_interval.py measures it;
  `plan` states it). It cannot rank a failed seed: `compare.interval: t` needs
  `compare.failures: drop` (failure counts are compared by McNemar beside it).

Sequential t intervals: the score's normal boundaries of `bnplace.stats.sequential` read as
t quantiles (the "significance level approach", Pocock 1977; Jennison & Turnbull 2000, §3.8)
spend more than planned at few seeds (measured: 0.0097 instead of 0.0083 at looks 3..10), so the
boundaries are computed for the t statistics themselves, as exact group-sequential t tests are
(Jennison & Turnbull, Biometrika 78 (1991) 133-141): under normal differences the vector of t
statistics at the looks, (x̄_k − μ)/(s_k/√n_k), has one distribution whatever μ and σ, so a
seeded simulation of `_T_PATHS` standard normal paths gives each look's boundary c_k as the
quantile of |t_k| among the paths not yet crossed that spends the planned alpha there (less one
Monte-Carlo standard error of the cumulative count: conservative). The repeated confidence
intervals mean ± c_k s_k/√n_k then cover μ at every look together with probability ≥ 1 − alpha
(Jennison & Turnbull, JRSS B 51 (1989) 305-361), exactly as the signed-rank ones.

Pure: NumPy and SciPy, no files; the simulation is seeded (the same levels every run, so
decisions stay a function of the finished trials).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from bnplace.stats.verdicts import SIGNED_RANK, T, Intervals, signed_rank_intervals

_T_PATHS = 1 << 18  # simulated null paths behind a sequential t design's levels
_CHUNK = 1 << 15


def t_intervals(d: np.ndarray, level: float) -> Intervals:
    """Mean and Student t interval of each row of `d` (R x n) at `level`, with the two-sided t
    p-value (p ≤ 1 − level exactly when the interval excludes 0). Fewer than 2 seeds, or a
    non-finite difference in a row: the interval is (−∞, ∞) and `reachable` is False."""
    from scipy import stats as st

    d = np.atleast_2d(np.asarray(d, dtype=float))
    rows, n = d.shape
    if n < 2 or not np.isfinite(d).all():
        with np.errstate(invalid="ignore"):
            mean = np.mean(d, axis=1) if n else np.full(rows, np.nan)
        inf = np.full(rows, np.inf)
        return Intervals(mean, -inf, inf, np.ones(rows), math.nan, False)
    mean = d.mean(axis=1)
    se = d.std(axis=1, ddof=1) / math.sqrt(n)
    q = float(st.t.isf((1.0 - level) / 2.0, n - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        t_stat = np.where(se > 0, np.abs(mean) / se, np.where(mean == 0, 0.0, np.inf))
    p = np.minimum(1.0, 2.0 * st.t.sf(t_stat, n - 1))
    return Intervals(mean, mean - q * se, mean + q * se, p, level, True)


def paired_intervals(d: np.ndarray, level: float, interval: str = SIGNED_RANK) -> Intervals:
    """The interval of each row of `d` at `level` in the family `interval` (see the module)."""
    if interval == T:
        return t_intervals(d, level)
    return signed_rank_intervals(d, level)


def null_abs_t(sizes: tuple[int, ...], n_max: int, paths: int, seed: int) -> np.ndarray:
    """|t| of the first n values of `paths` seeded standard normal paths of length `n_max`, for
    each n of `sizes` (rows; float32). The paths depend only on (n_max, paths, seed)."""
    rng = np.random.default_rng([seed, n_max, paths])
    out = np.empty((len(sizes), paths), dtype=np.float32)
    at = np.asarray(sizes) - 1
    n = np.asarray(sizes, dtype=float)[:, None]
    for start in range(0, paths, _CHUNK):
        z = rng.standard_normal((min(_CHUNK, paths - start), n_max))
        total = np.cumsum(z, axis=1)[:, at].T
        squares = np.cumsum(z * z, axis=1)[:, at].T
        mean = total / n
        var = (squares - n * mean**2) / np.maximum(n - 1, 1)
        out[:, start : start + z.shape[0]] = np.abs(mean) / np.sqrt(var / n)
    return out


def t_boundaries(abs_t: np.ndarray, cumulative: tuple[float, ...]) -> np.ndarray:
    """Per look (rows of `abs_t`, simulated null |t|), the boundary c_k such that the share of
    paths first crossing |t_k| > c_k by look k is the cumulative alpha `cumulative[k]`, less one
    Monte-Carlo standard error; inf where no crossing may be spent yet (the look cannot
    decide)."""
    paths = abs_t.shape[1]
    alive = np.ones(paths, dtype=bool)
    crossed = 0
    bounds = np.full(len(cumulative), np.inf)
    for k, spend in enumerate(cumulative):
        expected = spend * paths
        allowed = int(math.floor(expected - math.sqrt(expected))) - crossed
        x = abs_t[k][alive]
        if allowed <= 0 or x.size <= allowed:
            continue
        c = float(np.partition(x, x.size - allowed - 1)[x.size - allowed - 1])
        bounds[k] = c
        hit = alive & (abs_t[k] > c)
        crossed += int(hit.sum())
        alive &= ~hit
    return bounds


@lru_cache(maxsize=128)
def t_nominal_levels(looks: tuple[int, ...], cumulative: tuple[float, ...]) -> tuple[float, ...]:
    """Two-sided nominal alpha p_k of each look's t interval (level 1 − p_k: its quantile is
    the boundary c_k) when by look k `cumulative[k]` may have been spent (`t_boundaries` on
    `_T_PATHS` seeded paths); 0 where a look cannot decide."""
    from scipy import stats as st

    abs_t = null_abs_t(looks, looks[-1], _T_PATHS, seed=1989)
    bounds = t_boundaries(abs_t, cumulative)
    return tuple(
        float(2.0 * st.t.sf(c, n - 1)) if n >= 2 and math.isfinite(c) else 0.0
        for n, c in zip(looks, bounds, strict=True)
    )
