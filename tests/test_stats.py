"""Tests of bnplace.compare.stats on synthetic trials tables with known answers.

In: DataFrames built here (the numbers are synthetic: no model is trained). Out: assertions on
verdicts, p-values, Holm adjustment, CI coverage, failure counting, Friedman ranks and the
helpers (seeds needed, Wilcoxon floor).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from bnplace.compare.stats import (
    StatsOptions,
    bootstrap_ci,
    compute_statistics,
    describe,
    failure_table,
    friedman,
    holm,
    paired_pvalues,
    paired_vs_baseline,
    seeds_needed,
    wilcoxon_min_pairs,
)
from bnplace.errors import DataError
from bnplace.plan import direction_for

METRIC = "test_rmse"
FAST = StatsOptions(n_boot=2000)


def trials_from(values: dict[str, np.ndarray], metric: str = METRIC) -> pd.DataFrame:
    """One finished trial per (variant, seed) with the given metric values (seed = position)."""
    rows = [
        {"variant": name, "seed": seed, "status": "finished", "failure": "", metric: float(v)}
        for name, column in values.items()
        for seed, v in enumerate(column)
    ]
    return pd.DataFrame(rows)


def row(stats_table: pd.DataFrame, variant: str) -> pd.Series:
    return stats_table.set_index("variant").loc[variant]


@pytest.fixture(scope="module")
def base() -> np.ndarray:
    # Synthetic per-seed baseline errors: seeds differ a lot, which pairing must cancel.
    return np.random.default_rng(7).normal(1.0, 0.1, size=10)


def test_large_margin_on_ten_paired_seeds_is_better(base: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    trials = trials_from({"base": base, "good": base - 0.3 + rng.normal(0, 0.02, 10)})
    s = compute_statistics(trials, metric=METRIC, options=FAST)
    good = row(s.table, "good")
    assert good["verdict"] == "better"
    assert good["p_wilcoxon"] < 0.01 and good["p_holm"] < 0.01
    assert good["p_ttest"] < 0.01
    assert good["n_pairs"] == 10
    assert good["diff_ci_high"] < 0
    assert good["effect_size"] < -3
    assert s.table["variant"].iloc[0] == "good"  # best first
    assert row(s.table, "base")["verdict"] == "baseline"


def test_direction_max_turns_a_higher_value_into_better(base: np.ndarray) -> None:
    metric = "test_accuracy"
    assert direction_for(metric) == "max" and direction_for(METRIC) == "min"
    trials = trials_from({"base": base / 2, "up": base / 2 + 0.1, "down": base / 2 - 0.1}, metric)
    s = compute_statistics(trials, metric=metric, options=FAST)
    assert s.direction == "max"
    assert s.verdicts == {"up": "better", "base": "baseline", "down": "worse"}
    assert list(s.table["variant"]) == ["up", "base", "down"]


def test_identical_variants_give_no_evidence(base: np.ndarray) -> None:
    trials = trials_from({"base": base, "same": base.copy()})
    s = compute_statistics(trials, metric=METRIC, options=FAST)
    same = row(s.table, "same")
    assert same["verdict"] == "no evidence at 10 seeds"
    assert same["p_wilcoxon"] == 1.0 and same["p_ttest"] == 1.0
    assert same["diff"] == 0.0 and same["diff_ci_low"] == 0.0 and same["diff_ci_high"] == 0.0
    assert same["effect_size"] == 0.0 and math.isinf(same["seeds_needed"])


def test_noise_only_difference_gives_no_evidence_and_a_seed_estimate(base: np.ndarray) -> None:
    # Differences symmetric around 0: no effect to find.
    noise = np.array([0.05, -0.04, 0.03, -0.05, 0.04, -0.03, 0.02, -0.02, 0.01, -0.01])
    s = compute_statistics(trials_from({"base": base, "noisy": base + noise}), metric=METRIC)
    noisy = row(s.table, "noisy")
    assert noisy["verdict"] == "no evidence at 10 seeds"
    assert noisy["p_wilcoxon"] > 0.5
    assert noisy["diff_ci_low"] < 0 < noisy["diff_ci_high"]
    assert noisy["seeds_needed"] > 100  # |d_z| is tiny


# Ten differences with magnitudes 0.1 .. 1.0 (ranks 1 .. 10), all negative except ranks 2 and
# 5: the exact two-sided Wilcoxon p is 38/1024 = 0.0371 and the bootstrap CI excludes 0.
BORDERLINE = -np.arange(1, 11) / 10
BORDERLINE[[1, 4]] *= -1


def test_holm_turns_a_borderline_variant_into_no_evidence(base: np.ndarray) -> None:
    alone = compute_statistics(
        trials_from({"base": base, "border": base + BORDERLINE}), metric=METRIC, options=FAST
    )
    b = row(alone.table, "border")
    assert b["p_wilcoxon"] == pytest.approx(38 / 1024)
    assert b["p_holm"] == pytest.approx(38 / 1024)  # one comparison: nothing to correct
    assert b["verdict"] == "better"

    rng = np.random.default_rng(3)
    crowd = compute_statistics(
        trials_from(
            {
                "base": base,
                "strong": base - 0.3 + rng.normal(0, 0.02, 10),  # p = 2/1024
                "border": base + BORDERLINE,
                "null": base + np.array([0.1, -0.1] * 5),  # p = 1
            }
        ),
        metric=METRIC,
        options=FAST,
    )
    b = row(crowd.table, "border")
    assert b["p_wilcoxon"] == pytest.approx(38 / 1024)  # the raw p does not change
    assert b["p_holm"] == pytest.approx(2 * 38 / 1024)  # second smallest of 3: times 2
    assert b["verdict"] == "no evidence at 10 seeds"
    assert row(crowd.table, "strong")["p_holm"] == pytest.approx(3 * 2 / 1024)
    assert row(crowd.table, "strong")["verdict"] == "better"
    assert any("Holm-corrected over 3" in n for n in crowd.notes)


def test_holm_matches_the_step_down_definition() -> None:
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    # sorted 0.01, 0.2, 0.5, 0.6 -> x4, x3, x2, x1, then a running maximum
    np.testing.assert_allclose(holm([0.2, 0.01, 0.6, 0.5]), [0.6, 0.04, 1.0, 1.0])
    out = holm([0.02, np.nan, 0.04])
    assert math.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [0.04, 0.04])  # m = 2: NaN does not count
    assert holm([]).size == 0


def test_bootstrap_ci_covers_the_true_difference(base: np.ndarray) -> None:
    true_diff = -0.2
    rng = np.random.default_rng(11)
    trials = trials_from({"base": base, "v": base + true_diff + rng.normal(0, 0.05, 10)})
    v = row(compute_statistics(trials, metric=METRIC).table, "v")
    assert v["diff_ci_low"] < true_diff < v["diff_ci_high"]
    assert v["diff_ci_high"] - v["diff_ci_low"] < 0.15

    # Coverage over many synthetic samples of 10 paired seeds is near the nominal 95%.
    covered = 0
    for i in range(200):
        d = true_diff + np.random.default_rng(100 + i).normal(0, 0.05, 10)
        low, high = bootstrap_ci(d, n_boot=1000, seed=i)
        covered += low <= true_diff <= high
    assert 0.88 <= covered / 200 <= 0.99


def test_a_failed_seed_is_counted_not_dropped(base: np.ndarray) -> None:
    trials = trials_from({"base": base, "v": base - 0.3})
    trials.loc[(trials["variant"] == "v") & (trials["seed"] == 3), ["status", "failure"]] = [
        "failed",
        "diverged",
    ]
    trials.loc[(trials["variant"] == "v") & (trials["seed"] == 4), METRIC] = np.nan
    trials.loc[(trials["variant"] == "base") & (trials["seed"] == 5), "status"] = "killed"
    s = compute_statistics(trials, metric=METRIC, options=FAST)
    v, b = row(s.table, "v"), row(s.table, "base")
    assert (v["n_trials"], v["n_finished"], v["n_failed"]) == (10, 8, 2)
    assert "diverged: 1" in v["failures"] and f"no finite {METRIC}: 1" in v["failures"]
    assert (b["n_finished"], b["n_failed"], b["failures"]) == (9, 1, "killed: 1")
    assert v["n_pairs"] == 7  # seeds 3, 4 (variant) and 5 (baseline) are unpaired
    assert v["verdict"] == "better"
    assert v["mean"] == pytest.approx(np.delete(base, [3, 4]).mean() - 0.3)
    fails = failure_table(trials, METRIC)
    assert fails["n"].sum() == 3
    assert set(fails["reason"]) == {"diverged", f"no finite {METRIC}", "killed"}


def test_variant_without_finished_trials_stays_in_the_table(base: np.ndarray) -> None:
    trials = trials_from({"base": base, "dead": base})
    trials.loc[trials["variant"] == "dead", ["status", "failure"]] = ["failed", "error: OOM"]
    s = compute_statistics(trials, metric=METRIC, options=FAST)
    dead = row(s.table, "dead")
    assert dead["n_finished"] == 0 and dead["n_failed"] == 10
    assert dead["failures"] == "error: OOM: 10"
    assert dead["verdict"] == "no evidence at 0 seeds" and math.isnan(dead["mean"])
    assert s.table["variant"].iloc[-1] == "dead"  # no mean: ranked last


def test_fewer_than_two_pairs_gives_nan_p_and_no_evidence() -> None:
    trials = trials_from({"base": np.array([1.0, 1.1]), "v": np.array([0.5, 0.6])})
    trials.loc[(trials["variant"] == "v") & (trials["seed"] == 1), "status"] = "failed"
    s = compute_statistics(trials, metric=METRIC, options=FAST)
    v = row(s.table, "v")
    assert v["n_pairs"] == 1
    assert math.isnan(v["p_wilcoxon"]) and math.isnan(v["p_holm"])
    assert v["verdict"] == "no evidence at 1 seed"
    assert paired_pvalues([0.3])[0] != paired_pvalues([0.3])[0]  # NaN


def test_five_seeds_cannot_reach_significance_with_wilcoxon(base: np.ndarray) -> None:
    assert wilcoxon_min_pairs(0.05) == 6
    s = compute_statistics(
        trials_from({"base": base[:5], "good": base[:5] - 0.5}), metric=METRIC, options=FAST
    )
    good = row(s.table, "good")
    assert good["p_wilcoxon"] == pytest.approx(0.0625)
    assert good["verdict"] == "no evidence at 5 seeds"
    assert good["seeds_needed"] == 6  # a huge effect: limited by the Wilcoxon floor
    assert any("fewer than 6" in n for n in s.notes)


def test_seeds_needed_follows_the_power_rule() -> None:
    assert seeds_needed(1.0) == 10
    assert seeds_needed(-0.5) == 34
    assert seeds_needed(0.2) == math.ceil(((1.959964 + 0.841621) / 0.2) ** 2 + 1.959964**2 / 2)
    assert math.isinf(seeds_needed(0.0)) and math.isnan(seeds_needed(math.nan))
    assert seeds_needed(math.inf) == 6


def test_friedman_ranks_and_critical_difference(base: np.ndarray) -> None:
    trials = trials_from({"a": base, "b": base - 0.1, "c": base - 0.2})
    fr = friedman(trials, METRIC, "min")
    assert fr is not None
    assert list(fr.ranks["variant"]) == ["c", "b", "a"]
    np.testing.assert_allclose(fr.ranks["mean_rank"], [1.0, 2.0, 3.0])
    assert fr.n_seeds == 10 and fr.n_variants == 3
    assert fr.pvalue == pytest.approx(st.friedmanchisquare(base, base - 0.1, base - 0.2).pvalue)
    assert fr.critical_difference == pytest.approx(1.048, abs=0.002)  # Demsar 2006, k=3, N=10
    assert friedman(trials_from({"a": base, "b": base}), METRIC, "min") is None
    s = compute_statistics(trials, metric=METRIC, options=FAST)
    assert row(s.table, "c")["mean_rank"] == 1.0


def test_friedman_uses_only_seeds_finished_by_every_variant(base: np.ndarray) -> None:
    trials = trials_from({"a": base, "b": base - 0.1, "c": base - 0.2})
    trials.loc[(trials["variant"] == "b") & (trials["seed"] < 3), "status"] = "failed"
    fr = friedman(trials, METRIC, "min")
    assert fr is not None and fr.n_seeds == 7


def test_side_columns_and_persistence_note(base: np.ndarray) -> None:
    trials = trials_from({"base": base, "v": base - 0.05})
    trials["persistence_rmse"] = 0.5  # persistence beats both variants
    trials["time_per_epoch_s"] = np.where(trials["variant"] == "v", 2.0, 1.0)
    trials["params"] = np.where(trials["variant"] == "v", 1200, 1000)
    trials["bn_shift_max"] = np.where(trials["variant"] == "v", 2.5, np.nan)
    trials["bn_train_vs_infer_max"] = np.where(trials["variant"] == "v", trials["seed"] + 1.5, 1)
    s = compute_statistics(trials, metric=METRIC, options=FAST)
    v = row(s.table, "v")
    assert (v["bn_train_vs_infer_lo"], v["bn_train_vs_infer_hi"]) == (1.5, 10.5)  # over seeds
    assert row(s.table, "v")["time_per_epoch_s"] == 2.0
    assert row(s.table, "base")["params"] == 1000
    assert row(s.table, "v")["bn_shift_max"] == 2.5
    assert math.isnan(row(s.table, "base")["bn_shift_max"])
    assert row(s.table, "v")["persistence"] == 0.5
    assert any("does not beat the persistence baseline" in n for n in s.notes)


def test_describe_matches_numpy(base: np.ndarray) -> None:
    d = describe(trials_from({"a": base}), METRIC, options=FAST).iloc[0]
    assert d["mean"] == pytest.approx(base.mean())
    assert d["sd"] == pytest.approx(base.std(ddof=1))
    assert d["median"] == pytest.approx(np.median(base))
    q1, q3 = np.quantile(base, [0.25, 0.75])
    assert d["iqr"] == pytest.approx(q3 - q1)
    assert d["ci_low"] < base.mean() < d["ci_high"]


def test_output_is_deterministic(base: np.ndarray) -> None:
    trials = trials_from({"base": base, "v": base + np.linspace(-0.1, 0.05, 10)})
    one = compute_statistics(trials, metric=METRIC).table
    two = compute_statistics(trials, metric=METRIC).table
    pd.testing.assert_frame_equal(one, two)


def test_bad_input_is_reported() -> None:
    trials = trials_from({"a": np.ones(3), "b": np.ones(3)})
    doubled = pd.concat([trials, trials.iloc[[0]]])
    with pytest.raises(DataError, match="several finished rows for seed 0"):
        paired_vs_baseline(doubled, METRIC, "min", "a")
    with pytest.raises(DataError, match="'nope' is not among the variants"):
        paired_vs_baseline(trials, METRIC, "min", "nope")
    with pytest.raises(DataError, match="no 'seed' column"):
        compute_statistics(trials.drop(columns="seed"), metric=METRIC)


def test_an_axis_may_share_a_name_with_a_table_column(base: np.ndarray) -> None:
    """A sweep arm set called "order" (dropout_bn_order study) once broke the table."""
    trials = trials_from({"a": base, "b": base - 0.1})
    trials["axis:order"] = trials["variant"]
    s = compute_statistics(trials, metric=METRIC, axes=["order"], options=FAST)
    assert list(s.table["axis:order"]) == list(s.table["variant"])
    assert "order" in s.table.columns  # the table's own column is still there
