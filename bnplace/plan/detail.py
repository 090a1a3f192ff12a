"""One variant's model, layer by layer, as the builder will make it; without TensorFlow.

In: a `Variant` of a plan (its resolved `ModelSpec`). Out: `variant_detail`, plain data for
`bnplace plan --variant NAME` and `plan --json`: the input shape (window, features), the output
size, and per layer its kind, Keras class (from `bnplace.kinds`), where it came from (block id
or site), its Keras arguments (momentum, rate, scale, units...), its output shape and its
parameter count (from `bnplace.plan.shapes`, which a test checks against Keras layer by layer).
Also `find_variant`, which picks a variant by name, id or a unique part of its name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bnplace.errors import PlanError, did_you_mean
from bnplace.kinds import LAYER_KINDS
from bnplace.plan.shapes import analyse

if TYPE_CHECKING:
    from bnplace.plan import Variant
    from bnplace.plan.spec import ModelSpec


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def variant_detail(variant: Variant) -> dict[str, Any]:
    """The variant's id and name with its `model_detail`."""
    return {"id": variant.id, "name": variant.name, **model_detail(variant.model)}


def model_detail(spec: ModelSpec) -> dict[str, Any]:
    """Input shape, output size, parameters and every layer of a resolved model."""
    report = analyse(spec)
    layers = []
    for index, layer in enumerate(spec.layers):
        kind = LAYER_KINDS.get(layer.kind)
        keras_class = kind.keras if kind else layer.kind
        if layer.kind == "lstm" and layer.get("cell") == "layer_norm":
            keras_class = "RNN"  # keras.layers.RNN(LayerNormLSTMCell(...)), bnplace's own cell
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


def find_variant(wanted: str, variants: Sequence[Variant]) -> Variant:
    """By exact name, by id, else the one variant whose name contains `wanted`."""
    for variant in variants:
        if wanted in (variant.name, variant.id):
            return variant
    matches = [v for v in variants if wanted in v.name]
    if len(matches) == 1:
        return matches[0]
    names = [v.name for v in variants]
    hint = did_you_mean(wanted, names)
    raise PlanError(
        f"--variant {wanted!r} matches {len(matches)} variants; name one of: {'; '.join(names)}"
        + (f"\n  did you mean: {hint}" if hint else "")
    )
