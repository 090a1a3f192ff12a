"""Seeded simulations of the pooled verdict (bnplace.stats.pooling): coverage, τ², false verdicts.

In: simulated sweeps, vectorised: per repeat k datasets, each with a true effect drawn around
the mean effect with between-dataset sd τ, and 6 seeds of paired log ratios with seed sd σ per
dataset, pooled as bnplace pools them (mean of a dataset's paired log ratios and its standard
error; DerSimonian–Laird τ², Hartung–Knapp–Sidik–Jonkman interval, Higgins et al. 2009
prediction interval; q floored at 1, Knapp & Hartung 2003); and the same pooled after each
dataset stopped on its own looks of seeds on demand (`bnplace.stats.sequential.walk_looks`, the rule
the scheduler runs). Out: the measured figures (printed; `pytest -s` shows them) and
assertions on them. The whole file runs in a few seconds.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bnplace.stats.pooling import mean_effect, pooled_verdict, random_effects, reading
from bnplace.stats.verdicts import BETTER, EQUIVALENT, INCONCLUSIVE, margin_bounds

REPEATS = 4000
SEEDS = 6
SIGMA = 0.05  # seed sd of a paired log ratio, as in the shipped studies


def simulate(
    k: int, mu: float, tau: float, seed: int, sigma: float = SIGMA
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, v, theta): per-dataset mean effects, their squared SEs and the true effects."""
    rng = np.random.default_rng(seed)
    theta = mu + tau * rng.standard_normal((REPEATS, k))
    d = theta[..., None] + sigma * rng.standard_normal((REPEATS, k, SEEDS))
    return d.mean(axis=-1), d.var(axis=-1, ddof=1) / SEEDS, theta


def test_pooled_interval_covers_the_mean_effect_with_heterogeneity() -> None:
    y, v, _ = simulate(5, mu=0.03, tau=0.05, seed=1)
    pooled = random_effects(y, v, 0.95)
    covered = float(np.mean((pooled.low <= 0.03) & (pooled.high >= 0.03)))
    print(f"\nHKSJ 95% interval, 5 datasets, tau 0.05, sigma 0.05: coverage {covered:.3f}")
    assert covered >= 0.9
    # the plain DerSimonian-Laird normal interval, for contrast (why HKSJ)
    w = 1.0 / (v + pooled.tau2[:, None])
    half = 1.96 / np.sqrt(w.sum(axis=1))
    dl = float(np.mean(np.abs(pooled.estimate - 0.03) <= half))
    print(f"DerSimonian-Laird normal interval, same: coverage {dl:.3f}")
    assert dl < covered


def test_prediction_interval_covers_a_new_dataset() -> None:
    """The effect a new dataset shows with as many seeds (its true effect plus seed noise)."""
    y, v, _ = simulate(5, mu=0.03, tau=0.05, seed=2)
    pooled = random_effects(y, v, 0.95)
    rng = np.random.default_rng(3)
    theta = 0.03 + 0.05 * rng.standard_normal(REPEATS)
    new = theta + SIGMA * rng.standard_normal((REPEATS, SEEDS)).mean(axis=1)
    covered = float(np.mean((pooled.pi_low <= new) & (new <= pooled.pi_high)))
    print(f"\nprediction interval 95%, 5 datasets, tau 0.05: covers a new dataset {covered:.3f}")
    assert covered >= 0.93


def test_tau2_is_near_zero_without_heterogeneity() -> None:
    y, v, _ = simulate(5, mu=0.03, tau=0.0, seed=4)
    pooled = random_effects(y, v, 0.95)
    mean_tau2 = float(pooled.tau2.mean())
    share_zero = float(np.mean(pooled.tau2 == 0))
    print(
        f"\nno heterogeneity (within-dataset variance {SIGMA**2 / SEEDS:.2e}): mean tau2 "
        f"{mean_tau2:.2e}, tau2 = 0 in {share_zero:.2f} of repeats, mean I2 "
        f"{float(pooled.i2.mean()):.2f}"
    )
    # DerSimonian-Laird is biased up when each dataset's SE comes from 6 seeds (Q grows with
    # the noise of the weights); still well under the seed noise of one dataset's effect
    assert mean_tau2 < 0.5 * SIGMA**2 / SEEDS
    assert share_zero > 0.4


