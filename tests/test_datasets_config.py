"""Several datasets in one config: the `datasets:` schema, its checks and the plan it makes.

In: small configs with `datasets:` (text), planned with a constant `shape_of` or with real
synthetic data. Out: located config errors (data and datasets together, mixed tasks, seeds on
demand), `data.<key>` on every dataset, `--set datasets.<name>.<key>`, trials per variant x
dataset x seed with keys that do not move when a dataset is added, and `--filter dataset=NAME`.
Pure: no TensorFlow.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bnplace.config import parse_config
from bnplace.names.errors import ConfigError, PlanError
from bnplace.plan import DataShape, Plan, make_plan
from bnplace.run.sweep import plan_sweep

SINE = "{source: synthetic, generator: sine_mix, length: 300, features: 2, window: 12}"
NOISY = SINE.replace("window: 12", "window: 12, noise: 0.3")
AR = "{source: synthetic, generator: ar, length: 300, features: 1, window: 16}"
BODY = """
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: lstm, units: 4}
sweep:
  axes:
    conv.post_act: {none: [], bn: [batch_norm]}
  seeds: 3
"""


def text(datasets: dict[str, str], body: str = BODY) -> str:
    entries = "".join(f"  {name}: {section}\n" for name, section in datasets.items())
    return f"experiment: m\ndatasets:\n{entries}" + textwrap.dedent(body)


def plan_of(source: str, sets: tuple[str, ...] = ()) -> Plan:
    loaded = parse_config(source, "m.yaml", sets)

    def shape_of(config):  # the fingerprint follows the section, as prepared data's does
        section = config.section
        return DataShape("forecast", section.window, section.features, 1, repr(section))

    return make_plan(loaded, shape_of)


def messages(source: str, sets: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(source, "m.yaml", sets)
    return "\n".join(p.render() for p in caught.value.problems)


def test_every_variant_and_seed_runs_on_every_dataset() -> None:
    plan = plan_of(text({"sine": SINE, "ar": AR}))
    assert plan.datasets == ("sine", "ar")
    assert len(plan.variants) == 2 and len(plan.trials) == 2 * 2 * 3
    assert {(t.variant, t.dataset) for t in plan.trials} == {
        (v.name, d) for v in plan.variants for d in ("sine", "ar")
    }
    assert len({t.key for t in plan.trials}) == len(plan.trials)
    # a trial's config and model are its dataset's: the window sets the input shape
    by_data = {t.dataset: t for t in plan.trials}
    assert by_data["ar"].config.section.window == 16 and by_data["ar"].config.datasets is None
    assert by_data["sine"].model != by_data["ar"].model
    assert "2 variants x 2 datasets x 3 seeds = 12 trials" in plan.size
    listed = plan.to_dict()
    assert listed["datasets"] == ["sine", "ar"]
    assert {t["dataset"] for t in listed["trials"]} == {"sine", "ar"}


def test_adding_a_dataset_keeps_the_other_datasets_trial_keys() -> None:
    two = plan_of(text({"sine": SINE, "ar": AR}))
    three = plan_of(text({"sine": SINE, "ar": AR, "noisy": NOISY}))
    keys = {(t.variant, t.dataset, t.seed): t.key for t in two.trials}
    again = {(t.variant, t.dataset, t.seed): t.key for t in three.trials if t.dataset != "noisy"}
    assert again == keys
    assert len(three.trials) == 18
    # the variant names (what compare pairs by) are the same arms on every dataset
    assert [v.name for v in three.variants] == [v.name for v in two.variants]


def test_a_single_dataset_under_datasets_has_the_keys_of_the_same_data_section() -> None:
    single = plan_of(f"experiment: m\ndata: {SINE}\n" + textwrap.dedent(BODY))
    named = plan_of(text({"sine": SINE}))
    assert [t.key for t in named.trials] == [t.key for t in single.trials]
    assert single.datasets == () and all(t.dataset == "" for t in single.trials)


def test_set_reaches_one_dataset_and_data_keys_reach_every_dataset() -> None:
    plan = plan_of(text({"sine": SINE, "ar": AR}), ("datasets.ar.window=24",))
    windows = {t.dataset: t.config.section.window for t in plan.trials}
    assert windows == {"sine": 12, "ar": 24}
    every = plan_of(text({"sine": SINE, "ar": AR}), ("data.window=24",))
    assert {t.config.section.window for t in every.trials} == {24}
    assert "no dataset named 'arr'" in messages(
        text({"sine": SINE, "ar": AR}), ("datasets.arr.window=3",)
    )


def test_filter_by_dataset_and_by_variant() -> None:
    plan = plan_of(text({"sine": SINE, "ar": AR}))
    only_ar = plan.only(["dataset=ar"])
    assert {t.dataset for t in only_ar.trials} == {"ar"} and len(only_ar.variants) == 2
    both = plan.only(["dataset=sine", "bn"])
    assert {(t.dataset, t.variant) for t in both.trials} == {("sine", "conv.post_act=bn")}
    with pytest.raises(PlanError, match="matches no dataset"):
        plan.only(["dataset=nope"])


def test_data_and_datasets_together_is_refused_at_datasets() -> None:
    source = f"experiment: m\ndata: {SINE}\ndatasets:\n  ar: {AR}\n" + textwrap.dedent(BODY)
    shown = messages(source)
    assert "m.yaml:3:1" in shown and "not both" in shown


def test_mixed_tasks_are_refused_at_the_odd_dataset() -> None:
    shapes = "{source: synthetic, generator: shapes, length: 60, window: 12}"
    shown = messages(text({"sine": SINE, "shapes": shapes}))
    assert "m.yaml:4:" in shown and "dataset 'shapes' is a classify dataset" in shown


def test_seeds_on_demand_with_several_datasets_start_with_enough_seeds_to_pool() -> None:
    """Each dataset decides on its own looks, and the pooled verdict needs every dataset's
    effect: the first look must give MIN_PAIRS_TO_POOL seeds."""
    from bnplace.stats.pooling import MIN_PAIRS_TO_POOL

    few = BODY.replace("seeds: 3", f"seeds: {{min: {MIN_PAIRS_TO_POOL - 2}, max: 10, step: 2}}")
    shown = messages(text({"sine": SINE, "ar": AR}, few))
    assert "sweep.seeds.min" in shown and f"min: {MIN_PAIRS_TO_POOL} or more" in shown
    enough = BODY.replace("seeds: 3", f"seeds: {{min: {MIN_PAIRS_TO_POOL}, max: 10, step: 2}}")
    plan = plan_of(text({"sine": SINE, "ar": AR}, enough))
    assert plan.seeds_on_demand["configured_looks"] == [6, 8, 10]
    assert plan.design.looks[0] >= MIN_PAIRS_TO_POOL and plan.datasets == ("sine", "ar")
    # one dataset: nothing pooled, the config is accepted (its looks that cannot decide are
    # dropped from the design, bnplace.stats.sequential.live_looks)
    assert plan_of(text({"sine": SINE}, few)).seeds_on_demand["configured_looks"] == [4, 6, 8, 10]


def test_fixed_seeds_too_few_to_pool_are_warned_at_plan_time() -> None:
    """A fixed design (or a search) on several datasets whose every dataset gets fewer seeds
    than a pooled effect needs: the plan warns that no pooled verdict is reachable; at
    MIN_PAIRS_TO_POOL seeds, or with one dataset, it says nothing."""
    from bnplace.stats.pooling import MIN_PAIRS_TO_POOL

    def pooling(datasets: dict[str, str], seeds: int) -> list[str]:
        plan = plan_of(text(datasets, BODY.replace("seeds: 3", f"seeds: {seeds}")))
        return [f.message for f in plan.findings if f.rule == "seeds_too_few_to_pool"]

    (said,) = pooling({"sine": SINE, "ar": AR}, MIN_PAIRS_TO_POOL - 1)
    assert f"each of the 2 datasets gets at most {MIN_PAIRS_TO_POOL - 1} seeds" in said
    assert f"give {MIN_PAIRS_TO_POOL} seeds or more" in said
    assert pooling({"sine": SINE, "ar": AR}, MIN_PAIRS_TO_POOL) == []
    assert pooling({"sine": SINE}, 3) == []


def test_a_dataset_name_must_fit_tags() -> None:
    assert "cannot be used in tags" in messages(text({"my data": SINE}))


def test_a_missing_data_section_still_reads_as_before() -> None:
    shown = messages("experiment: m\n" + textwrap.dedent(BODY))
    assert "missing required key 'data'" in shown


def test_the_same_data_twice_is_refused() -> None:
    with pytest.raises(PlanError, match="are the same data"):
        plan_of(text({"a": SINE, "b": SINE}))


def test_real_data_is_prepared_once_per_dataset(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text({"sine": SINE, "ar": AR}))
    prepared = plan_sweep(path)
    assert len(prepared.datasets) == 2
    assert {t.data_fingerprint for t in prepared.plan.trials} == set(prepared.datasets)


def test_a_family_of_declared_contrasts_alone_needs_a_contrast() -> None:
    """`compare.versus_baseline: false` judges the contrasts alone: without one, nothing."""
    alone = BODY + "compare: {versus_baseline: false}\n"
    shown = messages(text({"sine": SINE, "ar": AR}, alone))
    assert "compare.versus_baseline" in shown and "leaves nothing to compare" in shown
    asked = BODY + (
        "compare:\n  versus_baseline: false\n"
        "  contrasts: [[conv.post_act=bn, conv.post_act=none]]\n"
    )
    plan = plan_of(text({"sine": SINE, "ar": AR}, asked))
    assert plan.design.versus_baseline is False and len(plan.design.contrasts) == 1


def test_a_data_key_in_an_arm_is_that_key_on_every_dataset() -> None:
    """`data.standardize: false` in an arm means every dataset's inputs raw: the same trials
    as spelling it per dataset."""
    arm = BODY.replace(
        "  axes:\n    conv.post_act: {none: [], bn: [batch_norm]}",
        "  arms:\n    input:\n      std: {}\n      raw: {ARM}",
    )
    short = plan_of(text({"sine": SINE, "ar": AR}, arm.replace("ARM", "data.standardize: false")))
    long = plan_of(
        text(
            {"sine": SINE, "ar": AR},
            arm.replace("ARM", "datasets.sine.standardize: false, datasets.ar.standardize: false"),
        )
    )
    assert [t.key for t in short.trials] == [t.key for t in long.trials]
    raw = [t for t in short.trials if t.variant == "input=raw"]
    assert {t.dataset for t in raw} == {"sine", "ar"}
    assert all(not t.config.section.standardize for t in raw)
    bad = arm.replace("ARM", "data.window: -3")
    assert "sweep.arms.input.raw" in messages(text({"sine": SINE, "ar": AR}, bad))
