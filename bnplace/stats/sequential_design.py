"""`sweep.seeds: auto`: the seeds-on-demand design (min, step) chosen for the user.

In: the family size m, alpha, the margin, the assumed seed sd of a paired log ratio
(`compare.seed_sd`), the most seeds per variant (`max`), the fewest a first look may have
(6 with several datasets: `MIN_PAIRS_TO_POOL`) and the interval family (`compare.interval`:
only designs of that family are searched). Out: an `AutoDesign`: the live looks of the
chosen design (`bnplace.stats.sequential.live_looks`), its min and step, and the figures the choice
was made on (expected seeds per compared variant at no effect, 1x and 2x the margin, power at
1.5x the margin by the last look).

The search: designs with looks min, min + step, ..., max' (dead looks dropped; `_candidates`:
max' up to the configured max, min within 8 seeds of the fewest that can decide, step 1, 2 or
4; a single look, the fixed design, is one of them; for t intervals each with the spending
exponents `T_SPENDING` unless the config gives one), judged by simulating the shipped rule on
one comparison (a variant against the baseline at its share alpha/m, repeated confidence
intervals of the family, `bnplace.stats.sequential`) with normal seed noise of sd `seed_sd`,
`reps` sweeps with common random numbers for every design: the sorted Walsh averages (t: the
mean and standard error) of the noise at n seeds are computed once per n, and a true log-ratio
effect δ shifts every interval by δ, so each design's intervals at each look and each effect
are read off the same arrays. t designs start at 3 seeds and have no dead look; their
boundaries come from one shared set of null paths (`_half_widths`). The chosen
design has power ≥ 0.8 (≥ 0.833 in the search's own 600 sweeps: two Monte-Carlo errors of
slack) to decide a 1.5x-margin effect better/worse by its last look and, among those, the
fewest expected seeds per variant averaged over no effect, 1x and 2x the margin; when no design
reaches the power, the most powerful one (`plan` says so).
Deterministic: the noise is
seeded. Pure: NumPy, no files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bnplace.stats.sequential import SequentialRule, live_looks, look_sizes, spent
from bnplace.stats.t_sequential import null_abs_t, t_boundaries
from bnplace.stats.verdicts import (
    SIGNED_RANK,
    T,
    interval_rank,
    margin_bounds,
    min_seeds,
    walsh_averages,
)

AUTO_MAX = 40  # default most seeds per variant for `seeds: auto`
AUTO_MAX_LIMIT = 60  # the search's bound (its memory and time grow with max³)
AUTO_POWER = 0.8  # at 1.5x the margin, by the last look
STEPS = (1, 2, 4)
# rho of alpha·t^rho searched for t intervals: faster than linear spending decides large
# effects sooner and loses little at `max`, since the t quantile already guards the first looks
# (benchmarks/t_spending.py); signed-rank designs keep their t² (their first looks are often
# dead, and each candidate's levels cost a grid integration)
T_SPENDING = (0.75, 1.0)
_TIMES = (0.0, 1.0, 1.5, 2.0)  # effects simulated, in margins


@dataclass(frozen=True)
class AutoDesign:
    looks: tuple[int, ...]  # the chosen design's looks (every one can decide)
    min: int  # its first look
    step: int  # seeds between its first two looks (the last look may come sooner: max)
    max: int  # its last look: at most the configured max
    seeds_null: float  # expected seeds per compared variant, no effect
    seeds_margin: float  # ... at 1x the margin
    seeds_2x: float  # ... at 2x the margin
    power_1_5: float  # P(better/worse by the last look) at 1.5x the margin
    meets_power: bool
    spending: float | None = None  # its rho of alpha·t^rho; None: the interval family's default


_SEARCH_PATHS = 1 << 15  # null paths behind the t boundaries of the designs searched


Candidate = tuple[tuple[int, ...], float | None]  # a design's live looks and its rho


def _candidates(
    m: int,
    alpha: float,
    maximum: int,
    floor: int,
    interval: str = SIGNED_RANK,
    spending: float | None = None,
) -> list[Candidate]:
    """The live looks of every design searched, each distinct set once, with the spending
    exponents searched (`spending` alone when given; t intervals: `T_SPENDING`; one look spends
    all of alpha whatever rho): the last look (the design's own max, up to `maximum`) every seed
    for the first 8 past the fewest seeds that can decide (`first`; 3 with t intervals) and
    every 4 after that; the first look from `first` to `first` + 8 (every seed with step 1,
    every other seed with larger steps); steps `STEPS`."""
    first = max(floor, min_seeds(m, alpha, interval), 2 if interval == SIGNED_RANK else 3)
    if first >= maximum:
        return [((maximum,), spending)]
    rhos: tuple[float | None, ...] = (
        (spending,) if spending is not None or interval != T else T_SPENDING
    )
    lasts = set(range(first, min(first + 8, maximum) + 1)) | set(range(first, maximum, 4))
    seen: dict[Candidate, None] = {}
    for last in sorted(lasts | {maximum}):
        for step in STEPS:
            for low in range(first, min(last, first + 8) + 1, 2 if step > 1 else 1):
                for rho in rhos:
                    if interval == T:  # every look of 3 or more seeds can decide
                        looks = look_sizes(low, last, step)
                    else:
                        looks = live_looks(look_sizes(low, last, step), alpha, m, interval, rho)
                        rule = SequentialRule(looks, alpha, m, interval, rho)
                        if rule.first_reachable_look() != 0:
                            continue
                    seen.setdefault((looks, spending if len(looks) == 1 else rho), None)
    return list(seen) or [((maximum,), spending)]


@lru_cache(maxsize=32)
def choose_design(
    m: int,
    alpha: float,
    margin: float,
    seed_sd: float,
    maximum: int = AUTO_MAX,
    floor: int = 2,
    reps: int = 600,
    seed: int = 0,
    interval: str = SIGNED_RANK,
    spending: float | None = None,
) -> AutoDesign:
    """The design of `sweep.seeds: auto` (see the module docstring); `spending`: the rho to
    keep, else the ones searched."""
    designs = _candidates(m, alpha, maximum, floor, interval, spending)
    halves = _half_widths(designs, alpha / max(m, 1), maximum, interval, m)
    candidates = [looks for looks, _rho in designs]
    seeds, correct = _simulate(candidates, halves, margin, seed_sd, maximum, reps, seed, interval)
    power = correct[:, _TIMES.index(1.5)].mean(axis=1)
    cost = seeds[:, [_TIMES.index(t) for t in (0.0, 1.0, 2.0)]].mean(axis=(1, 2))
    # 2 Monte-Carlo standard errors of slack, so that another simulation of the chosen
    # design also finds power >= AUTO_POWER
    meets = power >= AUTO_POWER + 2.0 * math.sqrt(AUTO_POWER * (1 - AUTO_POWER) / reps)
    best = int(np.argmin(np.where(meets, cost, np.inf))) if meets.any() else int(np.argmax(power))
    looks = candidates[best]
    mean = seeds[best].mean(axis=1)
    return AutoDesign(
        looks=looks,
        min=looks[0],
        step=looks[1] - looks[0] if len(looks) > 1 else 1,
        max=looks[-1],
        seeds_null=float(mean[0]),
        seeds_margin=float(mean[1]),
        seeds_2x=float(mean[3]),
        power_1_5=float(power[best]),
        meets_power=bool(meets[best]),
        spending=designs[best][1],
    )


def _simulate(
    candidates: list[tuple[int, ...]],
    halves: list[list[float]],
    margin: float,
    seed_sd: float,
    maximum: int,
    reps: int,
    seed: int,
    interval: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate design run on the same `reps` simulated paired log ratios, shifted by
    each true effect of `_TIMES` x the margin: the seeds it stopped at and whether it decided
    better (rightly: every simulated effect is >= 0), both shaped (candidates, effects, reps)."""
    deltas = np.array([math.log1p(t * margin) for t in _TIMES])
    lo_b, hi_b = margin_bounds(margin)
    rng = np.random.default_rng([seed, maximum])
    noise = rng.normal(0.0, seed_sd, size=(reps, maximum))
    count = len(candidates)
    done = np.zeros((count, len(_TIMES), reps), dtype=bool)
    lasts = np.array([looks[-1] for looks in candidates], dtype=float)
    seeds = np.broadcast_to(lasts[:, None, None], (count, len(_TIMES), reps)).copy()
    correct = np.zeros((count, len(_TIMES), reps), dtype=bool)  # decided better/worse rightly
    wanted = {n for looks in candidates for n in looks}
    for n in sorted(wanted):
        seen = noise[:, :n]
        if interval == T:
            mean, se = seen.mean(axis=1), seen.std(axis=1, ddof=1) / math.sqrt(n)
        else:
            w = np.sort(walsh_averages(seen), axis=1)
        for c, looks in enumerate(candidates):
            if n not in looks:
                continue
            half = halves[c][looks.index(n)]  # t: the boundary; signed rank: the rank k
            if half == 0 or not math.isfinite(half):
                continue
            if interval == T:
                low_at, high_at = mean - half * se, mean + half * se
            else:
                low_at, high_at = w[:, int(half) - 1], w[:, w.shape[1] - int(half)]
            low = low_at[None, :] + deltas[:, None]  # (effects, reps)
            high = high_at[None, :] + deltas[:, None]
            excludes = (low > 0) | (high < 0)
            inside = (low > lo_b) & (high < hi_b)
            new = ~done[c] & (excludes | inside)
            seeds[c][new] = n
            correct[c] |= new & (low > 0)  # every simulated effect is >= 0
            done[c] |= new
    return seeds, correct


def _half_widths(
    candidates: list[Candidate], per_comparison: float, maximum: int, interval: str, m: int
) -> list[list[float]]:
    """Per candidate and look, what sets the interval's width there: for signed-rank intervals
    the rank k of its ends (`interval_rank` at the look's level; 0: cannot decide), for t
    intervals the boundary c_k of |t| (`t_boundaries` on `_SEARCH_PATHS` shared null paths, so
    that ~100 designs are judged in a second; the chosen design's levels are then computed as
    every sequential t design's are, on more paths)."""
    if interval != T:
        return [
            [float(interval_rank(n, level)) for n, level in zip(looks, rule.levels, strict=True)]
            for looks, rho in candidates
            for rule in [SequentialRule(looks, per_comparison * m, m, interval, rho)]
        ]
    sizes = tuple(range(2, maximum + 1))
    abs_t = null_abs_t(sizes, maximum, _SEARCH_PATHS, seed=1991)
    out = []
    for looks, rho in candidates:
        cumulative = tuple(spent(n / looks[-1], per_comparison, T, rho) for n in looks)
        rows = abs_t[[n - 2 for n in looks]]
        out.append([float(c) for c in t_boundaries(rows, cumulative)])
    return out
