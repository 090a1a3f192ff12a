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

Only top-level layers of the model are examined. Every pass runs a traced function kept on the
model (`Passes`): a model reused for another seed runs its diagnostics without tracing again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

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


class Passes:
    """The traced forward passes of one model: every top-level layer's output, in either mode.

    One probe model (the model's input to every top-level layer's output) and one traced
    function per mode, with the batch dimension left open, so each traces once per model and
    every later diagnostic on that model (later seeds of a reused model included) runs the
    traced graph instead of stepping an LSTM through time eagerly (0.15-0.25 s a pass).
    `traces` counts the tracings (tests check that a reused model does not retrace).
    """

    def __init__(self, model: keras.Model) -> None:
        self.layers = [
            layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)
        ]
        probe = keras.Model(model.input, [layer.output for layer in self.layers])
        shape = (None, *tuple(model.input.shape)[1:])
        spec = tf.TensorSpec(shape, model.input.dtype)
        self.traces = 0

        def traced(training: bool) -> Callable[[Any], Any]:
            def passes(x: Any) -> Any:
                self.traces += 1  # Python runs here only while tracing
                return probe(x, training=training)

            return tf.function(passes, input_signature=[spec], autograph=False)

        self._passes = {False: traced(False), True: traced(True)}

    def __call__(self, x: np.ndarray, training: bool) -> list[np.ndarray]:
        """Every top-level layer's output on `x` (no state restored: see `_restored`)."""
        x = np.asarray(x, dtype=np.float32)
        with _as_written():
            outputs = self._passes[training](x)
        return [keras.ops.convert_to_numpy(out) for out in outputs]

    @staticmethod
    def kept(model: keras.Model) -> Passes | None:
        """The passes kept on the model, if any were made."""
        passes = getattr(model, _PASSES, None)
        return passes if isinstance(passes, Passes) else None

    @staticmethod
    def of(model: keras.Model) -> Passes:
        """The model's passes, made on first use and kept on the model (they live as long)."""
        passes = getattr(model, _PASSES, None)
        if passes is None:
            passes = Passes(model)
            object.__setattr__(model, _PASSES, passes)  # past Keras' attribute tracking
        return passes


_PASSES = "_bnplace_passes"


@contextlib.contextmanager
def _as_written() -> Iterator[None]:
    """Run traced passes without Grappler's graph rewrites: with them an LN-LSTM's output
    differs from the eager pass in the last float32 bit; without, the values are the eager
    ones, bit for bit (tests/test_diagnose.py). TensorFlow keeps one instantiation per
    setting, so switching costs nothing after the first call; the training functions keep
    Grappler (they are instantiated and run outside this block)."""
    options = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        yield
    finally:
        was = bool(options.get("disable_meta_optimizer", False))
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": was})


def layer_outputs(
    model: keras.Model, x: np.ndarray, training: bool = False
) -> dict[str, np.ndarray]:
    """Every top-level layer's output on `x`, in layer order (the last is the model's output),
    from one traced pass of a probe model."""
    passes = Passes.of(model)
    with _restored(model):
        outputs = passes(x, training)
    return {layer.name: out for layer, out in zip(passes.layers, outputs, strict=True)}


def activation_variance(
    model: keras.Model, x: np.ndarray, training: bool = False
) -> dict[str, float]:
    """Variance of every layer's output on `x`, in layer order (over the real steps of padded
    sequences, in the outputs that still have one step per input step).

    Run on the freshly initialised model, it is the self-normalisation check of Klambauer et
    al. (2017): with SELU + lecun_normal the variance stays near 1 through depth; ReLU stacks
    drift away from it. Dropout acts only with `training=True`, which is where AlphaDropout
    keeps the variance and plain dropout after SELU inflates it. Run on the trained model, it
    shows whether training kept that fixed point.
    """
    real = _real_steps(model, x)
    return {
        name: float(np.var(_on_real_steps(out, real)))
        for name, out in layer_outputs(model, x, training).items()
    }


def _real_steps(model: keras.Model, x: np.ndarray) -> np.ndarray | None:
    """(n, time) True at the real steps of padded sequences, from the model's Masking layer
    (`padding: mask`); None for a model without one."""
    masking = next((ly for ly in model.layers if isinstance(ly, keras.layers.Masking)), None)
    if masking is None:
        return None
    return np.asarray(np.any(np.asarray(x) != masking.mask_value, axis=-1))


