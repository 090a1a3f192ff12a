"""A 9-variant grid two ways: a hand-written Keras loop against `bnplace run`, with the ratio.

In: a real series from a package (pmdarima's sunspots, the `packaged` extra) or, where that
extra is not installed, synthetic mackey_glass (the script says which). The grid: BN nowhere /
before / after the Conv1D activation x nothing / BN / LN after the LSTM(16), `--seeds` 10 seeds,
`--epochs` 2, batch 64. Out: the wall time of
    hand-written  one process, TensorFlow's default threads, a fresh model per trial, fit on
                  the numpy windows bnplace prepared, then predict and the test RMSE;
    bnplace       `bnplace run` with default `--jobs`, full logging and comparison;
their ratio (bnplace / hand-written; target <= 0.45), and bnplace's per-trial fixed cost
(a trial run's duration less its epochs) against its per-epoch cost, read from its MLflow
trial runs, with fresh and reused trials apart.
Run: python benchmarks/grid.py [--seeds 10] [--epochs 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DATA_PACKAGED = "{source: packaged, name: sunspots, window: 24}"
DATA_SYNTHETIC = (
    "{source: synthetic, generator: mackey_glass, length: 2820, features: 1, window: 24}"
)
CONFIG = """
experiment: grid
data: DATA
model:
  - conv1d: {id: conv, filters: 16, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: lstm, units: 16}
sweep:
  arms:
    conv: {none: {}, bn_pre: {conv.pre_act: [batch_norm]}, bn_post: {conv.post_act: [batch_norm]}}
  axes:
    lstm.after: {none: [], bn: [batch_norm], ln: [layer_norm]}
  seeds: SEEDS
train: {epochs: EPOCHS, batch_size: 64}
"""


def handwritten(config: Path) -> float:
    """The grid as people write it: a loop over variants and seeds, a fresh model each."""
    import keras
    import numpy as np

    from bnplace.run.sweep import plan_sweep

    prepared = plan_sweep(config)
    (dataset,) = prepared.datasets.values()
    train, val, test = (dataset.split(s) for s in ("train", "val", "test"))
    started = time.perf_counter()
    for variant in prepared.plan.variants:
        order = variant.layer_order.split(">")
        for seed in prepared.plan.seeds:
            keras.utils.set_random_seed(seed)
            x = inputs = keras.Input(shape=(dataset.window, dataset.features))
            x = keras.layers.Conv1D(16, 3, padding="causal")(x)
            if order[1] == "BN":
                x = keras.layers.BatchNormalization()(x)
            x = keras.layers.ReLU()(x)
            if "BN" in order[2:3]:
                x = keras.layers.BatchNormalization()(x)
            x = keras.layers.LSTM(16)(x)
            if order[-2] == "BN":
                x = keras.layers.BatchNormalization()(x)
            elif order[-2] == "LN":
                x = keras.layers.LayerNormalization()(x)
            model = keras.Model(inputs, keras.layers.Dense(1)(x))
            model.compile(optimizer="adam", loss="mse", metrics=["mae"])
            model.fit(
                train.x,
                train.y,
                validation_data=(val.x, val.y),
                batch_size=64,
                epochs=prepared.plan.variants[0].config.train.epochs,
                verbose=0,
            )
            predicted = model.predict(test.x, verbose=0)
            float(np.sqrt(np.mean((predicted - test.y) ** 2)))
            keras.backend.clear_session()
    return time.perf_counter() - started


def bnplace_run(config: Path) -> tuple[float, list]:
    from mlflow import MlflowClient

    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bnplace", "run", config.name],
        cwd=config.parent,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    wall = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"bnplace run failed:\n{done.stderr[-3000:]}")
    client = MlflowClient(tracking_uri=f"sqlite:///{config.parent / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("grid")
    found = client.search_runs(
        [experiment.experiment_id], "tags.`bnplace.kind` = 'trial'", max_results=1000
    )
    return wall, found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    packaged = importlib.util.find_spec("pmdarima") is not None
    data = DATA_PACKAGED if packaged else DATA_SYNTHETIC
    text = CONFIG.replace("DATA", data).replace("SEEDS", str(args.seeds))
    text = text.replace("EPOCHS", str(args.epochs))
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "grid.yaml"
        config.write_text(text)
        source = "pmdarima sunspots" if packaged else "synthetic mackey_glass (no pmdarima)"
        print(f"data: {source}")
        wall, trials = bnplace_run(config)
        hand = handwritten(config)
    print(f"9 variants x {args.seeds} seeds x {args.epochs} epochs")
    print(f"  hand-written Keras loop: {hand:8.1f} s")
    print(
        f"  bnplace run:             {wall:8.1f} s   ratio bnplace / hand-written {wall / hand:.2f}"
    )
    for kind in ("fresh", "reused"):
        runs = [r for r in trials if r.data.tags.get("bnplace.reuse") == kind]
        if not runs:
            continue
        epoch = statistics.median(r.data.metrics["time_per_epoch_s"] for r in runs)
        trial = statistics.median((r.info.end_time - r.info.start_time) / 1000 for r in runs)
        train = statistics.median(r.data.metrics["train_time_s"] for r in runs)
        fixed = trial - args.epochs * epoch
        print(
            f"  {kind:6s} trials: {len(runs):3d}, trial {trial:.2f} s, train_time_s {train:.2f} s, "
            f"per epoch {epoch:.2f} s, fixed cost {fixed:.2f} s ({fixed / epoch:.1f} epochs)"
        )


if __name__ == "__main__":
    main()
