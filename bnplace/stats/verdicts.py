"""The verdict rule: paired per-seed differences in; estimate, interval, verdict, seed figures out.

In: paired differences between two variants, one per seed, on the scale the comparison uses
(log ratios of the metric, so that effects read as percentages), as NumPy arrays with one row per
comparison or per simulated repeat; the size of the comparison family, alpha and the equivalence
margin. Out: the Hodges–Lehmann estimate, the exact signed-rank confidence interval made of
Walsh averages, its exact p-value, the verdict (better / worse / equivalent / inconclusive), and
the fewest seeds at which any verdict is reachable (the seeds that give a stated power are
`bnplace.stats.seed_figures`'s, found by simulating this very rule). With `compare.interval: t`:
the mean, its Student t interval and t p-value instead (exact under normal differences at any
n ≥ 2; it covers the mean, and skewed differences break it: tests/test_t_interval.py).

With `compare.interval: t` (`t_intervals`; its sequential levels: `bnplace.stats.t_sequential`)
the interval is Student t's on the mean paired log ratio at the same level, and the verdict is
read off it the same way.

The rule, in one sentence: every interval is an exact signed-rank interval at the Bonferroni
level 1 − alpha/m over the m comparisons of the family, and the verdict is read off it — better
or worse when it excludes 0, equivalent when it lies inside ±margin, inconclusive otherwise — so
that all verdicts of a table hold together with probability at least 1 − alpha, and an interval
that excludes 0 always agrees with the verdict beside it. Equivalence by interval inclusion is
TOST (Schuirmann 1987) at level alpha/(2m) per side, a stricter level than TOST's usual alpha.

References: Hollander, Wolfe & Chicken, *Nonparametric Statistical Methods* (3rd ed., 2014),
§3.1-3.3 (exact signed-rank test, Walsh averages, the Hodges–Lehmann estimator and its exact
interval); Schuirmann, J. Pharmacokinet. Biopharm. 15 (1987) 657-680 (two one-sided tests);
Lehmann, *Nonparametrics* (1975), ch. 2 (asymptotic efficiency 3/π of the signed-rank test under
normality, used only as the simulation's starting point).

Pure: NumPy only, no files; deterministic (simulations take a seed). Differences may be ±inf
(a failed seed ranks worse than any finished one); a Walsh average of +inf and -inf counts as a
tie (0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np

BETTER = "better"
WORSE = "worse"
EQUIVALENT = "equivalent"
INCONCLUSIVE = "inconclusive"
BASELINE = "baseline"

SIGNED_RANK = "signed_rank"  # `compare.interval`: exact signed-rank intervals (default)
T = "t"  # Student t intervals of the mean (`t_intervals`; per look: bnplace.stats.t_sequential)
INTERVALS = (SIGNED_RANK, T)

RANK_WORST = "rank_worst"  # a failed seed ranks worse than every finished seed (default)
DROP = "drop"  # a failed seed leaves the pairing

DEFAULT_ALPHA = 0.05
# The smallest relative effect worth acting on. 5%: placement changes smaller than that are
# usually below what another learning rate or a few more epochs change, and at the seed counts
# people run (10-30) the seed-to-seed spread of a paired ratio is typically 2-8%, so ±5% is a
# margin an equivalence verdict can reach (see `seed_figures.seeds_for`).
DEFAULT_MARGIN = 0.05
# Assumed seed-to-seed sd of a paired log ratio, for the prospective seed figures at plan time
# (the report prints the measured one, to put in `compare.seed_sd` for the next sweep).
DEFAULT_SEED_SD = 0.05
POWER = 0.8


@dataclass(frozen=True)
class Contrast:
    """One comparison of the family: variant `a` against `b` (a − b on the log scale).

    With `a2` and `b2` it is an interaction: (a − b) − (a2 − b2), the difference of two
    differences (for example BN's effect at batch 8 minus its effect at batch 32).
    `origin` is "baseline" (a variant against the baseline), "contrast" or "interaction".
    """

    name: str
    a: str
    b: str
    origin: str = "baseline"
    a2: str = ""
    b2: str = ""

    @property
    def is_interaction(self) -> bool:
        return bool(self.a2)

    @property
    def variants(self) -> tuple[str, ...]:
        return (self.a, self.b, self.a2, self.b2) if self.is_interaction else (self.a, self.b)


@dataclass(frozen=True)
class Design:
    """How a sweep's comparisons are judged: what `compare` reads from the plan."""

    alpha: float = DEFAULT_ALPHA
    margin: float = DEFAULT_MARGIN
    seed_sd: float = DEFAULT_SEED_SD
    failures: str = RANK_WORST
    contrasts: tuple[Contrast, ...] = field(default_factory=tuple)  # beyond the baseline's
    looks: tuple[int, ...] = ()  # seeds per variant at each look of a sequential design
    versus_baseline: bool = True  # False: the family is the declared contrasts alone
    interval: str = SIGNED_RANK  # the interval family verdicts are read from (INTERVALS)
    # rho of the looks' alpha spending alpha·t^rho; None: the interval family's default
    # (bnplace.stats.sequential.SPENDING_POWER)
    spending: float | None = None

    @property
    def sequential(self) -> bool:
        return bool(self.looks)

    def to_dict(self) -> dict[str, object]:
        """Plain data, a key per field in field order (contrasts and looks as lists)."""
        return {
            **asdict(self),
            "contrasts": [asdict(c) for c in self.contrasts],
            "looks": list(self.looks),
        }

    @classmethod
    def from_dict(cls, data: dict[str, object] | None) -> Design:
        """The design written by `to_dict`; defaults for a plan that predates it."""
        if not isinstance(data, dict):
            return cls()
        raw = data.get("contrasts")
        contrasts = tuple(
            Contrast(
                str(c["name"]),
                str(c["a"]),
                str(c["b"]),
                str(c.get("origin", "contrast")),
                str(c.get("a2", "")),
                str(c.get("b2", "")),
            )
            for c in (raw if isinstance(raw, list) else [])
            if isinstance(c, dict)
        )
        looks = data.get("looks")
        spending = data.get("spending")
        return cls(
            alpha=float(data.get("alpha", DEFAULT_ALPHA)),  # type: ignore[arg-type]
            margin=float(data.get("margin", DEFAULT_MARGIN)),  # type: ignore[arg-type]
            seed_sd=float(data.get("seed_sd", DEFAULT_SEED_SD)),  # type: ignore[arg-type]
            versus_baseline=bool(data.get("versus_baseline", True)),
            failures=str(data.get("failures", RANK_WORST)),
            contrasts=contrasts,
            looks=tuple(int(n) for n in looks) if isinstance(looks, list) else (),
            interval=str(data.get("interval", SIGNED_RANK)),
            spending=None if spending is None else float(spending),  # type: ignore[arg-type]
        )


def family(variants: Sequence[str], baseline: str, design: Design) -> tuple[Contrast, ...]:
    """The comparison family: every variant against the baseline (unless the design asks for its
    declared contrasts alone: each comparison more widens every interval), then the contrasts."""
    against = tuple(
        Contrast(f"{v} vs {baseline}", v, baseline)
        for v in variants
        if v != baseline and design.versus_baseline
    )
    return against + tuple(design.contrasts)


def level_for(alpha: float, m: int) -> float:
    """The confidence level of each interval in a family of `m`: Bonferroni, 1 − alpha/m."""
    return 1.0 - alpha / max(m, 1)


def margin_bounds(margin: float) -> tuple[float, float]:
    """±margin as relative effects, on the log-ratio scale: (log(1 − m), log(1 + m))."""
    return (math.log1p(-margin), math.log1p(margin))


def percent(log_ratio: np.ndarray | float) -> np.ndarray | float:
    """A log ratio as a relative effect in percent: 100 (e^x − 1)."""
    return 100.0 * np.expm1(log_ratio)


# ------------------------------------------------------------------ the exact null distribution


@lru_cache(maxsize=256)
def null_cdf(n: int) -> np.ndarray:
    """P(T+ ≤ t) for t = 0 .. n(n+1)/2 under the null: T+ is a sum of a random subset of 1..n."""
    size = n * (n + 1) // 2
    pmf = np.zeros(size + 1)
    pmf[0] = 1.0
    for i in range(1, n + 1):  # add rank i with probability 1/2
        shifted = np.zeros_like(pmf)
        shifted[i:] = pmf[: size + 1 - i]
        pmf = 0.5 * (pmf + shifted)
    cdf = np.cumsum(pmf)
    cdf.setflags(write=False)
    return cdf


def interval_rank(n: int, level: float) -> int:
    """k such that [W_(k), W_(N+1−k)] of the sorted Walsh averages covers with probability
    ≥ `level` (1-based); 0 when n seeds cannot reach `level` (2^−n > (1 − level)/2)."""
    if n < 1:
        return 0
    cdf = null_cdf(n)
    return int(np.searchsorted(cdf, (1.0 - level) / 2.0 * (1 + 1e-12), side="right"))


def achieved_level(n: int, k: int) -> float:
    """The exact coverage of the k-th interval under the null (the widest, k = 1, when k = 0)."""
    if n < 1:
        return math.nan
    return 1.0 - 2.0 * float(null_cdf(n)[max(k, 1) - 1])


def min_seeds(m: int, alpha: float = DEFAULT_ALPHA, interval: str = SIGNED_RANK) -> int:
    """Fewest paired seeds at which any verdict is reachable in a family of `m` comparisons:
    the smallest n with 2^(1−n) ≤ alpha/m (8 comparisons at 0.05: 9 seeds); 2 for t
    intervals (a t quantile is finite at any level from one degree of freedom)."""
    if interval == T:
        return 2
    return max(1, math.ceil(1 + math.log2(max(m, 1) / alpha) - 1e-12))


# ------------------------------------------------------------------ intervals and verdicts


def walsh_averages(d: np.ndarray) -> np.ndarray:
    """(R, n) differences -> (R, n(n+1)/2) Walsh averages (d_i + d_j)/2, i ≤ j, unsorted."""
    i, j = np.triu_indices(d.shape[1])
    with np.errstate(invalid="ignore"):
        w = (d[:, i] + d[:, j]) / 2.0
    w[np.isnan(w)] = 0.0  # +inf meets -inf: a failed seed on each side, a tie
    return w


@dataclass(frozen=True, eq=False)
class Intervals:
    """Per row: Hodges–Lehmann estimate, interval, exact two-sided p-value; and for all rows the
    interval's exact level and whether the requested level was reachable."""

    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p_value: np.ndarray
    level: float
    reachable: bool


def signed_rank_intervals(d: np.ndarray, level: float) -> Intervals:
    """Hodges–Lehmann estimate and exact signed-rank interval of each row of `d` (R x n).

    Where n seeds cannot reach `level`, the interval is the widest the data give, [min, max]
    (level 1 − 2^(1−n)), and `reachable` is False. The p-value counts the Walsh averages on
    each side of 0 (zeros count against the side tested), so p ≤ 1 − level exactly when the
    interval excludes 0.
    """
    d = np.atleast_2d(np.asarray(d, dtype=float))
    rows, n = d.shape
    if n == 0:
        nan = np.full(rows, np.nan)
        return Intervals(nan, nan, nan, nan, math.nan, False)
    w = np.sort(walsh_averages(d), axis=1)
    size = w.shape[1]
    k = interval_rank(n, level)
    lo_at, hi_at = (k - 1, size - k) if k else (0, size - 1)
    cdf = null_cdf(n)
    at_or_below = np.sum(w <= 0.0, axis=1)
    at_or_above = np.sum(w >= 0.0, axis=1)
    p = np.minimum(1.0, 2.0 * np.minimum(cdf[at_or_below], cdf[at_or_above]))
    return Intervals(
        estimate=np.median(w, axis=1),
        low=w[:, lo_at],
        high=w[:, hi_at],
        p_value=p,
        level=achieved_level(n, k),
        reachable=k > 0,
    )


def t_intervals(d: np.ndarray, level: float) -> Intervals:
    """Mean and Student t interval of each row of `d` (R x n) at `level`, with the two-sided t
    p-value (p ≤ 1 − level exactly when the interval excludes 0). Fewer than 2 seeds, or a
    non-finite difference in a row: the interval is (−∞, ∞) and `reachable` is False."""
    from scipy import stats as st  # lazily: plan-time imports stay light

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
    """The interval of each row of `d` at `level` in the family `interval` (`compare.interval`):
    the one place that picks it, for fixed designs, every look and every simulation."""
    if interval == T:
        return t_intervals(d, level)
    return signed_rank_intervals(d, level)


def decide(
    low: np.ndarray,
    high: np.ndarray,
    *,
    bounds: tuple[float, float] | None,
    reachable: bool,
    lower_is_better: bool,
) -> np.ndarray:
    """Verdicts from intervals (a − b): better / worse when 0 is excluded, equivalent when the
    interval lies inside `bounds` (None: no margin, never equivalent), else inconclusive."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    out = np.full(low.shape, INCONCLUSIVE, dtype=object)
    if not reachable:
        return out
    above, below = low > 0.0, high < 0.0
    out[above] = WORSE if lower_is_better else BETTER
    out[below] = BETTER if lower_is_better else WORSE
    if bounds is not None:
        inside = (low > bounds[0]) & (high < bounds[1]) & ~above & ~below
        out[inside] = EQUIVALENT
    return out


def excluded_text(low_pct: float, high_pct: float) -> str:
    """What an inconclusive interval still rules out, in relative terms."""
    if not (math.isfinite(low_pct) or math.isfinite(high_pct)):
        return "excludes nothing"
    lo = f"{low_pct:+.1f}%" if math.isfinite(low_pct) else "−∞"
    hi = f"{high_pct:+.1f}%" if math.isfinite(high_pct) else "+∞"
    return f"effects beyond {lo}/{hi} excluded"
