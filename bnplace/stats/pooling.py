"""Pooling one comparison over datasets: each dataset's effect is one observation.

In: per-dataset effects `y` and their squared standard errors `v` (arrays whose last axis is
the k datasets; leading axes are independent analyses, so a simulation pools thousands of
repeats in one call), a confidence level, and for the verdict the ±margin bounds and the
metric's direction. Out: a `Pooled` with the pooled effect and its interval, the between-dataset
variance τ², I², Cochran's Q, the prediction interval for a new dataset and the p-value;
`pooled_verdict`, which reads them as better / worse / equivalent / inconclusive plus whether a
new dataset is predicted on the same side; `direction_across`, the datasets pointing each way
with a sign test; `MIN_PAIRS_TO_POOL`, the seeds a dataset's effect needs to be pooled; and
`simulate_pooled`, the rule run on simulated sweeps (tests and benchmarks/pooling_grid.py).
Pure: NumPy and SciPy only.

The method — the summary-statistics random-effects analysis: the pooled effect is the plain
mean of the k per-dataset effects, its interval the one-sample t interval on them (t with
k − 1 df, SE = sd of the effects / √k), at the family's Bonferroni level. The per-dataset
effect y_i = θ_i + e_i carries both the dataset's true effect and its seed noise, so the sd of
the y_i estimates √(τ² + σ_i²/n_i) directly and no per-dataset variance is plugged in as if it
were known. Why not inverse-variance weights (DerSimonian–Laird with Hartung–Knapp–Sidik–
Jonkman, what bnplace used before): each dataset's SE comes from 6-30 seeds, so its weight
1/SE² is itself noisy (with 6 seeds its coefficient of variation exceeds 1), and the weighted
interval undercovers more the more datasets are pooled: A/A false verdicts 0.064 at 20 datasets
x 6 seeds, 0.084 familywise at m = 6, 0.092 with t3 noise (issue 25). Estimated within-study
variances bias weighted meta-analyses at small n (Bakbergenuly, Hoaglin & Kulinskaya 2020,
Stat. Med. 39(2) 171-191; Lin 2018, PLoS ONE 13(9) e0204056), and the unweighted summary-
statistics t is valid under heterogeneous within-study variances, slightly conservative, with
little power lost (Mumford & Nichols 2009, NeuroImage 47(4) 1469-1475; Holmes & Friston 1998).
Measured over 2-40 datasets x 6-30 seeds, normal and t3 seed noise, dataset seed sds 2-8%:
A/A familywise ≤ 0.05 and simultaneous coverage ≥ 0.94 in every cell (tests/test_pooling.py;
benchmarks/pooling_grid.py for the whole grid).

- The prediction interval is for the effect a new, similar dataset shows with as many seeds:
  ȳ ± t_{k−1} · s · √(1 + 1/k) (the normal prediction interval for one more observation,
  e.g. Geisser 1993, *Predictive Inference*, ch. 2), at the same level as the pooled interval
  (the family's Bonferroni level, printed beside it); it needs k ≥ 3.
- τ² by DerSimonian & Laird (1986), Q and I² = max(0, (Q − (k − 1)) / Q) (Higgins & Thompson
  2002) describe the heterogeneity; they no longer enter the interval.
- `direction_across`: how many datasets' effects point each way, and an exact two-sided sign
  test (scipy.stats.binomtest) of "the median dataset's effect is 0" at the family's level.
  With k datasets its smallest p is 2^(1−k): at alpha 0.05 it needs k ≥ 6 for one comparison.

Per-dataset effects are what the caller measures (bnplace.compare.pooled: the mean of a
dataset's finite paired log ratios and its standard error).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as st

from bnplace.stats.verdicts import BETTER, EQUIVALENT, INCONCLUSIVE, WORSE

# Read beside a pooled better/worse whose prediction interval reaches past 0: the average
# effect is shown, but a new dataset, measured with as many seeds, may see none or the opposite.
NEW_DATASET_MAY_DIFFER = "on average; a new dataset may differ"
# A dataset's effect enters the pooled one with this many finite pairs (its effect is then a
# mean over enough seeds that its seed noise is near normal; the grid that backs the rule
# starts at 6 seeds: tests/test_pooling.py). Seeds on demand with several datasets start at
# this many seeds (bnplace.config.checks.check_datasets_seeds_pool).
MIN_PAIRS_TO_POOL = 6
# A squared standard error of 0 (every seed tied, e.g. accuracy 100% on both sides) would give
# infinite weight: floored at an SE of 1e-6 on the log-ratio scale, the weight's square stays
# finite, so τ² and I² are the limit as that SE goes to 0 (tests/test_pooling.py).
_TINY = 1e-12


@dataclass(frozen=True)
class Pooled:
    """A random-effects analysis; every field has the leading shape of the inputs."""

    k: np.ndarray  # datasets pooled
    estimate: np.ndarray  # μ
    se: np.ndarray  # standard error of μ: sd of the per-dataset effects / √k
    low: np.ndarray  # the interval at `level`
    high: np.ndarray
    tau2: np.ndarray  # DerSimonian–Laird between-dataset variance
    i2: np.ndarray  # in [0, 1]
    q: np.ndarray  # Cochran's Q
    pi_low: np.ndarray  # prediction interval for a new dataset at `level` (NaN below k = 3)
    pi_high: np.ndarray
    p_value: np.ndarray  # two-sided, t with k − 1 df
    level: float


def random_effects(y: np.ndarray, v: np.ndarray, level: float = 0.95) -> Pooled:
    """The pooled effect with its interval and prediction interval (each dataset one vote),
    and DerSimonian–Laird τ², Q and I² as the description of heterogeneity.

    `y` and `v` have the same shape (..., k); NaN entries (a dataset without an effect) are
    left out of their analysis. Below k = 2 the interval is NaN; below k = 3 the prediction
    interval is.
    """
    y = np.asarray(y, dtype=float)
    v = np.asarray(v, dtype=float)
    use = np.isfinite(y) & np.isfinite(v)
    k = use.sum(axis=-1)
    w = np.where(use, 1.0 / np.maximum(v, _TINY), 0.0)
    y0 = np.where(use, y, 0.0)
    sw = w.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        fixed = (w * y0).sum(axis=-1) / sw
        q = (w * (y0 - fixed[..., None]) ** 2).sum(axis=-1)
        denom = sw - (w**2).sum(axis=-1) / sw
        tau2 = np.maximum(0.0, (q - (k - 1)) / denom) + 0.0  # + 0.0: never -0.0
        tau2 = np.where(k >= 2, tau2, np.nan)
        mu = y0.sum(axis=-1) / k  # equal weights: the summary-statistics t (module docstring)
        spread = np.where(use, (y0 - mu[..., None]) ** 2, 0.0).sum(axis=-1) / (k - 1)
        se = np.sqrt(np.where(k >= 2, spread / k, np.nan))
        df = np.where(k >= 2, k - 1, np.nan)
        t = st.t.ppf(0.5 + level / 2, df)
        stat = np.abs(mu) / se
        p = np.where(se > 0, 2.0 * st.t.sf(stat, df), np.where(mu == 0, 1.0, 0.0))
        p = np.where(k >= 2, p, np.nan)
        i2 = np.where(q > 0, np.maximum(0.0, (q - (k - 1)) / q), 0.0)
        half_pi = np.where(k >= 3, t * np.sqrt(spread * (1.0 + 1.0 / k)), np.nan)
    return Pooled(
        k=k,
        estimate=np.where(k >= 1, mu, np.nan),
        se=se,
        low=mu - t * se,
        high=mu + t * se,
        tau2=tau2,
        i2=np.where(k >= 2, i2, np.nan),
        q=np.where(k >= 2, q, np.nan),
        pi_low=mu - half_pi,
        pi_high=mu + half_pi,
        p_value=p,
        level=level,
    )


def mean_effect(d: np.ndarray) -> tuple[float, float, int]:
    """A dataset's effect from its paired differences: (mean, squared standard error, n) of
    the finite ones (a failed seed's ±inf and a both-failed NaN are left out); NaN below 2."""
    x = np.asarray(d, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return float("nan"), float("nan"), int(x.size)
    return float(x.mean()), float(x.var(ddof=1) / x.size), int(x.size)


def pooled_verdict(
    low: float,
    high: float,
    pi_low: float,
    pi_high: float,
    *,
    bounds: tuple[float, float],
    lower_is_better: bool,
) -> tuple[str, bool]:
    """(verdict, new dataset). better/worse: the pooled interval excludes 0 (an effect a − b
    below 0 is better when lower is better); equivalent: it lies inside `bounds`; inconclusive
    otherwise. "New dataset" is True for better/worse only when the prediction interval
    excludes 0 as well: a new, similar dataset measured with as many seeds is predicted on the
    same side (False: read it as "better on average; a new dataset may differ"). It says
    nothing about the datasets measured: see `direction_across` for those."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return INCONCLUSIVE, False
    if high < 0 or low > 0:
        good = (high < 0) == lower_is_better
        new = bool(np.isfinite(pi_low) and (pi_high < 0 or pi_low > 0))
        return (BETTER if good else WORSE), new
    if bounds[0] < low and high < bounds[1]:
        return EQUIVALENT, False
    return INCONCLUSIVE, False


def reading(verdict: str, new_dataset: bool) -> str:
    """The pooled verdict in words: "better", or "better on average; a new dataset may
    differ"."""
    if verdict in (BETTER, WORSE) and not new_dataset:
        return f"{verdict} {NEW_DATASET_MAY_DIFFER}"
    return verdict


@dataclass(frozen=True)
class Direction:
    """How the k datasets' effects point (`direction_across`)."""

    better: int  # datasets whose mean effect points the better way
    worse: int
    ties: int  # exactly 0 (left out of the sign test)
    p_value: float  # exact two-sided sign test of "the median dataset's effect is 0"
    reachable: bool  # whether k datasets can reach the level at all (2^(1−k) ≤ 1 − level)
    text: str


def direction_across(y: np.ndarray, level: float, *, lower_is_better: bool) -> Direction:
    """The datasets' effects by sign, and what a sign test over them says at `level` (the
    family's): "5 of 6 datasets better; the median dataset is better (sign test p 0.031)",
    "... no consistent direction shown (sign test p 0.69)", or, where k cannot reach the
    level, "too few datasets for a sign test at 99.17% (needs 9)"."""
    x = np.asarray(y, dtype=float)
    x = x[np.isfinite(x)]
    below, above = int(np.sum(x < 0)), int(np.sum(x > 0))
    better, worse = (below, above) if lower_is_better else (above, below)
    n = better + worse
    alpha = 1.0 - level
    p = float(st.binomtest(better, n, 0.5).pvalue) if n else 1.0
    need = max(1, int(np.ceil(1 - np.log2(alpha) - 1e-12)))
    counts = f"{better} of {x.size} datasets better, {worse} worse"
    if n < need:
        text = f"{counts}; too few datasets for a sign test at {level:.2%} (needs {need})"
    elif p <= alpha:
        side = "better" if better > worse else "worse"
        text = f"{counts}; the median dataset is {side} (sign test p {p:.2g} at {level:.2%})"
    else:
        text = f"{counts}; no consistent direction shown (sign test p {p:.2g})"
    return Direction(better, worse, x.size - n, p, n >= need, text)


# ------------------------------------------------------------------ the rule's figures


def simulate_pooled(
    k: int,
    n: int,
    *,
    m: int = 1,
    mu: float = 0.0,
    tau: float = 0.0,
    noise: str = "normal",
    reps: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[Pooled, np.ndarray]:
    """The pooled rule as `compare` runs it on `reps` simulated sweeps of k datasets x n seeds
    and a family of m comparisons with a common baseline (variant 0): on dataset i variant v's
    per-seed log metric is θ_iv + σ_i e/√2, θ_i0 = 0 and θ_iv = mu + τ z (v ≥ 1), σ_i drawn
    from 2-8% per dataset (seed sd of a paired ratio; datasets differ), e standard normal or
    t with 3 df scaled to variance 1 (`noise` "t3"). Returns the `Pooled` of shape (reps, m) at
    the family's Bonferroni level and the true mean-over-datasets effect per (rep, comparison)
    for a coverage check (mu, or mu plus the mean of the drawn τ z when `tau` > 0 would be
    the conditional one: the target here is the population mean, `mu`)."""
    rng = np.random.default_rng([seed, k, n, m])
    sigma = rng.uniform(0.02, 0.08, size=(reps, k, 1)) / np.sqrt(2.0)

    def draw() -> np.ndarray:
        if noise == "t3":
            return rng.standard_t(3, size=(reps, k, n)) / np.sqrt(3.0)
        return rng.standard_normal((reps, k, n))

    base = draw() * sigma
    ys, vs = [], []
    for _ in range(m):
        theta = mu + tau * rng.standard_normal((reps, k, 1))
        d = theta + draw() * sigma - base
        ys.append(d.mean(axis=-1))
        vs.append(d.var(axis=-1, ddof=1) / n)
    level = 1.0 - alpha / max(m, 1)
    pooled = random_effects(np.stack(ys, axis=1), np.stack(vs, axis=1), level)
    return pooled, np.full((reps, m), mu)
