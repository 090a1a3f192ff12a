"""Keras' random draws in training (dropout masks, noise) made with the Philox algorithm by name.

In: nothing. Out: `philox_draws()`, a context inside which Keras' TensorFlow backend draws
dropout masks (Dropout, SpatialDropout1D, an LSTM's dropout and recurrent_dropout), uniform
numbers (AlphaDropout) and normal ones (GaussianNoise, GaussianDropout) with `alg="philox"`,
where Keras leaves TensorFlow's `alg="auto_select"`. The trial worker trains inside it.

Why: under XLA on a CPU, auto_select draws Philox's numbers too, but derives Philox's key and
counter from the seed with `StatelessRandomGetKeyCounter`, and XLA:CPU's program for such a draw
slows with its size: a 32 x 48 x 32 uniform draw took 25 ms jitted against 0.39 ms with Philox
named (0.54 ms in graphs; a 4 x 8 draw the same either way). So a training step with
Dropout(0.3) took 2.7-3.3x the graphs' time under `jit_compile` where it takes 0.4-0.7x with
Philox named (benchmarks/model_size.py --jit --after-relu dropout). Naming Philox derives the
same key with a small Philox draw of its own: every number is bit-identical, eager, in graphs
and under XLA (tests/test_draws.py compares each layer's draws and tests/test_reuse.py whole
trials with Keras' own).

How: the three functions of `keras.src.backend.tensorflow.random` that layers call while they are
traced are replaced by copies that name the algorithm, and put back on leaving; Keras' own seed
handling (`draw_seed`, `_cast_seed`, the concrete noise shape) is called as it is. A function
traced inside keeps Philox after leaving (a kept model's traces). Where that module or those
helpers are missing (another Keras, another backend) nothing is replaced. The test compares
each copy with Keras' function, so a Keras whose function changes fails it.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

ALGORITHM = "philox"
_KERAS_TF_RANDOM = "keras.src.backend.tensorflow.random"
_HELPERS = ("draw_seed", "_cast_seed", "_get_concrete_noise_shape")


@contextlib.contextmanager
def philox_draws() -> Iterator[None]:
    """Inside: Keras' dropout, uniform and normal draws name Philox (a no-op where Keras'
    TensorFlow backend is not the one in use or lacks the helpers the copies call)."""
    module = _keras_tf_random()
    if module is None:
        yield
        return
    # only what is Keras' own: a context entered inside another puts back nothing on leaving.
    # (Workers train one trial at a time; were two threads to, the first to leave would put
    # Keras' own back under the other: the same numbers, XLA's slow derivation of the key.)
    replaced = {
        n: getattr(module, n) for n, copy in _COPIES.items() if getattr(module, n) is not copy
    }
    for name in replaced:
        setattr(module, name, _COPIES[name])
    try:
        yield
    finally:
        for name, original in replaced.items():
            setattr(module, name, original)


def _keras_tf_random() -> ModuleType | None:
    try:
        module = importlib.import_module(_KERAS_TF_RANDOM)
    except ImportError:
        return None
    if not all(hasattr(module, name) for name in (*_HELPERS, "dropout", "uniform", "normal")):
        return None
    return module


# The copies: Keras 3's own bodies (keras/src/backend/tensorflow/random.py), the algorithm named.


def _dropout(inputs: Any, rate: float, noise_shape: Any = None, seed: Any = None) -> Any:
    import tensorflow as tf
    from keras.src.backend.tensorflow import random as keras_draws

    if rate == 1.0:
        return tf.zeros_like(inputs)
    if rate == 0.0:
        return inputs
    noise_shape = keras_draws._get_concrete_noise_shape(inputs, noise_shape)
    return tf.nn.experimental.stateless_dropout(
        inputs, rate=rate, noise_shape=noise_shape, seed=_seed(seed), rng_alg=ALGORITHM
    )


def _uniform(
    shape: Any, minval: float = 0.0, maxval: float = 1.0, dtype: Any = None, seed: Any = None
) -> Any:
    import keras
    import tensorflow as tf

    dtype = dtype or keras.config.floatx()
    bounds = {"minval": tf.cast(minval, dtype), "maxval": tf.cast(maxval, dtype)}
    return tf.random.stateless_uniform(shape, _seed(seed), dtype=dtype, alg=ALGORITHM, **bounds)


def _normal(
    shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = None, seed: Any = None
) -> Any:
    import keras
    import tensorflow as tf

    dtype = dtype or keras.config.floatx()
    return tf.random.stateless_normal(shape, _seed(seed), mean, stddev, dtype, alg=ALGORITHM)


def _seed(seed: Any) -> Any:
    """Keras' seed handling as it is: an int, a `SeedGenerator` or None -> int32 [2] tensor."""
    from keras.src.backend.tensorflow import random as keras_draws

    return keras_draws._cast_seed(keras_draws.draw_seed(seed))


_COPIES = {"dropout": _dropout, "uniform": _uniform, "normal": _normal}
