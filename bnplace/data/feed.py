"""Feed a `Dataset` split to Keras through tf.data, materialising the windows only when small.

In: a prepared `Dataset`, a split name, a batch size, and whether (and with which seed) to
shuffle. Out: a batched, prefetched `tf.data.Dataset` of (x, y). A split of up to
`SLICED_FLOATS` floats of windows is sliced from a copy of its windows; a larger one gathers
each batch's windows from the stored series on the fly, so memory stays proportional to the
series (not to windows x window length). Batches are the same windows, in the same order when
not shuffled, as `Dataset.split(name)`. Shuffling uses a seeded tf.data shuffle: a fixed seed
gives the same order every run, a new order every epoch.

benchmarks/data_feed.py measured this feed against numpy arrays and a cached
`from_tensor_slices` pipeline: all three within a few percent for ~2,000 and ~21,000 windows
of 48 steps (batch 64, 2 epochs, one TF thread), so the feed is chosen for its memory bound.
A split whose windows fit in `SLICED_FLOATS` floats is sliced from its windows instead: every
epoch opens a new iterator on the train and the validation feed, and an iterator over a `map`
instantiates the map's function anew, ~8 ms against ~0.4 ms over slices, and slicing a batch
costs less than gathering it. The studies' trials take 0.56x the time sliced on two short series
(a few batches an epoch, hundreds of epochs) and 0.65x on two long ones (taylor, co2), every
metric `==` (benchmarks/feed_epochs.py); tests/test_data_train.py checks that both feeds give
the same arrays, shuffled epoch by epoch in the same order.
The feeds read in order (validation, test) are built once per dataset, split and batch size and
kept (a few, least recently used out first): each later trial of the worker iterates the same
pipeline instead of copying its windows or tracing its gather again (~20 ms a gathered feed
on the tests' tiny models).
Imported only by training code (imports TensorFlow at module level).
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from bnplace.data.dataset import Dataset


def tf_dataset(
    data: Dataset,
    split: str,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    targets: bool = True,
) -> tf.data.Dataset:
    """Batches of (x, y) (or x alone with `targets=False`) for `model.fit/evaluate/predict`."""
    if not shuffle:
        return _in_order(data, split, batch_size, targets)
    return _batches(data, split, batch_size, shuffle=True, seed=seed, targets=targets)


# Splits up to this many floats of windows (16 MiB) are sliced from their materialised windows;
# larger ones gather each batch's windows from the series.
SLICED_FLOATS = 1 << 22


@functools.lru_cache(maxsize=8)  # a `Dataset` hashes by identity
def _in_order(data: Dataset, split: str, batch_size: int, targets: bool) -> tf.data.Dataset:
    return _batches(data, split, batch_size, shuffle=False, seed=0, targets=targets)


def _batches(
    data: Dataset, split: str, batch_size: int, *, shuffle: bool, seed: int, targets: bool
) -> tf.data.Dataset:
    windows = data.split(split)
    if windows.x.size <= SLICED_FLOATS:
        return _sliced(
            windows.x, windows.y, batch_size, shuffle=shuffle, seed=seed, targets=targets
        )
    part = data.part(split)
    n = windows.n
    inputs = tf.constant(part.inputs)
    labels = tf.constant(windows.y)
    if data.task == "forecast":
        offsets = tf.range(data.window, dtype=tf.int64)
        stride = tf.constant(data.stride, dtype=tf.int64)

        def take(idx: tf.Tensor) -> tf.Tensor:
            return tf.gather(inputs, idx[:, None] * stride + offsets[None, :])
    else:

        def take(idx: tf.Tensor) -> tf.Tensor:
            return tf.gather(inputs, idx)

    def batch(idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor] | tf.Tensor:
        x = take(idx)
        return (x, tf.gather(labels, idx)) if targets else x

    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).map(batch, num_parallel_calls=1).prefetch(tf.data.AUTOTUNE)


def _sliced(
    x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool, seed: int, targets: bool
) -> tf.data.Dataset:
    """The same batches as `_batches`' gather, sliced from materialised windows: the shuffle
    draws the same permutation of n elements whatever they hold."""
    windows = np.ascontiguousarray(x)  # x is a strided view of the series
    ds = tf.data.Dataset.from_tensor_slices((windows, y) if targets else windows)
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
