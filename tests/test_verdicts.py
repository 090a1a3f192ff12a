"""Seeded simulations of the verdict rule as shipped (bnplace.stats.verdicts, compare.paired).

In: simulated per-seed metrics and log ratios (NumPy, seeded; no model is trained). Out:
assertions on what the tool prints: coverage of the displayed interval, the A/A familywise
false-verdict rate, power at the prospective seed figure, equivalence at no effect and at the
margin, the exact p-value against SciPy, and the plan-time reachability figure. Vectorised: the
whole file runs in a few seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from bnplace.compare.paired import compare_pairs
from bnplace.compare.stats import compute_statistics, mean_interval
from bnplace.stats.pairing import FamilyQuestion
from bnplace.stats.seed_figures import DETECT, EQUIVALENCE, seeds_for
from bnplace.stats.verdicts import (
    BETTER,
    EQUIVALENT,
    INCONCLUSIVE,
    WORSE,
    Contrast,
    Design,
    decide,
    level_for,
    margin_bounds,
    min_seeds,
    signed_rank_intervals,
)

REPS = 4000


def pseudo_median(sample: np.ndarray) -> float:
    """The median of (X1 + X2)/2: what the Hodges–Lehmann interval estimates."""
    return float(np.median(sample[: sample.size // 2 * 2].reshape(-1, 2).mean(axis=1)))


@pytest.mark.parametrize(
    ("n", "m", "shape"),
    [(10, 1, "normal"), (10, 1, "lognormal"), (10, 4, "lognormal"), (6, 1, "normal"),
     (6, 1, "lognormal"), (20, 1, "lognormal")],
)  # fmt: skip
def test_displayed_interval_covers(n: int, m: int, shape: str) -> None:
    rng = np.random.default_rng([11, n, m])
    if shape == "normal":
        d, truth = rng.normal(0.02, 0.05, size=(REPS, n)), 0.02
    else:  # skewed differences
        d = 0.05 * rng.lognormal(0.0, 1.0, size=(REPS, n))
        truth = pseudo_median(0.05 * np.random.default_rng(0).lognormal(0.0, 1.0, 4_000_000))
    iv = signed_rank_intervals(d, level_for(0.05, m))
    assert iv.reachable
    coverage = np.mean((iv.low <= truth) & (truth <= iv.high))
    assert coverage >= 0.93, coverage


def test_three_seeds_show_the_widest_interval_and_no_verdict() -> None:
    d = np.array([[0.1, 0.2, 0.3]])
    iv = signed_rank_intervals(d, 0.95)
    assert not iv.reachable and (iv.low[0], iv.high[0]) == (0.1, 0.3)
    assert iv.level == pytest.approx(0.75)
    verdict = decide(iv.low, iv.high, bounds=(-1, 1), reachable=iv.reachable, lower_is_better=True)
    assert verdict[0] == INCONCLUSIVE


@pytest.mark.parametrize("k", [4, 8])
def test_aa_familywise_false_verdicts(k: int) -> None:
    """k identical variants (a seed effect shared by all), 10 seeds: any better/worse is false."""
    rng = np.random.default_rng([5, k])
    n, reps = 10, REPS
    seed_effect = rng.normal(0.0, 0.2, size=(reps, 1, n))
    log_metric = 0.5 + seed_effect + rng.normal(0.0, 0.05, size=(reps, k, n))
    d = (log_metric[:, 1:, :] - log_metric[:, :1, :]).reshape(-1, n)
    iv = signed_rank_intervals(d, level_for(0.05, k - 1))
    verdicts = decide(iv.low, iv.high, bounds=None, reachable=iv.reachable, lower_is_better=True)
    false = np.isin(verdicts.reshape(reps, k - 1), [BETTER, WORSE]).any(axis=1)
    assert false.mean() <= 0.05, false.mean()


@pytest.mark.parametrize(("margin", "sd", "m"), [(0.05, 0.05, 1), (0.05, 0.05, 8), (0.02, 0.03, 3)])
def test_power_at_the_prospective_seed_figure(margin: float, sd: float, m: int) -> None:
    n = seeds_for(DETECT, margin, sd, m)
    assert n is not None
    rng = np.random.default_rng([99, n])  # other random numbers than the search used
    d = rng.normal(math.log1p(margin), sd, size=(REPS, n))
    iv = signed_rank_intervals(d, level_for(0.05, m))
    verdicts = decide(iv.low, iv.high, bounds=None, reachable=iv.reachable, lower_is_better=False)
    power = np.mean(verdicts == BETTER)
    assert 0.75 <= power <= 0.9, (n, power)


@pytest.mark.parametrize(("margin", "sd", "m"), [(0.05, 0.05, 1), (0.05, 0.04, 4)])
def test_equivalence_at_no_effect_and_at_the_margin(margin: float, sd: float, m: int) -> None:
    n = seeds_for(EQUIVALENCE, margin, sd, m)
    assert n is not None
    level, bounds = level_for(0.05, m), margin_bounds(margin)
    rng = np.random.default_rng([7, n])
    for effect, check in ((0.0, lambda r: r >= 0.8), (math.log1p(margin), lambda r: r <= 0.05)):
        d = rng.normal(effect, sd, size=(REPS, n))
        iv = signed_rank_intervals(d, level)
        verdicts = decide(iv.low, iv.high, bounds=bounds, reachable=True, lower_is_better=True)
        rate = np.mean(verdicts == EQUIVALENT)
        assert check(rate), (effect, n, rate)


def test_p_value_is_scipys_exact_and_agrees_with_the_interval() -> None:
    rng = np.random.default_rng(3)
    d = rng.normal(0.3, 1.0, size=(200, 9))
    iv = signed_rank_intervals(d, 0.95)
    exact = np.array([st.wilcoxon(row, method="exact").pvalue for row in d])
    np.testing.assert_allclose(iv.p_value, exact, rtol=1e-9)
    excludes = (iv.low > 0) | (iv.high < 0)
    np.testing.assert_array_equal(excludes, iv.p_value <= 0.05)


def test_hodges_lehmann_is_the_median_of_walsh_averages() -> None:
    d = np.array([1.0, 2.0, 4.0])
    walsh = [1, 1.5, 2.5, 2, 3, 4]
    assert signed_rank_intervals(d, 0.5).estimate[0] == np.median(walsh)


def test_fewest_seeds_for_any_verdict() -> None:
    assert min_seeds(8) == 9  # 2^(1-9) = 0.0039 <= 0.05/8; 2^(1-8) = 0.0078 is not
    assert min_seeds(1) == 6 and min_seeds(3) == 7
    for m in (1, 2, 5, 8, 20):
        n = min_seeds(m)
        assert signed_rank_intervals(np.ones(n), level_for(0.05, m)).reachable
        assert not signed_rank_intervals(np.ones(n - 1), level_for(0.05, m)).reachable


def test_mean_interval_covers_normal_means() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(1.0, 0.1, size=(REPS, 10))
    lows, highs = zip(*(mean_interval(row) for row in x[:1000]), strict=True)
    coverage = np.mean((np.array(lows) <= 1.0) & (np.array(highs) >= 1.0))
    assert coverage >= 0.93


# ------------------------------------------------------------------ the rule on trials tables


def trials_table(values: dict[str, np.ndarray], failed: dict[str, list[int]] | None = None):
    rows = []
    for name, column in values.items():
        for seed, v in enumerate(column):
            bad = seed in (failed or {}).get(name, [])
            rows.append(
                {
                    "variant": name,
                    "seed": seed,
                    "status": "failed" if bad else "finished",
                    "failure": "diverged" if bad else "",
                    "test_rmse": math.nan if bad else float(v),
                }
            )
    return pd.DataFrame(rows)


def test_a_diverging_variant_ranks_worse_and_drop_says_otherwise() -> None:
    rng = np.random.default_rng(4)
    base = rng.normal(1.0, 0.05, 12)
    unstable = base * (0.98 + rng.normal(0, 0.01, 12))  # slightly better when it finishes...
    trials = trials_table(
        {"base": base, "unstable": unstable}, {"unstable": [0, 1, 2, 3, 4, 5, 6, 7]}
    )
    worst = compute_statistics(trials, metric="test_rmse")
    row = worst.table.set_index("variant").loc["unstable"]
    assert row["verdict"] == WORSE and row["n_pairs"] == 12
    assert row["p_failures"] == pytest.approx(2 * 0.5**8)  # exact McNemar: 8 vs 0
    dropped = compute_statistics(trials, metric="test_rmse", design=Design(failures="drop"))
    assert dropped.table.set_index("variant").loc["unstable", "verdict"] == "inconclusive"
    assert dropped.table.set_index("variant").loc["unstable", "n_pairs"] == 4
    assert any("failures: drop" in n for n in dropped.notes)


def test_contrast_between_two_non_baseline_variants_and_equivalence() -> None:
    rng = np.random.default_rng(8)
    base = rng.normal(1.0, 0.2, 12)  # seeds differ a lot; pairing cancels it
    pre = base * np.exp(rng.normal(-0.10, 0.01, 12))
    post = pre * np.exp(rng.normal(0.0, 0.005, 12))
    trials = trials_table({"none": base, "pre": pre, "post": post})
    design = Design(margin=0.05, contrasts=(Contrast("pre vs post", "pre", "post", "contrast"),))
    s = compute_statistics(trials, metric="test_rmse", design=design)
    assert len(s.comparisons) == 3  # one family: two against the baseline, one contrast
    c = s.comparisons.set_index("comparison").loc["pre vs post"]
    assert c["verdict"] == EQUIVALENT and -5 < c["delta_pct_low"] < c["delta_pct_high"] < 5
    assert c["level"] >= level_for(0.05, 3)
    by_variant = s.table.set_index("variant")
    assert by_variant.loc["pre", "verdict"] == BETTER
    assert by_variant.loc["pre", "delta_pct"] == pytest.approx(-9.5, abs=1.0)


def test_a_family_of_the_declared_contrasts_alone_is_narrower() -> None:
    """`versus_baseline: false`: only the contrasts are judged, at a level for their number."""
    rng = np.random.default_rng(8)
    base = rng.normal(1.0, 0.2, 12)
    pre = base * np.exp(rng.normal(-0.10, 0.01, 12))
    post = pre * np.exp(rng.normal(0.0, 0.005, 12))
    trials = trials_table({"none": base, "pre": pre, "post": post})
    contrast = (Contrast("pre vs post", "pre", "post", "contrast"),)
    alone = compute_statistics(
        trials, metric="test_rmse", design=Design(contrasts=contrast, versus_baseline=False)
    )
    every = compute_statistics(trials, metric="test_rmse", design=Design(contrasts=contrast))
    assert list(alone.comparisons["comparison"]) == ["pre vs post"]
    row, wider = alone.comparisons.iloc[0], every.comparisons.set_index("comparison")
    assert 0.95 <= row["level"] < level_for(0.05, 3)  # exact intervals: at least the level
    low, high = row["delta_pct_low"], row["delta_pct_high"]
    assert wider.loc["pre vs post", "delta_pct_low"] <= low < high
    assert high <= wider.loc["pre vs post", "delta_pct_high"]
    assert (
        high - low
        < wider.loc["pre vs post", "delta_pct_high"] - wider.loc["pre vs post", "delta_pct_low"]
    )
    verdicts = alone.table.set_index("variant")["verdict"]
    assert verdicts["none"] == "baseline" and verdicts[["pre", "post"]].isna().all()
    assert Design.from_dict(Design(versus_baseline=False).to_dict()).versus_baseline is False


def test_interaction_is_a_difference_of_differences() -> None:
    rng = np.random.default_rng(9)
    base = rng.normal(1.0, 0.1, 12)
    small = {"bn@8": base * 1.30, "none@8": base * 1.0, "bn@32": base * 1.05, "none@32": base}
    trials = trials_table({k: v * np.exp(rng.normal(0, 0.005, 12)) for k, v in small.items()})
    inter = Contrast("bn vs none, 8 minus 32", "bn@8", "none@8", "interaction", "bn@32", "none@32")
    (row,) = compare_pairs(trials, FamilyQuestion("test_rmse", "min", (inter,), Design()))
    assert row.verdict == WORSE  # BN's penalty is larger at batch 8
    assert row.delta_pct == pytest.approx(100 * (1.30 / 1.05 - 1), abs=1.5)


# the skewed case: log ratios lognormal(0, 1) (skewness 6.2); what the intervals estimate is
# the pseudo-median, the median of (X1 + X2)/2
_SHAPES = ("normal", "t3", "lognormal")


def _draw(rng: np.random.Generator, shape: str, size: tuple[int, ...]) -> np.ndarray:
    if shape == "normal":
        return rng.standard_normal(size)
    if shape == "t3":
        return rng.standard_t(3, size)
    return rng.lognormal(0.0, 1.0, size)


@pytest.mark.parametrize("shape", _SHAPES)
def test_familywise_coverage_of_the_family_intervals(shape: str) -> None:
    """All m intervals of a family cover their true centres together (m independent
    comparisons, 2,000 repeats a cell, m = 1, 8, 11 at 6-30 seeds where a verdict is
    reachable). Normal and t3: >= 0.93 in every cell (measured 0.940-0.970). Lognormal
    (skewness 6): the signed-rank interval assumes symmetry, and with m = 8 or 11 the family
    covers together in only 0.91-0.94 (0.910 at m = 8 and 10 seeds; 0.938-0.954 at m = 1):
    the limit `plan` states (design finding `interval_assumption`) and the README quotes."""
    symmetric = shape != "lognormal"
    truth = 0.0 if symmetric else pseudo_median(_draw(np.random.default_rng(0), shape, (10**6,)))
    figures = {}
    for m, n in ((1, 6), (1, 30), (8, 10), (8, 30), (11, 10), (11, 20)):
        assert n >= min_seeds(m)
        rng = np.random.default_rng([n, m, len(shape)])
        iv = signed_rank_intervals(_draw(rng, shape, (2000 * m, n)), level_for(0.05, m))
        inside = (iv.low <= truth) & (truth <= iv.high)
        figures[(m, n)] = round(float(inside.reshape(2000, m).all(axis=1).mean()), 3)
    print(f"\n{shape}: simultaneous coverage (m, seeds)", figures)
    floor = 0.93 if symmetric else 0.90
    assert min(figures.values()) >= floor
    if not symmetric:
        assert min(figures.values()) < 0.93  # the limit is real: plan and README say so