def test_heterogeneity_is_estimated() -> None:
    y, v, _ = simulate(8, mu=0.0, tau=0.05, seed=5)
    pooled = random_effects(y, v, 0.95)
    print(
        f"\ntau 0.05 (tau2 {0.05**2:.2e}), 8 datasets: mean tau2 {float(pooled.tau2.mean()):.2e}"
        f", mean I2 {float(pooled.i2.mean()):.2f}"
    )
    assert 0.5 * 0.05**2 < float(pooled.tau2.mean()) < 1.5 * 0.05**2


def test_aa_false_verdict_rate_of_the_pooled_verdict() -> None:
    """Identical variants on 5 datasets: "better"/"worse" in at most alpha of repeats, at the
    Bonferroni level of a family of m = 2 (each comparison at 97.5%)."""
    m = 2
    wrong = []
    for j in range(m):  # the m comparisons of one repeat: independent data here
        y, v, _ = simulate(5, mu=0.0, tau=0.0, seed=10 + j)
        pooled = random_effects(y, v, 1 - 0.05 / m)
        wrong.append((pooled.low > 0) | (pooled.high < 0))
    rate = float(np.mean(wrong))
    familywise = float(np.mean(np.any(wrong, axis=0)))  # some false verdict in a repeat
    print(
        f"\nA/A, 5 datasets, m = {m}: false better/worse per comparison {rate:.4f}, "
        f"familywise {familywise:.4f}"
    )
    # the t interval is exact under normal noise: its rate is the nominal one, read with one
    # Monte-Carlo standard error of slack
    assert rate <= 0.05 / m + float(np.sqrt(0.025 * 0.975 / (m * REPEATS)))
    assert familywise <= 0.05


def test_mean_effect_leaves_failed_seeds_out() -> None:
    d = np.array([0.1, 0.2, np.inf, np.nan, 0.3])
    mean, var, n = mean_effect(d)
    assert n == 3 and np.isclose(mean, 0.2) and np.isclose(var, 0.01 / 3)
    assert np.isnan(mean_effect(np.array([0.1, np.inf]))[0])


def test_pooled_verdict_words() -> None:
    bounds = margin_bounds(0.05)
    verdict, new = pooled_verdict(-0.2, -0.1, -0.3, 0.05, bounds=bounds, lower_is_better=True)
    assert (verdict, new) == (BETTER, False)
    assert reading(verdict, new) == "better on average; a new dataset may differ"
    assert reading(BETTER, True) == "better"
    assert pooled_verdict(-0.2, -0.1, -0.3, -0.01, bounds=bounds, lower_is_better=True) == (
        BETTER,
        True,
    )
    assert pooled_verdict(-0.01, 0.01, -0.1, 0.1, bounds=bounds, lower_is_better=True)[0] == (
        EQUIVALENT
    )
    assert pooled_verdict(-0.1, 0.2, -1, 1, bounds=bounds, lower_is_better=True)[0] == INCONCLUSIVE


def test_small_k_gives_nan_intervals_not_errors() -> None:
    one = random_effects(np.array([0.1]), np.array([0.01]))
    assert np.isnan(one.low) and np.isnan(one.pi_low)
    two = random_effects(np.array([0.1, 0.2]), np.array([0.01, 0.01]))
    assert np.isfinite(two.low) and np.isnan(two.pi_low)


