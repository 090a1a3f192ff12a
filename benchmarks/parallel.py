"""Do parallel trials pay? `bnplace run --jobs 1` against `--jobs 2` on an 8-trial grid, ratios.

In: nothing (synthetic data: sine_mix, 4 channels, 2,801 train windows of 48 steps). Out: for an
8-trial grid (BN nowhere / before the Conv1D activation / after it / after the LSTM, x 2 seeds;
Conv1D(16) -> LSTM(16) -> Dense, batch 64, `--epochs` 10), run as `bnplace run --jobs N
--no-compare` into a fresh temporary SQLite store each time, the median over `--repeats` runs of:
    wall          the whole command (start-up, data, store set-up, trials, aggregates), seen
                  from outside the process, and trials per minute from it; split into the time
                  before the first trial starts (imports, data, plan, MLflow store), the trial
                  span (first trial's start to the last trial's end: the executor's share) and
                  the time after it (aggregates, shutting the workers down)
    median trial  a trial's time from the driver's start event to its end event (longer under
                  --jobs 2 where the workers share the cores with each other and the driver; a
                  worker's first trial also waits for the worker to start: hence the median)
    start-up      how much longer the first trial(s) took to report their first epoch than the
                  median trial: under --jobs 2 the workers' start (spawn, import TensorFlow,
                  receive the datasets), under --jobs 1 ~0 (TensorFlow was imported before)
    driver CPU    the CPU time of the driver process itself (under --jobs 1 it trains too)
    MLflow        the time spent inside `bnplace.store.track.Tracker` calls, in total, once per
                  sweep
                  (open the store, sweep run, aggregates) and per trial, and as a share of wall
and the ratio of --jobs 2 throughput to --jobs 1 (target: >= 1.7 on 2 cores). Each run is a fresh
process (`python benchmarks/parallel.py --child ...`) that wraps the Tracker's methods and the
progress display's epoch events with timers, then calls the bnplace CLI in-process; bnplace
itself is not edited. The two modes alternate (1, 2, then 2, 1, ...) so that drift in the
machine's speed hits both alike; a run during which other processes used more than 5 % of the
cores is repeated (up to `--tries` times). As a baseline, the same script measures the machine's
own limit without bnplace: the hand-written Keras trial of benchmarks/trial_overhead.py alone,
then two of them side by side (2 x alone / side by side = the most any executor can gain from a
second process here). Takes ~4 minutes on 2 cores.
Run: python benchmarks/parallel.py [--repeats 3] [--epochs 10] [--tries 3]
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
experiment: parallel
data: {{source: synthetic, generator: sine_mix, length: 4070, features: 4, window: 48, horizon: 1}}
model:
  - conv1d: {{id: conv, filters: 16, kernel_size: 3, padding: causal, activation: relu}}
  - lstm: {{id: lstm, units: 16}}
sweep:
  arms:
    bn:
      none: {{}}
      pre_act: {{conv.pre_act: [batch_norm], conv.use_bias: false}}
      post_act: {{conv.post_act: [batch_norm]}}
      after_lstm: {{lstm.after: [batch_norm]}}
  seeds: 2
train: {{epochs: {epochs}, batch_size: 64, optimizer: adam, learning_rate: 0.001}}
"""
TRIAL_CALLS = ("start_trial", "log_epochs", "end_trial")
_RUNS = itertools.count(1)  # numbers each run: its own store and output file
WALL = "wall"  # the key of a run's wall time, seen from outside its process


