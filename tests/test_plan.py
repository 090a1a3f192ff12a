"""Plan: grid expansion, canonical specs, keys, merges and lint rules (pure: no TensorFlow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bnplace.config import parse_config
from bnplace.names.errors import ConfigError, PlanError
from bnplace.plan import DataShape, Plan, make_plan
from bnplace.plan.lint import alpha_dropout_gap
from bnplace.run.sweep import plan_sweep

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))

HEADER = """
experiment: t
data: {source: synthetic, generator: sine_mix, length: 400, features: 3, window: 16}
"""
MODEL = """
model:
  - conv1d: {id: conv, filters: 8, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: lstm, units: 8}
"""


def plan_of(extra: str, features: int = 3, train_windows: int = 0, **kwargs) -> Plan:
    extra = textwrap.dedent(extra)
    text = HEADER.replace("features: 3", f"features: {features}")
    text += extra if "model:" in extra else MODEL + extra
    loaded = parse_config(text, "t.yaml")

    def describe(config):
        return DataShape(
            "forecast", config.data.window, config.data.features, 1, "fp", train_windows
        )

    return make_plan(loaded, describe, **kwargs)


def rules(plan: Plan, variant: str | None = None) -> set[str]:
    return {f.rule for f in plan.findings if variant is None or f.variant == variant}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates_and_plans(path: Path) -> None:
    plan = plan_sweep(path).plan
    assert plan.variants and plan.trials
    assert not plan.errors, plan.errors
    assert plan.baseline in {v.name for v in plan.variants}


SEED_QUESTIONS = {
    "bn_activation.yaml": {
        "bn=none": "Conv1D>ReLU>LSTM>Dense",
        "bn=pre_act": "Conv1D>BN>ReLU>LSTM>Dense",
        "bn=post_act": "Conv1D>ReLU>BN>LSTM>Dense",
    },
    "bn_ln_after_lstm.yaml": {
        "lstm.after=bn, train.batch_size=8": "Conv1D>ReLU>LSTM>BN>Dense",
        "lstm.after=ln, train.batch_size=8": "Conv1D>ReLU>LSTM>LN>Dense",
    },
    "bn_input.yaml": {"data.standardize=raw, input=bn": "BN>Conv1D>ReLU>LSTM>Dense"},
    "dropout_bn_order.yaml": {
        "order=dropout_then_bn": "Conv1D>ReLU>Dropout>BN>LSTM>Dense",
        "order=bn_then_dropout": "Conv1D>ReLU>BN>Dropout>LSTM>Dense",
    },
    "lstm_dropout.yaml": {
        "dropout=spatial_before": "Conv1D>ReLU>SpatialDropout1D>LSTM>Dense",
        "dropout=recurrent_dropout": "Conv1D>ReLU>LSTM(recurrent_dropout=0.3)>Dense",
        "dropout=lstm_dropout": "Conv1D>ReLU>LSTM(dropout=0.3)>Dense",
    },
    "selu_alpha_dropout.yaml": {
        "stack=selu_alpha_dropout": "Conv1D>SELU>AlphaDropout>Conv1D>SELU>AlphaDropout>LSTM>Dense"
    },
    "se_block.yaml": {"se.enabled=se": "Conv1D>ReLU>SE>LSTM>Dense"},
    "pooling.yaml": {
        "pool.enabled=avg_pool, pool.before=bn": "Conv1D>ReLU>BN>AvgPool1D>LSTM>Dense"
    },
    "ln_lstm_cell.yaml": {"norm=ln_cell": "Conv1D>ReLU>LN-LSTM>Dense"},
    "variable_length.yaml": {
        "norm=bn_padding_seen": "LSTM>BN>GAP1D>Dense",
        "norm=bn_masked": "Mask>LSTM>BN>GAP1D>Dense",
        "norm=ln_masked": "Mask>LSTM>LN>GAP1D>Dense",
    },
    "seed_question.yaml": {
        "model=question": "Conv1D>ReLU>LSTM>BN>Dense",
        "model=question_linear": "Conv1D>ReLU>LSTM>BN>Dense",
        "model=answer": "Conv1D>BN>SELU>AlphaDropout>SE>LSTM(recurrent_dropout=0.2)>Dense",
    },
}


@pytest.mark.parametrize("name", sorted(SEED_QUESTIONS))
def test_seed_question_configs_show_intended_layer_orders(name: str) -> None:
    plan = plan_sweep(ROOT / "configs" / name).plan
    orders = {v.name: v.layer_order for v in plan.variants}
    for variant, order in SEED_QUESTIONS[name].items():
        assert orders[variant] == order


def test_grid_is_the_product_of_axes_and_arms_times_seeds() -> None:
    plan = plan_of("""
    sweep:
      axes:
        conv.pre_act: [[], [batch_norm]]
        train.batch_size: [16, 32, 64]
      arms:
        act: {relu: {}, tanh: {conv.activation: tanh}}
      seeds: [3, 7]
    """)
    assert len(plan.variants) == 2 * 3 * 2
    assert len(plan.trials) == 12 * 2
    assert {t.seed for t in plan.trials} == {3, 7}
    assert plan.variants[0].name == "conv.pre_act=none, train.batch_size=16, act=relu"
    assert plan.axes == ("conv.pre_act", "train.batch_size", "act")
    batch_sizes = {v.config.train.batch_size for v in plan.variants}
    assert batch_sizes == {16, 32, 64}


def test_plan_is_deterministic_across_processes() -> None:
    """Same config -> same variant ids and trial keys, whatever the hash seed."""
    code = (
        "import json; from bnplace.run.sweep import plan_sweep; "
        f"p = plan_sweep({str(ROOT / 'configs' / 'bn_activation.yaml')!r}).plan; "
        "print(json.dumps([[v.id for v in p.variants], [t.key for t in p.trials]]))"
    )
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1]
    ids, keys = outputs[0]
    assert len(set(ids)) == len(ids) and len(set(keys)) == len(keys)


def test_planning_imports_neither_tensorflow_nor_mlflow() -> None:
    code = (
        "import sys; from bnplace.run.sweep import plan_sweep; "
        f"plan_sweep({str(ROOT / 'configs' / 'quickstart.yaml')!r}); "
        "heavy = [m for m in ('tensorflow', 'keras', 'mlflow', 'ray') if m in sys.modules]; "
        "print(heavy); assert not heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_keys_change_with_what_affects_results() -> None:
    base = plan_of("sweep: {seeds: 1}")
    other_lr = plan_of("train: {learning_rate: 0.01}\nsweep: {seeds: 1}")
    other_seed = plan_of("sweep: {seeds: [5]}")
    key = base.trials[0].key
    assert other_lr.trials[0].key != key
    assert other_seed.trials[0].key != key
    assert plan_of("sweep: {seeds: 1}").trials[0].key == key


def test_equivalent_variants_are_merged_and_reported() -> None:
    plan = plan_of("""
    sweep:
      axes:
        lstm.after: {none: [], zero_dropout: [{dropout: 0.0}], ln: [layer_norm]}
    """)
    assert [v.name for v in plan.variants] == ["lstm.after=none", "lstm.after=ln"]
    assert plan.merges[0].kept == "lstm.after=none"
    assert plan.merges[0].dropped == "lstm.after=zero_dropout"


def test_relu_and_max_pool_commute_so_swapped_orders_merge() -> None:
    plan = plan_of("""
    model:
      - conv1d: {id: conv, filters: 8, kernel_size: 3, padding: causal}
      - pool: {id: pool, kind: max}
      - lstm: {id: lstm, units: 8}
    sweep:
      arms:
        order:
          relu_then_pool: {conv.post_act: [{activation: relu}]}
          pool_then_relu: {pool.after: [{activation: relu}]}
          avg_then_relu: {pool.kind: average, pool.after: [{activation: relu}]}
    """)
    assert len(plan.variants) == 2
    assert plan.merges[0].dropped == "order=pool_then_relu"
    assert plan.variants[0].layer_order == "Conv1D>MaxPool1D>ReLU>LSTM>Dense"


def test_baseline_by_axis_labels_and_unknown_baseline() -> None:
    plan = plan_of("""
    sweep:
      axes:
        conv.pre_act: {none: [], bn: [batch_norm]}
        lstm.after: {none: [], ln: [layer_norm]}
    compare: {baseline: "conv.pre_act=bn, lstm.after=none"}
    """)
    assert plan.baseline == "conv.pre_act=bn, lstm.after=none"
    with pytest.raises(ConfigError, match="names 2 of the plan's variants") as info:
        plan_of("""
        sweep: {axes: {conv.pre_act: {none: [], bn: [batch_norm]}, lstm.after: [[], [layer_norm]]}}
        compare: {baseline: conv.pre_act=bn}
        """)
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.key) == ("t.yaml", 10, "compare.baseline")


def test_a_misspelled_baseline_is_located_in_the_file() -> None:
    with pytest.raises(ConfigError) as info:
        plan_of("""
        sweep: {axes: {conv.pre_act: {none: [], bn: [batch_norm]}}}
        compare:
          baseline: conv.pre_act=nome
        """)
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.column) == ("t.yaml", 11, 13)
    assert problem.key == "compare.baseline" and problem.got == "conv.pre_act=nome"
    assert "conv.pre_act=none" in problem.expected
    assert problem.suggestion == "conv.pre_act=none"
    assert "t.yaml:11:13: compare.baseline" in str(info.value)


def test_filter_and_seed_override() -> None:
    full = plan_of(
        "sweep: {axes: {conv.pre_act: {none: [], bn: [batch_norm]}}, seeds: 4}\n"
        "compare: {baseline: conv.pre_act=none}",
        seeds=range(2),
    )
    plan = full.only(["bn"])
    assert [v.name for v in plan.variants] == ["conv.pre_act=bn"]
    assert [t.seed for t in plan.trials] == [0, 1]
    assert plan.baseline == "conv.pre_act=none"  # left out by the filter, still the baseline
    assert full.only([]) is full
    with pytest.raises(PlanError, match="matches no variant"):
        plan_of("sweep: {seeds: 1}").only(["nothing-like-this"])


LINT_CASES = {
    "norm_on_raw_input": "placements: {input: [batch_norm]}",
    "bias_before_bn": "placements: {conv.pre_act: [batch_norm]}",
    "alpha_dropout_needs_selu": "placements: {conv.post_act: [{alpha_dropout: 0.1}]}",
    "alpha_dropout_inference_gap": "placements: {conv.post_act: [{alpha_dropout: 0.1}]}",
    "dropout_before_bn": "placements: {conv.post_act: [{dropout: 0.5}, batch_norm]}",
    "dropout_after_selu": """
        model:
          - conv1d: {id: conv, filters: 8, activation: selu, kernel_initializer: lecun_normal}
          - lstm: {id: lstm, units: 8}
        placements: {conv.post_act: [{dropout: 0.1}]}
        """,
    "spatial_dropout_on_flat": "placements: {lstm.after: [{spatial_dropout: 0.2}]}",
    "bn_after_last_state_small_batch": "placements: {lstm.after: [batch_norm]}\n"
    "train: {batch_size: 4}",
    "lstm_without_cudnn": "model:\n  - lstm: {id: lstm, units: 8, recurrent_dropout: 0.2}",
    "relu_in_lstm": "model:\n  - lstm: {id: lstm, units: 8, activation: relu}",
    "shape": "model:\n  - lstm: {id: a, units: 8}\n  - lstm: {id: b, units: 8}",
    "output_range_misses_targets": "head: {activation: relu}",
    "model_fits_memory": "model:\n  - conv1d: {id: conv, filters: 1.0e+12}\n"
    "  - lstm: {id: lstm, units: 8}",
}


@pytest.mark.parametrize("rule", sorted(LINT_CASES))
def test_each_lint_rule_fires_on_its_case(rule: str) -> None:
    plan = plan_of(LINT_CASES[rule])
    assert rule in rules(plan)


def test_lint_rules_stay_quiet_on_a_clean_model() -> None:
    plan = plan_of("placements: {conv.post_act: [batch_norm], lstm.after: [{dropout: 0.2}]}")
    assert rules(plan) == set()
    # XLA with dropout: nothing to warn about (bnplace.trial.draws names Philox, the fast draw)
    assert (
        rules(plan_of("placements: {lstm.after: [{dropout: 0.2}]}\ntrain: {jit_compile: true}"))
        == set()
    )


def test_layer_norm_over_one_channel_is_an_error_but_per_window_is_fine() -> None:
    text = "model:\n  - lstm: {id: lstm, units: 4}\nplacements: {input: [%s]}"
    bad = plan_of(text % "layer_norm", features=1)
    assert "layer_norm_single_channel" in {f.rule for f in bad.errors}
    good = plan_of(text % "{layer_norm: {axis: [1, 2]}}", features=1)
    assert "layer_norm_single_channel" not in rules(good)


def test_alpha_dropout_gap_compounds_over_layers() -> None:
    assert alpha_dropout_gap(0.1) == pytest.approx(1.206, abs=1e-3)  # 1 / (a * 0.9)
    assert alpha_dropout_gap(0.05) == pytest.approx(1.102, abs=1e-3)
    model = """
        model:
          - conv1d: {id: conv, filters: 8, activation: selu, kernel_initializer: lecun_normal}
          - conv1d: {id: conv2, filters: 8, activation: selu, kernel_initializer: lecun_normal}
          - lstm: {id: lstm, units: 8}
        """
    one = plan_of(model + "placements: {conv.post_act: [{alpha_dropout: 0.1}]}")
    two = plan_of(
        model + "placements: {conv.post_act: [{alpha_dropout: 0.1}], "
        "conv2.post_act: [{alpha_dropout: 0.1}]}"
    )
    (single,) = [f for f in one.findings if f.rule == "alpha_dropout_inference_gap"]
    (stacked,) = [f for f in two.findings if f.rule == "alpha_dropout_inference_gap"]
    assert single.level == "info" and "1.21x" in single.message
    assert stacked.level == "warning" and "1.45x" in stacked.message  # 1.206 ** 2


def test_bn_momentum_warning_depends_on_training_steps() -> None:
    extra = "placements: {conv.post_act: [batch_norm]}\ntrain: {epochs: 2, batch_size: 64}"
    short = plan_of(extra, train_windows=640)  # 20 steps: 0.99**20 = 82% initial
    long = plan_of(extra.replace("epochs: 2", "epochs: 100"), train_windows=6400)
    assert "bn_momentum_too_slow" in rules(short)
    assert "bn_momentum_too_slow" not in rules(long)
    # a batch-normalised LSTM cell: its BNs' momentum is the cell's own 0.99
    cell = "model:\n  - lstm: {id: lstm, units: 8, cell: batch_norm}\ntrain: {epochs: 2}"
    (finding,) = [
        f for f in plan_of(cell, train_windows=640).findings if f.rule == "bn_momentum_too_slow"
    ]
    assert "the BN cell of 'lstm'" in finding.message and "train longer" in finding.message
    assert "use momentum" not in finding.message  # nothing the user can set
    longer = cell.replace("epochs: 2", "epochs: 100")
    assert "bn_momentum_too_slow" not in rules(plan_of(longer, train_windows=6400))


def test_a_budget_of_few_optimizer_steps_is_flagged() -> None:
    extra = "train: {epochs: 20, batch_size: 128}"
    wineind_like = plan_of(extra, train_windows=150)  # 2 batches an epoch: 40 steps
    (finding,) = [f for f in wineind_like.findings if f.rule == "budget_too_short"]
    assert finding.level == "warning" and "40 optimizer steps" in finding.message
    enough = plan_of(extra, train_windows=128 * 5)  # 100 steps
    assert "budget_too_short" not in rules(enough)


def test_a_budget_in_steps_is_whole_epochs_and_linted_as_steps() -> None:
    plan = plan_of("train: {steps: 41, batch_size: 128}", train_windows=150)  # 2 batches
    (finding,) = [f for f in plan.findings if f.rule == "budget_too_short"]
    assert "42 optimizer steps (21 epochs x 2 batches" in finding.message
    assert plan.variants[0].config.train.epochs_for(2) == 21


def test_stacked_lstm_needs_return_sequences() -> None:
    plan = plan_of(
        "model:\n  - lstm: {id: a, units: 8, return_sequences: true}\n  - lstm: {id: b, units: 8}"
    )
    assert not plan.errors
    assert plan.variants[0].layer_order == "LSTM>LSTM>Dense"


def test_which_models_differ_in_training() -> None:
    """Which diagnostics a trial records: LSTM dropout counts as noise, BN alone does not."""
    plain = plan_of("sweep: {seeds: 1}").variants[0].model
    assert not plain.noisy_in_training and not plain.differs_in_training
    bn = plan_of("placements: {conv.post_act: [batch_norm]}").variants[0].model
    assert not bn.noisy_in_training and bn.differs_in_training
    # BN inside the recurrence: batch statistics in training too (its loss in both modes)
    bn_cell = plan_of("model:\n  - lstm: {id: lstm, units: 8, cell: batch_norm}").variants[0]
    assert not bn_cell.model.noisy_in_training and bn_cell.model.differs_in_training
    ln_cell = plan_of("model:\n  - lstm: {id: lstm, units: 8, cell: layer_norm}").variants[0]
    assert not ln_cell.model.differs_in_training  # LN: the same statistics in both modes
    for extra in (
        "placements: {lstm.before: [{dropout: 0.2}]}",
        "placements: {conv.post_act: [{gaussian_noise: 0.1}]}",
        "model:\n  - lstm: {id: lstm, units: 8, recurrent_dropout: 0.2}",
        "model:\n  - lstm: {id: lstm, units: 8, dropout: 0.2}",
    ):
        model = plan_of(extra).variants[0].model
        assert model.noisy_in_training and model.differs_in_training, extra


NINE_VARIANTS = """
sweep:
  axes:
    conv.pre_act: {none: [], bn: [batch_norm], ln: [layer_norm]}
    lstm.after: {none: [], bn: [batch_norm], ln: [layer_norm]}
  seeds: 7
