"""Seed figures of a fixed design, found by simulating the verdict rule as shipped.

In: the margin, the assumed seed sd of a paired log ratio, the family size m, alpha and the
interval family (`compare.interval`). Out: the power of one comparison at n seeds to call an
effect better/worse or to say "equivalent", and the seeds per variant at which that power
reaches 0.8 (`bnplace plan` prints them). The intervals are `bnplace.stats.verdicts`'s own
(exact signed-rank, or Student t), computed on normal log ratios; nothing is extrapolated.

Pure: NumPy (SciPy for t quantiles), no files; seeded (common random numbers across n).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from bnplace.stats.verdicts import (
    DEFAULT_ALPHA,
    EQUIVALENT,
    POWER,
    SIGNED_RANK,
    T,
    decide,
    interval_rank,
    level_for,
    margin_bounds,
    min_seeds,
    t_intervals,
    walsh_averages,
)

MAX_SEEDS_SEARCHED = 400  # past this the seed figures read ">400"

# ------------------------------------------------------------------ seed figures by simulation


_CHUNK = 1 << 18  # Walsh averages per block: a few MB, kept in cache


@dataclass(frozen=True)
class Draws:
    """`reps` samples of n normal paired log ratios with mean `effect` and seed-to-seed sd `sd`,
    seeded per n (common random numbers: every question asked of the same n sees the same
    numbers)."""

    n: int
    effect: float
    sd: float
    reps: int = 4000
    seed: int = 0

    def sample(self) -> np.ndarray:
        """The (reps, n) differences."""
        rng = np.random.default_rng([self.seed, self.n])
        return rng.normal(self.effect, self.sd, size=(self.reps, self.n))


def _walsh_counts(draws: Draws, tests: tuple[tuple[str, float], ...]) -> list[np.ndarray]:
    """Per sample of `draws`, how many of its Walsh averages are <= (or >=) each threshold of
    `tests`. Counted a block of samples at a time: the same comparisons on the same numbers as
    on the whole (reps, n(n+1)/2) matrix, without allocating it (planning a large grid spent ~1
    s there)."""
    d = draws.sample()
    rows = max(1, _CHUNK // (draws.n * (draws.n + 1) // 2))
    counts = [np.empty(draws.reps, dtype=np.int64) for _ in tests]
    for start in range(0, draws.reps, rows):
        w = walsh_averages(d[start : start + rows])
        for out, (side, threshold) in zip(counts, tests, strict=True):
            hits = w <= threshold if side == "<=" else w >= threshold
            out[start : start + rows] = np.sum(hits, axis=1)
    return counts


def detection_power(draws: Draws, level: float, *, interval: str = SIGNED_RANK) -> float:
    """P(the rule calls a true log-ratio effect of |draws.effect| significant in its direction)
    at level `level`."""
    draws = replace(draws, effect=abs(draws.effect))
    if interval == T:
        return float(np.mean(t_intervals(draws.sample(), level).low > 0))
    k = interval_rank(draws.n, level)
    if k == 0:
        return 0.0
    (at_or_below_0,) = _walsh_counts(draws, (("<=", 0.0),))
    return float(np.mean(at_or_below_0 <= k - 1))  # W_(k) > 0


def equivalence_power(
    draws: Draws, level: float, margin: float, *, interval: str = SIGNED_RANK
) -> float:
    """P(the rule says "equivalent within ±margin") at level `level` when the true log ratio
    is draws.effect."""
    if interval == T:
        iv = t_intervals(draws.sample(), level)
        said = decide(
            iv.low, iv.high, bounds=margin_bounds(margin), reachable=True, lower_is_better=True
        )
        return float(np.mean(said == EQUIVALENT))
    k = interval_rank(draws.n, level)
    if k == 0:
        return 0.0
    lo_b, hi_b = margin_bounds(margin)
    tests = (("<=", lo_b), (">=", hi_b), (">=", 0.0), ("<=", 0.0))
    low, high, at_or_above_0, at_or_below_0 = _walsh_counts(draws, tests)
    low_inside = low <= k - 1  # W_(k) > lo_b
    high_inside = high <= k - 1  # W_(N+1-k) < hi_b
    below = at_or_above_0 <= k - 1  # excludes 0 from above: not equivalent
    above = at_or_below_0 <= k - 1
    return float(np.mean(low_inside & high_inside & ~below & ~above))


def _smallest_n(power_at: Callable[[int], float], start: int, target: float) -> int | None:
    """Smallest n ≥ start with power_at(n) ≥ target (power grows with n), by doubling and
    bisection; None past MAX_SEEDS_SEARCHED."""
    lo = start
    if power_at(lo) >= target:
        return lo
    hi = lo
    while True:
        hi = min(MAX_SEEDS_SEARCHED, hi * 2)
        if power_at(hi) >= target:
            break
        if hi >= MAX_SEEDS_SEARCHED:
            return None
        lo = hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if power_at(mid) >= target:
            hi = mid
        else:
            lo = mid
    return hi


DETECT = "detect"  # seeds_for's goals: call an effect of the margin's size better/worse,
EQUIVALENCE = "equivalence"  # or say "equivalent within ±margin" when there is no effect


@lru_cache(maxsize=128)  # plan asks again for every plan of the same design
def seeds_for(
    goal: str,
    margin: float,
    sd: float,
    m: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    power: float = POWER,
    seed: int = 0,
    interval: str = SIGNED_RANK,
) -> int | None:
    """Seeds per variant that give `power` in a family of `m`, by simulating this rule with
    normal log ratios of sd `sd`: for DETECT, to call an effect of the margin's size (log(1 +
    margin), the smaller side) better or worse; for EQUIVALENCE, to say "equivalent within
    ±margin" when there is no effect. None past MAX_SEEDS_SEARCHED."""
    level = level_for(alpha, m)

    def power_at(n: int) -> float:
        if goal == DETECT:
            return detection_power(
                Draws(n, math.log1p(margin), sd, seed=seed), level, interval=interval
            )
        return equivalence_power(Draws(n, 0.0, sd, seed=seed), level, margin, interval=interval)

    return _smallest_n(power_at, min_seeds(m, alpha, interval), power)
