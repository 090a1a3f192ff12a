"""The racing schedule (pure): rounds of paired seeds, eliminations from ended trials alone,
the same eliminations after a kill at any point, nothing dealt twice."""

from __future__ import annotations

import heapq
import math
from collections import Counter, OrderedDict

import numpy as np
import pytest

from bnplace.execute.schedule_search import Racing, standing
from bnplace.names.states import FAILED, FINISHED
from bnplace.plan import Plan, Trial
from bnplace.trial.result import TrialResult
from tests.test_search_space import plan_of

SEARCH = """
search:
  sites:
    conv.pre_act: [none, batch_norm, layer_norm]
    lstm.after: [none, batch_norm, {dropout: [0.1, 0.3]}]
  seeds: {min: 4, max: 12, step: 2}
"""


def planted(plan: Plan) -> dict[str, float]:
    """A test_rmse per trial: 'conv.pre_act=batch_norm, lstm.after=none' best, every placement
    with layer_norm at the conv 60% worse, the rest 3% worse; 2% noise and a shared seed effect."""
    rng = np.random.default_rng(5)
    seed_effect = rng.normal(0, 0.05, 12)
    values = {}
    for trial in plan.trials:
        base = 1.0 if trial.variant == "conv.pre_act=batch_norm, lstm.after=none" else 1.03
        if "conv.pre_act=layer_norm" in trial.variant:
            base = 1.6
        values[trial.key] = base * math.exp(seed_effect[trial.seed] + rng.normal(0, 0.02))
    return values


def result_of(trial, values: dict[str, float], fail: bool = False) -> TrialResult:
    if fail:
        return TrialResult(
            trial.key, trial.variant_id, trial.variant, trial.seed, FAILED, "diverged"
        )
    metrics = {"test_rmse": values[trial.key]}
    return TrialResult(
        trial.key, trial.variant_id, trial.variant, trial.seed, FINISHED, "", metrics
    )


def drive(
    racing: Racing,
    values: dict[str, float],
    workers: int,
    order: np.random.Generator,
    stop_after: int | None = None,
) -> dict[str, float]:
    """Run the schedule with `workers` trials in flight, ending them in a random order; stop
    (a kill) after `stop_after` ended trials. Returns what finished."""
    running: list = []
    done: dict[str, float] = {}
    while True:
        while len(running) < workers and (trial := racing.take()) is not None:
            assert trial.key not in done and trial not in running  # nothing dealt twice
            running.append(trial)
        if not running or (stop_after is not None and len(done) >= stop_after):
            return done
        trial = running.pop(int(order.integers(len(running))))
        done[trial.key] = values[trial.key]
        racing.ended(result_of(trial, values))


def test_rounds_deal_paired_seeds_and_eliminate_the_planted_worse_early() -> None:
    plan = plan_of(SEARCH)
    values = planted(plan)
    racing = Racing(plan, plan.trials)
    first = [racing.take() for _ in range(racing.ready())]
    assert {t.seed for t in first} == {0, 1, 2, 3}  # the first stage: 4 seeds of every placement
    assert len(first) == 4 * len(plan.variants)
    for trial in first:
        racing.ended(result_of(trial, values))
    done = drive(racing, values, 3, np.random.default_rng(0))
    names = {v.id: v.name for v in plan.variants}
    out = {names[vid]: e for vid, e in racing.eliminations.items()}
    layer_norm = [n for n in names.values() if "conv.pre_act=layer_norm" in n]
    assert all(out[n].seeds <= 5 for n in layer_norm)  # the clearly worse go at once
    assert "conv.pre_act=batch_norm, lstm.after=none" not in out
    alive = [names[vid] for vid in names if vid not in racing.eliminations]
    assert "conv.pre_act=batch_norm, lstm.after=none" in alive
    # every survivor trained the same seeds (paired); the eliminated trained fewer
    trained = {t.key for t in first} | set(done)
    seeds = {
        v.id: frozenset(t.seed for t in plan.trials if t.variant_id == v.id and t.key in trained)
        for v in plan.variants
    }
    assert len({seeds[vid] for vid in names if vid not in racing.eliminations}) == 1
    assert sum(map(len, seeds.values())) < len(plan.trials)
    worse = out[layer_norm[0]].sentence(names)
    assert worse.startswith("after 4 seeds, worse than") and "more than the margin" in worse