def test_a_dataset_whose_seeds_all_tie_gives_the_limit_not_an_overflow() -> None:
    """Accuracy at 100% on both sides for every seed: its paired log ratios are all 0, their
    squared SE 0. τ² and I² are then the limit as that SE goes to 0, without a warning."""
    y = np.array([0.0, -0.3, -0.15, 0.02, -0.16, -0.01])
    v = np.array([0.0, 0.0072, 0.0045, 0.00026, 0.0027, 0.00014])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow RuntimeWarning fails the test
        tied = random_effects(y, v)
    near = random_effects(y, np.where(v == 0, 1e-10, v))  # an SE of 1e-5: nearly tied
    assert tied.tau2 > 0 and np.isclose(tied.tau2, near.tau2, rtol=1e-3)
    assert np.isclose(tied.i2, near.i2, rtol=1e-3) and 0 < tied.i2 < 1
    assert np.isclose(tied.estimate, y.mean())  # the interval and verdict never used weights
    assert str(random_effects(np.zeros(3), np.zeros(3)).tau2) == "0.0"  # not -0.0


# the grid of issue 25: datasets x seeds x noise; 2,000 sweeps a cell, m = 6 comparisons
GRID_CELLS = ((2, 6), (2, 30), (5, 6), (5, 30), (20, 6), (40, 6), (40, 30))  # (datasets, seeds)
GRID_REPS = 2000


@pytest.mark.parametrize("noise", ["normal", "t3"])
def test_pooled_rule_holds_from_2_to_40_datasets(noise: str) -> None:
    """A/A: identical variants (m = 6 comparisons with a common baseline, each dataset its own
    seed sd in 2-8%), some pooled better/worse in at most alpha of sweeps (familywise); and
    with a true 3% effect spread over datasets (τ = 3%), all 6 pooled intervals cover the mean
    effect together in at least 0.93 of sweeps. Measured (benchmarks/pooling_grid.py has the
    whole grid, 2-40 datasets x 6, 10, 30 seeds): familywise A/A 0.025-0.050, simultaneous
    coverage 0.940-0.966. The weighted rule before (DerSimonian–Laird + HKSJ) gave 0.064 at 20
    datasets x 6 seeds for one comparison."""
    from bnplace.stats.pooling import simulate_pooled

    figures = {}
    for k, n in GRID_CELLS:
        null, _ = simulate_pooled(k, n, m=6, noise=noise, reps=GRID_REPS, seed=1)
        false = float(np.mean(((null.low > 0) | (null.high < 0)).any(axis=1)))
        hit, mu = simulate_pooled(k, n, m=6, mu=0.03, tau=0.03, noise=noise, reps=GRID_REPS, seed=3)
        covered = float(np.mean(((hit.low <= mu) & (mu <= hit.high)).all(axis=1)))
        figures[(k, n)] = (round(false, 3), round(covered, 3))
    print(f"\n{noise} (datasets, seeds): (A/A familywise, simultaneous coverage)", figures)
    assert max(f for f, _ in figures.values()) <= 0.05 + GRID_TOLERANCE
    assert min(c for _, c in figures.values()) >= 0.93


# 1 Monte-Carlo standard error of a rate of 0.05 over GRID_REPS: a cell whose true rate is the
# nominal 0.05 (the t interval is exact under normal noise) may read up to this much above it
GRID_TOLERANCE = float(np.sqrt(0.05 * 0.95 / GRID_REPS))


def test_direction_across_datasets_words_and_its_false_rate() -> None:
    from bnplace.stats.pooling import direction_across

    worse = np.array([0.02, 0.03, 0.01, 0.04, 0.02, 0.05, 0.01, 0.03])  # lower is better
    said = direction_across(worse, 0.975, lower_is_better=True)
    assert (said.better, said.worse) == (0, 8)
    assert said.text == (
        "0 of 8 datasets better, 8 worse; the median dataset is worse (sign test p 0.0078 at "
        "97.50%)"
    )
    mixed = direction_across(np.r_[worse[:6], -0.01, -0.02], 0.975, lower_is_better=True)
    assert mixed.text.endswith("no consistent direction shown (sign test p 0.29)")
    few = direction_across(worse[:5], 0.975, lower_is_better=True)
    assert not few.reachable
    assert few.text.endswith("too few datasets for a sign test at 97.50% (needs 7)")
    assert direction_across(-worse, 0.975, lower_is_better=False).text.startswith("0 of 8")
    # A/A: the sign test says "the median dataset is better/worse" in at most alpha of sweeps
    rng = np.random.default_rng(31)
    y = rng.standard_t(3, size=(1000, 12))  # the shipped function per row: 1,000 rows
    said_so = [direction_across(row, 0.95, lower_is_better=True).p_value <= 0.05 for row in y]
    assert float(np.mean(said_so)) <= 0.05


