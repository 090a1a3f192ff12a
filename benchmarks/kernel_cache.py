"""Seeds of a kept model: TensorFlow's kernel cache kept (bnplace) against cleared (Keras' calls).

In: a tiny config (Conv1D(4) -> BN -> ReLU -> LSTM(4) -> Dense on a 360-step sine_mix, window
12, batch 32, 2 epochs; the test suite's size) and a larger one (Conv1D(16) -> LSTM(16) on
2,000 steps, window 48, batch 64, 4 epochs). Out, printed per config: the mean time of a
reused trial (a kept model's later seed, `TrialRunner` in this process) with
`bnplace.trial.seeding` as shipped, and with the seeding and clearing swapped for Keras'
documented `keras.utils.set_random_seed` and `keras.backend.clear_session` (both empty
TensorFlow's kernel cache, so a kept model's functions instantiate their kernels again every
trial); their ratio; and whether every metric but the timings is `==` between the two arms.
Arms alternate by round, in one process (TensorFlow imported once), after a warm-up round.
Run: python benchmarks/kernel_cache.py [--seeds 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

SIZES = {
    "tiny": (
        "{source: synthetic, generator: sine_mix, length: 360, features: 2, window: 12}",
        4,
        "{epochs: 2, batch_size: 32, learning_rate: 0.01}",
    ),
    "larger": (
        "{source: synthetic, generator: sine_mix, length: 2000, features: 2, window: 48}",
        16,
        "{epochs: 4, batch_size: 64, learning_rate: 0.01}",
    ),
}
CONFIG = """
experiment: benchmark
data: {data}
model:
  - conv1d: {{id: conv, filters: {units}, kernel_size: 3, padding: causal, activation: relu}}
  - lstm: {{id: lstm, units: {units}}}
placements: {placements}
train: {train}
sweep: {{seeds: {seeds}}}
"""
TIMINGS = ("train_time_s", "time_per_epoch_s", "first_epoch_s")


def sized_trials(size: str, placements: str, seeds: int) -> tuple[list, object]:
    """The trials (seeds 0..`seeds`-1) of CONFIG at one of SIZES with `placements`, and their
    prepared dataset (the first_trace.py benchmark uses it too)."""
    from bnplace.run.sweep import plan_sweep

    data, units, fit = SIZES[size]
    text = CONFIG.format(data=data, units=units, placements=placements, train=fit, seeds=seeds)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        path.write_text(text)
        prepared = plan_sweep(path)
    trials = list(prepared.plan.trials)
    return trials, prepared.datasets[trials[0].data_fingerprint]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import keras

    import bnplace.trial.train as train

    shipped = (train.seed_trial, train.clear_keras_state)
    documented = (keras.utils.set_random_seed, lambda **_: keras.backend.clear_session())

    def arm(arms: tuple, trials: list, data: object) -> tuple[float, list]:
        """Mean seconds of the reused trials (all but the first seed) and their outcomes."""
        train.seed_trial, train.clear_keras_state = arms
        runner = train.TrialRunner()
        runner.run(trials[0], data)  # builds and traces: not timed
        took, outcomes = [], []
        for trial in trials[1:]:
            started = time.perf_counter()
            result = runner.run(trial, data)
            took.append(time.perf_counter() - started)
            metrics = {k: v for k, v in result.metrics.items() if k not in TIMINGS}
            outcomes.append((result.status, metrics, result.history))
        return statistics.mean(took), outcomes

    for name in SIZES:
        trials, dataset = sized_trials(name, "{conv.pre_act: [batch_norm]}", args.seeds)
        arm(shipped, trials, dataset)  # warm-up: imports, first tracing in this process
        times: dict[str, list[float]] = {"kept": [], "cleared": []}
        same = True
        for _ in range(args.rounds):
            kept_s, kept_out = arm(shipped, trials, dataset)
            cleared_s, cleared_out = arm(documented, trials, dataset)
            times["kept"].append(kept_s)
            times["cleared"].append(cleared_s)
            same = same and kept_out == cleared_out
        kept, cleared = statistics.median(times["kept"]), statistics.median(times["cleared"])
        print(
            f"{name}: reused trial {kept:.3f} s with the kernel cache kept, {cleared:.3f} s "
            f"cleared (median of {args.rounds} rounds x {args.seeds - 1} seeds): "
            f"ratio {kept / cleared:.2f}; metrics identical: {same}"
        )
    train.seed_trial, train.clear_keras_state = shipped


if __name__ == "__main__":
    main()
