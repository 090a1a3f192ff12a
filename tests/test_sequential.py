"""Seeds on demand: the sequential rule's error rates, power and savings, by seeded simulation of
the rule as shipped (`bnplace.stats.sequential.simulate` runs the same per-look verdicts as
`judge`), and the schedule that deals the seeds (pure: synthetic results, no training)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bnplace.stats.pairing import FamilyQuestion, judge_family
from bnplace.stats.seed_figures import Draws, detection_power
from bnplace.stats.sequential import (
    SequentialRule,
    judge,
    live_looks,
    look_sizes,
    nominal_levels,
    simulate,
    spent,
)
from bnplace.stats.verdicts import (
    BETTER,
    EQUIVALENT,
    SIGNED_RANK,
    WORSE,
    Contrast,
    Design,
    level_for,
    margin_bounds,
)

LOOKS = look_sizes(6, 40, 4)  # the design: 6, 10, ..., 38, 40
MARGIN, SD = 0.05, 0.10  # seed-to-seed sd of a paired log ratio twice the margin
AGAINST_BASELINE = ((1, 0), (2, 0), (3, 0))  # 4 variants: 3 comparisons with the baseline
RULE = SequentialRule(live_looks(LOOKS, 0.05, 3), 0.05, len(AGAINST_BASELINE))  # as planned


def _effects(times_margin: float) -> list[float]:
    effect = math.log1p(times_margin * MARGIN)
    return [0.0, effect, effect, effect]


def test_looks_run_from_min_by_step_and_end_at_max() -> None:
    assert look_sizes(6, 40, 4) == (6, 10, 14, 18, 22, 26, 30, 34, 38, 40)
    assert look_sizes(8, 24, 4) == (8, 12, 16, 20, 24)
    assert look_sizes(5, 5, 4) == (5,)


@pytest.mark.parametrize("spending", [None, 1.0])
def test_boundaries_spend_alpha_as_planned(spending: float | None) -> None:
    """The recursive integration's boundaries, checked by brute force: Brownian paths first
    cross ±c_k at look k with probability alpha·(t_k^rho − t_{k−1}^rho), for the default rho = 2
    and a design's own (`sweep.seeds.spending`)."""
    from scipy.special import ndtri

    alpha = 0.05 / 3
    c = np.array([ndtri(1 - p / 2) for p in nominal_levels(LOOKS, alpha, spending)])
    rng = np.random.default_rng(11)
    ns = np.array(LOOKS, dtype=float)
    steps = np.diff(np.concatenate([[0.0], ns]))
    crossed = np.zeros(len(ns))
    for _ in range(4):  # 4 x 250,000 paths
        score = np.cumsum(rng.normal(size=(250_000, len(ns))) * np.sqrt(steps), axis=1)
        over = np.abs(score) / np.sqrt(ns) >= c
        first = np.where(over.any(axis=1), over.argmax(axis=1), -1)
        crossed += np.bincount(first[first >= 0], minlength=len(ns))
    crossed /= 1_000_000
    planned = np.diff([0.0] + [spent(n / ns[-1], alpha, SIGNED_RANK, spending) for n in ns])
    assert crossed.sum() == pytest.approx(alpha, abs=5e-4)
    assert np.allclose(crossed, planned, atol=4e-4)


def test_no_effect_gives_false_verdicts_at_most_alpha_over_all_looks() -> None:
    """A/A with 4 variants: some comparison called better/worse at some look, familywise."""
    sim = simulate(RULE, _effects(0.0), AGAINST_BASELINE, sd=SD, margin=MARGIN, seed=1)
    rate = sim.rate(BETTER, WORSE)
    print(f"\nA/A familywise false verdicts over {len(RULE.looks)} looks: {rate:.3f}")
    assert rate <= 0.05
    assert RULE.levels[-1] > level_for(0.05, 3)  # the last look pays for the earlier ones


