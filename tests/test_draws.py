"""`philox_draws`: Keras' dropout masks and noise drawn with Philox named, equal to Keras' own.

Every draw inside the context is `==` to Keras' function's (auto_select is Philox here), eager,
in graphs and under XLA, for each layer kind that draws in training and each way Keras seeds a
draw; under XLA each layer's compiled step no longer derives the key with the op that makes it
slow; leaving the context puts Keras' functions back. tests/test_reuse.py compares whole
trials (every stochastic kind bnplace builds) trained inside the context with Keras' own.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.backend.tensorflow import random as keras_draws

from bnplace.trial.draws import philox_draws

INPUTS = np.random.default_rng(0).normal(size=(4, 6, 5)).astype("float32")

# each layer that draws in training, and what it calls: dropout, uniform or normal
LAYERS = {
    "dropout": lambda: keras.layers.Dropout(0.3, seed=7),
    "spatial_dropout": lambda: keras.layers.SpatialDropout1D(0.4, seed=7),
    "alpha_dropout": lambda: keras.layers.AlphaDropout(0.2, seed=7),
    "gaussian_dropout": lambda: keras.layers.GaussianDropout(0.3, seed=7),
    "gaussian_noise": lambda: keras.layers.GaussianNoise(0.5, seed=7),
    "lstm_dropouts": lambda: keras.layers.LSTM(
        3, dropout=0.3, recurrent_dropout=0.4, seed=7, return_sequences=True
    ),
}


SLOW_KEY_OP = "StatelessRandomGetKeyCounter"  # how auto_select turns a seed into Philox's key


def _layer_outputs(make: object, mode: str) -> tuple[list[np.ndarray], str]:
    """Three training calls of one layer (its seed generator advancing): eager, traced into
    graphs, or compiled by XLA; and under XLA the compiled program (HLO text)."""
    keras.utils.set_random_seed(1)
    layer = make()  # type: ignore[operator]

    def call(x: tf.Tensor) -> tf.Tensor:
        return layer(x, training=True)

    if mode == "eager":
        return [np.asarray(call(INPUTS)) for _ in range(3)], ""
    traced = tf.function(call, jit_compile=mode == "xla")
    outputs = [np.asarray(traced(tf.constant(INPUTS))) for _ in range(3)]
    if mode != "xla":
        return outputs, ""
    return outputs, traced.experimental_get_compiler_ir(tf.constant(INPUTS))(stage="hlo")


@pytest.mark.parametrize("mode", ["eager", "graphs", "xla"])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_a_layer_draws_the_same_numbers_inside_as_with_keras_own_draws(
    kind: str, mode: str
) -> None:
    """Under XLA also what the context is for: auto_select draws Philox's numbers there too,
    but turns the seed into Philox's key and counter with `StatelessRandomGetKeyCounter`, and
    XLA:CPU's program for that draw slows with its size (a 32 x 48 x 32 draw 25 ms against
    0.39 ms with Philox named; 4 x 8 alike). Naming Philox derives the same key with a small
    Philox draw of its own: the program compiled inside holds no such op, which also shows
    each layer's draw went through the context's copy."""
    keras_own, own_program = _layer_outputs(LAYERS[kind], mode)
    with philox_draws():
        philox, philox_program = _layer_outputs(LAYERS[kind], mode)
    assert not np.array_equal(keras_own[0], keras_own[1])  # the draws advance: masks do differ
    for own, named in zip(keras_own, philox, strict=True):
        np.testing.assert_array_equal(named, own)
    if mode == "xla":
        assert SLOW_KEY_OP in own_program
        assert SLOW_KEY_OP not in philox_program and "rng_philox" in philox_program


@pytest.mark.parametrize("seed", [7, "generator"])
def test_each_replaced_function_equals_keras_own_for_every_argument(seed: object) -> None:
    """The functions themselves, with the arguments layers never pass (a noise shape with a
    fixed size, bounds, a dtype) and both kinds of seed (an int, a `SeedGenerator`)."""

    def draws() -> list[np.ndarray]:
        def fresh() -> object:
            return keras.random.SeedGenerator(3) if seed == "generator" else seed

        x = tf.constant(INPUTS)
        return [
            np.asarray(keras.random.dropout(x, 0.25, noise_shape=(None, 1, 5), seed=fresh())),
            np.asarray(keras.random.dropout(x, 0.0, seed=fresh())),
            np.asarray(keras.random.dropout(x, 1.0, seed=fresh())),
            np.asarray(keras.random.uniform((3, 4), -2.0, 5.0, "float64", seed=fresh())),
            np.asarray(keras.random.normal((3, 4), 1.5, 0.2, seed=fresh())),
        ]

    keras_own = draws()
    with philox_draws():
        philox = draws()
    for own, named in zip(keras_own, philox, strict=True):
        assert own.dtype == named.dtype
        np.testing.assert_array_equal(named, own)


def test_leaving_the_context_puts_keras_functions_back() -> None:
    before = (keras_draws.dropout, keras_draws.uniform, keras_draws.normal)
    with pytest.raises(RuntimeError), philox_draws():
        assert keras_draws.dropout is not before[0]
        raise RuntimeError("a trial that raises")
    assert (keras_draws.dropout, keras_draws.uniform, keras_draws.normal) == before
    with philox_draws():
        with philox_draws():  # inside another: leaving it keeps the outer one's copies
            pass
        assert keras_draws.dropout is not before[0]
    assert keras_draws.dropout is before[0]
