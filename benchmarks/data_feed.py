"""How should the trainer feed Keras: numpy arrays or tf.data? Measures it, prints ratios.

In: nothing (synthetic data: sine_mix, 4 channels, ~2,000 train windows of 48 steps). Out:
seconds per `model.fit` (batch 64, 2 epochs, tiny Conv1D(16) -> ReLU -> LSTM(16) -> Dense)
for three feeds, the median of `--repeats` alternating runs, each on a fresh model:
    arrays      model.fit(x, y, shuffle=True): Keras slices the numpy arrays itself
    tf.data     from_tensor_slices((x, y)).cache().shuffle().batch().prefetch()
    tf.data/ix  windows gathered from the series inside tf.data (memory ~ the series, not
                windows x window length): range(n).shuffle().batch().map(gather).prefetch()
and the ratio of each to `arrays` (> 1: slower than arrays). TensorFlow runs with one intra-
and one inter-op thread unless `--threads` says otherwise, as the trainer's workers do.
Run: python benchmarks/data_feed.py [--repeats 3] [--threads 1] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=3000)
    args = parser.parse_args()

    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras
    from pydantic import TypeAdapter

    from bnplace.config.data import DataConfig
    from bnplace.data import prepare

    spec = TypeAdapter(DataConfig).validate_python(
        {"source": "synthetic", "generator": "sine_mix", "features": 4, "length": args.length}
    )
    data = prepare(spec)
    train = data.split("train")
    x, y = train.x, train.y
    part = data.part("train")
    window, n = data.window, train.n

    def model() -> keras.Model:
        inputs = keras.Input((window, data.features))
        h = keras.layers.Conv1D(16, 3, padding="causal")(inputs)
        h = keras.layers.Activation("relu")(h)
        h = keras.layers.LSTM(16)(h)
        out = keras.layers.Dense(data.outputs)(h)
        m = keras.Model(inputs, out)
        m.compile(optimizer="adam", loss="mse")
        return m

    def arrays(m: keras.Model) -> None:
        m.fit(x, y, batch_size=args.batch, epochs=args.epochs, shuffle=True, verbose=0)

    def tfdata(m: keras.Model) -> None:
        ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
        ds = ds.shuffle(n, seed=0, reshuffle_each_iteration=True)
        ds = ds.batch(args.batch).prefetch(tf.data.AUTOTUNE)
        m.fit(ds, epochs=args.epochs, shuffle=False, verbose=0)

    def tfdata_index(m: keras.Model) -> None:
        series = tf.constant(part.inputs)
        targets = tf.constant(y)
        offsets = tf.range(window, dtype=tf.int64)

        def gather(idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            rows = idx[:, None] * data.stride + offsets[None, :]
            return tf.gather(series, rows), tf.gather(targets, idx)

        ds = tf.data.Dataset.range(n).shuffle(n, seed=0, reshuffle_each_iteration=True)
        ds = ds.batch(args.batch).map(gather).prefetch(tf.data.AUTOTUNE)
        m.fit(ds, epochs=args.epochs, shuffle=False, verbose=0)

    feeds = {"arrays": arrays, "tf.data": tfdata, "tf.data/ix": tfdata_index}
    times: dict[str, list[float]] = {name: [] for name in feeds}
    for repeat in range(args.repeats + 1):  # the first round warms TensorFlow up, not counted
        for name, feed in feeds.items():
            keras.backend.clear_session()
            keras.utils.set_random_seed(repeat)
            m = model()
            start = time.perf_counter()
            feed(m)
            if repeat:
                times[name].append(time.perf_counter() - start)

    print(
        f"{n} windows x {window} steps x {data.features} channels, batch {args.batch}, "
        f"{args.epochs} epochs, {args.threads or 'default'} TF thread(s), "
        f"median of {args.repeats}"
    )
    base = statistics.median(times["arrays"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<11} {median:7.3f} s   ratio to arrays {median / base:5.2f}")


if __name__ == "__main__":
    main()
