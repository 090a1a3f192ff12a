"""What does bnplace add to one trial? bnplace against a hand-written Keras script, with ratios.

In: nothing (synthetic data: sine_mix, 4 channels, 2,801 train windows of 48 steps). Out: the
wall time of one trial of Conv1D(16, no bias) -> BatchNormalization -> ReLU -> LSTM(16) -> Dense(1)
(batch 64, `--epochs` 10, Adam, MSE + MAE, validation every epoch, test predictions at the end):
    arrays        hand-written: the same model in plain Keras, `model.fit` on the prepared numpy
                  arrays, then `model.predict` on the test windows and the test RMSE
    tf.data       the same hand-written script fed by from_tensor_slices().cache().shuffle()
                  .batch().prefetch() (what a user who tunes the input pipeline writes)
    bnplace       `bnplace run <config> --jobs 1 --no-compare` (the CLI, in-process executor),
                  the trial timed from its MLflow trial run being opened to it being closed
All arms get the same prepared arrays (`bnplace.data.prepare` of the same spec), the same seed
and `--threads` TensorFlow threads (1, bnplace's default). Every run is a fresh Python process:
no arm inherits traced functions, caches, a warm allocator or a bigger heap from another, and
each pays what a user pays; arms alternate, and a first round that only warms the disk cache is
not counted. A run during which other processes used more than 5 % of the cores is repeated (up
to `--tries` times; the load of each kept run is printed). Printed: medians of `--repeats` runs
of the trial time and of the whole process (imports, data, store set-up, exit included), their
ratios (bnplace / hand-written; the target, trial ratio <= 1.15, is judged against the faster
hand-written arm), and bnplace's trial split into phases: clear_session, build, compile, fit
(first epoch with its tracing, later epochs), input feed, evaluate, diagnostics (at
initialisation, after training), summary, MLflow logging (per trial; once per sweep apart).
The phases are timed by wrapping bnplace's functions from this script; bnplace itself is not
edited. Takes ~2.5 minutes on 2 cores.
Run: python benchmarks/trial_overhead.py [--repeats 5] [--epochs 10] [--threads 1] [--tries 3]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from machine import busy_seconds, load_line, own_seconds, timed, undisturbed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CONFIG = """\
experiment: trial-overhead
data: {{source: synthetic, generator: sine_mix, length: 4070, features: 4, window: 48, horizon: 1}}
model:
  - conv1d: {{id: conv, filters: 16, kernel_size: 3, padding: causal, activation: relu,
              use_bias: false}}
  - lstm: {{id: lstm, units: 16}}
placements:
  conv.pre_act: [batch_norm]
sweep: {{seeds: [0]}}
train: {{epochs: {epochs}, batch_size: 64, optimizer: adam, learning_rate: 0.001}}
"""
# Per-trial MLflow calls (the rest of the Tracker's calls happen once per sweep).
TRIAL_CALLS = ("start_trial", "log_epochs", "end_trial")
_RUNS = itertools.count(1)  # numbers each run: its own store and output file
WALL = "process"  # the key of a run's wall time, seen from outside its process


def _threads(threads: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def handwritten(config: Path, threads: int, feed: str) -> dict[str, Any]:
    """The hand-written script: what a user writes for this model, on bnplace's prepared data."""
    _threads(threads)
    import keras
    import numpy as np
    import tensorflow as tf
    from keras import layers

    from bnplace.run.sweep import plan_sweep

    prepared = plan_sweep(config)
    data = next(iter(prepared.datasets.values()))
    trial = prepared.plan.trials[0]
    epochs, batch = trial.config.train.epochs, trial.config.train.batch_size
    x, y = (np.ascontiguousarray(a) for a in (data.split("train").x, data.split("train").y))
    xv, yv = (np.ascontiguousarray(a) for a in (data.split("val").x, data.split("val").y))
    xt, yt = (np.ascontiguousarray(a) for a in (data.split("test").x, data.split("test").y))

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.begun = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            times.append(time.perf_counter() - self.begun)

    times: list[float] = []
    phases: dict[str, float] = {}
    start = time.perf_counter()
    keras.utils.set_random_seed(trial.seed)
    inputs = keras.Input((data.window, data.features))
    h = layers.Conv1D(16, 3, padding="causal", use_bias=False)(inputs)
    h = layers.BatchNormalization()(h)
    h = layers.Activation("relu")(h)
    h = layers.LSTM(16)(h)
    model = keras.Model(inputs, layers.Dense(data.outputs)(h))
    mark = time.perf_counter()
    phases["build"] = mark - start
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", metrics=["mae"])
    phases["compile"] = time.perf_counter() - mark
    mark = time.perf_counter()
    if feed == "arrays":
        model.fit(
            x,
            y,
            batch_size=batch,
            epochs=epochs,
            validation_data=(xv, yv),
            shuffle=True,
            verbose=0,
            callbacks=[EpochTimes()],
        )
    else:
        train_ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
        train_ds = train_ds.shuffle(len(x), seed=trial.seed, reshuffle_each_iteration=True)
        train_ds = train_ds.batch(batch).prefetch(tf.data.AUTOTUNE)
        val_ds = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(batch).cache()
        model.fit(
            train_ds, epochs=epochs, validation_data=val_ds, verbose=0, callbacks=[EpochTimes()]
        )
    phases["fit"] = time.perf_counter() - mark
    mark = time.perf_counter()
    predicted = model.predict(xt, batch_size=256, verbose=0)
    rmse = float(np.sqrt(np.mean((predicted - yt) ** 2)))
    phases["evaluate"] = time.perf_counter() - mark
    return {
        "trial": time.perf_counter() - start,
        "phases": phases,
        "first_epoch": times[0],
        "later_epoch": statistics.fmean(times[1:] or times),
        "params": model.count_params(),
        "test_rmse": rmse,
    }


