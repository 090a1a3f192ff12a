"""Seeds on demand: the group-sequential verdict rule, its looks, boundaries and seed figures.

In: a seed schedule (`sweep.seeds: {min, max, step}`: looks at min, min + step, ... and max
seeds per variant), alpha and the size m of the comparison family, and per comparison the
per-seed paired differences seen so far (in seed order). Out: the nominal level of each look's
interval, the decision of a comparison (the first look whose interval gives a verdict, with that
interval), and the design's figures by simulating this very rule: the false-verdict rate with
no effect, the power at the last look and the expected seeds per variant at a given effect.

The rule: at look k every open comparison gets the exact signed-rank interval of
`bnplace.stats.verdicts` at the nominal level 1 − p_k, and the verdict is read off it as in a fixed
design (better / worse when it excludes 0, equivalent inside ±margin); the first look that gives
a verdict decides the comparison, which then needs no more seeds. The p_k are repeated
confidence interval levels (Jennison & Turnbull 1989): boundaries c_k of the standardised
statistic at information fractions t_k = n_k / max, chosen so that a Brownian motion crosses
±c_k for the first time at look k with probability α(t_k) − α(t_{k−1}) for the spending
function α(t) = a·t² with a = alpha / m (Lan & DeMets 1983; the power family of Kim & DeMets
1987), found by recursive numerical integration (Armitage, McPherson & Rowe 1969; Jennison &
Turnbull 2000, ch. 19). Every interval then covers with probability ≥ 1 − a at all
looks together, whenever the sweep stops, so every verdict read off them — including
"equivalent", at any look — is wrong with probability ≤ alpha over the whole table (Bonferroni
across comparisons). Why intervals rather than a test with futility bounds: the same interval
gives better/worse and equivalence, stopping early for either is covered, and looks that are
skipped (a killed sweep resumed later) or data that stop early cannot break it. A slowly rising
spending function spends little at the first looks, so the last look's level stays close to the
fixed design's and a sweep that runs to `max` loses little power (`simulate` shows the figures;
README "Seeds on demand" quotes them).
Why t² rather than O'Brien–Fleming (≈ t³) or Pocock (≈ t): measured by `simulate` (looks at
6, 10, ..., 38, 40 seeds, 3 comparisons, seed sd twice the margin), it keeps 99% of
O'Brien–Fleming's power at 1.5x the margin (0.958 against 0.964) and most of its equivalence
verdicts at no effect (0.32 against 0.38), and at 2x the margin it trains 12% fewer seeds
(20.0 against 22.8 per variant, 0.57x the fixed design of the same power; Pocock-like spending
saves about as much but loses power at `max`).

With `compare.interval: t` each look's interval is the Student t interval of the mean
(`bnplace.stats.verdicts.t_intervals`) at level 1 − p_k, where p_k comes from boundaries
computed for the t statistics themselves (`bnplace.stats.t_sequential`: exact group-sequential t
tests, Jennison & Turnbull 1991) with the spending function α·t (rho = 1, `SPENDING_POWER`): a
look can then decide from 2 seeds, none is dead, and the same repeated-CI guarantee holds for
normal differences (tests/test_t_interval.py).

The exponent rho is the design's (`sweep.seeds.spending`, `Design.spending`; None: the interval
family's default above): any rho > 0 keeps the guarantee, since every look's level comes from
the same spending identity. A smaller rho spends more at the first looks (more early verdicts
at large effects, less power at `max`); `seeds: auto` searches it for t intervals
(`bnplace.stats.sequential_design`).

Dead looks: a look at which no comparison of the family can reach a verdict (2^(1−n) above its
nominal alpha) would only take alpha from the later looks; `live_looks` drops them, and the
plan runs the design from its first live look (bnplace.plan.design.make_design), so every
look that is dealt seeds can decide.

References: Jennison & Turnbull, JRSS B 51 (1989) 305-361 (repeated confidence intervals);
Lan & DeMets, Biometrika 70 (1983) 659-663 (alpha spending); Kim & DeMets, Biometrika 74
(1987) 149-154 (the power family of spending functions); Jennison & Turnbull,
*Group Sequential Methods with Applications to Clinical Trials* (2000), ch. 7 and 19.
Pure: NumPy (and SciPy's normal cdf), no files; simulations take a seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from bnplace.stats.t_sequential import t_nominal_levels
from bnplace.stats.verdicts import (
    BETTER,
    INCONCLUSIVE,
    SIGNED_RANK,
    WORSE,
    Design,
    Intervals,
    T,
    decide,
    paired_intervals,
)

_GRID_POINTS = 2001  # recursive integration grid over ±_GRID_SDS sd of the last look
_GRID_SDS = 9.0


def look_sizes(minimum: int, maximum: int, step: int) -> tuple[int, ...]:
    """Seeds per variant at each look: minimum, minimum + step, ... and maximum."""
    sizes = [*range(minimum, maximum, step), maximum]
    return tuple(sorted(set(sizes)))


def _norm_cdf(x: np.ndarray | float) -> np.ndarray:
    from scipy.special import ndtr

    return np.asarray(ndtr(x))


# rho of the spending function alpha * t^rho per interval family (see the module's opening):
# t intervals spend linearly (rho = 1, Pocock-like): their few-seed looks already pay with wide
# t quantiles, and measured at m = 6, seed sd 4.5% (looks 5..14), rho = 1 decides a 2x-margin
# effect with 7.2 seeds where rho = 2 needs 7.6, at the same power (rho = 0.75: 7.1, but ~2 seeds
# more per variant over auto's no effect / 1x / 2x at m = 3, sd 10%; benchmarks/t_spending.py)
SPENDING_POWER = {SIGNED_RANK: 2.0, T: 1.0}


def spending_power(interval: str = SIGNED_RANK, spending: float | None = None) -> float:
    """The rho a design spends alpha with: its own, else its interval family's default."""
    return SPENDING_POWER[interval] if spending is None else float(spending)


