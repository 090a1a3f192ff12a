"""Diagnostics of a model on windows of its training data: what differs between modes.

In: a Keras model (fresh or trained), windows of its training data (and their targets and the
loss, for `loss_by_mode`). Out: plain numbers. Every function leaves the model's weights as they
were: training-mode passes move BN's moving statistics and the dropout seed streams, and both
are restored afterwards (`_restored`), so training or evaluation that follows is unchanged.

- `layer_outputs`, `activation_variance`: every layer's output (its variance), in either mode
  (the self-normalisation check, at initialisation and after training).
- `loss_by_mode`: the loss in inference mode and in training mode with the same weights.
- `variance_shift`: per BatchNormalization layer (Li et al., CVPR 2019), a probe model runs from
  the model's input to the BN layer's input and measures, per channel, the variance over all
  axes but the BN axis:

  - `moving_vs_real`: the inference-mode variance against the layer's `moving_variance`, as
    max over channels of max(real / moving, moving / real); 1 means BN normalizes at
    inference with the statistics it really meets.
  - `train_vs_infer`: mean over channels of the probe's training-mode variance (dropout and
    noise active, earlier BN layers on batch statistics) over its inference-mode variance. It
    does not depend on the moving average having converged; dropout with rate r directly
    before BN gives at least 1 / (1 - r).

  The BN epsilon is added to every variance before a ratio is taken, as BN itself does, so
  dead channels do not divide by zero.

Only top-level layers of the model are examined.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

__all__ = [
    "VarianceShift",
    "activation_variance",
    "layer_outputs",
    "loss_by_mode",
    "variance_shift",
]


@contextlib.contextmanager
def _restored(model: keras.Model) -> Iterator[None]:
    """Put back BN's moving statistics and the dropout seed streams (the model's non-trainable
    variables) that training-mode passes inside the block move."""
    saved = [v.numpy() for v in model.non_trainable_variables]
    try:
        yield
    finally:
        for variable, value in zip(model.non_trainable_variables, saved, strict=True):
            variable.assign(value)


def layer_outputs(
    model: keras.Model, x: np.ndarray, training: bool = False
) -> dict[str, np.ndarray]:
    """Every top-level layer's output on `x`, in layer order (the last is the model's output),
    from one pass of a probe model."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    probe = keras.Model(model.input, [layer.output for layer in layers])
    with _restored(model):
        outputs = probe(x, training=training)
    return {
        layer.name: keras.ops.convert_to_numpy(out)
        for layer, out in zip(layers, outputs, strict=True)
    }


def activation_variance(
    model: keras.Model, x: np.ndarray, training: bool = False
) -> dict[str, float]:
    """Variance of every layer's output on `x`, in layer order.

    Run on the freshly initialised model, it is the self-normalisation check of Klambauer et
    al. (2017): with SELU + lecun_normal the variance stays near 1 through depth; ReLU stacks
    drift away from it. Dropout acts only with `training=True`, which is where AlphaDropout
    keeps the variance and plain dropout after SELU inflates it. Run on the trained model, it
    shows whether training kept that fixed point.
    """
    return {name: float(np.var(out)) for name, out in layer_outputs(model, x, training).items()}


def loss_by_mode(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    loss: Callable[..., Any] | str,
    predicted: np.ndarray | None = None,
) -> tuple[float, float]:
    """`loss` on (x, y) in inference mode and in training mode, with the same weights.

    On training windows, dropout makes the training-mode loss the larger one as a rule. An
    inference-mode loss well above it means the network meets other activations at inference
    than the ones it was trained on: the variance shift of dropout before BN, BN's moving
    statistics off the batch statistics, or AlphaDropout, which in training passes each input
    at a * (1 - rate) of its size in expectation and at inference at full size.
    `predicted`: the inference-mode output on `x`, when the caller has it (saves a pass).
    """
    function = keras.losses.get(loss)

    def mean_loss(output: Any) -> float:
        return float(np.mean(keras.ops.convert_to_numpy(function(y, output))))

    if predicted is None:
        predicted = keras.ops.convert_to_numpy(model(x, training=False))
    with _restored(model):
        trained = model(x, training=True)
    return mean_loss(predicted), mean_loss(trained)


@dataclass(frozen=True)
class VarianceShift:
    """The variance-shift measurements of one BatchNormalization layer."""

    moving_vs_real: float
    train_vs_infer: float
    channels: int


def _channel_variance(
    probe: keras.Model, x: np.ndarray, batch_size: int, axis: int, training: bool
) -> np.ndarray:
    """Per-channel variance of the probe's output over everything but `axis` (float64)."""
    total = total_sq = None
    count = 0
    for start in range(0, len(x), batch_size):
        out = keras.ops.convert_to_numpy(probe(x[start : start + batch_size], training=training))
        out = np.moveaxis(out.astype(np.float64), axis, -1)
        out = out.reshape(-1, out.shape[-1])
        total = out.sum(axis=0) if total is None else total + out.sum(axis=0)
        total_sq = (out**2).sum(axis=0) if total_sq is None else total_sq + (out**2).sum(axis=0)
        count += out.shape[0]
    mean = total / count
    return np.maximum(total_sq / count - mean**2, 0.0)


def variance_shift(
    model: keras.Model, x: np.ndarray, batch_size: int = 256
) -> dict[str, VarianceShift]:
    """Variance shift of every BatchNormalization layer of `model` on inputs `x`."""
    bn_layers = [
        layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    if not bn_layers:
        return {}
    x = np.asarray(x, dtype=np.float32)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    results: dict[str, VarianceShift] = {}
    for bn in bn_layers:
        probe = keras.Model(inputs, bn.input)
        ndim = len(bn.input.shape)
        axis = bn.axis % ndim
        eps = float(bn.epsilon)
        real = _channel_variance(probe, x, batch_size, axis, training=False) + eps
        moving = np.asarray(keras.ops.convert_to_numpy(bn.moving_variance), np.float64) + eps
        shift = float(np.max(np.maximum(real / moving, moving / real)))
        # restored at once: the next BN's inference-mode probe runs through this one's statistics
        with _restored(model):
            trained = _channel_variance(probe, x, batch_size, axis, training=True) + eps
        ratio = float(np.mean(trained / real))
        results[bn.name] = VarianceShift(shift, ratio, int(real.shape[0]))
    return results