"""


def test_plan_says_no_verdict_is_reachable_and_names_the_minimum() -> None:
    plan = plan_of(NINE_VARIANTS)
    assert len(plan.variants) == 9
    found = {f.rule: f for f in plan.findings}
    reach = found["seeds_too_few_for_any_verdict"]
    assert reach.level == "warning" and reach.variant == ""
    assert "7 seeds" in reach.message and "8 comparisons" in reach.message
    assert "at least 9 seeds" in reach.message
    assert "seeds_for_power" in found  # the prospective figure, at the margin
    enough = plan_of(NINE_VARIANTS.replace("seeds: 7", "seeds: 9"))
    assert "seeds_too_few_for_any_verdict" not in rules(enough)


def test_contrasts_resolve_to_variants_and_join_the_family() -> None:
    extra = NINE_VARIANTS + textwrap.dedent(
        """
        compare:
          margin: 0.02
          contrasts:
            - ["conv.pre_act=bn,lstm.after=none", "conv.pre_act=ln,lstm.after=none"]
            - {axis: conv.pre_act, levels: [bn, none]}
        """
    )
    plan = plan_of(extra)
    design = plan.design
    assert design.margin == 0.02
    origins = [c.origin for c in design.contrasts]
    # one pair, the axis contrast at 3 levels of the other axis, 2 interactions (two-axis grid)
    assert origins == ["contrast"] * 4 + ["interaction"] * 2
    first = design.contrasts[0]
    names = {v.name for v in plan.variants}
    assert first.a in names and first.b in names and first.a != first.b
    assert plan.to_dict()["design"]["contrasts"][0]["a"] == first.a
    # 8 baseline comparisons + 6 declared: the reachability figure counts all 14
    reach = {f.rule: f for f in plan.findings}["seeds_too_few_for_any_verdict"]
    assert "14 comparisons" in reach.message and "at least 10 seeds" in reach.message


def test_a_contrast_naming_no_variant_is_refused() -> None:
    with pytest.raises(PlanError, match=r"compare.contrasts\[0\]\[1\] 'nope'"):
        plan_of(NINE_VARIANTS + "compare: {contrasts: [['conv.pre_act=bn,lstm.after=bn', nope]]}\n")
    with pytest.raises(PlanError, match=r"no sweep axis 'conv\.pre'"):
        plan_of(NINE_VARIANTS + "compare: {contrasts: [{axis: conv.pre, levels: [bn, none]}]}\n")


def test_a_plan_past_the_trial_bound_is_refused_at_once_naming_file_and_keys() -> None:
    from bnplace.names.errors import PlanTooLarge

    axes = f"    train.learning_rate: [{', '.join(str(i / 1e4) for i in range(1, 51))}]\n"
    units = f"    lstm.units: [{', '.join(str(u) for u in range(1, 41))}]\n"
    with pytest.raises(PlanTooLarge) as raised:
        plan_of(f"sweep:\n  axes:\n{axes}{units}  seeds: 51\n")
    message = str(raised.value)
    assert "102,000 trials" in message and "100,000" in message
    assert "sweep.axes.lstm.units (40)" in message and "sweep.seeds" in message
    assert message.startswith("t.yaml: sweep: 2,000 variants x 51 seeds")


def test_a_model_too_large_for_this_machine_is_refused_with_its_estimate(tmp_path: Path) -> None:
    from bnplace.plan.memory import estimate, machine_memory
    from bnplace.plan.shapes import analyse

    plan = plan_of("model:\n  - conv1d: {id: conv, filters: 1.0e+12}\n  - lstm: {units: 8}")
    (finding,) = [f for f in plan.errors if f.rule == "model_fits_memory"]
    variant = plan.variants[0]
    assert f"{variant.params:,} parameters" in finding.message and "of memory" in finding.message
    available = machine_memory()
    assert available is not None and available > 2**20
    # the estimate: four float32 copies per parameter plus one batch's activations
    need = estimate(variant.model, analyse(variant.model), variant.config.train.batch_size)
    assert need.weight_bytes == 16 * variant.params and need.total > available
    config = tmp_path / "big.yaml"
    config.write_text(
        "experiment: big\ndata: {source: synthetic, length: 500, window: 16}\n"
        "model: [{conv1d: {filters: 1.0e+12}}, {lstm: {units: 4}}]\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "bnplace", "plan", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "model_fits_memory" in done.stdout and "Traceback" not in done.stderr


def test_a_model_of_ordinary_size_fits() -> None:
    plan = plan_of("model:\n  - conv1d: {id: conv, filters: 256}\n  - lstm: {units: 64}")
    assert "model_fits_memory" not in rules(plan)


@pytest.mark.parametrize(
    ("head", "scale_targets", "fires"),
    [
        ("relu", True, True),  # half of the standardized targets are below 0
        ("sigmoid", True, True),
        ("tanh", True, True),  # |z| > 1 for a third of them
        ("linear", True, False),
        ("relu", False, False),  # raw targets: bnplace cannot know their range
    ],
)
def test_an_output_activation_that_cannot_reach_the_scaled_targets(
    head: str, scale_targets: bool, fires: bool
) -> None:
    text = HEADER.replace(
        "window: 16}", f"window: 16, scale_targets: {str(scale_targets).lower()}}}"
    )
    loaded = parse_config(text + MODEL + f"head: {{activation: {head}}}\n", "t.yaml")
    plan = make_plan(loaded, lambda c: DataShape("forecast", 16, 3, 1, "fp"))
    assert ("output_range_misses_targets" in rules(plan)) == fires


def test_the_seed_question_compares_the_models_on_equal_heads() -> None:
    plan = plan_sweep(ROOT / "configs" / "seed_question.yaml").plan
    found = {v.name: {f.rule for f in v.findings} for v in plan.variants}
    assert "output_range_misses_targets" in found["model=question"]  # verbatim: relu head
    assert "output_range_misses_targets" not in found["model=question_linear"]
    assert "output_range_misses_targets" not in found["model=answer"]
    assert plan.baseline == "model=question_linear"
    verbatim, fair = (
        plan.variant("model=question").model,
        plan.variant("model=question_linear").model,
    )
    assert verbatim.layers[:-1] == fair.layers[:-1]  # the fair baseline differs only in the head
    assert verbatim.layers[-1].get("activation") == "relu"
    assert fair.layers[-1].get("activation") == "linear"
    assert plan.variant("model=answer").model.layers[-1].get("activation") == "linear"
    assert not [f for f in plan.design_findings if f.rule == "seeds_too_few_for_any_verdict"]


def test_logits_site_stands_between_the_output_layer_and_its_softmax() -> None:
    """Page 002's accepted answer: Dense(2) -> BN -> softmax. Layers at `logits` go between
    the output's linear part and its activation; `pre_output` stays before the output."""
    loaded = parse_config(
        HEADER
        + MODEL
        + """
sweep:
  arms:
    bn:
      none: {}
      logits: {logits: [batch_norm]}
      pre_output: {pre_output: [batch_norm]}
""",
        "t.yaml",
    )
    plan = make_plan(loaded, lambda config: DataShape("classify", 16, 3, 4, "fp"))
    orders = {v.name: v.layer_order for v in plan.variants}
    assert orders == {
        "bn=none": "Conv1D>ReLU>LSTM>Dense",
        "bn=logits": "Conv1D>ReLU>LSTM>Dense>BN>Softmax",
        "bn=pre_output": "Conv1D>ReLU>LSTM>BN>Dense",
    }
    logits = plan.variant("bn=logits").model.layers
    assert logits[-3].kind == "output" and logits[-3].get("activation") == "linear"
    assert (logits[-1].kind, logits[-1].origin, logits[-1].get("activation")) == (
        "activation",
        "head",
        "softmax",
    )


def test_bn_lstm_cell_shows_in_the_layer_order() -> None:
    plan = plan_of(
        """
        model:
          - conv1d: {id: conv, filters: 8, kernel_size: 3, padding: causal, activation: relu}
          - lstm: {id: lstm, units: 8, cell: batch_norm}
        """
    )
    assert plan.variants[0].layer_order == "Conv1D>ReLU>BN-LSTM>Dense"