def _on_real_steps(out: np.ndarray, real: np.ndarray | None) -> np.ndarray:
    """`out` (n, time, ...) at the real steps only, while it has one step per input step."""
    if real is None or out.ndim < 3 or out.shape[:2] != real.shape:
        return out
    return out[real]


def _data_input(layer: keras.layers.Layer) -> tuple[Any, bool]:
    """A layer's data input, and whether Keras hands it a padding mask too (then `input` is
    the list [data, mask])."""
    inputs = layer.input
    return (inputs[0], True) if isinstance(inputs, list) else (inputs, False)


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

    passes = Passes.of(model)
    if predicted is None:
        predicted = passes(x, training=False)[-1]
    with _restored(model):
        trained = passes(x, training=True)[-1]
    return mean_loss(predicted), mean_loss(trained)


@dataclass(frozen=True)
class VarianceShift:
    """The variance-shift measurements of one BatchNormalization layer."""

    moving_vs_real: float
    train_vs_infer: float
    channels: int


def _channel_variance(
    passes: Passes,
    inputs: list[int],
    x: np.ndarray,
    batch_size: int,
    axes: list[int],
    training: bool,
    real: list[np.ndarray | None],
) -> list[np.ndarray]:
    """Per-channel variance (float64), over everything but its axis, of each BN layer's input:
    `inputs[k]` is the index of the layer whose output feeds BN layer k (-1: the model input);
    `real[k]`, for a BN that Keras hands a padding mask, the real steps of `x` (n, time): the
    padded ones are left out, as that BN leaves them out of its own statistics.
    One pass per batch serves every BN layer: each layer's dropout stream advances once per
    batch, as it did with one probe model per BN layer."""
    totals: list[Any] = [None] * len(inputs)
    squares: list[Any] = [None] * len(inputs)
    count = [0] * len(inputs)
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        outputs = passes(batch, training)
        for k, (index, axis) in enumerate(zip(inputs, axes, strict=True)):
            out = batch if index < 0 else outputs[index]
            steps = real[k]
            if steps is not None and axis == out.ndim - 1:  # channels last: drop padded steps
                out = _on_real_steps(out, steps[start : start + batch_size])
                axis = out.ndim - 1
            out = np.moveaxis(out.astype(np.float64), axis, -1)
            out = out.reshape(-1, out.shape[-1])
            total, square = out.sum(axis=0), (out**2).sum(axis=0)
            totals[k] = total if totals[k] is None else totals[k] + total
            squares[k] = square if squares[k] is None else squares[k] + square
            count[k] += out.shape[0]
    means = [total / n for total, n in zip(totals, count, strict=True)]
    return [
        np.maximum(square / n - mean**2, 0.0)
        for square, mean, n in zip(squares, means, count, strict=True)
    ]


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
    passes = Passes.of(model)
    producers = {id(layer.output): index for index, layer in enumerate(passes.layers)}
    producers[id(model.inputs[0])] = -1
    # a top-level BN takes one top-level layer's output (or the model's input)
    fed = [_data_input(bn) for bn in bn_layers]
    inputs = [producers[id(tensor)] for tensor, _ in fed]
    axes = [bn.axis % len(tensor.shape) for bn, (tensor, _) in zip(bn_layers, fed, strict=True)]
    steps = _real_steps(model, x)
    masks = [steps if masked else None for _, masked in fed]
    real = _channel_variance(passes, inputs, x, batch_size, axes, False, masks)
    # training-mode passes move BN's moving statistics and the dropout streams: restored
    with _restored(model):
        trained = _channel_variance(passes, inputs, x, batch_size, axes, True, masks)
    results: dict[str, VarianceShift] = {}
    for bn, real_var, trained_var in zip(bn_layers, real, trained, strict=True):
        eps = float(bn.epsilon)
        real_var, trained_var = real_var + eps, trained_var + eps
        moving = np.asarray(keras.ops.convert_to_numpy(bn.moving_variance), np.float64) + eps
        shift = float(np.max(np.maximum(real_var / moving, moving / real_var)))
        ratio = float(np.mean(trained_var / real_var))
        results[bn.name] = VarianceShift(shift, ratio, int(real_var.shape[0]))
    return results
