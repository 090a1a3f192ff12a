"""The plan's TensorFlow-free shapes and parameter counts agree with the models Keras builds."""

from __future__ import annotations

import pytest

from bnplace.build import build_model
from bnplace.config import parse_config
from bnplace.plan import DataShape, make_plan
from bnplace.plan.shapes import analyse

HEADER = """
experiment: t
data: {source: synthetic, generator: sine_mix, length: 400, features: 3, window: 17}
"""

MODELS = {
    "conv_bn_pool_se_lstm": """
model:
  - conv1d: {id: conv, filters: 8, kernel_size: 3, padding: valid, use_bias: false}
  - pool: {id: pool, kind: max, pool_size: 2}
  - se: {id: se, ratio: 2, use_bias: true}
  - lstm: {id: lstm, units: 6}
placements:
  input: [{layer_norm: {axis: [1, 2]}}]
  conv.pre_act: [{batch_norm: {scale: false}}]
  pool.after: [{group_norm: {groups: 4}}, {spatial_dropout: 0.1}]
  lstm.after: [layer_norm, {gaussian_noise: 0.1}]
""",
    "stacked_ln_lstm_dense": """
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 5, strides: 2, padding: same, activation: selu}
  - lstm: {id: a, units: 5, return_sequences: true, cell: layer_norm, recurrent_dropout: 0.1}
  - lstm: {id: b, units: 3, use_bias: false}
  - dense: {id: d, units: 7, activation: tanh}
placements:
  conv.post_act: [{alpha_dropout: 0.1}]
  d.pre_act: [batch_norm]
  pre_output: [{gaussian_dropout: 0.2}]
""",
    "bn_lstm_cell_stacked": """
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: a, units: 5, return_sequences: true, cell: batch_norm, dropout: 0.1}
  - lstm: {id: b, units: 3, cell: batch_norm, use_bias: false}
""",
    "conv_dilated_average_pool_flatten": """
model:
  - conv1d: {id: conv, filters: 6, kernel_size: 3, dilation_rate: 2, activation: relu}
  - pool: {id: pool, kind: average, pool_size: 3, strides: 2, padding: same}
  - dense: {id: d, units: 4, use_bias: false}
head: {reduce: flatten}
""",
    "last_step_head": """
model:
  - conv1d: {id: conv, filters: 5, kernel_size: 3, padding: causal}
  - lstm: {id: lstm, units: 4, return_sequences: true, cell: layer_norm}
head: {reduce: last_step}
""",
    "global_average_head": """
model:
  - conv1d: {id: conv, filters: 5, kernel_size: 3, padding: causal, activation: gelu}
head: {reduce: global_average}
placements:
  conv.post_act: [{layer_norm: {axis: -1, center: false}}]
""",
}


# Keras warns where a masked input meets a layer that ends the mask (a valid Conv1D, a pool):
# the plan's lint says the same (padding_mask_dropped); here only the shapes matter
IGNORE_MASK_ENDED = pytest.mark.filterwarnings("ignore:.*does not support masking:UserWarning")


def _shape(masked: bool):  # -> Callable[[Config], DataShape]
    """The plan's view of the data; `masked`: padded sequences, a Masking layer first."""
    return lambda c: DataShape("forecast", c.data.window, c.data.features, 2, "fp", masked=masked)


@IGNORE_MASK_ENDED
@pytest.mark.parametrize("masked", [False, True], ids=["plain", "masked"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_pure_shapes_and_params_match_keras(name: str, masked: bool) -> None:
    loaded = parse_config(HEADER + MODELS[name], "t.yaml")
    plan = make_plan(loaded, _shape(masked))
    variant = plan.variants[0]
    assert not plan.errors, plan.errors
    report = analyse(variant.model)
    model = build_model(variant.model)
    assert report.params == model.count_params()
    keras_shapes = [tuple(layer.output.shape[1:]) for layer in model.layers[1:]]
    assert list(report.shapes) == keras_shapes


@IGNORE_MASK_ENDED
@pytest.mark.parametrize("masked", [False, True], ids=["plain", "masked"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_detailed_view_matches_keras_layer_by_layer(name: str, masked: bool) -> None:
    """`bnplace plan --variant`: class, output shape and parameters of every layer, as built."""
    from bnplace.plan.trials import variant_detail

    loaded = parse_config(HEADER + MODELS[name], "t.yaml")
    plan = make_plan(loaded, _shape(masked))
    variant = plan.variants[0]
    detail = variant_detail(variant)
    model = build_model(variant.model)
    assert detail["input_shape"] == [None, 17, 3] and detail["outputs"] == 2
    assert detail["input_shape"] == list(model.input.shape)
    built = model.layers[1:]
    assert len(detail["layers"]) == len(built)
    for shown, layer in zip(detail["layers"], built, strict=True):
        assert shown["keras_class"] == type(layer).__name__, (shown, layer)
        if shown["keras_class"] == "RNN":  # bnplace's normalised LSTM cells
            cells = {"layer_norm": "LayerNormLSTMCell", "batch_norm": "BatchNormLSTMCell"}
            assert type(layer.cell).__name__ == cells[shown["args"]["cell"]]
        assert shown["params"] == layer.count_params(), (shown, layer)
        assert shown["output_shape"] == list(layer.output.shape)
        config = layer.get_config()
        for arg in ("momentum", "rate", "scale", "units", "filters", "groups", "stddev"):
            if arg in shown["args"] and arg in config:
                assert shown["args"][arg] == config[arg], (arg, shown, config)