@pytest.mark.parametrize("kill_at", [5, 30, 47, 70])
def test_a_killed_race_resumes_to_the_same_eliminations_training_nothing_twice(
    kill_at: int,
) -> None:
    plan = plan_of(SEARCH)
    values = planted(plan)
    whole = Racing(plan, plan.trials)
    drive(whole, values, 2, np.random.default_rng(1))
    assert len(whole.eliminations) >= 4
    first = Racing(plan, plan.trials)
    before = drive(first, values, 2, np.random.default_rng(2), stop_after=kill_at)
    todo = [t for t in plan.trials if t.key not in before]
    second = Racing(plan, todo, finished=before)
    may = {t.key for t in second.to_deal()}  # what `bnplace status` leaves pending
    assert len(may) == second.remaining()
    assert len(may) < len(todo) or not second.eliminations  # the eliminated's seeds are not
    after = drive(second, values, 2, np.random.default_rng(3))
    assert not set(before) & set(after)
    assert set(after) <= may  # a trial status calls not needed never trains
    assert second.eliminations == whole.eliminations
    assert whole.to_deal() == second.to_deal() == [] and second.remaining() == 0


def test_a_failed_trial_counts_as_the_worst_first_stage_loss() -> None:
    plan = plan_of(SEARCH)
    values = planted(plan)
    racing = Racing(plan, plan.trials)
    victim = next(v for v in plan.variants if v.name == "conv.pre_act=none, lstm.after=none")
    while (trial := racing.take()) is not None:
        racing.ended(result_of(trial, values, fail=trial.variant_id == victim.id))
        if racing.read >= 4:
            break
    assert victim.id in racing.eliminations


def test_compare_ranks_each_placement_against_the_best_with_the_race_bounds() -> None:
    import pandas as pd

    from bnplace.compare.search import SearchView, ranking_notes, with_results
    from bnplace.stats.selection import SelectionRule

    rng = np.random.default_rng(4)
    rows = [
        {
            "variant": name,
            "seed": seed,
            "status": "finished",
            "test_rmse": level * math.exp(rng.normal(0, 0.02)),
        }
        for name, level, seeds in (("a", 1.0, 7), ("b", 1.03, 7), ("c", 1.6, 5))
        for seed in range(seeds)
    ]
    view = SearchView({"c": 5}, (), 3, SelectionRule(0.05, math.log(1.05), 5, 7))
    rows_ranked = with_results(view, pd.DataFrame(rows), "test_rmse", "min").ranking
    lines = ranking_notes(rows_ranked, "test_rmse")
    assert [row.name for row in rows_ranked] == ["a", "b", "c"]  # comparison.json's order
    assert rows_ranked[0].low_pct is None and rows_ranked[2].low_pct > 5
    assert lines[0].endswith("a: the best")
    assert lines[1].startswith("  2. b: +") and "on 7 seeds" in lines[1]
    worst = lines[2]
    assert worst.startswith("  3. c: +") and "on 5 seeds" in worst
    low = float(worst.split("[")[1].split("%")[0])
    assert low > 5  # shown worse than the best by more than the margin: why it went


def test_a_search_mid_race_counts_every_placement_not_only_the_eliminated() -> None:
    """Mid-race only eliminated placements carry a search state (survivors are tagged selected
    at the end): compare counts every variant run of the search, so its report says how many
    are still in and the race bounds are for all of them (k = 4 here, not 1)."""
    from bnplace.compare.search import search_section, search_view
    from bnplace.names import tags as names
    from bnplace.stats.verdicts import Design
    from bnplace.store.read import StoredRun

    def run(name: str, **state: str) -> StoredRun:
        return StoredRun(name, "RUNNING", 0, {names.VARIANT_NAME: name, **state}, {})

    out = {names.SEARCH_STATE: names.ELIMINATED, names.ELIMINATED_AT: "5"}
    own = [run("a"), run("b"), run("c", **out), run("d")]
    view = search_view(own, Design(), {"min": 5, "max": 7})
    assert view.placements == 4 and view.eliminated_at == {"c": 5} and not view.selected
    assert "search: not over yet (no placement selected)" in view.notes
    summary = search_section(view).blocks[0]
    assert summary == "Not over yet: 1 of 4 placements eliminated so far."
    fresh = search_view([run("a"), run("b")], Design(), {"min": 5, "max": 7})
    assert fresh.placements == 2 and fresh.notes  # no look read yet: still a search
    assert search_view([run("a")], Design(), {}).notes == ()  # a plain sweep