# ------------------------------------------------------------------ after sequential stopping


def _pooled_after_stopping(
    looks: tuple[int, ...], mu: float, tau: float, seed: int, m: int = 1, k: int = 5
):
    """k datasets per repeat, each stopped by the sequential rule as the scheduler does it
    (its own family of m comparisons: `SequentialRule.of`, alpha/m per comparison; one
    comparison simulated per dataset), then pooled as compare pools them: the mean paired log
    ratio of the seeds each dataset ended with and its SE (`mean_effect`), the random-effects
    HKSJ interval at compare's Bonferroni level (`level_for(alpha, m)`). Returns (Pooled,
    seeds per dataset)."""
    from bnplace.stats.sequential import SequentialRule, live_looks, walk_looks
    from bnplace.stats.verdicts import level_for

    looks = live_looks(looks, 0.05, m)  # as the plan runs them
    rule = SequentialRule(looks, 0.05, m)
    rng = np.random.default_rng(seed)
    theta = mu + tau * rng.standard_normal((REPEATS, k))
    d = theta[..., None] + SIGMA * rng.standard_normal((REPEATS, k, looks[-1]))
    _, at = walk_looks(d.reshape(REPEATS * k, -1), rule, bounds=margin_bounds(0.05),
                       lower_is_better=True)  # fmt: skip
    n = np.where(at >= 0, np.asarray(looks)[np.maximum(at, 0)], looks[-1]).reshape(REPEATS, k)
    used = np.arange(looks[-1]) < n[..., None]
    y = np.where(used, d, 0.0).sum(axis=-1) / n
    v = np.where(used, (d - y[..., None]) ** 2, 0.0).sum(axis=-1) / (n - 1) / n
    assert np.allclose((y[0, 0], v[0, 0]), mean_effect(d[0, 0, : n[0, 0]])[:2])  # as shipped
    return random_effects(y, v, level_for(0.05, m)), n


# 2 Monte-Carlo standard errors of a rate near 0.05 over REPEATS repeats
TOLERANCE = 2 * float(np.sqrt(0.05 * 0.95 / REPEATS))


@pytest.mark.parametrize("looks", [(6, 8, 10, 12, 14, 16, 18, 20), (6, 10, 14, 18, 22, 26, 30)])
def test_pooled_verdict_after_per_dataset_sequential_stopping(looks) -> None:
    """The pooled verdict is read after each dataset stopped on its own looks, so its seed
    count depends on its data (a dataset that looks equivalent or clearly better stops early).
    Repeated confidence intervals (Jennison & Turnbull 1989; 2000, ch. 9) cover whenever a
    sweep stops, but the pooled t interval assumes each dataset's effect is a plain mean:
    measured here, 5 datasets, seed sd 0.05, margin 5%, the looks as the plan runs them (dead
    ones dropped). (a) A/A: false better/worse at most alpha (by symmetry the stopping cannot
    bias a null effect); (b) coverage of a 3% effect, with and without between-dataset
    heterogeneity (τ = 0.03). Measured (looks 6..20 by 2 | 6..30 by 4): A/A 0.048 | 0.049,
    with mean-zero τ 0.03 0.043 | 0.044; coverage τ 0 0.944 | 0.948, τ 0.03 0.946 | 0.947."""
    figures = {}
    for name, mu, tau, seed in (
        ("aa", 0.0, 0.0, 21),
        ("aa_tau", 0.0, 0.03, 22),
        ("effect", 0.03, 0.0, 23),
        ("effect_tau", 0.03, 0.03, 24),
    ):
        pooled, n = _pooled_after_stopping(looks, mu, tau, seed)
        false = float(np.mean((pooled.low > 0) | (pooled.high < 0)))
        covered = float(np.mean((pooled.low <= mu) & (mu <= pooled.high)))
        figures[name] = (false if mu == 0 else covered, float(n.mean()), float(np.std(n)))
    print(f"\nlooks {looks}: (rate, mean seeds, sd of seeds per dataset)", figures)
    assert figures["aa"][0] <= 0.05 + TOLERANCE
    assert figures["aa_tau"][0] <= 0.05 + TOLERANCE
    # a dataset that stops early stopped because its mean was far from 0: the plain mean over
    # datasets leans a little away from 0 and covers slightly under 0.95 (0.943-0.948)
    assert figures["effect"][0] >= 0.93
    assert figures["effect_tau"][0] >= 0.93
    assert figures["effect"][2] > 0  # the seed counts did differ between datasets


