"""The variance-shift diagnostic of BatchNormalization layers (Li et al., CVPR 2019).

In: a trained Keras model and windows of its training data. Out: one `VarianceShift` per
BatchNormalization layer, keyed by layer name. For each BN layer a probe model runs from the
model's input to the BN layer's input and measures, per channel, the variance over all axes but
the BN axis:

- `moving_vs_real`: the inference-mode variance against the layer's `moving_variance`, as
  max over channels of max(real / moving, moving / real); 1 means BN normalizes at inference
  with the statistics it really meets.
- `train_vs_infer`: mean over channels of the probe's training-mode variance (dropout and
  noise active, earlier BN layers on batch statistics) over its inference-mode variance. It
  does not depend on the moving average having converged; dropout with rate r directly before
  BN gives at least 1 / (1 - r).

The BN epsilon is added to every variance before a ratio is taken, as BN itself does, so dead
channels do not divide by zero. The model's weights (moving statistics included) are left as
they were. Only top-level layers of the model are examined.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

__all__ = ["VarianceShift", "activation_variance", "variance_shift"]


def activation_variance(
    model: keras.Model, x: np.ndarray, training: bool = False
) -> dict[str, float]:
    """Variance of every layer's output on `x`, in layer order.

    Run on the freshly initialised model, it is the self-normalisation check of Klambauer et
    al. (2017): with SELU + lecun_normal the variance stays near 1 through depth; ReLU stacks
    drift away from it. Dropout acts only with `training=True`, which is where AlphaDropout
    keeps the variance and plain dropout after SELU inflates it. A training-mode pass would move
    BN's moving statistics and the dropout seed streams: both are restored afterwards, so
    training that follows is exactly what it would have been.
    """
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    probe = keras.Model(model.input, [layer.output for layer in layers])
    saved = [v.numpy() for v in model.non_trainable_variables]
    outputs = probe(x, training=training)
    for variable, value in zip(model.non_trainable_variables, saved, strict=True):
        variable.assign(value)
    return {
        layer.name: float(np.var(keras.ops.convert_to_numpy(out)))
        for layer, out in zip(layers, outputs, strict=True)
    }


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
    # Training-mode calls update the moving statistics of earlier BN layers: restore them.
    saved = [v.numpy() for v in model.non_trainable_variables]
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    results: dict[str, VarianceShift] = {}
    try:
        for bn in bn_layers:
            probe = keras.Model(inputs, bn.input)
            ndim = len(bn.input.shape)
            axis = bn.axis % ndim
            eps = float(bn.epsilon)
            real = _channel_variance(probe, x, batch_size, axis, training=False) + eps
            moving = np.asarray(keras.ops.convert_to_numpy(bn.moving_variance), np.float64) + eps
            shift = float(np.max(np.maximum(real / moving, moving / real)))
            trained = _channel_variance(probe, x, batch_size, axis, training=True) + eps
            ratio = float(np.mean(trained / real))
            results[bn.name] = VarianceShift(shift, ratio, int(real.shape[0]))
    finally:
        for variable, value in zip(model.non_trainable_variables, saved, strict=True):
            variable.assign(value)
    return results
