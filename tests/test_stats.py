"""Tests of bnplace.compare.stats on synthetic trials tables with known answers.

In: DataFrames built here (the numbers are synthetic: no model is trained). Out: assertions on
verdicts, p-values, the Bonferroni family, failures ranking worst, skill against persistence,
Friedman ranks. The rule's error rates are simulated in test_verdicts.py.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from bnplace.compare.stats import (
    compute_statistics,
    failure_table,
    friedman,
    summarize_variants,
)
from bnplace.names.errors import DataError
from bnplace.plan import direction_for
from bnplace.stats.verdicts import Design

METRIC = "test_rmse"


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
    s = compute_statistics(trials, metric=METRIC)
    good = row(s.table, "good")
    assert good["verdict"] == "better"
    assert good["p_value"] == pytest.approx(2 / 1024) and good["p_adjusted"] < 0.01
    assert good["n_pairs"] == 10
    assert good["delta_pct_high"] < 0 and good["delta_pct"] == pytest.approx(-30, abs=3)
    assert s.table["variant"].iloc[0] == "good"  # best first
    assert row(s.table, "base")["verdict"] == "baseline"


def test_direction_max_turns_a_higher_value_into_better(base: np.ndarray) -> None:
    metric = "test_accuracy"
    assert direction_for(metric) == "max" and direction_for(METRIC) == "min"
    trials = trials_from({"base": base / 2, "up": base / 2 + 0.1, "down": base / 2 - 0.1}, metric)
    s = compute_statistics(trials, metric=metric)
    assert s.direction == "max"
    assert s.verdicts == {"up": "better", "base": "baseline", "down": "worse"}
    assert list(s.table["variant"]) == ["up", "base", "down"]


def test_identical_variants_are_equivalent(base: np.ndarray) -> None:
    trials = trials_from({"base": base, "same": base.copy()})
    same = row(compute_statistics(trials, metric=METRIC).table, "same")
    assert same["verdict"] == "equivalent"
    assert same["p_value"] == 1.0 and same["diff"] == 0.0
    assert same["delta_pct_low"] == 0.0 and same["delta_pct_high"] == 0.0


def test_noise_only_difference_is_inconclusive_and_says_what_is_excluded(base: np.ndarray) -> None:
    noise = np.array([0.05, -0.04, 0.03, -0.05, 0.04, -0.03, 0.02, -0.02, 0.01, -0.01])
    s = compute_statistics(
        trials_from({"base": base, "noisy": base + noise}),
        metric=METRIC,
        design=Design(margin=0.01),
    )
    noisy = row(s.table, "noisy")
    assert noisy["verdict"] == "inconclusive"
    assert noisy["p_value"] > 0.5
    assert noisy["delta_pct_low"] < 0 < noisy["delta_pct_high"]
    assert noisy["excluded"].startswith("effects beyond -")


# Ten differences with magnitudes 0.1 .. 1.0 (ranks 1 .. 10), all negative except ranks 2 and
# 5: the exact two-sided signed-rank p is 38/1024 = 0.0371.
BORDERLINE = -np.arange(1, 11) / 10
BORDERLINE[[1, 4]] *= -1


def test_bonferroni_turns_a_borderline_variant_inconclusive(base: np.ndarray) -> None:
    shift = 3.0  # differences of log values: keep every value positive and far from 0
    alone = compute_statistics(
        trials_from({"base": np.log(shift + base), "border": np.log(shift + base) + BORDERLINE}),
        metric=METRIC,
    )
    assert row(alone.table, "border")["verdict"] == "better"

    rng = np.random.default_rng(3)
    crowd = compute_statistics(
        trials_from(
            {
                "base": base,
                "strong": base - 0.3 + rng.normal(0, 0.02, 10),
                "border": base * np.exp(BORDERLINE / 10),
                "null": base * np.exp(np.array([0.01, -0.01] * 5)),
            }
        ),
        metric=METRIC,
    )
    b = row(crowd.table, "border")
    assert b["p_value"] == pytest.approx(38 / 1024)  # the raw p does not change
    assert b["p_adjusted"] == pytest.approx(3 * 38 / 1024)
    assert b["verdict"] == "inconclusive"
    assert row(crowd.table, "strong")["verdict"] == "better"
    assert b["level"] >= 1 - 0.05 / 3


def test_a_failed_seed_is_counted_and_ranks_worst(base: np.ndarray) -> None:
    trials = trials_from({"base": base, "v": base - 0.3})
    trials.loc[(trials["variant"] == "v") & (trials["seed"] == 3), ["status", "failure"]] = [
        "failed",
        "diverged",
    ]
    trials.loc[(trials["variant"] == "v") & (trials["seed"] == 4), METRIC] = np.nan
    trials.loc[(trials["variant"] == "base") & (trials["seed"] == 5), "status"] = "killed"
    s = compute_statistics(trials, metric=METRIC)
    v, b = row(s.table, "v"), row(s.table, "base")
    assert (v["n_trials"], v["n_finished"], v["n_failed"]) == (10, 8, 2)
    assert "diverged: 1" in v["failures"] and f"no finite {METRIC}: 1" in v["failures"]
    assert (b["n_finished"], b["n_failed"], b["failures"]) == (9, 1, "killed: 1")
    assert v["n_pairs"] == 10  # failures rank worst: every seed stays paired
    assert v["verdict"] == "inconclusive"  # two worst-ranked seeds: "better" is not shown
    dropped = compute_statistics(trials, metric=METRIC, design=Design(failures="drop"))
    assert row(dropped.table, "v")["n_pairs"] == 7
    assert row(dropped.table, "v")["verdict"] == "better"
    assert v["mean"] == pytest.approx(np.delete(base, [3, 4]).mean() - 0.3)
    fails = failure_table(trials, METRIC)
    assert fails["n"].sum() == 3
    assert set(fails["reason"]) == {"diverged", f"no finite {METRIC}", "killed"}


def test_variant_without_finished_trials_stays_in_the_table(base: np.ndarray) -> None:
    trials = trials_from({"base": base, "dead": base})
    trials.loc[trials["variant"] == "dead", ["status", "failure"]] = ["failed", "error: OOM"]
    s = compute_statistics(trials, metric=METRIC)
    dead = row(s.table, "dead")
    assert dead["n_finished"] == 0 and dead["n_failed"] == 10
    assert dead["failures"] == "error: OOM: 10"
    assert dead["verdict"] == "worse" and math.isnan(dead["mean"])  # failing always is worse
    assert s.table["variant"].iloc[-1] == "dead"  # no mean: ranked last


def test_fewer_seeds_than_the_exact_test_needs_give_no_verdict(base: np.ndarray) -> None:
    s = compute_statistics(trials_from({"base": base[:5], "good": base[:5] - 0.5}), metric=METRIC)
    good = row(s.table, "good")
    assert good["p_value"] == pytest.approx(0.0625)
    assert good["verdict"] == "inconclusive" and not good["reachable"]
    assert good["level"] == pytest.approx(1 - 2**-4)  # the widest interval: [min, max]
    assert any("at least 6 paired seeds" in n for n in s.notes)


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
    s = compute_statistics(trials, metric=METRIC)
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
    s = compute_statistics(trials, metric=METRIC)
    v = row(s.table, "v")
    assert (v["bn_train_vs_infer_lo"], v["bn_train_vs_infer_hi"]) == (1.5, 10.5)  # over seeds
    assert row(s.table, "v")["time_per_epoch_s"] == 2.0
    assert row(s.table, "base")["params"] == 1000
    assert row(s.table, "v")["bn_shift_max"] == 2.5
    assert math.isnan(row(s.table, "base")["bn_shift_max"])
    assert row(s.table, "v")["persistence"] == 0.5
    assert row(s.table, "v")["beats_persistence"] == False  # noqa: E712  # skill interval below 0
    assert row(s.table, "v")["skill_high"] < 0
    assert any("not shown to beat the persistence baseline" in n for n in s.notes)


def test_summarize_variants_matches_numpy(base: np.ndarray) -> None:
    d = summarize_variants(trials_from({"a": base}), METRIC).iloc[0]
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
        compute_statistics(doubled, metric=METRIC)
    with pytest.raises(DataError, match="'nope' is not among the variants"):
        compute_statistics(trials, metric=METRIC, baseline="nope")
    with pytest.raises(DataError, match="no 'seed' column"):
        compute_statistics(trials.drop(columns="seed"), metric=METRIC)


def test_an_axis_may_share_a_name_with_a_table_column(base: np.ndarray) -> None:
    """A sweep arm set called "order" (dropout_bn_order study) once broke the table."""
    trials = trials_from({"a": base, "b": base - 0.1})
    trials["axis:order"] = trials["variant"]
    s = compute_statistics(trials, metric=METRIC, axes=["order"])
    assert list(s.table["axis:order"]) == list(s.table["variant"])
    assert "order" in s.table.columns  # the table's own column is still there


def test_a_variant_that_beats_persistence_on_every_seed_says_so(base: np.ndarray) -> None:
    trials = trials_from({"base": base, "v": base - 0.05})
    trials["persistence_rmse"] = 2.0  # every variant is far better than persistence
    s = compute_statistics(trials, metric=METRIC)
    best = s.table.iloc[0]  # a row read positionally: the flag must still be a Python bool
    assert best["beats_persistence"] is True
    assert not any("persistence" in n for n in s.notes)