TWO_DATASETS = """
experiment: s
datasets:
  sine: {source: synthetic, generator: sine_mix, length: 400, features: 3, window: 16}
  ar: {source: synthetic, generator: ar, length: 400, features: 1, window: 16}
model:
  - conv1d: {id: conv, filters: 8, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: lstm, units: 8}
search:
  sites:
    conv.pre_act: [none, batch_norm, layer_norm]
  seeds: {min: 4, max: 12, step: 2}
"""


def _two_dataset_plan(text: str = TWO_DATASETS) -> Plan:
    from bnplace.config import parse_config
    from bnplace.plan import DataShape, make_plan

    def describe(config):  # type: ignore[no-untyped-def]
        return DataShape("forecast", config.data.window, config.data.features, 1, "fp", 0)

    return make_plan(parse_config(text, "s.yaml"), describe)


def test_on_two_datasets_a_seed_is_read_once_both_ended_it_and_its_mean_races() -> None:
    from bnplace.stats.selection import race

    plan = _two_dataset_plan()
    assert plan.datasets == ("sine", "ar") and len(plan.variants) == 3
    # batch_norm best on the mean: 10% better on 'sine', 2% worse on 'ar'; layer_norm 3% worse
    # on both (within noise of none on each dataset alone); a shared seed effect per dataset
    rng = np.random.default_rng(8)
    level = {"none": (1.0, 1.0), "batch_norm": (0.9, 1.02), "layer_norm": (1.03, 1.03)}
    seed_effect = rng.normal(0, 0.05, (12, 2))
    values = {}
    for t in plan.trials:
        d = plan.datasets.index(t.dataset)
        base = level[t.variant.split("=", 1)[1]][d]
        values[t.key] = base * math.exp(seed_effect[t.seed, d] + rng.normal(0, 0.01))
    racing = Racing(plan, plan.trials)
    first = [racing.take() for _ in range(racing.ready())]
    assert len(first) == 3 * 4 * 2  # the first stage: 4 seeds of every placement on each dataset
    for trial in first:
        if trial.dataset == "sine" or trial.seed < 3:  # seed 3 on 'ar' still out
            racing.ended(result_of(trial, values))
    assert racing.read == 0  # seed 3 has not ended on every dataset: nothing is read
    for trial in first:
        if trial.dataset == "ar" and trial.seed == 3:
            racing.ended(result_of(trial, values))
    assert racing.read == 4
    drive(racing, values, 3, np.random.default_rng(0))
    names = {v.id: v.name for v in plan.variants}
    alive = {names[vid] for vid in names if vid not in racing.eliminations}
    assert "conv.pre_act=batch_norm" in alive and len(alive) < 3
    # the same eliminations as the rule run by hand on each seed's mean loss over the datasets
    ids = [v.id for v in plan.variants]
    losses = np.full((3, racing.read, 2), np.nan)
    for t in plan.trials:
        if t.seed < racing.read:
            losses[ids.index(t.variant_id), t.seed, plan.datasets.index(t.dataset)] = math.log(
                values[t.key]
            )
    by_hand = race(losses.mean(axis=2), racing.rule)
    assert {ids[i] for i in np.flatnonzero(by_hand.eliminated_at)} == set(racing.eliminations)
    for vid, out in racing.eliminations.items():
        assert out.seeds == by_hand.eliminated_at[ids.index(vid)]
    standing_now = standing(racing)
    assert "over the 2 datasets, each weighing the same" in standing_now.guarantee()


def test_workers_keep_a_placement_on_one_dataset_through_its_seeds() -> None:
    """Two workers, each asking with the trial it ran last (as the executors do): a worker
    builds each placement's model on each dataset at most once in the first stage, so the
    other seeds reuse it (a worker keeps only its last few models: dealt seed by seed over
    several datasets, every trial was built and traced afresh)."""
    three = TWO_DATASETS.replace(
        "datasets:\n",
        "datasets:\n  mg: {source: synthetic, generator: mackey_glass, length: 400, window: 20}\n",
    )
    plan = _two_dataset_plan(three)
    assert len(plan.datasets) == 3 and len(plan.variants) == 3
    racing = Racing(plan, plan.trials)
    last: dict[str, Trial | None] = {"a": None, "b": None}
    running: list[tuple[str, Trial]] = []
    cold: Counter = Counter()  # (worker, placement, dataset) -> builds
    while racing.read == 0:  # the first stage: every placement's seeds 0-3 on each dataset
        for worker in [w for w in last if w not in {name for name, _ in running}]:
            trial = racing.take(last[worker])
            if trial is None:
                continue
            previous = last[worker]
            if previous is None or (previous.variant_id, previous.dataset) != (
                trial.variant_id,
                trial.dataset,
            ):
                cold[(worker, trial.variant_id, trial.dataset)] += 1
            last[worker] = trial
            running.append((worker, trial))
        _, trial = running.pop(0)  # the oldest ends first
        racing.ended(result_of(trial, {trial.key: 1.0}))
    assert sum(cold.values()) <= 2 * 3 * 3  # each worker, each placement on each dataset
    assert max(cold.values()) == 1