def child(config: Path, jobs: int, store: Path, out: Path) -> None:
    """`bnplace run` in this process with every public Tracker method timed."""
    entered = time.perf_counter()
    from bnplace.console import progress
    from bnplace.console.cli import app
    from bnplace.store.track import Tracker

    calls: dict[str, float] = defaultdict(float)
    started: dict[str, float] = {}
    ended: dict[str, float] = {}
    depth = [0]
    for name in [n for n, v in vars(Tracker).items() if callable(v) and not n.startswith("_")]:
        method = getattr(Tracker, name)

        @functools.wraps(method)
        def wrapper(*args: Any, _name: str = name, _method: Any = method, **kwargs: Any) -> Any:
            depth[0] += 1  # outermost calls only (start_trial calls variant_run)
            begun = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                depth[0] -= 1
                now = time.perf_counter()
                if depth[0] == 0:
                    calls[_name] += now - begun
                if _name == "start_trial":
                    started[args[1].key] = begun
                elif _name == "end_trial":
                    ended[args[1].trial_key] = now

        setattr(Tracker, name, wrapper)
    Tracker.__post_init__ = timed(calls, "open_store", Tracker.__post_init__)
    first_epoch: dict[str, float] = {}  # when the driver heard of each trial's first epoch
    make_progress = progress.make_progress

    def timed_progress(*args: Any, **kwargs: Any) -> Any:
        shown = make_progress(*args, **kwargs)
        epoch = shown.epoch

        def on_epoch(trial_key: str, *rest: Any, **more: Any) -> Any:
            first_epoch.setdefault(trial_key, time.perf_counter())
            return epoch(trial_key, *rest, **more)

        shown.epoch = on_epoch
        return shown

    progress.make_progress = timed_progress  # the CLI imports it when `run` runs

    args = ["run", str(config), "--jobs", str(jobs), "--no-compare"]
    args += ["--tracking-uri", f"sqlite:///{store}"]
    with contextlib.suppress(SystemExit):
        app(args, standalone_mode=False)
    left = time.perf_counter()
    own = os.times()
    durations = [ended[k] - started[k] for k in ended if k in started]
    to_epoch = sorted(first_epoch[k] - started[k] for k in first_epoch if k in started)
    out.write_text(
        json.dumps(
            {
                "trials": len(durations),
                "span": max(ended.values()) - min(started.values()),
                "before": min(started.values()) - entered,
                "driver_cpu": own.user + own.system,
                "after": left - max(ended.values()),
                "median_trial": statistics.median(durations),
                # the slowest `jobs` trials to reach their first epoch are the workers' first
                "startup": statistics.fmean(to_epoch[-jobs:]) - statistics.median(to_epoch),
                "mlflow": sum(calls.values()),
                "mlflow_trial": sum(calls[n] for n in TRIAL_CALLS),
                "mlflow_sweep": sum(v for n, v in calls.items() if n not in TRIAL_CALLS),
                "calls": dict(calls),
            }
        )
    )


