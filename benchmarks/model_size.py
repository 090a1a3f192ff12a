"""What would a study on a model of 50k parameters cost? Measures a training step, prints ratios.

In: nothing (random windows, one channel, at window lengths the v3 studies use). Out: the
median seconds per optimizer step (batch 32, `fit` on 2,048 windows, steps_per_execution 8, the
first epoch left out as tracing) of the studies' model, Conv1D(16) -> LSTM(16) -> Dense (~2.2k
parameters), and of the same model at >= 50k parameters, Conv1D(32) -> LSTM(100) -> Dense
(~53k), each built by bnplace's builder, and the ratio large / small per window. A study's time
is mostly training steps, so the ratio is about what a v3 study would cost at that size
(#28 asks for one study repeated on a model of >= 50k parameters). TensorFlow runs one intra-
and one inter-op thread, as each trial of `--jobs 2` does. `--jit` also times each model
compiled by XLA (`jit_compile=True`, as a study with `train.jit_compile: true` runs) and prints
its ratio to the graphs'; `--after-relu` places BN (momentum 0.9), Dropout(0.3) or both after
the Conv1D's ReLU; every model draws its masks as a trial does (`bnplace.trial.draws`).
Run: python benchmarks/model_size.py [--repeats 3] [--windows 12 48] [--jit] [--after-relu dropout]
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
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

SIZES = {"studies' model": (16, 16), ">= 50k model": (32, 100)}  # (conv filters, lstm units)


# what `--after-relu` places after the Conv1D's ReLU
PLACED = {"nothing": (), "bn": ("bn",), "dropout": ("dropout",), "bn_dropout": ("bn", "dropout")}


def _spec(window: int, filters: int, units: int, after_relu: str = "nothing"):  # -> ModelSpec
    from bnplace.plan.spec import LayerSpec, ModelSpec

    placed = {
        "bn": LayerSpec.of("batch_norm", "conv", momentum=0.9),
        "dropout": LayerSpec.of("dropout", "conv", rate=0.3),
    }
    layers = (
        LayerSpec.of("conv1d", "conv", filters=filters, kernel_size=3, padding="causal"),
        LayerSpec.of("activation", "conv", activation="relu"),
        *(placed[name] for name in PLACED[after_relu]),
        LayerSpec.of("lstm", "lstm", units=units),
        LayerSpec.of("output", "head", units=1),
    )
    return ModelSpec(window, 1, 1, "forecast", layers)


def seconds_per_step(
    window: int, filters: int, units: int, epochs: int = 3, jit: bool = False, after: str = ""
) -> tuple[float, int]:
    import keras
    import numpy as np

    from bnplace.build import build_model
    from bnplace.trial.draws import philox_draws

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2048, window, 1)).astype("float32")
    y = rng.normal(size=(2048, 1)).astype("float32")
    with philox_draws():  # as a trial draws its masks
        model = build_model(_spec(window, filters, units, after or "nothing"))
        model.compile(keras.optimizers.Adam(0.003), "mse", steps_per_execution=8, jit_compile=jit)
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)  # tracing
        start = time.perf_counter()
        model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    return (time.perf_counter() - start) / (epochs * 2048 // 32), model.count_params()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--windows", type=int, nargs="+", default=[12, 48])
    parser.add_argument("--jit", action="store_true", help="also time each model under XLA")
    parser.add_argument("--after-relu", choices=sorted(PLACED), default="nothing")
    args = parser.parse_args()
    modes = (False, True) if args.jit else (False,)
    for window in args.windows:
        times: dict[tuple[str, bool], list[float]] = {(n, j): [] for n in SIZES for j in modes}
        params: dict[str, int] = {}
        for _ in range(args.repeats):  # alternating, so a load change hits every arm
            for name, (filters, units) in SIZES.items():
                for jit in modes:
                    seconds, params[name] = seconds_per_step(
                        window, filters, units, jit=jit, after=args.after_relu
                    )
                    times[name, jit].append(seconds)
        medians = {arm: statistics.median(values) for arm, values in times.items()}
        for name in SIZES:
            print(
                f"window {window:3d}  {name:15s} {params[name]:7,d} params  "
                f"{medians[name, False] * 1000:6.2f} ms/step"
                + (f", XLA {medians[name, True] * 1000:6.2f} ms/step" if args.jit else "")
            )
            if args.jit:
                ratio = medians[name, True] / medians[name, False]
                print(f"window {window:3d}  {name}: XLA / graphs {ratio:.2f}x")
        small, large = (medians[name, False] for name in SIZES)
        print(f"window {window:3d}  ratio >= 50k / studies' model: {large / small:.2f}x")


if __name__ == "__main__":
    main()
