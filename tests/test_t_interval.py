"""`compare.interval: t`: Student t intervals of the mean paired log ratio, fixed and as repeated
confidence intervals of seeds on demand (`bnplace.stats.verdicts.t_intervals`,
`bnplace.stats.t_sequential`). Seeded, vectorised
simulations of the rule as shipped: familywise coverage (normal, t3, lognormal noise) down to
the few seeds its looks allow, the A/A rate over all looks, and what it saves against a fixed
design of the same power (issue 25: m = 6, seed sd 4.5%)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from bnplace.stats.seed_figures import Draws, detection_power
from bnplace.stats.sequential import (
    SequentialRule,
    judge,
    live_looks,
    look_sizes,
    simulate,
    spending_words,
    spent,
)
from bnplace.stats.t_sequential import null_abs_t, t_boundaries
from bnplace.stats.verdicts import (
    BETTER,
    SIGNED_RANK,
    WORSE,
    T,
    level_for,
    margin_bounds,
    paired_intervals,
    signed_rank_intervals,
    t_intervals,
)

SD = 0.045  # seed sd of a paired log ratio (issue 25)
M = 6
LOOKS = look_sizes(5, 14, 1)  # the design quoted in the README: 5, 6, ..., 14
PAIRS = [(v, 0) for v in range(1, M + 1)]  # 6 variants against a common baseline


def _draw(rng: np.random.Generator, shape: str, size: tuple[int, ...]) -> np.ndarray:
    """Centred noise of sd ~1 around a known centre: normal, t3, lognormal(0, 1) minus its mean
    (the t interval's target is the mean)."""
    if shape == "normal":
        return rng.standard_normal(size)
    if shape == "t3":
        return rng.standard_t(3, size)
    return rng.lognormal(0.0, 1.0, size) - math.exp(0.5)


def test_t_interval_is_the_textbook_one() -> None:
    rng = np.random.default_rng(0)
    d = rng.normal(0.02, 0.05, size=(3, 7))
    iv = t_intervals(d, 0.99)
    for row, low, high, p in zip(d, iv.low, iv.high, iv.p_value, strict=True):
        want = st.t.interval(0.99, 6, loc=row.mean(), scale=st.sem(row))
        assert (low, high) == pytest.approx(want)
        assert p == pytest.approx(st.ttest_1samp(row, 0.0).pvalue)
        assert (p <= 0.01) == (low > 0 or high < 0)
    assert paired_intervals(d, 0.99, T).low == pytest.approx(iv.low)
    assert paired_intervals(d, 0.99, SIGNED_RANK).low == pytest.approx(
        signed_rank_intervals(d, 0.99).low
    )
    few = t_intervals(d[:, :1], 0.99)
    assert not few.reachable and np.isinf(few.low).all()
    failed = d.copy()
    failed[0, 0] = np.inf
    assert not t_intervals(failed, 0.99).reachable


@pytest.mark.parametrize("shape", ["normal", "t3", "lognormal"])
def test_familywise_coverage_of_fixed_t_intervals(shape: str) -> None:
    """All m t intervals at the Bonferroni level cover their means together (2,000 repeats a
    cell, m = 1, 8, 11 at 3-30 seeds). Normal and t3: >= 0.93. Lognormal (skewness 6): the
    limit `plan` states with the figure printed here."""
    figures = {}
    for m, n in ((1, 3), (1, 6), (1, 30), (8, 4), (8, 10), (8, 30), (11, 4), (11, 10), (11, 20)):
        rng = np.random.default_rng([n, m, len(shape), 7])
        iv = t_intervals(_draw(rng, shape, (2000 * m, n)), level_for(0.05, m))
        inside = (iv.low <= 0.0) & (iv.high >= 0.0)
        figures[(m, n)] = round(float(inside.reshape(2000, m).all(axis=1).mean()), 3)
    print(f"\n{shape}: t intervals, simultaneous coverage (m, seeds)", figures)
    if shape != "lognormal":
        assert min(figures.values()) >= 0.93
    else:
        assert min(figures.values()) < 0.93  # the limit is real: plan and README say so


@pytest.mark.parametrize("spending", [None, 0.75])
def test_t_boundaries_spend_alpha_as_planned(spending: float | None) -> None:
    """The computed boundaries, checked on fresh null paths (another seed): t statistics first
    cross ±c_k at look k with probability close to alpha·(t_k^rho − t_{k−1}^rho), for the
    default rho = 1 and a design's own (`sweep.seeds.spending: 0.75`)."""
    alpha = 0.05 / M
    rule = SequentialRule(LOOKS, 0.05, M, T, spending)
    c = np.array(
        [st.t.isf((1 - level) / 2, n - 1) for n, level in zip(LOOKS, rule.levels, strict=True)]
    )
    fresh = null_abs_t(LOOKS, LOOKS[-1], 1 << 19, seed=5)
    over = fresh > c[:, None]
    first = np.where(over.any(axis=0), over.argmax(axis=0), -1)
    crossed = np.bincount(first[first >= 0], minlength=len(LOOKS)) / fresh.shape[1]
    planned = np.diff([0.0] + [spent(n / LOOKS[-1], alpha, T, spending) for n in LOOKS])
    print(f"\nspent {crossed.sum():.5f} of {alpha:.5f}")
    assert crossed.sum() <= alpha * 1.03
    assert np.allclose(crossed, planned, atol=2.5e-4)
    # the same boundaries from the same paths, every time (decisions depend on trials alone)
    again = t_boundaries(null_abs_t(LOOKS, 14, 1 << 12, seed=1), (0.001,) * len(LOOKS))
    assert np.array_equal(again, t_boundaries(null_abs_t(LOOKS, 14, 1 << 12, seed=1),
                                              (0.001,) * len(LOOKS)))  # fmt: skip


# seeds on demand with t intervals: (m, looks), down to 3 seeds at the first look
SEQUENTIAL = ((1, look_sizes(3, 30, 3)), (M, LOOKS), (8, look_sizes(4, 20, 2)),
              (11, look_sizes(5, 30, 5)))  # fmt: skip


@pytest.mark.parametrize("shape", ["normal", "t3", "lognormal"])
def test_repeated_t_intervals_cover_at_every_look_together(shape: str) -> None:
    """All m comparisons' t intervals at all looks cover their means together (2,000 sweeps a
    design): >= 0.93 for normal and t3 noise; lognormal (skewness 6) is the limit `plan`
    states. Normal: the A/A familywise false-verdict rate over all looks, 6 comparisons against
    a common baseline and one comparison, <= 0.05."""
    figures = {}
    for m, looks in SEQUENTIAL:
        rule = SequentialRule(looks, 0.05, m, T)
        rng = np.random.default_rng([len(shape), m, 3])
        d = _draw(rng, shape, (2000, m, looks[-1])) * SD  # paired differences, mean 0
        covered = np.ones((2000, m), dtype=bool)
        for n, level in zip(rule.looks, rule.levels, strict=True):
            iv = t_intervals(d[:, :, :n].reshape(2000 * m, n), level)
            covered &= ((iv.low <= 0.0) & (iv.high >= 0.0)).reshape(2000, m)
        figures[(m, f"{looks[0]}..{looks[-1]}")] = round(float(covered.all(axis=1).mean()), 3)
    print(f"\n{shape}: all intervals at all looks cover together (m, looks): {figures}")
    if shape == "normal":
        rates = []
        for m, seed in ((M, 31), (1, 32)):
            looks = dict(SEQUENTIAL)[m]
            null = simulate(SequentialRule(looks, 0.05, m, T), [0.0] * (m + 1),
                            [(v, 0) for v in range(1, m + 1)], sd=SD, margin=0.05, reps=4000,
                            seed=seed)  # fmt: skip
            rates.append(null.rate(BETTER, WORSE))
        print(f"A/A familywise over all looks, m = 6 / m = 1: {np.round(rates, 3)}")
        assert max(rates) <= 0.05
    if shape != "lognormal":
        assert min(figures.values()) >= 0.93
    else:
        assert min(figures.values()) < 0.93  # the limit plan and README state


def _fixed_t_power(n: int, effect: float, sd: float, m: int) -> float:
    """Power of the fixed t design (one look at the Bonferroni level), exactly: noncentral t."""
    q = st.t.isf(0.05 / m / 2, n - 1)
    return float(st.nct.sf(q, n - 1, effect / sd * math.sqrt(n)))


@pytest.mark.parametrize("spending", [None, 0.75])
def test_seeds_on_demand_at_2x_the_margin_against_the_fixed_design_of_the_same_power(
    spending: float | None,
) -> None:
    """Issue 25's figure: m = 6, seed sd 4.5%, margin ±5%, true effect 2x the margin (10%):
    the mean seeds per compared variant of looks 5..14 (t intervals) against the fixed t design
    whose power at 2x equals this design's (capped at 0.999, as test_sequential does).
    Measured, alpha·t (the default): 7.22 seeds against 12, 0.60x (0.599 on 40,000 sweeps);
    alpha·t^0.75 (`spending: 0.75`): 7.13 against 12, 0.59x, with its own A/A rate and
    coverage over all looks checked here. Power at 2x stays >= 0.999 (0.9992 on 40,000 sweeps:
    11 fixed seeds give 0.9988), so the fixed design it is held against is 12 seeds either way."""
    rule = SequentialRule(live_looks(LOOKS, 0.05, M, T, spending), 0.05, M, T, spending)
    assert rule.looks == LOOKS
    figures, baseline = {}, {}
    for times, seed in ((0.0, 50), (1.0, 53), (1.5, 51), (2.0, 52)):
        effects = [0.0] + [math.log1p(times * 0.05)] * M
        sim = simulate(rule, effects, PAIRS, sd=SD, margin=0.05, reps=6000, seed=seed)
        figures[times] = (float(sim.seeds[:, 1:].mean()), float(sim.share(WORSE).mean()))
        baseline[times] = (float(sim.seeds[:, 0].mean()), float(sim.seeds.sum(axis=1).mean()))
    seeds, power = figures[2.0]
    effect = math.log1p(0.10)
    fixed = next(n for n in range(2, 100) if _fixed_t_power(n, effect, SD, M) >= min(power, 0.999))
    assert _fixed_t_power(8, effect, SD, M) == pytest.approx(
        detection_power(Draws(8, effect, SD, reps=20000), level_for(0.05, M), interval=T), abs=0.01
    )
    ratio = seeds / fixed
    print(
        f"\nm=6, sd 4.5%, looks 5..14 (t): seeds per variant at 0/1x/1.5x/2x "
        f"{[round(f[0], 2) for f in figures.values()]}, power at 1x/1.5x "
        f"{figures[1.0][1]:.3f}/{figures[1.5][1]:.3f}; at 2x power {power:.5f}, baseline "
        f"{baseline[2.0][0]:.2f} seeds, {baseline[2.0][1]:.1f} trials in all; fixed t design "
        f"of that power {fixed} seeds: {ratio:.3f}x ({baseline[2.0][1] / (fixed * (M + 1)):.2f}x "
        "counting the baseline)"
    )
    assert figures[0.0][0] > figures[1.0][0] > figures[1.5][0] > seeds
    assert figures[1.5][1] >= 0.8 and power >= 0.999 and fixed == 12
    if spending is None:
        assert round(ratio, 2) <= 0.60
        return
    assert ratio <= 0.595  # issue 25: <= 0.6x, with room for another simulation's noise
    null = simulate(rule, [0.0] * (M + 1), PAIRS, sd=SD, margin=0.05, reps=4000, seed=31)
    d = np.random.default_rng(77).normal(0.0, SD, size=(2000 * M, LOOKS[-1]))
    covered = np.ones(2000 * M, dtype=bool)
    for n, level in zip(rule.looks, rule.levels, strict=True):
        iv = t_intervals(d[:, :n], level)
        covered &= (iv.low <= 0.0) & (iv.high >= 0.0)
    together = float(covered.reshape(2000, M).all(axis=1).mean())
    print(f"alpha·t^0.75: A/A familywise {null.rate(BETTER, WORSE):.3f}, all 6 intervals at all "
          f"looks cover together {together:.3f}")  # fmt: skip
    assert null.rate(BETTER, WORSE) <= 0.05 and together >= 0.93


def test_judge_is_the_simulated_rule_with_t_intervals() -> None:
    rule = SequentialRule(LOOKS, 0.05, M, T)
    sim = simulate(rule, [0.0, 0.08], [(1, 0)], sd=SD, margin=0.05, reps=60, seed=8)
    rng = np.random.default_rng(8)
    x = rng.normal(size=(60, 2, 14)) * (SD / math.sqrt(2.0)) + np.array([0.0, 0.08])[None, :, None]
    for r in range(60):
        got = judge(x[r, 1] - x[r, 0], 14, rule, bounds=margin_bounds(0.05), lower_is_better=True)
        assert got.verdict == sim.verdicts[r, 0]
        assert (got.look if got.decided else -1) == sim.decided_at[r, 0]


# ------------------------------------------------------------------ config, plan, compare

SIX = """
experiment: six
data: {source: synthetic, generator: sine_mix, length: 300, features: 1, window: 8}
model:
  - lstm: {id: lstm, units: 2}
sweep:
  axes:
    lstm.after: {none: [], bn: [batch_norm], ln: [layer_norm], d1: [dropout: 0.1],
      d2: [dropout: 0.2], g1: [gaussian_noise: 0.1], g2: [gaussian_noise: 0.2]}
  seeds: {min: 5, max: 14, step: 1}
compare: {seed_sd: 0.045, interval: t, failures: drop}
"""


def _plan(text: str):
    from bnplace.config import parse_config
    from bnplace.plan import DataShape, make_plan

    def shape_of(config):
        return DataShape("forecast", config.data.window, config.data.features, 1, "fp", 0)

    return make_plan(parse_config(text, "six.yaml"), shape_of)


def test_t_intervals_need_failures_dropped_and_the_config_says_where() -> None:
    from bnplace.names.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        _plan(SIX.replace(", failures: drop", ""))
    (problem,) = info.value.problems
    assert problem.key == "compare.failures" and problem.got == "rank_worst"
    assert "failures: drop" in problem.expected and problem.line == 11  # compare:


def test_plan_of_a_t_design_has_no_dead_look_and_states_its_limit() -> None:
    """m = 6, looks 5..14 with t intervals: every look can decide (the signed-rank rule's
    first live look of these would be 10), the plan says which interval and what skew does to
    it, and its power at 1.5x the margin is what an independent simulation of the rule gives."""
    plan = _plan(SIX)
    assert plan.design.interval == T and plan.design.looks == LOOKS
    figures = plan.seeds_on_demand
    assert figures["dead_looks"] == [] and figures["first_deciding_look"] == 5
    assert live_looks(LOOKS, 0.05, M)[0] == 10  # signed rank: 2^(1-n) > alpha/6·(n/14)² below
    messages = {f.rule: f.message for f in plan.design_findings}
    assert "t intervals" in messages["seeds_on_demand"]
    assert "0.29-0.76" in messages["interval_assumption"]  # measured above, lognormal
    assert plan.design.from_dict(plan.design.to_dict()).interval == T
    rule = SequentialRule.of(plan.design, M)
    assert rule.interval == T and rule.first_reachable_look() == 0
    effects = [0.0] + [math.log1p(0.075)] * M
    sim = simulate(rule, effects, PAIRS, sd=SD, margin=0.05, reps=2000, seed=99)
    power = figures["per_dataset"]["power_1_5"]
    assert float(np.mean(sim.share(WORSE))) == pytest.approx(power, abs=0.03)


def test_seeds_auto_searches_t_designs() -> None:
    """`seeds: auto` with t intervals picks among t designs (looks below the signed-rank
    rule's 8 seeds), and the pick has power >= 0.8 at 1.5x the margin by an independent
    simulation of the shipped rule."""
    plan = _plan(SIX.replace("seeds: {min: 5, max: 14, step: 1}", "seeds: auto"))
    messages = {f.rule: f.message for f in plan.design_findings}
    assert "t intervals" in messages["seeds_auto"]
    looks = plan.design.looks
    assert looks[0] < 8 and SequentialRule.of(plan.design, M).first_reachable_look() == 0
    # the spending exponent is searched too, and the plan keeps the one chosen
    assert plan.design.spending in (0.75, 1.0)
    assert spending_words(T, plan.design.spending) in messages["seeds_auto"]
    given = "seeds: {auto: true, spending: 2}"
    kept = _plan(SIX.replace("seeds: {min: 5, max: 14, step: 1}", given))
    said = kept.design_findings[0].message
    assert kept.design.spending == 2.0 and "min and step searched" in said
    effects = [0.0] + [math.log1p(0.075)] * M
    rule = SequentialRule.of(plan.design, M)
    sim = simulate(rule, effects, PAIRS, sd=SD, margin=0.05, reps=2000, seed=61)
    print(f"\nauto, t intervals, m = 6, sd 4.5%: looks {looks}, power at 1.5x "
          f"{np.mean(sim.share(WORSE)):.3f}")  # fmt: skip
    assert float(np.mean(sim.share(WORSE))) >= 0.8


def test_spending_is_a_bounded_located_key_and_travels_with_the_design() -> None:
    """`sweep.seeds.spending`: the plan, its stored design, `plan`'s words and compare's rule
    sentence all carry the configured rho; out of range is a located error; `--seeds N` (a
    fixed design) drops it."""
    from bnplace.compare.format import rule_sentence
    from bnplace.config import parse_config
    from bnplace.names.errors import ConfigError
    from bnplace.plan import DataShape, make_plan
    from bnplace.stats.verdicts import Design

    plan = _plan(SIX.replace("step: 1}", "step: 1, spending: 0.75}"))
    assert plan.design.spending == 0.75 and plan.design.looks == LOOKS
    assert Design.from_dict(plan.design.to_dict()) == plan.design
    messages = {f.rule: f.message for f in plan.design_findings}
    assert "alpha·t^0.75" in messages["seeds_on_demand"]
    assert "alpha·t^0.75" in rule_sentence(plan.design, M)
    assert "as alpha·t (" in rule_sentence(_plan(SIX).design, M)  # the default, unchanged
    default = SequentialRule.of(_plan(SIX).design, M)
    assert SequentialRule.of(plan.design, M).levels != default.levels
    with pytest.raises(ConfigError) as info:
        _plan(SIX.replace("step: 1}", "step: 1, spending: 9}"))
    (problem,) = [p for p in info.value.problems if p.key == "sweep.seeds.spending"]
    assert problem.line == 10 and problem.got == "9" and "4" in problem.expected
    fixed = make_plan(
        parse_config(SIX.replace("step: 1}", "step: 1, spending: 0.75}"), "six.yaml"),
        lambda config: DataShape("forecast", 8, 1, 1, "fp", 0),
        seeds=range(8),
    )
    assert fixed.design.looks == () and fixed.design.spending is None


def test_compare_reads_the_t_interval_and_says_so() -> None:
    import pandas as pd

    from bnplace.compare.paired import compare_pairs
    from bnplace.compare.stats import compute_statistics
    from bnplace.stats.pairing import FamilyQuestion
    from bnplace.stats.verdicts import DROP, Contrast, Design

    rng = np.random.default_rng(3)
    base = np.exp(rng.normal(0.0, 0.03, 8))
    worse = base * np.exp(rng.normal(0.08, 0.03, 8))
    rows = [
        {"variant": v, "seed": s, "status": "finished", "test_rmse": float(x)}
        for v, xs in (("base", base), ("worse", worse))
        for s, x in enumerate(xs)
    ]
    trials = pd.DataFrame(rows)
    design = Design(interval=T, failures=DROP)
    question = FamilyQuestion("test_rmse", "min", (Contrast("w", "worse", "base"),), design)
    (row,) = compare_pairs(trials, question)
    d = np.log(worse / base)
    low, high = st.t.interval(0.95, 7, loc=d.mean(), scale=st.sem(d))
    assert row.delta_pct_low == pytest.approx(100 * math.expm1(low))
    assert row.delta_pct_high == pytest.approx(100 * math.expm1(high))
    assert row.verdict == WORSE
    stats = compute_statistics(
        trials, metric="test_rmse", direction="min", baseline="base", design=design
    )
    assert any("Student t" in note for note in stats.notes)


SCHEDULED_T = """
experiment: scheduled_t
data: {source: synthetic, generator: sine_mix, length: 200, features: 1, window: 8}
model:
  - lstm: {id: lstm, units: 2}
sweep:
  arms:
    kind:
      plain: {}
      worse: {train.learning_rate: 1.0e-7}
      same: {train.time_limit: 999}
  seeds: {min: 3, max: 12, step: 1}
compare: {interval: t, failures: drop}
"""


def _value(variant: str, seed: int) -> float:
    """'same' is 'plain' within 1% seed by seed, 'worse' 40% higher (seed noise 5%)."""
    rng = np.random.default_rng([seed, 11])
    noise = float(np.exp(rng.normal(0, 0.05)))
    if variant == "kind=worse":
        return noise * 1.4 * float(np.exp(rng.normal(0, 0.02)))
    if variant == "kind=same":
        return noise * float(np.exp(rng.normal(0, 0.005)))
    return noise


def _drive(schedule, plan) -> list[str]:
    from bnplace.names.states import FINISHED
    from bnplace.trial.result import TrialResult

    ended = []
    while (trial := schedule.take()) is not None:
        value = {plan.metric: _value(trial.variant, trial.seed)}
        schedule.ended(TrialResult(trial.key, trial.variant_id, trial.variant, trial.seed,
                                   FINISHED, metrics=value))  # fmt: skip
        ended.append(trial.key)
    return ended


def test_the_schedule_decides_at_few_seeds_with_t_and_resumes_anywhere() -> None:
    """The scheduler with t intervals (synthetic results, no training): a 40% worse variant is
    decided at the first look, 3 seeds (the signed-rank rule needs 7 for 2 comparisons), and
    'same' is called equivalent; a sweep cut after any trial and run again ends with the same
    decisions (the levels are a function of the design alone)."""
    from bnplace.execute.schedule import SeedsOnDemand

    plan = _plan(SCHEDULED_T)
    assert plan.design.looks == look_sizes(3, 12, 1) and plan.seeds_on_demand["dead_looks"] == []
    whole = SeedsOnDemand(plan, plan.trials)
    ended = _drive(whole, plan)
    decisions = {name: (d.verdict, d.seeds) for name, d in whole.decisions.items()}
    print(f"\nt intervals, 2 comparisons: {decisions}")
    assert decisions["kind=worse vs kind=plain"] == (WORSE, 3)
    assert decisions["kind=same vs kind=plain"][0] == "equivalent"
    assert len(ended) < len(plan.trials)
    values = {t.key: _value(t.variant, t.seed) for t in plan.trials}
    for cut in range(0, len(ended) + 1, 4):
        finished = {key: values[key] for key in ended[:cut]}
        resumed = SeedsOnDemand(plan, [t for t in plan.trials if t.key not in finished], finished)
        rest = _drive(resumed, plan)
        assert sorted(ended[:cut] + rest) == sorted(ended), cut
        assert {n: (d.verdict, d.seeds) for n, d in resumed.decisions.items()} == decisions, cut


def test_a_fixed_t_design_gets_its_seed_figures_from_the_t_rule() -> None:
    plan = _plan(SIX.replace("seeds: {min: 5, max: 14, step: 1}", "seeds: 4"))
    found = {f.rule: f.message for f in plan.design_findings}
    assert "seeds_too_few_for_any_verdict" not in found  # 4 seeds can decide with t
    assert "t interval" in found["interval_assumption"]
    power = found["seeds_for_power"]
    print(f"\n{power}")
    assert "power 80%" in power and ">400" not in power


@pytest.mark.slow
def test_a_sweep_with_t_intervals_decides_a_clearly_worse_variant_at_its_first_looks(
    tmp_path,
) -> None:
    """End to end (real tiny models, a real MLflow store): with `compare.interval: t` a
    learning rate 100,000x too small is called worse by the t interval at 3-5 seeds (the
    signed-rank rule's first look could not come before 6), no seed past its deciding look is
    trained, and the report names the interval."""
    import json

    from tests.sweeps import bnplace, runs, write_config

    config = write_config(
        tmp_path,
        """
        sweep:
          arms:
            lr:
              plain: {}
              tiny: {train.learning_rate: 1.0e-7}
          seeds: {min: 3, max: 12, step: 1}
        compare: {interval: t, failures: drop}
        """,
    )
    done = bnplace(tmp_path, "run", str(config), "--epochs", "1", "-j", "1", "--no-compare")
    assert done.returncode == 0, done.stdout + done.stderr
    shown = bnplace(tmp_path, "compare", str(config), "--format", "json", "--no-log")
    assert shown.returncode == 0, shown.stderr
    out = json.loads(shown.stdout)
    (row,) = [c for c in out["comparisons"] if c["comparison"] == "lr=tiny vs lr=plain"]
    assert row["verdict"] == "worse" and row["look_seeds"] <= 5
    trained = [t for t in runs(tmp_path)["trial"] if t.info.status == "FINISHED"]
    assert len(trained) == 2 * row["look_seeds"]
    assert out["design"]["interval"] == T
    assert any("Student t" in note for note in out["notes"])