def test_power_at_max_for_an_effect_of_one_and_a_half_margins() -> None:
    sim = simulate(RULE, _effects(1.5), AGAINST_BASELINE, sd=SD, margin=MARGIN, seed=2)
    power = sim.share(WORSE)  # lower is better: a variant 7.5% higher is worse
    print(f"\npower at 1.5x the margin by the last look: {np.round(power, 3)}")
    assert power.min() >= 0.8
    assert sim.rate(BETTER) == 0.0  # never the wrong direction


def test_seeds_used_fall_with_the_effect_and_beat_the_fixed_design() -> None:
    """Mean seeds per variant at true effects 0, 1x and 2x the margin; at 2x, against the
    fixed design (the Bonferroni exact test at one look) with the same power."""
    used = {}
    for times in (0.0, 1.0, 2.0):
        sim = simulate(RULE, _effects(times), AGAINST_BASELINE, sd=SD, margin=MARGIN, seed=3)
        used[times] = (sim.seeds.mean(), sim.share(WORSE).mean())
    effect = math.log1p(2 * MARGIN)
    power = used[2.0][1]
    fixed = next(
        n
        for n in range(6, 200)
        if detection_power(Draws(n, effect, SD, seed=4), level_for(0.05, 3)) >= min(power, 0.999)
    )
    ratio = used[2.0][0] / fixed
    print(
        "\nmean seeds per variant (4 variants, looks 6..40 by 4): "
        + ", ".join(f"{t:g}x margin {n:.1f} (power {p:.3f})" for t, (n, p) in used.items())
        + f"; fixed design with power {power:.3f} at 2x: {fixed} seeds; ratio {ratio:.2f}"
    )
    assert used[0.0][0] > used[1.0][0] > used[2.0][0]
    assert ratio <= 0.6


def test_equivalence_at_no_effect_stops_early_and_is_never_claimed_past_the_margin() -> None:
    tight = SequentialRule(LOOKS, 0.05, 3)
    null = simulate(tight, _effects(0.0), AGAINST_BASELINE, sd=0.04, margin=MARGIN, seed=5)
    assert null.share(EQUIVALENT).min() >= 0.8
    assert null.seeds[:, 1:].mean() < LOOKS[-1] * 0.75  # stops before max, on average
    at_margin = simulate(tight, _effects(1.0), AGAINST_BASELINE, sd=0.04, margin=MARGIN, seed=6)
    assert at_margin.rate(EQUIVALENT) <= 0.05  # "equivalent" while the effect is the margin


def test_judge_is_the_simulated_rule() -> None:
    """`judge` (one comparison, what a sweep runs) and `simulate` (many) decide alike."""
    rule = SequentialRule(look_sizes(6, 30, 4), 0.05, 1)
    sim = simulate(rule, [0.0, 0.06], [(1, 0)], sd=0.1, margin=MARGIN, reps=60, seed=8)
    rng = np.random.default_rng(8)
    x = rng.normal(size=(60, 2, 30)) * (0.1 / math.sqrt(2.0)) + np.array([0.0, 0.06])[None, :, None]
    for r in range(60):
        got = judge(x[r, 1] - x[r, 0], 30, rule, bounds=margin_bounds(MARGIN), lower_is_better=True)
        assert got.verdict == sim.verdicts[r, 0]
        assert (got.look if got.decided else -1) == sim.decided_at[r, 0]


