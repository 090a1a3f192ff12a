"""Repeated t confidence intervals: the per-look levels of seeds on demand with t intervals.

In: the looks of a sequential design (seeds per variant) and the alpha each comparison may have
spent by each look (`bnplace.stats.sequential.spent`). Out: each look's nominal two-sided level
for the Student t interval (`bnplace.stats.verdicts.t_intervals`), `t_nominal_levels`, and the
pieces the design search reuses (`null_abs_t`, `t_boundaries`).

Why not the score's normal boundaries read as t quantiles (the "significance level approach",
Pocock 1977; Jennison & Turnbull 2000, §3.8): at 3-10 seeds they spend more than planned
(measured: 0.0102 instead of 0.0083 at looks 3..10, 6 comparisons; benchmarks/t_spending.py).
So the boundaries are computed for the t statistics themselves, as exact group-sequential t
tests are (Jennison & Turnbull, Biometrika 78 (1991) 133-141): under normal differences the
vector of t statistics at the looks, (x̄_k − μ)/(s_k/√n_k), has one distribution whatever μ and
σ, so a seeded simulation of `_T_PATHS` standard normal paths gives each look's boundary c_k as
the quantile of |t_k| among the paths not yet crossed that spends the planned alpha there (less
one Monte-Carlo standard error of the cumulative count: conservative). The repeated confidence
intervals mean ± c_k s_k/√n_k then cover μ at every look together with probability ≥ 1 − alpha
under normal differences (Jennison & Turnbull, JRSS B 51 (1989) 305-361), as the signed-rank
ones do.

Pure: NumPy and SciPy, no files; the simulation is seeded (the same levels every run, so
decisions stay a function of the finished trials).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

_T_PATHS = 1 << 18  # simulated null paths behind a sequential t design's levels
_CHUNK = 1 << 15


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
        allowed = math.floor(expected - math.sqrt(expected)) - crossed
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
