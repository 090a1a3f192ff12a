"""A worker's full garbage collection per trial: what skipping it for reused trials saves.

In: nothing (memory.py's sweep: synthetic sine_mix, a tiny Conv1D -> BN -> ReLU -> LSTM(4)
model, 1 epoch; 4 variants x `--seeds` seeds, dealt in blocks of `--block` seeds of one variant,
the variants in turn, so a worker keeping 3 models (`reuse.CAPACITY`) reuses a model within a
block and, past the first three blocks, evicts one at every block's start). Out, for each arm
(each in a fresh Python process, the same trials in the same order): the mean time of fresh and
reused trials, the process's CPU seconds over all trials, its resident memory
(/proc/self/statm) after trials 1, 50, 100, 150, 200 (and the last), and whether every trial's
numbers (all but its wall times) are `==` across the arms:
    every     bnplace before: Keras' `clear_session()` with its full `gc.collect()` before every
              trial (the baseline)
    shipped   the full collection before a fresh build and once a model has left the cache;
              a trial that resets a kept model, none gone since, skips it (`TrialRunner._fit`)
Printed: the ratios shipped / every. Takes ~3 minutes on 2 cores.
Run: python benchmarks/trial_gc.py [--seeds 50] [--block 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from memory import CONFIG, rss_mb  # the same tiny sweep (4 variants, `SEEDS` seeds each)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MARKS = (1, 50, 100, 150, 200)


def run_arm(arm: str, seeds: int, block: int) -> dict[str, Any]:
    """One arm in this process: every trial's kind, time and numbers; RSS at MARKS."""
    from bnplace.execute import set_tf_threads
    from bnplace.run.sweep import plan_sweep

    set_tf_threads(1)
    import bnplace.trial.train as train
    from bnplace.names import metrics as m

    if arm == "every":
        shipped = train.clear_keras_state
        train.clear_keras_state = lambda *, keep_kernels, collect=True: shipped(
            keep_kernels=keep_kernels, collect=True
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(CONFIG.replace("SEEDS", str(seeds)))
        prepared = plan_sweep(path)
    by_variant: dict[str, list] = {}
    for trial in prepared.plan.trials:
        by_variant.setdefault(trial.variant, []).append(trial)
    order = [
        trial
        for start in range(0, seeds, block)
        for trials in by_variant.values()
        for trial in trials[start : start + block]
    ]
    timings = {m.TRAIN_TIME_S, m.TIME_PER_EPOCH_S, m.FIRST_EPOCH_S, m.SELECT_TIME_S}
    runner = train.TrialRunner()
    rows, rss = [], {0: rss_mb()}
    cpu = time.process_time()
    for n, trial in enumerate(order, 1):
        started = time.perf_counter()
        result = runner.run(trial, prepared.datasets[trial.data_fingerprint])
        took = time.perf_counter() - started
        numbers = {k: v for k, v in sorted(result.metrics.items()) if k not in timings}
        rows.append([result.tags["bnplace.reuse"], took, repr((result.status, numbers))])
        if n in MARKS or n == len(order):
            rss[n] = rss_mb()
    return {"rows": rows, "rss": rss, "cpu": time.process_time() - cpu}


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--block", type=int, default=10)
    parser.add_argument("--arm", choices=("every", "shipped"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:  # the child: one arm, its result as JSON on the last line
        print(json.dumps(run_arm(args.arm, args.seeds, args.block)))
        return
    found = {}
    for arm in ("every", "shipped"):
        done = subprocess.run(
            [sys.executable, __file__, "--arm", arm, "--seeds", str(args.seeds),
             "--block", str(args.block)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        found[arm] = json.loads(done.stdout.strip().splitlines()[-1])
    every, shipped = found["every"], found["shipped"]
    print(f"4 variants x {args.seeds} seeds in blocks of {args.block}, 1 epoch, one process each")
    for kind in ("fresh", "reused"):
        a = [t for k, t, _ in every["rows"] if k == kind]
        b = [t for k, t, _ in shipped["rows"] if k == kind]
        print(
            f"  {kind:6} trials ({len(b)}): every {mean(a):.3f} s, shipped {mean(b):.3f} s: "
            f"ratio {mean(b) / mean(a):.2f}"
        )
    print(
        f"  CPU over all trials: every {every['cpu']:.1f} s, shipped {shipped['cpu']:.1f} s: "
        f"ratio {shipped['cpu'] / every['cpu']:.2f}"
    )
    print("  RSS (MB) after n trials:   every   shipped")
    for n in sorted(every["rss"], key=int):
        print(f"    {int(n):4d}                  {every['rss'][n]:7.1f}  {shipped['rss'][n]:7.1f}")
    same = [a[2] for a in every["rows"]] == [b[2] for b in shipped["rows"]]
    print(f"  every trial's numbers == across the arms: {same}")


if __name__ == "__main__":
    main()
