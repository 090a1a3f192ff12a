"""From one `LayerSpec` to one Keras layer.

In: a `LayerSpec` (a kind and its Keras arguments, every default already filled by the plan)
and a layer name. Out: an unbuilt `keras.layers.Layer`. `REGISTRY` maps each kind of
`bnplace.names.kinds.LAYER_KINDS` to a small pure factory (by default the Keras class the table
names, called with the spec's arguments); `make_layer` looks the kind up and turns Keras'
complaints about arguments into a `BuildError` that names the layer, its kind and the arguments
received.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from bnplace.build.layers import (
    BatchNormLSTMCell,
    LastStep,
    LayerNormLSTMCell,
    SqueezeExcite1D,
    StepConv1D,
)
from bnplace.names.errors import BuildError, did_you_mean
from bnplace.names.kinds import LAYER_KINDS, check_covers
from bnplace.plan.spec import LayerSpec

__all__ = ["REGISTRY", "Factory", "make_layer"]

Factory = Callable[[LayerSpec, str], keras.layers.Layer]

# Arguments of keras.layers.RNN itself; everything else of an "lstm" spec goes to the cell.
_RNN_ARGS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll")


def _conv1d(layer: LayerSpec, name: str) -> keras.layers.Layer:
    return StepConv1D(name=name, **{"activation": None, **layer.kwargs})


def _dense(layer: LayerSpec, name: str) -> keras.layers.Layer:
    return keras.layers.Dense(name=name, **{"activation": None, **layer.kwargs})


def _layer_norm(layer: LayerSpec, name: str) -> keras.layers.Layer:
    kwargs = layer.kwargs
    if isinstance(kwargs.get("axis"), tuple | list):
        kwargs["axis"] = list(kwargs["axis"])
    return keras.layers.LayerNormalization(name=name, **kwargs)


def _lstm(layer: LayerSpec, name: str) -> keras.layers.Layer:
    kwargs = layer.kwargs
    cell = kwargs.pop("cell", "standard")
    if cell == "standard":
        return keras.layers.LSTM(name=name, **kwargs)
    cells = {"layer_norm": LayerNormLSTMCell, "batch_norm": BatchNormLSTMCell}
    if cell in cells:
        rnn_kwargs = {k: kwargs.pop(k) for k in _RNN_ARGS if k in kwargs}
        return keras.layers.RNN(cells[cell](name=f"{name}_cell", **kwargs), name=name, **rnn_kwargs)
    raise BuildError(
        f"layer {name!r} (kind 'lstm'): unknown cell {cell!r}; expected 'standard', "
        "'layer_norm' or 'batch_norm'"
    )


def _plain(cls: type[keras.layers.Layer]) -> Factory:
    """A factory that passes the spec's arguments straight to `cls`."""

    def factory(layer: LayerSpec, name: str) -> keras.layers.Layer:
        return cls(name=name, **layer.kwargs)

    factory.__name__ = f"_{cls.__name__}"
    return factory


# bnplace's own layers, by the class name bnplace.names.kinds gives; the rest are
# keras.layers.<name>
_OWN_LAYERS: dict[str, type[keras.layers.Layer]] = {
    cls.__name__: cls for cls in (SqueezeExcite1D, LastStep, StepConv1D)
}
# Kinds whose factory does more than pass the spec's arguments to their class.
_SPECIAL: dict[str, Factory] = {
    "conv1d": _conv1d,
    "dense": _dense,
    "layer_norm": _layer_norm,
    "lstm": _lstm,
}


def _keras_class(name: str) -> type[keras.layers.Layer]:
    return _OWN_LAYERS.get(name) or getattr(keras.layers, name)


# One factory per kind of bnplace.names.kinds.LAYER_KINDS.
REGISTRY: dict[str, Factory] = {
    name: _SPECIAL.get(name) or _plain(_keras_class(kind.keras))
    for name, kind in LAYER_KINDS.items()
}
check_covers(REGISTRY, LAYER_KINDS, "build.registry.REGISTRY")
check_covers(set(_SPECIAL) | set(LAYER_KINDS), LAYER_KINDS, "build.registry._SPECIAL")


def make_layer(layer: LayerSpec, name: str) -> keras.layers.Layer:
    """The Keras layer for `layer`, named `name`; BuildError for an unknown kind or bad args."""
    factory = REGISTRY.get(layer.kind)
    if factory is None:
        known = ", ".join(sorted(REGISTRY))
        hint = did_you_mean(layer.kind, REGISTRY)
        raise BuildError(
            f"layer {name!r}: unknown kind {layer.kind!r}; known kinds: {known}"
            + (f"\n  did you mean: {hint}" if hint else "")
        )
    try:
        return factory(layer, name)
    except (TypeError, ValueError) as exc:
        raise BuildError(
            f"layer {name!r} (kind {layer.kind!r}) cannot be created with arguments "
            f"{layer.kwargs}: {exc}"
        ) from exc