def spawn(jobs: int, config: Path, work: Path) -> dict[str, Any]:
    """One fresh `bnplace run` process into a fresh store; its timings plus its wall time."""
    n = next(_RUNS)
    out = work / f"jobs{jobs}-{n}.json"
    store = work / f"store-{n}" / "mlflow.db"
    command = [sys.executable, __file__, "--child", str(jobs), "--config", str(config)]
    command += ["--store", str(store), "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    busy, ours, begun = busy_seconds(), own_seconds(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=work)
    wall = time.perf_counter() - begun
    others = max(0.0, busy_seconds() - busy - (own_seconds() - ours))
    if done.returncode != 0 or not out.exists():
        raise SystemExit(f"--jobs {jobs} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    result = json.loads(out.read_text())
    if result["trials"] != 8:
        raise SystemExit(f"--jobs {jobs} ended {result['trials']} trials, not 8:\n{done.stdout}")
    return {**result, "wall": wall, "others": others}


def side_by_side(processes: int, config: Path, work: Path) -> dict[str, Any]:
    """`processes` hand-written Keras trials (benchmarks/trial_overhead.py) started together."""
    script = Path(__file__).resolve().parent / "trial_overhead.py"
    outs = [work / f"keras-{next(_RUNS)}.json" for _ in range(processes)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, str(script), "--child", "tf.data", "--config", str(config)]
    busy, ours, begun = busy_seconds(), own_seconds(), time.perf_counter()
    running = [
        subprocess.Popen(
            [*command, "--threads", "1", "--out", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        for out in outs
    ]
    if any(process.wait() != 0 for process in running):
        raise SystemExit("a hand-written Keras trial failed (run benchmarks/trial_overhead.py)")
    wall = time.perf_counter() - begun
    others = max(0.0, busy_seconds() - busy - (own_seconds() - ours))
    trials = [json.loads(out.read_text())["trial"] for out in outs]
    return {"trial": statistics.fmean(trials), "wall": wall, "others": others}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--tries", type=int, default=3, help="runs at most, while others load the machine"
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.config, args.child, args.store, args.out)
        return

    from trial_overhead import CONFIG as TRIAL_CONFIG  # this folder is on sys.path

    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    alone: dict[int, list[dict[str, Any]]] = {1: [], 2: []}  # no bnplace: the machine's limit
    with tempfile.TemporaryDirectory(prefix="bnplace-bench-") as tmp:
        work = Path(tmp)
        config = work / "grid.yaml"
        config.write_text(CONFIG.format(epochs=args.epochs))
        trial_config = work / "trial.yaml"
        trial_config.write_text(TRIAL_CONFIG.format(epochs=args.epochs))
        for repeat in range(args.repeats):
            for jobs in (1, 2) if repeat % 2 == 0 else (2, 1):
                attempt = functools.partial(spawn, jobs, config, work)
                runs[jobs].append(undisturbed(attempt, WALL, args.tries))
                attempt = functools.partial(side_by_side, jobs, trial_config, work)
                alone[jobs].append(undisturbed(attempt, WALL, args.tries))
    report(runs, args)
    solo, pair = _median(alone[1], "trial"), _median(alone[2], "trial")
    limit = 2 * solo / pair
    reached = _median(runs[1], "wall") / _median(runs[2], "wall")
    print(
        f"the machine's limit, without bnplace: a hand-written Keras trial (tf.data feed) takes "
        f"{solo:.2f} s alone and {pair:.2f} s with a second one beside it, so two processes "
        f"give at most {limit:.2f}x the throughput of one; --jobs 2 reaches {reached:.2f}x "
        f"({100 * reached / limit:.0f} % of that limit)"
    )
    runs = {jobs: runs[jobs] + alone[jobs] for jobs in runs}  # for the load line below
    print(load_line([run for arm in runs.values() for run in arm], WALL))


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def report(runs: dict[int, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    print(
        f"8 trials (4 variants x 2 seeds), Conv1D(16)+LSTM(16), 2,801 train windows x 48 steps, "
        f"batch 64, {args.epochs} epochs; one TF thread per trial; fresh SQLite store per run; "
        f"median of {args.repeats}"
    )
    print(f"{'':<32}{'--jobs 1':>10}{'--jobs 2':>10}{'ratio 1/2':>11}")
    for label, key in [
        ("wall (s)", "wall"),
        ("  before the first trial (s)", "before"),
        ("  trial span (s)", "span"),
        ("  after the last trial (s)", "after"),
        ("median trial (s)", "median_trial"),
        ("executor start-up (s)", "startup"),
        ("driver's own CPU time (s)", "driver_cpu"),
        ("MLflow calls, total (s)", "mlflow"),
        ("  once per sweep (s)", "mlflow_sweep"),
        ("  per-trial calls, all (s)", "mlflow_trial"),
    ]:
        one, two = _median(runs[1], key), _median(runs[2], key)
        print(f"{label:<32}{one:10.2f}{two:10.2f}{one / two:11.2f}")
    print(
        "wall of each run (s): "
        + "; ".join(f"--jobs {j} " + " ".join(f"{r['wall']:.1f}" for r in runs[j]) for j in runs)
    )
    print(
        "other processes' load during each run (% of the cores): "
        + "; ".join(
            f"--jobs {j} " + " ".join(f"{100 * r['load']:.0f}" for r in runs[j]) for j in runs
        )
    )
    wall = {j: _median(runs[j], "wall") for j in runs}
    span = {j: _median(runs[j], "span") for j in runs}
    print(
        f"trials per minute, wall: --jobs 1 {8 * 60 / wall[1]:.1f}, --jobs 2 {8 * 60 / wall[2]:.1f}"
        f"; over the trial span: --jobs 1 {8 * 60 / span[1]:.1f}, --jobs 2 {8 * 60 / span[2]:.1f}"
    )
    for jobs in runs:
        share = _median(runs[jobs], "mlflow") / wall[jobs]
        per_trial = _median(runs[jobs], "mlflow_trial") / 8 / _median(runs[jobs], "median_trial")
        calls = runs[jobs][0]["calls"]
        top = sorted(calls, key=lambda k: -statistics.median(r["calls"][k] for r in runs[jobs]))
        print(
            f"MLflow, --jobs {jobs}: {100 * share:.1f} % of the wall, {100 * per_trial:.2f} % of "
            f"a trial (its own calls); by call (s): "
            + ", ".join(
                f"{k} {statistics.median(r['calls'][k] for r in runs[jobs]):.3f}" for k in top
            )
        )
    ratio, ratio_span = wall[1] / wall[2], span[1] / span[2]
    print(
        f"\ntarget: --jobs 2 throughput / --jobs 1 = {ratio:.2f} on the wall, {ratio_span:.2f} "
        f"over the trial span (>= 1.7: wall {'met' if ratio >= 1.7 else 'MISSED'}, span "
        f"{'met' if ratio_span >= 1.7 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