def spent(
    t: float, alpha: float, interval: str = SIGNED_RANK, spending: float | None = None
) -> float:
    """Alpha used by information fraction t: the power family alpha * t^rho, rho = 2 for
    signed-rank intervals, 1 for t unless the design gives its own (Kim & DeMets 1987; rho = 3
    is close to O'Brien–Fleming, rho = 1 to Pocock)."""
    return alpha * min(max(t, 0.0), 1.0) ** spending_power(interval, spending)


def spending_words(interval: str = SIGNED_RANK, spending: float | None = None) -> str:
    """The spending function in words: 'alpha·t', 'alpha·t²' or 'alpha·t^0.75'."""
    rho = spending_power(interval, spending)
    return {1.0: "alpha·t", 2.0: "alpha·t²", 3.0: "alpha·t³"}.get(rho, f"alpha·t^{rho:g}")


def _boundary(moved: np.ndarray, s: np.ndarray, n: float, target: float) -> float:
    """The z at which paths still going cross ±z √n at this look with probability `target`.

    Bisection on z; the crossing probability at a z (the mass at |s| ≥ z √n) is read off the
    tail sums of the grid ordered by |s|, so each step is a search rather than a sum over the
    grid (the same mass up to rounding; `sweep.seeds: auto` judges ~100 designs)."""
    h = s[1] - s[0]
    order = np.argsort(np.abs(s), kind="stable")
    sorted_abs = np.abs(s)[order]
    tail = np.concatenate([np.cumsum(moved[order][::-1])[::-1], [0.0]])  # mass at index >= i
    root = math.sqrt(n)
    lo, hi = 0.0, 40.0
    for _ in range(60):  # bisection: the crossing probability falls as z grows
        mid = (lo + hi) / 2
        crossing = float(tail[np.searchsorted(sorted_abs, mid * root, side="left")] * h)
        lo, hi = (mid, hi) if crossing > target else (lo, mid)
    return hi


@lru_cache(maxsize=128)
def nominal_levels(
    looks: tuple[int, ...], alpha: float, spending: float | None = None
) -> tuple[float, ...]:
    """Two-sided nominal alpha p_k of each look's interval for one comparison that may spend
    `alpha` in all (alpha·t^rho, rho = `spending` or the signed-rank default); the interval at
    look k is taken at level 1 − p_k.

    Recursive integration of the sub-density of the score S_k (variance n_k) on a grid, over
    the paths that have not crossed yet; each boundary by bisection on the crossing probability.
    """
    ns = np.asarray(looks, dtype=float)
    if ns.size == 0:
        return ()
    half = _GRID_SDS * math.sqrt(ns[-1])
    s = np.linspace(-half, half, _GRID_POINTS)
    h = s[1] - s[0]
    density = np.zeros_like(s)  # of S at the previous look, on the paths still going
    previous_n, used = 0.0, 0.0
    levels = []
    for n in ns:
        target = spent(n / ns[-1], alpha, SIGNED_RANK, spending) - used
        if previous_n == 0:
            moved = np.exp(-(s**2) / (2 * n)) / math.sqrt(2 * math.pi * n)
        else:
            gap = n - previous_n
            width = math.ceil(_GRID_SDS * math.sqrt(gap) / h)
            offsets = np.arange(-width, width + 1) * h
            kernel = np.exp(-(offsets**2) / (2 * gap)) / math.sqrt(2 * math.pi * gap) * h
            moved = np.convolve(density, kernel, mode="same")
        c = _boundary(moved, s, n, target)
        density = np.where(np.abs(s) < c * math.sqrt(n), moved, 0.0)
        used += target
        previous_n = n
        levels.append(float(2.0 - 2.0 * _norm_cdf(c)))
    return tuple(levels)