def builds(schedule, workers: int = 2, capacity: int = 3, share: bool = True) -> int:  # type: ignore[no-untyped-def]
    """Models built when `workers` run what `schedule` deals, each asking as the executors do
    (the trial it ran last; with `share`, the trials the others run now) and keeping its last
    `capacity` models by variant and shapes (`bnplace.trial.reuse`): a build takes 3 time
    units, a reused model 1."""
    kept: list[OrderedDict] = [OrderedDict() for _ in range(workers)]
    last: list[Trial | None] = [None] * workers
    running: dict[int, Trial] = {}
    ends: list[tuple[float, int]] = []
    now, built = 0.0, 0
    while True:
        for worker in [w for w in range(workers) if w not in running]:
            busy = [t for w, t in running.items() if w != worker] if share else ()
            trial = schedule.take(last[worker], busy)
            if trial is None:
                continue
            key = (trial.variant_id, trial.model)
            warm = key in kept[worker]
            kept[worker][key] = True
            kept[worker].move_to_end(key)
            while len(kept[worker]) > capacity:
                kept[worker].popitem(last=False)
            built += not warm
            last[worker] = running[worker] = trial
            heapq.heappush(ends, (now + (1.0 if warm else 3.0), worker))
        if not running:
            return built
        now, worker = heapq.heappop(ends)
        trial = running.pop(worker)
        schedule.ended(result_of(trial, {trial.key: 1.0}))


class _FirstStage:
    """A race dealt only until its first stage is read."""

    def __init__(self, racing: Racing) -> None:
        self.racing = racing

    def take(self, prefer: Trial | None, busy) -> Trial | None:  # type: ignore[no-untyped-def]
        return self.racing.take(prefer, busy) if self.racing.read == 0 else None

    def ended(self, result: TrialResult) -> None:
        self.racing.ended(result)


def test_two_workers_build_each_placement_once_per_shape_and_leave_each_other_theirs() -> None:
    """Five datasets of three shapes: a worker moves on to the next dataset of its shapes
    (the kept model moves there), and a worker with no warm trial leaves a placement's model
    the other worker is building to it. The first stage then builds each (placement, shapes)
    model once (18, at most one more at the tail, where both may work on the last one);
    dealing by dataset alone, each worker blind to the other's, built a third more (24)."""
    from bnplace.config import parse_config
    from bnplace.plan import DataShape, make_plan

    five = TWO_DATASETS.replace(
        "datasets:\n",
        "datasets:\n"
        "  c: {source: synthetic, generator: ar, length: 400, window: 8}\n"
        "  d: {source: synthetic, generator: mackey_glass, length: 400, window: 16}\n"
        "  e: {source: synthetic, generator: sine_mix, length: 400, window: 8}\n",
    ).replace(
        "    conv.pre_act: [none, batch_norm, layer_norm]\n",
        "    conv.pre_act: [none, batch_norm, layer_norm]\n    lstm.after: [none, layer_norm]\n",
    )

    def describe(config):  # type: ignore[no-untyped-def]
        data = config.data
        fingerprint = f"{data.generator}-{data.window}-{data.features}"
        return DataShape("forecast", data.window, data.features, 1, fingerprint, 0)

    plan = make_plan(parse_config(five, "s.yaml"), describe)
    models = {(t.variant_id, t.model) for t in plan.trials}
    assert len(plan.datasets) == 5 and len(plan.variants) == 6 and len(models) == 6 * 3
    first_stage = builds(_FirstStage(Racing(plan, plan.trials)))
    assert len(models) <= first_stage <= len(models) + 1
    blind = builds(_FirstStage(Racing(plan, plan.trials)), share=False)
    assert blind > first_stage + 4
    # the whole race (rounds revisit every placement: a worker keeps 3 models)
    assert builds(Racing(plan, plan.trials)) < builds(Racing(plan, plan.trials), share=False)


