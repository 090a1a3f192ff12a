"""The config grammar, positively: what a valid YAML turns into.

In: small YAML texts written here, the shipped configs/quickstart.yaml and the starter template.
Out: assertions on the validated `Config` (short forms of placed layers, bare block names,
default block ids, axis labels, `--set`, YAML merge keys) and on the safety of loading (no tag
ever runs code). Pure: no TensorFlow, no training, no files but the ones named.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bnplace.config import LoadedConfig, load_config, parse_config
from bnplace.config.layers import ActivationLayer, BatchNorm, Dropout, LayerNorm
from bnplace.config.overrides import block_refs, site_names, target_path
from bnplace.names.errors import ConfigError
from bnplace.plan.grid import expand

ROOT = Path(__file__).parents[1]
HEADER = """\
experiment: grammar
data:
  source: synthetic
  length: 500
"""


def load(body: str, sets: tuple[str, ...] = ()) -> LoadedConfig:
    return parse_config(HEADER + body, "test.yaml", sets)


def test_shipped_configs_load() -> None:
    quick = load_config(ROOT / "configs" / "quickstart.yaml")
    assert quick.config.experiment == "quickstart"
    assert [b.block_type for b in quick.config.model] == ["conv1d", "lstm"]
    starter = load_config(ROOT / "bnplace" / "templates" / "starter.yaml")
    assert starter.config.sweep.seed_list == tuple(
        range(7)
    )  # the fewest seeds 3 comparisons can decide at


def test_every_short_form_of_a_placed_layer() -> None:
    loaded = load(
        """\
model:
  - conv1d: {id: conv, filters: 8}
  - lstm: {units: 4}
placements:
  conv.pre_act:
    - batch_norm
    - batch_norm:
    - {batch_norm: 0.9}
  conv.post_act: [{activation: relu}, {dropout: 0.3}]
  lstm.after: [{layer_norm: {axis: [1, 2]}}, {layer_norm: 1}, {dropout: {rate: 0.1}}]
"""
    )
    places = loaded.config.placements
    pre = [entry.layer for entry in places["conv.pre_act"]]
    assert [type(layer) for layer in pre] == [BatchNorm, BatchNorm, BatchNorm]
    assert pre[0] == BatchNorm() and pre[1] == BatchNorm()  # bare name and `name:` with null
    assert pre[2].momentum == 0.9  # a scalar sets the layer's shorthand argument
    post = [entry.layer for entry in places["conv.post_act"]]
    assert post == [ActivationLayer(activation="relu"), Dropout(rate=0.3)]
    after = [entry.layer for entry in places["lstm.after"]]
    assert after[0] == LayerNorm(axis=[1, 2])
    assert after[1] == LayerNorm(axis=1)
    assert after[2] == Dropout(rate=0.1)
    assert [entry.kind for entry in places["lstm.after"]] == ["layer_norm", "layer_norm", "dropout"]


def test_bare_block_names_and_default_ids() -> None:
    loaded = load(
        """\
model:
  - conv1d: {filters: 8}
  - se
  - lstm: {units: 8, return_sequences: true}
  - lstm: {units: 4}
  - pool:
"""
    )
    config = loaded.config
    assert config.model[1].block_type == "se" and config.model[1].settings.ratio == 4
    assert config.model[4].block_type == "pool" and config.model[4].settings.pool_size == 2
    refs = block_refs(config)
    assert [r.id for r in refs] == ["conv1d", "se", "lstm", "lstm_2", "pool"]
    assert [r.index for r in refs] == [0, 1, 2, 3, 4]
    sites = site_names(config)
    assert sites[0] == "input" and sites[-2:] == ["pre_output", "logits"]
    assert "lstm_2.after" in sites and "conv1d.pre_act" in sites and "lstm.pre_act" not in sites
    assert target_path("lstm_2.units", config) == ("model", 3, "lstm", "units")
    assert target_path("se.after", config) == ("placements", "se.after")


def test_default_ids_can_be_placed_at() -> None:
    loaded = load(
        """\
model:
  - lstm: {units: 8, return_sequences: true}
  - lstm: {units: 4}
placements:
  lstm.after: [{dropout: 0.2}]
  lstm_2.before: [layer_norm]
"""
    )
    assert set(loaded.config.placements) == {"lstm.after", "lstm_2.before"}


def test_axis_labels_list_form_and_mapping_form() -> None:
    loaded = load(
        """\
model:
  - conv1d: {id: conv, filters: 8, activation: relu}
  - lstm: {units: 4}
sweep:
  axes:
    conv.pre_act: {plain: [], bn: [batch_norm], bn_drop: [batch_norm, {dropout: 0.1}]}
    train.batch_size: [16, 64]
  seeds: [7, 11]
"""
    )
    cells = expand(loaded.config)
    assert len(cells) == 6
    assert cells[0].name == "conv.pre_act=plain, train.batch_size=16"
    assert [c.labels[0][1] for c in cells[::2]] == ["plain", "bn", "bn_drop"]
    assert dict(cells[5].overrides) == {
        "conv.pre_act": ["batch_norm", {"dropout": 0.1}],
        "train.batch_size": 64,
    }
    assert loaded.config.sweep.seed_list == (7, 11)


def test_arms_give_one_axis_of_named_settings() -> None:
    loaded = load_config(ROOT / "configs" / "quickstart.yaml")
    cells = expand(loaded.config)
    assert [c.name for c in cells] == ["bn=none", "bn=pre_act", "bn=post_act"]
    assert dict(cells[1].overrides)["conv.use_bias"] is False


def test_set_overrides_a_block_setting_and_a_train_setting() -> None:
    body = """\