@dataclass(frozen=True)
class SequentialRule:
    """The looks of a sequential design and the level of each look's intervals, for a family
    of `m` comparisons at familywise `alpha`."""

    looks: tuple[int, ...]
    alpha: float
    m: int
    interval: str = SIGNED_RANK  # the interval family (`compare.interval`)
    spending: float | None = None  # rho of alpha·t^rho; None: the interval family's default

    @classmethod
    def of(cls, design: Design, m: int) -> SequentialRule:
        """The rule of a sequential design for a family of `m` comparisons."""
        return cls(design.looks, design.alpha, m, design.interval, design.spending)

    @property
    def levels(self) -> tuple[float, ...]:
        """Confidence level of each look's intervals: 1 − p_k, with alpha/m spent per comparison
        (t intervals: boundaries computed for the t statistics, `t_nominal_levels`)."""
        a = self.alpha / max(self.m, 1)
        if self.interval == T:
            ns = self.looks
            cumulative = tuple(spent(n / ns[-1], a, T, self.spending) for n in ns)
            return tuple(1.0 - p for p in t_nominal_levels(ns, cumulative))
        return tuple(1.0 - p for p in nominal_levels(self.looks, a, self.spending))

    def first_reachable_look(self) -> int | None:
        """Index of the first look at which any verdict is reachable (signed rank: 2^(1−n) ≤
        p_k; t: p_k > 0 with 2 or more seeds), if any."""
        for k, (n, level) in enumerate(zip(self.looks, self.levels, strict=True)):
            if self.interval == T:
                if n >= 2 and level < 1.0:
                    return k
            elif 2.0 ** (1 - n) <= (1.0 - level) * (1 + 1e-12):
                return k
        return None


def live_looks(
    looks: tuple[int, ...],
    alpha: float,
    m: int,
    interval: str = SIGNED_RANK,
    spending: float | None = None,
) -> tuple[int, ...]:
    """The looks from the first at which a comparison of a family of `m` can reach a verdict.

    A look at n seeds is dead when the exact signed-rank interval at its nominal level cannot
    exclude anything (2^(1−n) > p_k: no sign pattern of n pairs is that extreme); spending alpha
    there only narrows the later looks' levels. A look is reachable as the first look exactly
    when 2^(1−n) ≤ alpha/m · (n / max)² (the first look spends alpha(t_1) alone), and a look
    dead as the first stays dead behind earlier looks (they only take alpha away), so the live
    design starts at the smallest such n; its levels are then spent over the live looks only
    (the first one gets alpha(t) of its own information fraction). Checked on the rule itself
    (the grid integration, not the closed form, sets the levels). When no look can decide, the
    looks are kept as given (`plan` warns). t intervals: the looks from the first whose
    computed level can decide (2 or more seeds)."""
    if interval == T:
        for first in range(len(looks)):
            if SequentialRule(looks[first:], alpha, m, T, spending).first_reachable_look() == 0:
                return looks[first:]
        return looks
    rule = SequentialRule(looks, alpha, m, SIGNED_RANK, spending)
    for start in range(len(looks)):
        n = looks[start]
        if 2.0 ** (1 - n) > spent(n / looks[-1], alpha / max(m, 1), SIGNED_RANK, spending) * (
            1 + 1e-9
        ):
            continue
        for first in range(start, len(looks)):  # the closed form, confirmed on the levels
            if replace(rule, looks=looks[first:]).first_reachable_look() == 0:
                return looks[first:]
        break
    return looks


@dataclass(frozen=True)
class Decision:
    """Where a comparison stands: the last look it was judged at (None: not even the first look
    is complete), that look's interval and verdict, and whether that verdict decided it."""

    look: int | None
    seeds: int
    verdict: str
    intervals: Intervals | None
    decided: bool


def decision_record(d: Decision) -> dict[str, Any]:
    """A decision as plain JSON-able data; `decision_from` reads it back exactly (floats keep
    every bit through JSON)."""
    iv = d.intervals
    return {
        "look": d.look,
        "seeds": int(d.seeds),
        "verdict": str(d.verdict),
        "decided": bool(d.decided),
        "intervals": None
        if iv is None
        else {
            "estimate": [float(x) for x in iv.estimate],
            "low": [float(x) for x in iv.low],
            "high": [float(x) for x in iv.high],
            "p_value": [float(x) for x in iv.p_value],
            "level": float(iv.level),
            "reachable": bool(iv.reachable),
        },
    }