def bnplace_run(config: Path, threads: int, store: Path) -> dict[str, Any]:
    """`bnplace run --jobs 1` in this process, with its trial phases and MLflow calls timed."""
    import keras

    import bnplace.trial.train as train
    from bnplace.console.cli import app
    from bnplace.store.track import Tracker

    phases: dict[str, float] = defaultdict(float)
    calls: dict[str, float] = defaultdict(float)
    span: dict[str, float] = {}
    results: list[Any] = []
    for name, attr in [
        ("build", "build_model"),
        ("feed", "tf_dataset"),
        ("evaluate", "evaluate"),
        ("init_diagnostics", "init_variance"),
        ("diagnostics", "diagnostics"),
        ("summary", "_summary"),
    ]:
        setattr(train, attr, timed(phases, name, getattr(train, attr)))
    keras.backend.clear_session = timed(phases, "clear_session", keras.backend.clear_session)
    keras.Model.compile = timed(phases, "compile", keras.Model.compile)
    keras.Model.fit = timed(phases, "fit", keras.Model.fit)
    run_trial = train.run_trial

    @functools.wraps(run_trial)
    def recording(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = run_trial(*args, **kwargs)
        phases["run_trial"] += time.perf_counter() - started
        results.append(result)
        return result

    train.run_trial = recording  # InProcess imports it from bnplace.trial.train when it runs
    depth = [0]
    for name in [n for n, v in vars(Tracker).items() if callable(v) and not n.startswith("_")]:
        method = getattr(Tracker, name)

        def wrapper(*args: Any, _name: str = name, _method: Any = method, **kwargs: Any) -> Any:
            depth[0] += 1  # time outermost calls only (start_trial calls variant_run)
            started = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                depth[0] -= 1
                now = time.perf_counter()
                if depth[0] == 0:
                    calls[_name] += now - started
                span.setdefault(f"{_name}_begin", started)
                span[f"{_name}_end"] = now

        setattr(Tracker, name, wrapper)
    init = Tracker.__post_init__
    Tracker.__post_init__ = timed(calls, "open_store", init)

    _threads(threads)  # bnplace would do the same; done first so the wrappers do not race it
    args = ["run", str(config), "--jobs", "1", "--threads", str(threads), "--no-compare"]
    args += ["--tracking-uri", f"sqlite:///{store}"]
    with contextlib.suppress(SystemExit):
        app(args, standalone_mode=False)
    (result,) = results
    if result.status != "finished":
        raise RuntimeError(f"the bnplace trial failed: {result.reason}")
    return {
        "trial": span["end_trial_end"] - span["start_trial_begin"],
        "phases": dict(phases),
        "mlflow_trial": sum(calls[n] for n in TRIAL_CALLS),
        "mlflow_sweep": sum(v for n, v in calls.items() if n not in TRIAL_CALLS),
        "mlflow_calls": dict(calls),
        "first_epoch": result.metrics["first_epoch_s"],
        "later_epoch": result.metrics["time_per_epoch_s"],
        "params": int(result.metrics["params"]),
        "test_rmse": result.metrics["test_rmse"],
    }


def child(args: argparse.Namespace) -> None:
    if args.child in ("arrays", "tf.data"):
        out = handwritten(args.config, args.threads, args.child)
    else:
        out = bnplace_run(args.config, args.threads, args.store)
    Path(args.out).write_text(json.dumps({**out, "done_at": time.time()}))


def spawn(arm: str, config: Path, threads: int, work: Path) -> dict[str, Any]:
    """One fresh process for one run of one arm; its own timings plus its wall time."""
    n = next(_RUNS)
    out = work / f"{arm}-{n}.json"
    command = [sys.executable, __file__, "--child", arm, "--config", str(config)]
    command += ["--threads", str(threads), "--out", str(out)]
    command += ["--store", str(work / f"store-{n}" / "mlflow.db")]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    busy, ours, started = busy_seconds(), own_seconds(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=work)
    wall = time.perf_counter() - started
    others = max(0.0, busy_seconds() - busy - (own_seconds() - ours))
    if done.returncode != 0 or not out.exists():
        raise SystemExit(f"{arm} run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    result = json.loads(out.read_text())
    return {**result, "process": wall, "others": others, "exit": time.time() - result["done_at"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--tries", type=int, default=3, help="runs at most, while others load the machine"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", choices=["arrays", "tf.data", "bnplace"], help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    runs: dict[str, list[dict[str, Any]]] = {"arrays": [], "tf.data": [], "bnplace": []}
    with tempfile.TemporaryDirectory(prefix="bnplace-bench-") as tmp:
        work = Path(tmp)
        config = work / "trial.yaml"
        config.write_text(CONFIG.format(epochs=args.epochs))
        for repeat in range(args.repeats + 1):  # round 0 warms the disk cache, not counted
            arms = list(runs) if repeat % 2 else list(reversed(runs))
            for arm in arms:
                attempt = functools.partial(spawn, arm, config, args.threads, work)
                run = undisturbed(attempt, WALL, args.tries if repeat else 1)
                if repeat:
                    runs[arm].append(run)
    report(runs, args)
    print(load_line([run for arm in runs.values() for run in arm], WALL))


def _median(runs: list[dict[str, Any]], *path: str) -> float:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value.get(key, 0.0) if isinstance(value, dict) else 0.0
        values.append(float(value))
    return statistics.median(values)


def report(runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    ours = runs["bnplace"]
    hands = {arm: runs[arm] for arm in ("arrays", "tf.data")}
    for arm, hand in hands.items():
        if hand[0]["params"] != ours[0]["params"]:
            print(f"WARNING: models differ: {arm} {hand[0]['params']}, bnplace {ours[0]['params']}")
    print(
        f"Conv1D(16)+BN+ReLU+LSTM(16)+Dense, {ours[0]['params']} params, 2,801 train windows x 48 "
        f"steps x 4 channels, batch 64, {args.epochs} epochs, {args.threads} TF thread(s); "
        f"fresh process per run, median of {args.repeats}"
    )
    print(
        f"{'seconds':<28}{'arrays':>9}{'tf.data':>9}{'bnplace':>9}"
        f"{'bnplace/arrays':>16}{'bnplace/tf.data':>17}"
    )
    for label, path in [
        ("trial", ("trial",)),
        ("  fit", ("phases", "fit")),
        ("    first epoch", ("first_epoch",)),
        ("    later epochs, mean", ("later_epoch",)),
        ("whole process", ("process",)),
        ("  of which: exit", ("exit",)),
    ]:
        a, t, b = (_median(runs[arm], *path) for arm in ("arrays", "tf.data", "bnplace"))
        print(f"{label:<28}{a:9.3f}{t:9.3f}{b:9.3f}{b / a:16.2f}{b / t:17.2f}")
    print(
        "trial times of each run (s): "
        + "; ".join(f"{arm} " + " ".join(f"{r['trial']:.2f}" for r in runs[arm]) for arm in runs)
    )
    print(
        "other processes' load during each run (% of the cores): "
        + "; ".join(
            f"{arm} " + " ".join(f"{100 * r['load']:.0f}" for r in runs[arm]) for arm in runs
        )
    )
    print(
        "test RMSE (sanity, not timed): "
        + ", ".join(f"{arm} {_median(runs[arm], 'test_rmse'):.4f}" for arm in runs)
    )
    trial = _median(ours, "trial")
    print(f"\nbnplace's trial by phase (median s, share of its {trial:.3f} s trial):")
    names = ("clear_session", "build", "compile", "fit", "feed", "evaluate", "init_diagnostics")
    names += ("diagnostics",)
    names += ("summary",)
    rows = [(name, _median(ours, "phases", name)) for name in names]
    rows.append(("MLflow logging (per trial)", _median(ours, "mlflow_trial")))
    rest = [
        r["trial"] - r["mlflow_trial"] - sum(r["phases"].get(k, 0.0) for k in names) for r in ours
    ]
    rows.append(("other (seed, optimizer, events)", statistics.median(rest)))
    for name, value in rows:
        print(f"  {name:<34}{value:8.3f} s {100 * value / trial:6.1f} %")
    for arm, hand in hands.items():
        print(
            f"  hand-written ({arm}): "
            + ", ".join(f"{k} {_median(hand, 'phases', k):.3f} s" for k in hand[0]["phases"])
        )
    sweep = _median(ours, "mlflow_sweep")
    calls = sorted(ours[0]["mlflow_calls"], key=lambda k: -_median(ours, "mlflow_calls", k))
    print(
        f"MLflow once per sweep (open store, sweep run, aggregates): {sweep:.3f} s; by call: "
        + ", ".join(f"{k} {_median(ours, 'mlflow_calls', k):.3f}" for k in calls)
    )
    best = min(_median(hand, "trial") for hand in hands.values())
    ratio = trial / best
    share = _median(ours, "mlflow_trial") / trial
    print(
        f"\ntargets: trial ratio to the faster hand-written arm {ratio:.2f} (<= 1.15: "
        f"{'met' if ratio <= 1.15 else 'MISSED'}); MLflow share of the trial {100 * share:.1f} % "
        f"(< 3 %: {'met' if share < 0.03 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
