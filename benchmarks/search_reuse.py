"""A search over several datasets: workers kept on a placement's dataset (bnplace) against not.

In: a search of 3 placements (nothing, BN or LN before the Conv1D's ReLU) of the test suite's
tiny Conv1D(4) -> LSTM(4) model on 4 synthetic series of different windows, `--seeds` seeds
each (the whole race is its first stage), every trial choosing its learning rate among 3
(as the v3 studies do), 2 epochs. Out: the wall time of `bnplace run CONFIG --jobs 1
--no-compare` (the CLI in this process, a fresh store each run) with the schedules as shipped
(a worker is handed the next seed of the placement it ran last on the dataset it ran it on,
whose model it keeps: `bnplace.execute.schedule.take_from`) and with the preference it had
before (the placement on any dataset: the race deals seed by seed over the datasets, so the
next trial was another dataset's and every trial built and traced its model afresh); the count
of reused trials in each; their time ratio; and whether every trial's metrics but the timings
are `==`. Arms alternate by round, after a warm-up round.
Run: python benchmarks/search_reuse.py [--seeds 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

# the thread and path set-up, and the timing metrics left out of the comparison
from kernel_cache import TIMINGS as FIT_TIMINGS

TIMINGS = (*FIT_TIMINGS, "select_time_s")  # and the time of every candidate's fit

CONFIG = """
experiment: benchmark
datasets:
  sine: {{source: synthetic, generator: sine_mix, length: 360, features: 2, window: 12}}
  ar: {{source: synthetic, generator: ar, length: 360, features: 1, window: 12}}
  mg: {{source: synthetic, generator: mackey_glass, length: 360, window: 16}}
  sine20: {{source: synthetic, generator: sine_mix, length: 360, features: 2, window: 20}}
model:
  - conv1d: {{id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}}
  - lstm: {{id: lstm, units: 4}}
train: {{epochs: 2, batch_size: 32, learning_rate: {{choose: [0.003, 0.01, 0.03]}}}}
search:
  sites:
    conv.pre_act: [none, batch_norm, layer_norm]
  seeds: {{min: {seeds}, max: {seeds}}}
"""


def by_variant_only(queue: deque, prefer: object, busy: object = ()) -> object:
    """The preference before: the first trial of the worker's last variant, on any dataset."""
    if not queue:
        return None
    if prefer is not None:
        for index, trial in enumerate(queue):
            if trial.variant_id == prefer.variant_id:  # type: ignore[attr-defined]
                del queue[index]
                return trial
    return queue.popleft()


def sweep(config_text: str, by: tuple[str, ...] = ()) -> tuple[float, dict, int]:
    """Seconds of one `bnplace run` in a fresh folder, its trials' metrics (timings left out)
    by trial key (or by the values of the tags `by`, joined by "/"), and how many trials
    reused a kept model."""
    from typer.testing import CliRunner

    from bnplace.console.cli import app
    from bnplace.names import tags
    from bnplace.store.client import make_client, search_all

    folder = Path(tempfile.mkdtemp(prefix="bnplace-search-reuse-"))
    try:
        (folder / "c.yaml").write_text(config_text)
        started = time.perf_counter()
        with contextlib.chdir(folder):
            result = CliRunner().invoke(app, ["run", "c.yaml", "--jobs", "1", "--no-compare"])
        took = time.perf_counter() - started
        assert result.exit_code == 0, result.output
        store = make_client(f"sqlite:///{folder / 'mlflow.db'}")
        experiment = store.get_experiment_by_name("benchmark")
        trials = search_all(store, [experiment.experiment_id], f"tags.`{tags.ROLE}` = 'trial'")
        metrics = {
            "/".join(run.data.tags[t] for t in by or (tags.TRIAL_KEY,)): {
                k: v for k, v in run.data.metrics.items() if k not in TIMINGS
            }
            for run in trials
        }
        reused = sum(run.data.tags.get(tags.REUSE) == "reused" for run in trials)
        return took, metrics, reused
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def arms_in_fresh_processes(
    script: str, arms: Sequence[str], child: Callable[[str, int], None], seeds: int = 2
) -> tuple[argparse.Namespace, dict[str, list[float]], dict[str, list[float]], list[dict]] | None:
    """The command line of a script that times `arms` in fresh processes: `--seeds`,
    `--rounds`, and `--child ARM`, which runs `child(ARM, seeds)` in this process (it prints a
    JSON list as its stdout's last line: its seconds, its CPU seconds, its trials' metrics,
    then anything else) and returns None. Otherwise `--rounds` rounds of every arm in turn,
    each `python SCRIPT --child ARM` in a fresh process; returns the arguments, each arm's
    seconds and CPU seconds, and per round each arm's rest of the list (its metrics sorted)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=seeds)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", choices=arms, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.seeds)
        return None
    walls: dict[str, list[float]] = {arm: [] for arm in arms}
    cpus: dict[str, list[float]] = {arm: [] for arm in arms}
    outputs: list[dict[str, list]] = []
    for _ in range(args.rounds):
        outputs.append({})
        for arm in arms:
            command = [sys.executable, script, "--child", arm, "--seeds", str(args.seeds)]
            started = time.perf_counter()
            done = subprocess.run(
                command, capture_output=True, text=True, check=True, env=os.environ
            )
            took, cpu, metrics, *rest = json.loads(done.stdout.strip().splitlines()[-1])
            walls[arm].append(took)
            cpus[arm].append(cpu)
            outputs[-1][arm] = [dict(sorted(metrics.items())), *rest]
            print(f"  {arm}: {took:.0f} s, {cpu:.0f} CPU-s ({time.perf_counter() - started:.0f} s)")
    return args, walls, cpus, outputs


def print_sweep_for_parent(config_text: str) -> None:
    """An arm's child (`arms_in_fresh_processes`): one `sweep` of `config_text`, printed as the
    JSON list its parent reads: seconds, this process's CPU seconds, metrics, reused trials."""
    import resource

    took, metrics, reused = sweep(config_text)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps([took, usage.ru_utime + usage.ru_stime, metrics, reused]))