def decision_from(record: Mapping[str, Any]) -> Decision:
    """The `Decision` a `decision_record` wrote."""
    iv = record.get("intervals")
    intervals = (
        None
        if iv is None
        else Intervals(
            estimate=np.asarray(iv["estimate"], dtype=float),
            low=np.asarray(iv["low"], dtype=float),
            high=np.asarray(iv["high"], dtype=float),
            p_value=np.asarray(iv["p_value"], dtype=float),
            level=float(iv["level"]),
            reachable=bool(iv["reachable"]),
        )
    )
    look = record.get("look")
    return Decision(
        None if look is None else int(look),
        int(record["seeds"]),
        str(record["verdict"]),
        intervals,
        bool(record["decided"]),
    )


def _look_verdicts(
    seen: np.ndarray,
    level: float,
    bounds: tuple[float, float] | None,
    lower_is_better: bool,
    interval: str,
) -> tuple[np.ndarray, Intervals]:
    """The verdict of each row of `seen` (R x n differences) at one look's level."""
    iv = paired_intervals(seen, level, interval)
    verdicts = decide(
        iv.low, iv.high, bounds=bounds, reachable=iv.reachable, lower_is_better=lower_is_better
    )
    return verdicts, iv


def judge(
    d: np.ndarray,
    complete: int,
    rule: SequentialRule,
    *,
    bounds: tuple[float, float] | None,
    lower_is_better: bool,
) -> Decision:
    """Walk the looks of one comparison: `d` holds its paired differences by seed in seed order
    (NaN: the seed says nothing, e.g. dropped), of which the first `complete` seeds have ended
    on every side. The first look whose interval gives a verdict decides; past the complete
    looks, the last one judged stands (undecided)."""
    d = np.asarray(d, dtype=float)
    last = Decision(None, 0, INCONCLUSIVE, None, False)
    for k, (n, level) in enumerate(zip(rule.looks, rule.levels, strict=True)):
        if n > complete:
            break
        seen = d[:n]
        verdicts, iv = _look_verdicts(
            seen[~np.isnan(seen)][None, :], level, bounds, lower_is_better, rule.interval
        )
        last = Decision(k, n, str(verdicts[0]), iv, verdicts[0] != INCONCLUSIVE)
        if last.decided:
            break
    return last


def next_look_seeds(decision: Decision, rule: SequentialRule) -> int:
    """Seeds per variant an open comparison needs before it can be judged again (0: none)."""
    if decision.decided:
        return 0
    k = -1 if decision.look is None else decision.look
    return rule.looks[k + 1] if k + 1 < len(rule.looks) else 0


