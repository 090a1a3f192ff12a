"""Seed a trial and clear Keras' state between trials, without throwing away TensorFlow's kernels.

In: a trial's seed, and whether the trial trains a kept (already traced) model. Out: Python's,
NumPy's, Keras' and TensorFlow's global seeds set exactly as `keras.utils.set_random_seed`
sets them, and Keras' global state reset as `keras.backend.clear_session` resets it.

Why not those two calls as they are: each ends by clearing TensorFlow's eager kernel cache
(`Context._set_global_seed`, `clear_session`), so every traced function of a kept model
instantiates all its kernels again at its first call of the next trial. On the tests' tiny
models a `fit` of two epochs cost 0.16 s with the cache kept and 0.50 s after
`tf.random.set_seed`; benchmarks/kernel_cache.py times whole reused trials both ways.
The cache holds no state a trial's numbers depend on here: Keras 3 draws weights, dropout and
noise from stateless ops seeded by its `SeedGenerator` variables (which `bnplace.trial.reuse`
resets), and the feed's shuffle is a fresh dataset every trial, seeded from the global seed and
the trial's seed. Results are bit-identical to the documented calls' (tests/test_reuse.py). The
cache is still cleared before a model is built afresh (a new variant): the kernels of models
no longer kept are freed there, so memory stays bounded over long sweeps.

TensorFlow keeps its eager global seed in two private attributes of its context; where they are
missing (another TensorFlow), `keras.utils.set_random_seed` is called as it is.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import keras
import tensorflow as tf
from tensorflow.python.eager import context


def seed_trial(seed: int) -> None:
    """`keras.utils.set_random_seed(seed)` minus its clearing of TensorFlow's kernel cache:
    weight init, data order and dropout masks follow from `seed` alone."""
    eager = context.context()
    if not (hasattr(eager, "_seed") and hasattr(eager, "_rng")):
        keras.utils.set_random_seed(seed)
        return
    with tf.Graph().as_default():  # tf.random.set_seed seeds this graph, not the eager context
        keras.utils.set_random_seed(seed)  # Python's, NumPy's and Keras' global seeds
    # what Context._set_global_seed sets, without its TFE_ContextClearCaches
    eager._seed = seed
    eager._rng = random.Random(seed)


def clear_keras_state(*, keep_kernels: bool, collect: bool = True) -> None:
    """`keras.backend.clear_session()`: Keras' global state reset (layer-name counters, the
    default graph) and, with `collect`, a full garbage collection (its `free_memory`);
    TensorFlow's kernel cache is kept with `keep_kernels` (the trial reuses a kept model's
    traced functions)."""
    if not keep_kernels:
        keras.backend.clear_session(free_memory=collect)
        return
    with _kernel_cache_kept():
        keras.backend.clear_session(free_memory=collect)


@contextlib.contextmanager
def _kernel_cache_kept() -> Iterator[None]:
    """While inside, `context.context().clear_kernel_cache()` (which `clear_session` calls)
    does nothing."""
    eager = context.context()
    eager.clear_kernel_cache = lambda: None  # an instance attribute hides the method
    try:
        yield
    finally:
        del eager.clear_kernel_cache
