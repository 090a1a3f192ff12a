"""From one `LayerSpec` to one Keras layer.

In: a `LayerSpec` (a kind and its Keras arguments, every default already filled by the plan)
and a layer name. Out: an unbuilt `keras.layers.Layer`. `REGISTRY` maps each kind to a small
pure factory; `make_layer` looks the kind up and turns Keras' complaints about arguments into a
`BuildError` that names the layer, its kind and the arguments received.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from bnplace.build.layers import LastStep, LayerNormLSTMCell, SqueezeExcite1D
from bnplace.errors import BuildError, did_you_mean
from bnplace.plan.spec import LayerSpec

__all__ = ["REGISTRY", "Factory", "make_layer"]

Factory = Callable[[LayerSpec, str], keras.layers.Layer]

# Arguments of keras.layers.RNN itself; everything else of an "lstm" spec goes to the cell.
_RNN_ARGS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll")


def _conv1d(layer: LayerSpec, name: str) -> keras.layers.Layer:
    return keras.layers.Conv1D(name=name, **{"activation": None, **layer.kwargs})


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
    if cell == "layer_norm":
        rnn_kwargs = {k: kwargs.pop(k) for k in _RNN_ARGS if k in kwargs}
        return keras.layers.RNN(
            LayerNormLSTMCell(name=f"{name}_cell", **kwargs), name=name, **rnn_kwargs
        )
    raise BuildError(
        f"layer {name!r} (kind 'lstm'): unknown cell {cell!r}; expected 'standard' or 'layer_norm'"
    )


def _plain(cls: type[keras.layers.Layer]) -> Factory:
    """A factory that passes the spec's arguments straight to `cls`."""

    def factory(layer: LayerSpec, name: str) -> keras.layers.Layer:
        return cls(name=name, **layer.kwargs)

    factory.__name__ = f"_{cls.__name__}"
    return factory


REGISTRY: dict[str, Factory] = {
    "conv1d": _conv1d,
    "dense": _dense,
    "activation": _plain(keras.layers.Activation),
    "batch_norm": _plain(keras.layers.BatchNormalization),
    "layer_norm": _layer_norm,
    "group_norm": _plain(keras.layers.GroupNormalization),
    "dropout": _plain(keras.layers.Dropout),
    "spatial_dropout": _plain(keras.layers.SpatialDropout1D),
    "alpha_dropout": _plain(keras.layers.AlphaDropout),
    "gaussian_dropout": _plain(keras.layers.GaussianDropout),
    "gaussian_noise": _plain(keras.layers.GaussianNoise),
    "max_pool": _plain(keras.layers.MaxPooling1D),
    "average_pool": _plain(keras.layers.AveragePooling1D),
    "se": _plain(SqueezeExcite1D),
    "lstm": _lstm,
    "flatten": _plain(keras.layers.Flatten),
    "global_average_pool": _plain(keras.layers.GlobalAveragePooling1D),
    "last_step": _plain(LastStep),
    "output": _plain(keras.layers.Dense),
}


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