model:
  - conv1d: {id: conv, filters: 8}
  - lstm: {units: 4}
train:
  epochs: 10
"""
    base = load(body)
    changed = load(body, ("conv.filters=32", "train.epochs=2", "lstm.after=[{dropout: 0.25}]"))
    assert base.config.model[0].settings.filters == 8 and base.config.train.epochs == 10
    assert changed.config.model[0].settings.filters == 32
    assert changed.config.train.epochs == 2
    assert changed.config.placements["lstm.after"][0].layer == Dropout(rate=0.25)
    assert changed.raw["model"][0]["conv1d"]["filters"] == 32
    # values are YAML: "true" is a bool, not a string
    assert load(body, ("train.shuffle=false",)).config.train.shuffle is False


def test_set_on_a_bare_block_name() -> None:
    body = "model:\n  - conv1d: {filters: 8}\n  - se\n"
    loaded = load(body, ("se.ratio=2",))
    assert loaded.config.model[1].settings.ratio == 2


def test_yaml_merge_keys() -> None:
    loaded = load(
        """\
model:
  - conv1d: &conv {id: first, filters: 8, kernel_size: 5, padding: causal}
  - conv1d:
      <<: *conv
      id: second
      filters: 16
"""
    )
    first, second = (b.settings for b in loaded.config.model)
    assert (first.id, first.filters, first.kernel_size, first.padding) == ("first", 8, 5, "causal")
    assert (second.id, second.filters, second.kernel_size) == ("second", 16, 5)
    assert second.padding == "causal"


def test_positions_of_keys_and_values_are_recorded() -> None:
    loaded = load("model:\n  - conv1d: {id: conv, filters: 8}\n")
    assert loaded.parsed.positions[("model", 0, "conv1d", "filters")] == (6, 33)
    assert loaded.parsed.key_positions[("model", 0, "conv1d", "filters")] == (6, 24)
    assert loaded.parsed.key_positions[("data",)] == (2, 1)


@pytest.mark.parametrize(
    "tagged",
    [
        '!!python/object/apply:os.system ["touch {marker}"]',
        "!!python/object/apply:os.system\n  args: ['touch {marker}']",
        "!!python/name:os.system",
        "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
    ],
)
def test_loading_never_executes_code(tmp_path: Path, tagged: str) -> None:
    marker = tmp_path / "executed"
    text = HEADER.replace("experiment: grammar", "experiment: " + tagged.format(marker=marker))
    with pytest.raises(ConfigError) as info:
        parse_config(text + "model:\n  - lstm: {units: 4}\n", "evil.yaml")
    assert not marker.exists()
    (problem,) = info.value.problems
    assert problem.line == 1 and problem.column == 13
    assert "python/" in problem.render()


def test_plain_scalar_tags_are_fine() -> None:
    loaded = load("model:\n  - lstm: {units: !!int '4'}\ndescription: !!str 12\n")
    assert loaded.config.model[0].settings.units == 4
    assert loaded.config.description == "12"


def test_a_key_written_twice_beside_a_merge_is_still_a_duplicate() -> None:
    body = "model:\n  - conv1d: &c {filters: 8}\n  - conv1d:\n      <<: *c\n"
    with pytest.raises(ConfigError) as info:
        load(body + "      filters: 16\n      filters: 32\n")
    (problem,) = info.value.problems
    assert (problem.line, problem.column, problem.key) == (10, 7, "model[1].conv1d.filters")
    assert "duplicate key 'filters'" in problem.message


def test_an_absurd_seed_count_is_refused_at_its_line() -> None:
    from bnplace.config import parse_config
    from bnplace.names.errors import ConfigError

    text = (
        (ROOT / "configs" / "quickstart.yaml")
        .read_text()
        .replace("seeds: 7", "seeds: 1000000000000")
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, "q.yaml")
    assert "at most 1000 seeds" in str(info.value) and "q.yaml:" in str(info.value)


def test_the_budget_is_epochs_or_steps_not_both() -> None:
    body = HEADER + "model:\n  - lstm: {units: 4}\n"
    assert parse_config(body + "train: {steps: 500}\n", "s.yaml").config.train.steps == 500
    with pytest.raises(ConfigError) as info:
        parse_config(body + "train: {epochs: 5, steps: 500}\n", "s.yaml")
    (problem,) = info.value.problems
    assert problem.key == "train.steps" and "both state the budget" in str(problem)


def test_gaussian_noise_past_what_keras_takes_is_refused_at_its_line() -> None:
    """Keras 3's GaussianNoise refuses a stddev above 1: the config says so before any trial
    fails on it."""
    body = (
        HEADER + "model:\n  - lstm: {units: 4}\nplacements: {lstm.after: [{gaussian_noise: 3.0}]}\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(body, "g.yaml")
    (problem,) = info.value.problems
    assert problem.key == "placements.lstm.after[0].gaussian_noise" and problem.line == 7
    assert "stddev" in problem.message and problem.expected == "less than or equal to 1"