@pytest.mark.parametrize("kill_at", [7, 40])
def test_a_killed_race_on_two_datasets_resumes_to_the_same_eliminations(kill_at: int) -> None:
    plan = _two_dataset_plan()
    rng = np.random.default_rng(9)
    values = {
        t.key: (1.5 if "layer_norm" in t.variant else 1.0) * math.exp(rng.normal(0, 0.02))
        for t in plan.trials
    }
    whole = Racing(plan, plan.trials)
    drive(whole, values, 2, np.random.default_rng(1))
    assert {v.name for v in plan.variants if v.id in whole.eliminations} == {
        "conv.pre_act=layer_norm"
    }
    first = Racing(plan, plan.trials)
    before = drive(first, values, 2, np.random.default_rng(2), stop_after=kill_at)
    second = Racing(plan, [t for t in plan.trials if t.key not in before], finished=before)
    after = drive(second, values, 2, np.random.default_rng(3))
    assert not set(before) & set(after)
    assert second.eliminations == whole.eliminations


def test_compare_ranks_each_seed_by_its_mean_over_the_datasets_where_all_finished() -> None:
    import pandas as pd

    from bnplace.compare.search import SearchView, ranking_notes, with_results
    from bnplace.stats.selection import SelectionRule

    rng = np.random.default_rng(6)
    rows = [
        {
            "variant": name,
            "seed": seed,
            "dataset": dataset,
            "status": "finished",
            "test_rmse": level[d] * math.exp(rng.normal(0, 0.02)),
        }
        for name, level in (("a", (1.0, 1.0)), ("b", (0.8, 1.3)))  # b: better on x, worse on mean
        for seed in range(6)
        for d, dataset in enumerate(("x", "y"))
    ]
    rows = [r for r in rows if not (r["variant"] == "b" and r["seed"] == 5 and r["dataset"] == "y")]
    view = SearchView({}, (), 2, SelectionRule(0.05, math.log(1.05), 5, 7))
    ranking = with_results(view, pd.DataFrame(rows), "test_rmse", "min").ranking
    lines = ranking_notes(ranking, "test_rmse")
    assert lines[0].endswith("a: the best")
    # b's seed 5 lacks dataset y: 5 seeds, and a gap near the mean log ratio (log 0.8 + log 1.3)/2
    assert "on 5 seeds" in lines[1]
    gap = float(lines[1].split("b: ")[1].split("%")[0])
    assert abs(gap - 100 * math.expm1((math.log(0.8) + math.log(1.3)) / 2)) < 2


class _Board:
    """The store's claims, in memory: a trial goes to the first driver to claim it; a driver
    that claims one another holds hears its result once it ended (as `Claims.claim` says)."""

    def __init__(self) -> None:
        self.owner: dict[str, str] = {}
        self.results: dict[str, TrialResult] = {}

    def claimer(self, driver: str):  # type: ignore[no-untyped-def]
        from bnplace.execute.schedule import Claim

        board = self

        class _Claimer:
            def claim(self, trial) -> Claim:  # type: ignore[no-untyped-def]
                holder = board.owner.setdefault(trial.key, driver)
                if holder == driver:
                    return Claim(won=True)
                return Claim(result=board.results.get(trial.key), holder=holder)

        return _Claimer()


def test_two_drivers_racing_one_search_train_each_trial_once_and_agree() -> None:
    """Two drivers, each with its own race behind claims, take turns: every trial is trained
    by one of them, and both reach the eliminations one driver alone reaches."""
    from bnplace.execute.schedule import ClaimedSchedule

    plan = plan_of(SEARCH)
    values = planted(plan)
    alone = Racing(plan, plan.trials)
    trained_alone = drive(alone, values, 1, np.random.default_rng(0))
    board = _Board()
    races = {d: Racing(plan, plan.trials) for d in ("a", "b")}
    schedules = {
        d: ClaimedSchedule(races[d], board.claimer(d), poll_s=0.0, sleep=lambda s: None)
        for d in races
    }
    trained: list[str] = []
    order = np.random.default_rng(1)
    open_drivers = ["a", "b"]
    while open_drivers:
        d = open_drivers[int(order.integers(len(open_drivers)))]
        trial = schedules[d].take()
        if trial is None:
            open_drivers.remove(d)
            continue
        trained.append(trial.key)
        result = result_of(trial, values)
        board.results[trial.key] = result
        schedules[d].ended(result)
    assert len(trained) == len(set(trained))  # none twice
    assert set(trained) == set(trained_alone)  # the very trials one driver alone trains
    assert {board.owner[k] for k in trained} == {"a", "b"}  # both drivers took part
    assert races["a"].eliminations == races["b"].eliminations == alone.eliminations