def _trials(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = [
        {"variant": v, "seed": s, "status": "finished", "test_rmse": x}
        for v, xs in values.items()
        for s, x in enumerate(xs)
    ]
    return pd.DataFrame(rows)


def test_a_decision_stays_with_its_look_whatever_comes_after() -> None:
    """A comparison decided at a look keeps that verdict and interval when later seeds (run for
    other comparisons) arrive: resumed sweeps and `compare` read it the same way."""
    rng = np.random.default_rng(9)
    base = list(np.exp(rng.normal(0, 0.05, 24)))
    worse = [b * 1.5 for b in base]
    same = [b * float(np.exp(rng.normal(0, 0.05))) for b in base]
    design = Design(looks=look_sizes(8, 24, 4))
    family = (Contrast("w", "worse", "base"), Contrast("s", "same", "base"))
    early = _trials({"base": base[:12], "worse": worse[:12], "same": same[:12]})
    late = _trials({"base": base, "worse": worse[:12], "same": same})
    question = FamilyQuestion("test_rmse", "min", family, design)
    d_early, d_late = judge_family(early, question), judge_family(late, question)
    assert d_early["w"].decided and d_early["w"].verdict == WORSE
    assert d_late["w"].look == d_early["w"].look
    assert d_late["w"].intervals.low[0] == d_early["w"].intervals.low[0]


# ------------------------------------------------------------------ the schedule


SCHEDULED = """
experiment: scheduled
data: {source: synthetic, generator: sine_mix, length: 200, features: 1, window: 8}
model:
  - lstm: {id: lstm, units: 2}
sweep:
  arms:
    kind:
      plain: {}
      worse: {train.learning_rate: 1.0e-7}
      same: {train.time_limit: 999}
  seeds: {min: 6, max: 18, step: 4}
"""


def _value(variant: str, seed: int) -> float:
    """A synthetic metric: 'same' equals 'plain' seed by seed, 'worse' is 40% higher."""
    noise = float(np.exp(np.random.default_rng([seed]).normal(0, 0.05)))
    return noise * (1.4 if variant == "kind=worse" else 1.0)


def _drive(schedule, plan, value_of=lambda trial: _value(trial.variant, trial.seed)) -> list[str]:
    """Run what the schedule deals, one trial at a time, preferring the last variant."""
    from bnplace.names.states import FINISHED
    from bnplace.trial.result import TrialResult

    ended, prefer = [], None
    while (trial := schedule.take(prefer)) is not None:
        prefer = trial
        value = value_of(trial)
        schedule.ended(
            TrialResult(
                trial.key, trial.variant_id, trial.variant, trial.seed, FINISHED,
                metrics={plan.metric: value},
            )
        )  # fmt: skip
        ended.append(trial.key)
    return ended


@pytest.fixture(scope="module")
def scheduled_plan(tmp_path_factory):
    from bnplace.run.sweep import plan_sweep

    path = tmp_path_factory.mktemp("scheduled") / "c.yaml"
    path.write_text(SCHEDULED)
    return plan_sweep(path).plan


def test_the_schedule_spends_seeds_only_where_undecided_and_resumes_anywhere(
    scheduled_plan,
) -> None:
    from bnplace.execute.schedule import SeedsOnDemand

    plan = scheduled_plan
    # seeds 6..18 by 4 with 2 comparisons: the 6-seed look cannot decide (2^-5 > its level),
    # so the plan drops it and the schedule starts at 10 seeds
    assert plan.design.looks == (10, 14, 18)
    assert plan.seeds_on_demand["dead_looks"] == [6]
    assert plan.seeds_on_demand["first_deciding_look"] == 10
    whole = SeedsOnDemand(plan, plan.trials)
    ended = _drive(whole, plan)
    decisions = {name: (d.verdict, d.look) for name, d in whole.decisions.items()}
    by_variant = {}
    for trial in plan.trials:
        if trial.key in ended:
            by_variant[trial.variant] = by_variant.get(trial.variant, 0) + 1
    assert decisions["kind=worse vs kind=plain"][0] == WORSE
    assert decisions["kind=same vs kind=plain"][0] == EQUIVALENT  # identical seed by seed
    assert len(ended) == len(set(ended)) < len(plan.trials)  # stopped before max
    assert by_variant["kind=plain"] == max(by_variant.values())  # the baseline pairs them all
    assert [r.look for r in whole.looks] == list(range(1, len(whole.looks) + 1))
    assert whole.looks[-1].open_comparisons == 0

    values = {key: _value(t.variant, t.seed) for t in plan.trials for key in [t.key]}
    for cut in range(0, len(ended) + 1, 3):  # killed after `cut` trials, then rerun
        finished = {key: values[key] for key in ended[:cut]}
        todo = [t for t in plan.trials if t.key not in finished]
        resumed = SeedsOnDemand(plan, todo, finished)
        rest = _drive(resumed, plan)
        assert sorted(ended[:cut] + rest) == sorted(ended), cut  # none lost, none twice
        again = {name: (d.verdict, d.look) for name, d in resumed.decisions.items()}
        assert again == decisions, cut


SCHEDULED_ON_TWO = SCHEDULED.replace(
    "data: {source: synthetic, generator: sine_mix, length: 200, features: 1, window: 8}",
    "datasets:\n"
    "  sine: {source: synthetic, generator: sine_mix, length: 200, features: 1, window: 8}\n"
    "  ar: {source: synthetic, generator: ar, length: 200, features: 1, window: 8}",
)


def _value_on(trial) -> float:
    """On `sine` as `_value`; on `ar` 'worse' is as good as 'plain' (seed noise of its own)."""
    if trial.dataset == "sine":
        return _value(trial.variant, trial.seed)
    noise = float(np.exp(np.random.default_rng([trial.seed, 7]).normal(0, 0.05)))
    return noise if trial.variant == "kind=worse" else _value("kind=plain", trial.seed)


def test_several_datasets_decide_each_on_its_own_and_resume_anywhere(tmp_path) -> None:
    from bnplace.execute.schedule import Claim, ClaimedSchedule
    from bnplace.execute.schedule_datasets import SeedsOnDemandByDataset, seeds_on_demand
    from bnplace.run.sweep import plan_sweep
    from bnplace.stats.pairing import seeds_needed

    path = tmp_path / "c.yaml"
    path.write_text(SCHEDULED_ON_TWO)
    plan = plan_sweep(path).plan
    assert plan.datasets == ("sine", "ar")
    whole = seeds_on_demand(plan, plan.trials, {})
    assert isinstance(whole, SeedsOnDemandByDataset)
    first_look = 3 * 2 * plan.design.looks[0]
    assert whole.ready() == first_look and whole.remaining() == len(plan.trials)
    ended = _drive(whole, plan, _value_on)
    on = {d: {n: (x.verdict, x.look) for n, x in got.items()} for d, got in whole.decisions.items()}
    assert on["sine"]["kind=worse vs kind=plain"][0] == WORSE
    assert on["ar"]["kind=worse vs kind=plain"][0] != WORSE  # each dataset judged on its own
    by = {}
    for trial in plan.trials:
        if trial.key in ended:
            by[(trial.dataset, trial.variant)] = by.get((trial.dataset, trial.variant), 0) + 1
    for dataset, decisions in whole.decisions.items():  # seeds follow that dataset's looks
        part = whole.parts[dataset]
        needed = seeds_needed(decisions, part._family, plan.design)
        assert {v: by[(dataset, v)] for v in needed} == needed, dataset
    assert by[("sine", "kind=worse")] != by[("ar", "kind=worse")]
    looks = {d: [r.look for r in whole.looks if r.dataset == d] for d in plan.datasets}
    assert all(looks[d] == list(range(1, len(looks[d]) + 1)) and looks[d] for d in looks)

    values = {t.key: _value_on(t) for t in plan.trials}
    for cut in range(0, len(ended) + 1, 7):  # killed after `cut` trials, then rerun
        finished = {key: values[key] for key in ended[:cut]}
        todo = [t for t in plan.trials if t.key not in finished]
        resumed = seeds_on_demand(plan, todo, finished)
        may = {t.key for t in resumed.to_deal()}  # what `bnplace status` leaves pending
        assert len(may) == resumed.remaining(), cut
        rest = _drive(resumed, plan, _value_on)
        assert sorted(ended[:cut] + rest) == sorted(ended), cut  # none lost, none twice
        assert set(rest) <= may, cut  # a trial status calls not needed never trains
        again = {
            d: {n: (x.verdict, x.look) for n, x in got.items()}
            for d, got in resumed.decisions.items()
        }
        assert again == on, cut

    class Won:
        def claim(self, trial) -> Claim:
            return Claim(won=True)

    claimed = ClaimedSchedule(seeds_on_demand(plan, plan.trials, {}), Won())
    assert sorted(_drive(claimed, plan, _value_on)) == sorted(ended)
    assert whole.to_deal() == claimed.to_deal() == [] and whole.remaining() == 0


def test_the_worker_keeps_its_variant_on_its_dataset_first_then_on_any(tmp_path) -> None:
    """`take` prefers the worker's last variant on its last dataset (its model is warm there),
    then on any dataset, else deals whatever is ready."""
    from bnplace.execute.schedule_datasets import seeds_on_demand
    from bnplace.run.sweep import plan_sweep

    path = tmp_path / "c.yaml"
    path.write_text(SCHEDULED_ON_TWO)
    plan = plan_sweep(path).plan
    schedule = seeds_on_demand(plan, plan.trials, {})
    worse = plan.variant("kind=worse").id
    (last,) = [t for t in plan.trials if t.variant_id == worse and t.dataset == "ar" and not t.seed]
    first_look = plan.design.looks[0]
    taken = [schedule.take(last) for _ in range(2 * first_look)]
    assert {t.variant_id for t in taken} == {worse}
    assert [t.dataset for t in taken] == ["ar"] * first_look + ["sine"] * first_look
    assert schedule.take(last).variant_id != worse  # none of it left: another one, not None


def test_a_worker_with_no_warm_trial_leaves_the_others_model_to_it(tmp_path) -> None:
    """A free worker whose last variant has nothing ready takes a variant no other worker
    runs on data of the same shapes (that model is warm there: two workers on one variant's
    seeds build it twice), and takes it after all when nothing else is ready."""
    from bnplace.execute.schedule import FixedSchedule
    from bnplace.execute.schedule_datasets import seeds_on_demand
    from bnplace.run.sweep import plan_sweep

    path = tmp_path / "c.yaml"
    path.write_text(SCHEDULED_ON_TWO)
    plan = plan_sweep(path).plan
    schedule = seeds_on_demand(plan, plan.trials, {})
    first = schedule.take()
    second = schedule.take(None, busy=[first])
    assert first is not None and second is not None
    assert second.variant_id != first.variant_id  # not `first`'s variant on the other dataset
    again = schedule.take(first, busy=[second])
    assert again is not None and again.variant_id == first.variant_id  # warm: its next seed
    assert again.dataset == first.dataset

    fixed = FixedSchedule([t for t in plan.trials if t.dataset == "sine"])
    a = fixed.take()
    b = fixed.take(None, busy=[a])
    assert a is not None and b is not None and b.variant_id != a.variant_id
    rest = [fixed.take(None, busy=[a, b]) for _ in range(fixed.ready())]
    assert None not in rest and fixed.ready() == 0  # nothing else ready: taken after all


def test_compare_drops_the_seeds_not_needed_per_dataset() -> None:
    """Several datasets: each dataset's planned-but-not-needed trials are dropped where its own
    comparison was decided, and the notes say so per dataset."""
    from bnplace.compare.pipeline import _drop_seeds_not_needed

    rng = np.random.default_rng(4)
    design = Design(looks=look_sizes(6, 14, 4))
    frames = []
    for dataset, factor in (("easy", 1.5), ("hard", 1.0)):  # hard: noise, never decided
        base = list(np.exp(rng.normal(0, 0.05, 14)))
        other = [b * factor * float(np.exp(rng.normal(0, 0.2))) for b in base]
        ran = 10 if dataset == "easy" else 14  # easy decided by the 10-seed look
        frame = _trials({"base": base, "other": other}).assign(dataset=dataset)
        frame.loc[frame["seed"] >= ran, ["status", "test_rmse"]] = ("missing", math.nan)
        frames.append(frame)
    trials = pd.concat(frames, ignore_index=True)
    kept, notes = _drop_seeds_not_needed(trials, "test_rmse", "min", ["base", "other"], "base",
                                         design)  # fmt: skip
    easy = [n for n in notes if n.startswith("easy: ")]
    assert any("worse at look" in n for n in easy), notes
    assert any(n.startswith("hard: ") and "undecided" in n for n in notes), notes
    seeds = kept.groupby("dataset")["seed"].max().to_dict()
    assert seeds["hard"] == 13 and seeds["easy"] < 13  # easy's seeds past its decision dropped
    assert not (kept["status"] == "missing").any()
