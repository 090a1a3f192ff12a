"""Racing placements with a guarantee: which placements a search eliminates, and when.

In: a loss per placement and seed (`losses`, shape (..., k, n): k placements, seeds 0 .. n − 1
in order, lower is better; the runner passes log(metric), or −log for a metric to maximise, so
the margin reads as a ratio) and a `SelectionRule` (alpha, the margin δ on that scale, the
first-stage seeds n0 and the most seeds N). Leading axes are independent races (simulations
vectorise over them). Out: a `Race`: the seed count at which each placement was eliminated (0:
it survives), which placement eliminated it, and the bounds that did; `simulate` gives the
figures of the rule as shipped (probability of keeping the best, of eliminating a placement
within the margin of the best, trials used) on planted means with normal, skewed or t3 noise.

The rule (fully sequential, paired seeds: every survivor trains the same seeds). Stage 1: every
placement trains n0 seeds; S²_il is the sample variance of the paired differences of placements
i and l over those seeds (n0 − 1 degrees of freedom; with shared seeds the seed effect cancels,
which is why the design pairs). After each seed r = n0 .. N, with X̄_i(r) the mean loss of i over
its first r seeds, placement i is eliminated when some surviving l satisfies

    X̄_i(r) − X̄_l(r) − w_il(r) > δ,   w_il(r) = S_il · sqrt(h²/2) · (1/√N + √N/r),

that is when the lower confidence bound on μ_i − μ_l, valid over all r at once, shows i worse
than l by more than the margin. h² = (ν/2)·((α/(k − 1))^(−2/ν) − 1) with ν = n0 − 1 and k the
placements at the start. The result is the survivors after N seeds (or the one left).

Why it holds. For a pair whose true gap μ_i − μ_l is at most δ, Σ_{j≤r}(D_j − δ), D_j the paired
difference, is a random walk with drift ≤ 0; the rule crosses when it exceeds a + c·r with
c = S·sqrt(h²/(2N)) and a = S·sqrt(h²N/2), so a·c = h²S²/2. For normal increments of variance σ²
the walk is a Brownian motion read at whole r, so P(cross | S²) ≤ P(sup_t B_t − c·t > a) =
exp(−2ac/σ²) = exp(−h²S²/σ²) (the linear-boundary crossing probability; Siegmund 1985,
*Sequential Analysis*, §3.1; the device of Fabian 1974 and Paulson 1964 behind KN). S² is
independent of the stage-1 mean and of later seeds, (n0 − 1)S²/σ² is χ²_ν, and
E[exp(−h²χ²_ν/ν)] = (1 + 2h²/ν)^(−ν/2) = α/(k − 1) for the h² above (the same integration Kim &
Nelson 2001 use for their η). Bonferroni over the k − 1 possible eliminators gives: the best
placement is eliminated with probability ≤ alpha (whatever the other means; no indifference zone
is needed for this), and so is each placement within δ of the best. With the margin as the
indifference zone, P(the survivors contain the best) ≥ 1 − alpha, stopping at any N. The boundary
is the linear one tangent at N to the fixed-sample bound, so the rule loses little at N against
a single look at N seeds (about sqrt(2)·h against a Bonferroni t quantile) and eliminates a
clearly worse placement after few seeds.

Why this rule rather than the three the issue names. KN (Kim & Nelson 2001) is the closest: same
first-stage variances of differences, same common-random-numbers (paired) design, same Brownian
bound; but its triangular region closes on one winner, so a placement within δ of the best is
eliminated with probability up to 1/2 (by symmetry at a tie), which breaks the second promise
("a placement within the margin is eliminated with probability ≤ alpha"). Shifting its boundary
by δ and keeping it open gives the rule above. Hsu's multiple comparisons with the best (Hsu 1984)
is the one-look version of the same statement (the subset {i : μ_i − min_{l≠i} μ_l ≤ δ} with
simultaneous intervals); read at every seed it would need a multiplicity correction over looks,
which the crossing bound provides. Fixed-confidence best-arm rules (LIL-based, e.g. Fan, Hong &
Nelson 2016) target a unique best without a margin and pay for the iterated logarithm.

Normality is assumed for the bound; `simulate` and tests/test_selection.py check the error rates
under skewed (lognormal) and heavy-tailed (t3) losses, 10-500 placements.

References: Kim & Nelson, ACM TOMACS 11 (2001) 251-273 (KN); Hsu, Ann. Statist. 12 (1984)
1136-1144 (multiple comparisons with the best); Paulson, Ann. Math. Statist. 35 (1964) 174-180;
Fabian, Ann. Statist. 2 (1974) 170-176; Siegmund, *Sequential Analysis* (1985);
Fan, Hong & Nelson, Oper. Res. 64 (2016) 1499-1514.
Pure NumPy (SciPy's t quantile for the fixed design): no files; simulations take a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

Noise = Literal["normal", "lognormal", "t3"]


@dataclass(frozen=True)
class SelectionRule:
    alpha: float  # P(eliminating the best), and any placement within the margin of it
    margin: float  # δ, on the loss scale (a log ratio: log(1 + compare.margin))
    first: int  # n0: seeds every placement trains before any elimination
    last: int  # N: the most seeds a placement trains

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1 or self.margin <= 0 or not 3 <= self.first <= self.last:
            raise ValueError(f"not a usable selection rule: {self}")

    def h2(self, k: int) -> float:
        """The constant h² for k placements at the start (see the module docstring)."""
        nu = self.first - 1
        return nu / 2 * ((self.alpha / max(k - 1, 1)) ** (-2 / nu) - 1)

    def width_factor(self, k: int, seeds: int) -> float:
        """w_il(r) / S_il at r = `seeds`: sqrt(h²/2) · (1/√N + √N/r)."""
        return math.sqrt(self.h2(k) / 2) * (1 / math.sqrt(self.last) + math.sqrt(self.last) / seeds)


@dataclass(frozen=True)
class Race:
    """The race over `seeds` seeds. Arrays have the leading shape of the losses, then k."""

    eliminated_at: np.ndarray  # seeds seen when eliminated (int); 0: a survivor
    eliminated_by: np.ndarray  # the eliminating placement's index; −1: a survivor
    lower_bound: np.ndarray  # μ_i − μ_by shown at least this large when eliminated; nan
    seeds: int  # the seeds the race has read (n0 .. N)

    @property
    def survivors(self) -> np.ndarray:
        return self.eliminated_at == 0

    @property
    def trials(self) -> np.ndarray:
        """Trials a race needs: every placement up to its elimination, survivors to the end
        (or to the last elimination, when it left one survivor)."""
        alive = self.survivors.sum(-1)
        stop = np.where(alive == 1, self.eliminated_at.max(-1), self.seeds)
        stop = np.maximum(stop, self.eliminated_at.max(-1))
        used = np.where(self.survivors, stop[..., None], self.eliminated_at)
        return used.sum(-1)


def race(losses: np.ndarray, rule: SelectionRule) -> Race:
    """Run the rule on `losses` (..., k, n), n0 <= n <= N, reading seeds in order. Entries of a
    placement past its elimination are never read (they may be nan: never trained)."""
    losses = np.asarray(losses, dtype=float)
    *lead, k, n = losses.shape
    if not rule.first <= n <= rule.last:
        raise ValueError(f"a race reads {rule.first} to {rule.last} seeds, got {n}")
    first = losses[..., : rule.first]
    if np.isnan(first).any():
        raise ValueError("every placement needs its first-stage seeds")
    dev = first - first.mean(-1, keepdims=True)
    cov = dev @ np.swapaxes(dev, -1, -2) / (rule.first - 1)
    var = np.diagonal(cov, axis1=-2, axis2=-1)
    sd = np.sqrt(np.maximum(var[..., :, None] + var[..., None, :] - 2 * cov, 0.0))
    sums = np.cumsum(np.nan_to_num(losses), axis=-1)
    at = np.zeros((*lead, k), dtype=int)
    by = np.full((*lead, k), -1)
    lower = np.full((*lead, k), np.nan)
    alive = np.ones((*lead, k), dtype=bool)
    for seeds in range(rule.first, n + 1):
        mean = sums[..., seeds - 1] / seeds
        bound = mean[..., :, None] - mean[..., None, :] - sd * rule.width_factor(k, seeds)
        bound = np.where(alive[..., None, :] & alive[..., :, None], bound, -np.inf)
        best = bound.argmax(-1)
        shown = np.take_along_axis(bound, best[..., None], -1)[..., 0]
        out = alive & (shown > rule.margin)
        at[out], by[out], lower[out] = seeds, best[out], shown[out]
        alive &= ~out
    return Race(at, by, lower, n)


def losses_for(
    means: np.ndarray,
    sd: float,
    seeds: int,
    repeats: int,
    noise: Noise,
    rng: np.random.Generator,
    seed_sd: float = 1.0,
) -> np.ndarray:
    """Simulated losses (repeats, k, seeds): the planted means, a seed effect shared by every
    placement (sd `seed_sd`: the paired design cancels it) and per-trial noise of sd `sd`,
    normal, lognormal (skewed, centred, scaled to sd) or t with 3 degrees of freedom (scaled)."""
    k = len(means)
    shape = (repeats, k, seeds)
    if noise == "normal":
        eps = rng.standard_normal(shape)
    elif noise == "lognormal":
        s = 0.8  # skewness ≈ 3
        raw = rng.lognormal(0.0, s, shape)
        eps = (raw - math.exp(s * s / 2)) / math.sqrt((math.exp(s * s) - 1) * math.exp(s * s))
    else:
        eps = rng.standard_t(3, shape) / math.sqrt(3.0)
    common = rng.standard_normal((repeats, 1, seeds)) * seed_sd
    return np.asarray(means)[None, :, None] + common + sd * eps


@dataclass(frozen=True)
class Figures:
    kept_best: float  # P(the best placement survives)
    lost_near: float  # P(a given placement within the margin of the best is eliminated), max
    trials: float  # mean trials of the race
    full: int  # trials of the full grid at N seeds
    same_power: int  # trials of the full grid at the fixed seeds of the same power


def simulate(
    means: np.ndarray,
    sd: float,
    rule: SelectionRule,
    repeats: int,
    noise: Noise = "normal",
    seed: int = 0,
) -> Figures:
    """The rule as shipped on planted `means` (lower is better; the first minimum is the best)."""
    means = np.asarray(means, dtype=float)
    rng = np.random.default_rng(seed)
    result = race(losses_for(means, sd, rule.last, repeats, noise, rng), rule)
    best = int(means.argmin())
    near = np.flatnonzero(means - means[best] <= rule.margin)
    lost = (~result.survivors[:, near]).mean(0)
    return Figures(
        kept_best=float(result.survivors[:, best].mean()),
        lost_near=float(lost.max()),
        trials=float(result.trials.mean()),
        full=len(means) * rule.last,
        same_power=len(means) * fixed_seeds_same_power(rule, len(means)),
    )


def fixed_seeds_same_power(rule: SelectionRule, k: int) -> int:
    """Seeds of the one-look design with the same power: every placement trains n seeds, then
    i goes when X̄_i − X̄_l − t·S_il/√n > δ for some l, t the 1 − alpha/(k − 1) quantile of t
    with n − 1 df (Hsu's subset with the margin, Bonferroni; the same guarantee). The smallest n
    whose bound is no wider than the race's at N seeds, so it eliminates, at every gap, at least
    what the race eliminates by N (its power is at least the race's)."""
    from scipy.stats import t

    race_width = math.sqrt(2 * rule.h2(k) / rule.last)
    level = 1 - rule.alpha / max(k - 1, 1)
    for seeds in range(2, 100 * rule.last):
        if t.ppf(level, seeds - 1) / math.sqrt(seeds) <= race_width:
            return seeds
    raise ValueError("no fixed design of the same power")
