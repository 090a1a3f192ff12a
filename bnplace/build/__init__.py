"""The builder: a resolved `ModelSpec` in, an uncompiled functional `keras.Model` out.

In: a `ModelSpec` (input window and features, the layers in order). Out: a `keras.Model` named
"bnplace" whose layers are named after their origin and kind ("conv__batch_norm"), unique and
readable in summaries and logs. Building is pure: no compiling, no seeding, no
`clear_session` (callers seed and clear between trials: `bnplace.trial.seeding`).
"""

from __future__ import annotations

import re

import keras

from bnplace.build.registry import REGISTRY, make_layer
from bnplace.names.errors import BuildError
from bnplace.plan.spec import LayerSpec, ModelSpec

__all__ = ["REGISTRY", "build_model"]


def _base_name(layer: LayerSpec) -> str:
    origin = re.sub(r"[^0-9A-Za-z_]+", "_", layer.origin).strip("_")
    return f"{origin}__{layer.kind}" if origin else layer.kind


def _layer_names(layers: tuple[LayerSpec, ...]) -> list[str]:
    """One readable name per layer, made unique with a numeric suffix where they repeat."""
    names: list[str] = []
    taken = {"input"}
    for layer in layers:
        base = _base_name(layer)
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        names.append(name)
    return names


def build_model(spec: ModelSpec) -> keras.Model:
    """The functional Keras model of `spec`, uncompiled; BuildError when a layer does not fit."""
    if not spec.layers:
        raise BuildError("model spec has no layers")
    inputs = keras.Input(shape=(spec.window, spec.features), name="input")
    x = inputs
    for layer, name in zip(spec.layers, _layer_names(spec.layers), strict=True):
        keras_layer = make_layer(layer, name)
        shape_in = tuple(x.shape)
        try:
            x = keras_layer(x)
        except (TypeError, ValueError) as exc:
            raise BuildError(
                f"layer {name!r} (kind {layer.kind!r}, arguments {layer.kwargs}) cannot take "
                f"an input of shape {shape_in}: {exc}"
            ) from exc
    if len(x.shape) != 2 or x.shape[-1] != spec.outputs:
        raise BuildError(
            f"model output has shape {tuple(x.shape)}; expected (batch, {spec.outputs}): the "
            "last layers must reduce time (flatten, global_average_pool, last_step or an lstm "
            f"without return_sequences) and end in {spec.outputs} unit(s)"
        )
    return keras.Model(inputs, x, name="bnplace")
