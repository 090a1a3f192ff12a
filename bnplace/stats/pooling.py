"""Pooling one comparison over datasets: a random-effects meta-analysis of per-dataset effects.

In: per-dataset effects `y` and their squared standard errors `v` (arrays whose last axis is
the k datasets; leading axes are independent analyses, so a simulation pools thousands of
repeats in one call), a confidence level, and for the verdict the ±margin bounds and the
metric's direction. Out: a `Pooled` with the pooled effect and its interval, the between-dataset
variance τ², I², Cochran's Q, the prediction interval for a new dataset and the p-value; and
`pooled_verdict`, which reads them as better / worse / equivalent / inconclusive plus whether
the effect holds on every dataset; `MIN_PAIRS_TO_POOL`, the seeds a dataset's effect needs to
be pooled. Pure: NumPy and SciPy only.

The method:

- τ² by DerSimonian & Laird (1986), the moment estimator: with w = 1/v,
  Q = Σ w (y − ȳ_w)², τ² = max(0, (Q − (k − 1)) / (Σw − Σw²/Σw)).
- The pooled effect μ = Σ w* y / Σ w* with w* = 1/(v + τ²).
- Its interval by Hartung & Knapp (2001) and Sidik & Jonkman (2002) (HKSJ): variance
  max(1, q) / Σ w* with q = Σ w* (y − μ)² / (k − 1), and a t quantile with k − 1 degrees of
  freedom. With few datasets the plain DerSimonian–Laird normal interval covers far less than
  its level (IntHout, Ioannidis & Borm 2014); HKSJ keeps close to it. The floor of q at 1 is
  the ad hoc modification (Knapp & Hartung 2003; Röver, Knapp & Friede 2015): here each
  dataset's SE comes from a handful of seeds, so the weights are noisy, and without the floor
  identical variants on 5 datasets with 6 seeds came out "different" in 4.4% of simulated
  sweeps at a 2.5% level (0.8% with it; tests/test_pooling.py).
- I² = max(0, (Q − (k − 1)) / Q) (Higgins & Thompson 2002): the share of the spread of the
  effects that is between datasets rather than seed noise.
- The prediction interval for the effect on a new dataset (Higgins, Thompson & Spiegelhalter
  2009): μ ± t_{k−2} · sqrt(τ² + SE²), with SE the HKSJ standard error; it needs k ≥ 3.

Per-dataset effects are what the caller measures (bnplace.compare.pooled: the mean of a
dataset's finite paired log ratios and its standard error).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as st

from bnplace.stats.verdicts import BETTER, EQUIVALENT, INCONCLUSIVE, WORSE

# Read beside a pooled better/worse whose prediction interval reaches past 0: the average
# effect is shown, but a new dataset may see none or the opposite.
NOT_EVERY_DATASET = "on average, not on every dataset"
# A dataset's effect enters the pooled one with this many finite pairs: its weight is 1/SE²,
# and SEs from fewer seeds are so noisy that the pooled interval undercovers (simulated A/A
# false verdicts at alpha 0.05, 5 datasets: 0.119 with 2 seeds, 0.047 with 4, 0.023 with 6;
# 8 datasets with 6 seeds 0.046; tests/test_pooling.py). Seeds on demand with several datasets
# start at this many seeds (bnplace.config.checks.check_datasets_seeds_pool).
MIN_PAIRS_TO_POOL = 6
_TINY = 1e-300  # a squared standard error of 0 (identical seeds) would give infinite weight


@dataclass(frozen=True)
class Pooled:
    """A random-effects analysis; every field has the leading shape of the inputs."""

    k: np.ndarray  # datasets pooled
    estimate: np.ndarray  # μ
    se: np.ndarray  # (modified) HKSJ standard error of μ
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
    """DerSimonian–Laird τ², HKSJ interval and Higgins et al.'s prediction interval.

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
        tau2 = np.maximum(0.0, (q - (k - 1)) / denom)
        tau2 = np.where(k >= 2, tau2, np.nan)
        ws = np.where(use, 1.0 / (np.maximum(v, _TINY) + np.nan_to_num(tau2)[..., None]), 0.0)
        sws = ws.sum(axis=-1)
        mu = (ws * y0).sum(axis=-1) / sws
        scale = (ws * (y0 - mu[..., None]) ** 2).sum(axis=-1) / (k - 1)
        var = np.maximum(scale, 1.0) / sws
        se = np.sqrt(np.where(k >= 2, var, np.nan))
        df = np.where(k >= 2, k - 1, np.nan)
        t = st.t.ppf(0.5 + level / 2, df)
        stat = np.abs(mu) / se
        p = np.where(se > 0, 2.0 * st.t.sf(stat, df), np.where(mu == 0, 1.0, 0.0))
        p = np.where(k >= 2, p, np.nan)
        i2 = np.where(q > 0, np.maximum(0.0, (q - (k - 1)) / q), 0.0)
        df_pi = np.where(k >= 3, k - 2, np.nan)
        half_pi = st.t.ppf(0.5 + level / 2, df_pi) * np.sqrt(tau2 + se**2)
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
    """(verdict, on every dataset). better/worse: the pooled interval excludes 0 (an effect
    a − b below 0 is better when lower is better); equivalent: it lies inside `bounds`;
    inconclusive otherwise. "On every dataset" is True for better/worse only when the
    prediction interval excludes 0 as well (False: read it as "better on average, not on every
    dataset")."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return INCONCLUSIVE, False
    if high < 0 or low > 0:
        good = (high < 0) == lower_is_better
        every = bool(np.isfinite(pi_low) and (pi_high < 0 or pi_low > 0))
        return (BETTER if good else WORSE), every
    if bounds[0] < low and high < bounds[1]:
        return EQUIVALENT, False
    return INCONCLUSIVE, False


def reading(verdict: str, every: bool) -> str:
    """The pooled verdict in words: "better", or "better on average, not on every dataset"."""
    if verdict in (BETTER, WORSE) and not every:
        return f"{verdict} {NOT_EVERY_DATASET}"
    return verdict