def print_kept_arms(
    timed: tuple[argparse.Namespace, dict[str, list[float]], dict[str, list[float]], list[dict]],
    arms: Sequence[str],
    what: str,
) -> None:
    """What `arms_in_fresh_processes` timed of arms whose children used
    `print_sweep_for_parent`: the trial count and `what` (formatted with the arguments'
    `seeds`), each arm's seconds and ratios with its reused trials, and whether every metric
    was `==` between the first two arms in every round."""
    args, walls, cpus, outputs = timed
    same = all(out[arms[0]][0] == out[arms[1]][0] for out in outputs)
    trials = len(outputs[-1][arms[0]][0])
    reused = {arm: outputs[-1][arm][1] for arm in arms}
    print(
        f"{trials} trials {what.format(seeds=args.seeds)}, --jobs 1, median of {args.rounds} "
        "round(s):"
    )
    notes = {arm: f"{reused[arm]} of {trials} trials reused a kept model" for arm in arms}
    print_ratios(walls, cpus, notes)
    print(f"every metric == {same}")


def print_ratios(
    walls: dict[str, list[float]], cpus: dict[str, list[float]], notes: dict[str, str] | None = None
) -> None:
    """Each arm's median seconds and CPU seconds and their ratios to the first arm's, with an
    arm's note after them."""
    first = next(iter(walls))
    base_wall, base_cpu = statistics.median(walls[first]), statistics.median(cpus[first])
    for arm in walls:
        wall, cpu = statistics.median(walls[arm]), statistics.median(cpus[arm])
        note = (notes or {}).get(arm, "")
        print(
            f"  {arm:15s} {wall:6.0f} s {cpu:6.0f} CPU-s  ratio {wall / base_wall:.2f} wall, "
            f"{cpu / base_cpu:.2f} CPU" + (f"; {note}" if note else "")
        )


def alternate(
    shipped: Callable[[], tuple[float, dict, int]],
    before: Callable[[], tuple[float, dict, int]],
    rounds: int,
    trials: int,
) -> tuple[float, float, bool, tuple[int, int]]:
    """After a warm-up run of `shipped` (imports, first tracing in this process), `rounds`
    rounds of the two arms (each a `sweep`) in turn. Returns the median seconds of each arm,
    whether every trial's metrics were `==` between them in every round (with `trials` trials),
    and the reused trials of each arm's last run."""
    shipped()
    times: tuple[list[float], list[float]] = ([], [])
    same, reused = True, (0, 0)
    for _ in range(rounds):
        shipped_s, ours, ours_reused = shipped()
        before_s, theirs, theirs_reused = before()
        times[0].append(shipped_s)
        times[1].append(before_s)
        differ = sorted(
            {k for key in ours for k in ours[key] if ours[key][k] != theirs[key].get(k)}
        )
        if differ:
            print("differ:", differ)
        same = same and ours == theirs and len(ours) == trials
        reused = (ours_reused, theirs_reused)
    return statistics.median(times[0]), statistics.median(times[1]), same, reused


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import bnplace.execute.schedule as schedule
    import bnplace.execute.schedule_search as schedule_search

    shipped = schedule.take_from
    config_text = CONFIG.format(seeds=args.seeds)

    def arm(take_from: object) -> Callable[[], tuple[float, dict, int]]:
        def run() -> tuple[float, dict, int]:
            schedule.take_from = schedule_search.take_from = take_from  # type: ignore[assignment]
            try:
                return sweep(config_text)
            finally:
                schedule.take_from = schedule_search.take_from = shipped

        return run

    kept_median, any_median, same, reused = alternate(
        arm(shipped), arm(by_variant_only), args.rounds, 3 * 4 * args.seeds
    )
    print(
        f"search of 3 placements x 4 datasets x {args.seeds} seeds, 3 learning rates a trial, "
        f"--jobs 1: worker kept on its placement's dataset {kept_median:.1f} s "
        f"({reused[0]} trials reused), on its placement only {any_median:.1f} s "
        f"({reused[1]} reused) (median of {args.rounds} rounds): ratio "
        f"{kept_median / any_median:.2f}; metrics identical: {same}"
    )


if __name__ == "__main__":
    main()
