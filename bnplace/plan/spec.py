"""The resolved model of one variant, as frozen data.

In: nothing (this module only defines types). Out: `LayerSpec` and `ModelSpec`, which the plan
produces from a config (every site resolved, every default filled) and which the builder turns
into a `keras.Model`. A `ModelSpec` is the canonical form of a variant's network: two variants
with the same `ModelSpec.canonical()` compute the same function and are merged by the plan.

The layer kinds, their Keras arguments and short names are listed in `bnplace.names.kinds`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bnplace.config.data import Task
from bnplace.names.kinds import LAYER_KINDS, MASK_KIND, NOISE_KINDS

__all__ = ["LayerSpec", "ModelSpec", "Task"]

_ACTIVATION_NAMES = {"relu": "ReLU", "selu": "SELU", "elu": "ELU", "gelu": "GELU", "tanh": "Tanh"}


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
            name = {"layer_norm": "LN-LSTM", "batch_norm": "BN-LSTM"}.get(
                str(self.get("cell")), "LSTM"
            )
            rates = [
                f"{arg}={self.get(arg)}"
                for arg in ("dropout", "recurrent_dropout")
                if self.get(arg)
            ]
            return f"{name}({','.join(rates)})" if rates else name
        known = LAYER_KINDS.get(self.kind)
        return known.short if known and known.short else self.kind

    @property
    def noisy_in_training(self) -> bool:
        """A noise layer, or an LSTM with its own dropout or recurrent_dropout."""
        if self.kind == "lstm":
            return bool(self.get("dropout") or self.get("recurrent_dropout"))
        return self.kind in NOISE_KINDS

    @property
    def batch_statistics(self) -> bool:
        """Normalises with batch statistics in training and moving ones at inference: BN, or an
        LSTM whose cell is batch-normalised (`cell: batch_norm`, momentum 0.99)."""
        if self.kind == "lstm":
            return self.get("cell") == "batch_norm"
        return self.kind == "batch_norm"

    @property
    def keeps_mask(self) -> bool:
        """Hands a padding mask on to the next layer (`padding: mask`): as its kind says, but
        a Conv1D only where each output step sits on its input step (stride 1, causal or same
        padding: bnplace.build.layers.StepConv1D)."""
        if self.kind == "conv1d":
            return self.get("strides", 1) == 1 and self.get("padding") in ("causal", "same")
        return LAYER_KINDS[self.kind].keeps_mask

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
    def masked(self) -> bool:
        """Starts with the Masking layer the plan puts first for padded data (`padding: mask`)."""
        return bool(self.layers) and self.layers[0].kind == MASK_KIND

    @property
    def noisy_in_training(self) -> bool:
        """Dropout of any kind or noise somewhere: training mode draws masks or noise."""
        return any(layer.noisy_in_training for layer in self.layers)

    @property
    def differs_in_training(self) -> bool:
        """Noise, or BN (batch statistics in training, moving ones at inference), a BN cell's
        included."""
        return self.noisy_in_training or any(layer.batch_statistics for layer in self.layers)

    def canonical(self) -> str:
        """JSON that two specs share exactly when they build the same function."""
        body = {
            "input": [self.window, self.features],
            "outputs": self.outputs,
            "task": self.task,
            "layers": [layer.canonical() for layer in self.layers],
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"))