def walk_looks(
    d: np.ndarray,
    rule: SequentialRule,
    *,
    bounds: tuple[float, float] | None,
    lower_is_better: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """`judge` over many comparisons at once: per row of `d` (R x max seeds, finite paired
    differences in seed order) the verdict and the index of the look that decided it (-1:
    undecided at the last look). The seeds a row ended with are its deciding look's (`rule.looks`),
    else the last look's: what the scheduler deals."""
    rows = d.shape[0]
    verdicts = np.full(rows, INCONCLUSIVE, dtype=object)
    decided_at = np.full(rows, -1)
    for k, (n, level) in enumerate(zip(rule.looks, rule.levels, strict=True)):
        open_rows = decided_at < 0
        if not open_rows.any():
            break
        found, _ = _look_verdicts(d[open_rows, :n], level, bounds, lower_is_better, rule.interval)
        hit = np.flatnonzero(open_rows)[found != INCONCLUSIVE]
        verdicts[hit] = found[found != INCONCLUSIVE]
        decided_at[hit] = k
    return verdicts, decided_at


# ------------------------------------------------------------------ the design's figures


@dataclass(frozen=True, eq=False)
class Simulated:
    """Per simulated sweep (rows) and comparison (columns): the verdict and the look that
    decided it (-1: undecided at the last look); per sweep and variant, the seeds it trained."""

    verdicts: np.ndarray  # (R, C) of str
    decided_at: np.ndarray  # (R, C) look index or -1
    seeds: np.ndarray  # (R, V) seeds per variant

    def rate(self, *verdicts: str) -> float:
        """Share of sweeps in which some comparison got one of `verdicts` (familywise)."""
        return float(np.mean(np.isin(self.verdicts, verdicts).any(axis=1)))

    def share(self, *verdicts: str) -> np.ndarray:
        """Per comparison, the share of sweeps that gave it one of `verdicts`."""
        return np.mean(np.isin(self.verdicts, verdicts), axis=0)


def simulate(
    rule: SequentialRule,
    effects: Sequence[float],
    comparisons: Sequence[tuple[int, ...]],
    *,
    sd: float,
    margin: float | None,
    reps: int = 4000,
    seed: int = 0,
    lower_is_better: bool = True,
) -> Simulated:
    """Run the sequential rule on `reps` simulated sweeps: variant v's per-seed log metric is
    normal around `effects[v]`, with sd sd/√2 so that a paired log ratio has sd `sd`; each
    comparison (a, b) is a − b. A variant trains seeds until every comparison it is in is
    decided, as the scheduler deals them. A comparison (a, b, a2, b2) is an interaction,
    (a − b) − (a2 − b2)."""
    from bnplace.stats.verdicts import margin_bounds

    rng = np.random.default_rng(seed)
    n_max = rule.looks[-1]
    x = rng.normal(size=(reps, len(effects), n_max)) * (sd / math.sqrt(2.0))
    x += np.asarray(effects, dtype=float)[None, :, None]
    bounds = margin_bounds(margin) if margin is not None else None
    verdicts = np.full((reps, len(comparisons)), INCONCLUSIVE, dtype=object)
    decided_at = np.full((reps, len(comparisons)), -1)
    for c, sides in enumerate(comparisons):
        d = x[:, sides[0], :] - x[:, sides[1], :]
        if len(sides) == 4:
            d -= x[:, sides[2], :] - x[:, sides[3], :]
        verdicts[:, c], decided_at[:, c] = walk_looks(
            d, rule, bounds=bounds, lower_is_better=lower_is_better
        )
    looks = np.asarray(rule.looks)
    needed = np.where(decided_at >= 0, looks[np.maximum(decided_at, 0)], n_max)  # (R, C)
    seeds = np.zeros((reps, len(effects)), dtype=int)
    for c, sides in enumerate(comparisons):
        for v in sides:
            seeds[:, v] = np.maximum(seeds[:, v], needed[:, c])
    return Simulated(verdicts, decided_at, seeds)


@dataclass(frozen=True)
class Expected:
    """A design's cost and power by simulation (see `expected_seeds`): trials per dataset."""

    trials_null: float  # mean trials when no variant differs
    trials_margin: float  # ... when every variant differs from the baseline by the margin
    trials_2x: float  # ... by twice the margin
    fewest: int  # trials when every comparison decides at the first live look
    most: int  # trials when every comparison runs to the last look
    power_margin: float  # mean share of baseline comparisons decided better/worse, effect = margin
    power_1_5: float  # the same at 1.5x the margin
    power_2x: float  # the same at 2x the margin

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


_PLAN_REPS = 1000  # simulated sweeps behind a plan's figures: ~0.1-0.3 s a case


@lru_cache(maxsize=64)  # plan asks again for every plan of the same design
def expected_seeds(
    rule: SequentialRule,
    n_variants: int,
    baseline: int,
    comparisons: tuple[tuple[int, ...], ...],
    design: Design,
) -> Expected:
    """Expected trials and power of `rule` for a plan, with the design's margin and seed sd:
    every variant differs from the baseline by 0, 1x, 1.5x and 2x the margin (normal log
    ratios; `simulate`, 1,000 sweeps, seeded: the same figures every time)."""
    against = [c for c, sides in enumerate(comparisons) if baseline in sides[:2]]
    involved = len({v for sides in comparisons for v in sides})

    def run(times: float) -> Simulated:
        effect = math.log1p(times * design.margin)
        effects = [0.0 if v == baseline else effect for v in range(n_variants)]
        return simulate(
            rule, effects, comparisons, sd=design.seed_sd, margin=design.margin,
            reps=_PLAN_REPS, seed=7,
        )  # fmt: skip

    def trials(sim: Simulated) -> float:
        return float(sim.seeds.sum(axis=1).mean())

    def power(sim: Simulated) -> float:
        return float(np.mean(sim.share(BETTER, WORSE)[against])) if against else math.nan

    null, at_margin, beyond, twice = run(0.0), run(1.0), run(1.5), run(2.0)
    return Expected(
        trials_null=trials(null),
        trials_margin=trials(at_margin),
        trials_2x=trials(twice),
        fewest=involved * rule.looks[0],
        most=involved * rule.looks[-1],
        power_margin=power(at_margin),
        power_1_5=power(beyond),
        power_2x=power(twice),
    )