# Per-series seed sds (of a paired log ratio) of the two studies rerun with more seeds
# (experiments/): 1% on msft, 2-9% on the other long series, 3-44% on the short ones.
SECOND_LOOKS = {
    "bn_ln_small_batch, 6 then 14": (
        6,
        14,
        [0.072, 0.058, 0.009, 0.041, 0.068, 0.214, 0.177, 0.38, 0.365, 0.214, 0.062, 0.22,
         0.381, 0.228, 0.063],
    ),
    "squeeze_excite, 6 then 12": (
        6,
        12,
        [0.086, 0.047, 0.009, 0.021, 0.055, 0.128, 0.173, 0.442, 0.158, 0.164, 0.047, 0.197,
         0.139, 0.196, 0.028],
    ),
}  # fmt: skip


@pytest.mark.parametrize("study", SECOND_LOOKS)
@pytest.mark.parametrize("tau", [0.0, 0.037])
def test_a_second_look_with_more_seeds_keeps_false_equivalence_under_alpha(
    study: str, tau: float
) -> None:
    """A study rerun with more seeds after its pooled verdict came out inconclusive (the first
    seeds kept, as experiments/bn_ln_small_batch went from 6 to 14 and squeeze_excite from 6
    to 12) looks twice at the same question: "equivalent" at either look is the error when the
    true mean effect sits on the margin. Measured, 15 datasets with each study's seed sds, τ 0
    and 0.037 (bn_ln_small_batch's estimate; squeeze_excite's is 0.009), at +5% and -5%:
    bn_ln_small_batch 0.012-0.022 at the last look alone and 0.026-0.033 for both,
    squeeze_excite 0.005-0.016 and 0.014-0.027 (the 95% interval inside ±5% is a two one-sided
    tests' procedure at 2.5% each side, Schuirmann 1987, so one extra look stays under the 5%
    the verdict is read at)."""
    first, last, sds = SECOND_LOOKS[study]
    seed_sds = np.array(sds)
    rng = np.random.default_rng([last, int(tau * 1000)])
    bounds = margin_bounds(0.05)
    k = seed_sds.size
    for mu in bounds:
        theta = mu + tau * rng.standard_normal((REPEATS, k))
        d = theta[..., None] + seed_sds[:, None] * rng.standard_normal((REPEATS, k, last))
        said = []
        for n in (first, last):
            y = d[..., :n].mean(axis=-1)
            pooled = random_effects(y, d[..., :n].var(axis=-1, ddof=1) / n, 0.95)
            said.append(
                [
                    pooled_verdict(lo, hi, pl, ph, bounds=bounds, lower_is_better=True)[0]
                    == EQUIVALENT
                    for lo, hi, pl, ph in zip(
                        pooled.low, pooled.high, pooled.pi_low, pooled.pi_high, strict=True
                    )
                ]
            )
        at_first, at_last = np.array(said)
        two_looks = float(np.mean(at_first | at_last))
        print(
            f"\n{study}, tau {tau}, true effect {mu:+.4f} (the margin): false equivalence "
            f"{float(at_last.mean()):.4f} at the last look alone, {two_looks:.4f} at both"
        )
        assert two_looks <= 0.05 + TOLERANCE
