"""One variant's model, layer by layer, as the builder will make it; without TensorFlow.

In: a resolved `ModelSpec`. Out: `model_detail`, plain data for `bnplace plan --variant NAME`
and `plan --json` (`bnplace.plan.trials.variant_detail` adds the variant's id and name): the
input shape (window, features), the output
size, and per layer its kind, Keras class (from `bnplace.names.kinds`), where it came from (block id
or site), its Keras arguments (momentum, rate, scale, units...), its output shape and its
parameter count (from `bnplace.plan.shapes`, which a test checks against Keras layer by layer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bnplace.names.kinds import LAYER_KINDS
from bnplace.plan.shapes import analyse

if TYPE_CHECKING:
    from bnplace.plan.spec import ModelSpec


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def model_detail(spec: ModelSpec) -> dict[str, Any]:
    """Input shape, output size, parameters and every layer of a resolved model."""
    report = analyse(spec)
    layers = []
    for index, layer in enumerate(spec.layers):
        kind = LAYER_KINDS.get(layer.kind)
        keras_class = kind.keras if kind else layer.kind
        if layer.kind == "lstm" and layer.get("cell") in ("layer_norm", "batch_norm"):
            keras_class = "RNN"  # keras.layers.RNN(LayerNormLSTMCell(...)): bnplace's own cells
        shape = report.shapes[index] if index < len(report.shapes) else ()
        layers.append(
            {
                "index": index,
                "kind": layer.kind,
                "keras_class": keras_class,
                "origin": layer.origin,
                "args": {k: _plain(v) for k, v in layer.args},
                "output_shape": [None, *shape],  # None: the batch axis
                "params": report.layer_params[index] if index < len(report.layer_params) else 0,
            }
        )
    return {
        "task": spec.task,
        "input_shape": [None, spec.window, spec.features],
        "outputs": spec.outputs,
        "params": report.params,
        "layers": layers,
    }
