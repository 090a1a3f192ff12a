"""The resolved model of one variant, as frozen data.

In: nothing (this module only defines types). Out: `LayerSpec` and `ModelSpec`, which the plan
produces from a config (every site resolved, every default filled) and which the builder turns
into a `keras.Model`. A `ModelSpec` is the canonical form of a variant's network: two variants
with the same `ModelSpec.canonical()` compute the same function and are merged by the plan.

Layer kinds and their args (Keras spelling):
    conv1d        filters, kernel_size, strides, padding, dilation_rate, use_bias,
                  kernel_initializer
    dense         units, use_bias, kernel_initializer          (linear; activation is its own layer)
    activation    activation
    batch_norm    axis, momentum, epsilon, center, scale
    layer_norm    axis (int or tuple of ints), epsilon, center, scale
    group_norm    groups, axis, epsilon, center, scale
    dropout, spatial_dropout, alpha_dropout, gaussian_dropout     rate
    gaussian_noise                                                  stddev
    max_pool, average_pool   pool_size, strides, padding
    se            ratio, use_bias                     (Squeeze-and-Excite, 3-D in and out)
    lstm          units, return_sequences, activation, recurrent_activation, use_bias, dropout,
                  recurrent_dropout, cell ("standard" | "layer_norm"), kernel_initializer,
                  recurrent_initializer
    flatten, global_average_pool, last_step                         (3-D -> 2-D before the head)
    output        units, activation, use_bias, kernel_initializer    (the final Dense)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

Task = Literal["forecast", "classify"]

# Short names for the layer-order string, e.g. "Conv1D>BN>ReLU>LSTM>Dense".
_ORDER_NAMES = {
    "conv1d": "Conv1D",
    "dense": "Dense",
    "batch_norm": "BN",
    "layer_norm": "LN",
    "group_norm": "GN",
    "dropout": "Dropout",
    "spatial_dropout": "SpatialDropout1D",
    "alpha_dropout": "AlphaDropout",
    "gaussian_dropout": "GaussianDropout",
    "gaussian_noise": "GaussianNoise",
    "max_pool": "MaxPool1D",
    "average_pool": "AvgPool1D",
    "se": "SE",
    "flatten": "Flatten",
    "global_average_pool": "GAP1D",
    "last_step": "LastStep",
    "output": "Dense",
}
_ACTIVATION_NAMES = {"relu": "ReLU", "selu": "SELU", "elu": "ELU", "gelu": "GELU", "tanh": "Tanh"}
# Layers that add noise in training and pass their input through at inference.
NOISE_KINDS = frozenset(
    {"dropout", "spatial_dropout", "alpha_dropout", "gaussian_dropout", "gaussian_noise"}
)


def _freeze(value: Any) -> Any:
    """Lists become tuples so that specs hash and compare by value."""
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a resolved model: a kind, its Keras arguments, and where it came from."""

    kind: str
    args: tuple[tuple[str, Any], ...] = ()
    origin: str = ""  # the block id or site that produced it, e.g. "conv" or "conv.pre_act"

    @classmethod
    def of(cls, kind: str, origin: str = "", **args: Any) -> LayerSpec:
        return cls(kind, tuple(sorted((k, _freeze(v)) for k, v in args.items())), origin)

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.args)

    def get(self, name: str, default: Any = None) -> Any:
        return self.kwargs.get(name, default)

    @property
    def order_name(self) -> str:
        if self.kind == "activation":
            act = str(self.get("activation"))
            return _ACTIVATION_NAMES.get(act, act.capitalize())
        if self.kind == "lstm":
            name = "LN-LSTM" if self.get("cell") == "layer_norm" else "LSTM"
            rates = [
                f"{arg}={self.get(arg)}"
                for arg in ("dropout", "recurrent_dropout")
                if self.get(arg)
            ]
            return f"{name}({','.join(rates)})" if rates else name
        return _ORDER_NAMES.get(self.kind, self.kind)

    @property
    def noisy_in_training(self) -> bool:
        """A noise layer, or an LSTM with its own dropout or recurrent_dropout."""
        if self.kind == "lstm":
            return bool(self.get("dropout") or self.get("recurrent_dropout"))
        return self.kind in NOISE_KINDS

    def canonical(self) -> dict[str, Any]:
        return {"kind": self.kind, **{k: v for k, v in self.args}}


@dataclass(frozen=True)
class ModelSpec:
    """A whole network: input shape, the layers in order, and the task it is trained for."""

    window: int
    features: int
    outputs: int
    task: Task
    layers: tuple[LayerSpec, ...]

    @property
    def layer_order(self) -> str:
        return ">".join(layer.order_name for layer in self.layers)

    @property
    def noisy_in_training(self) -> bool:
        """Dropout of any kind or noise somewhere: training mode draws masks or noise."""
        return any(layer.noisy_in_training for layer in self.layers)

    @property
    def differs_in_training(self) -> bool:
        """Noise, or BN (batch statistics in training, moving ones at inference)."""
        return self.noisy_in_training or any(layer.kind == "batch_norm" for layer in self.layers)

    def canonical(self) -> str:
        """JSON that two specs share exactly when they build the same function."""
        body = {
            "input": [self.window, self.features],
            "outputs": self.outputs,
            "task": self.task,
            "layers": [layer.canonical() for layer in self.layers],
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"))
