"""Does the pool's forkserver pay? Pool workers forked from a forkserver that imported
TensorFlow once (`bnplace.execute.preload`) against spawned workers that each import it, ratios.

In: nothing (a tiny synthetic config: sine_mix, 360 points, Conv1D(4) -> LSTM(4), 2
epochs, 2 seeds). Out: for `--sweeps` sweeps run one after another in one process (as a driver
that runs several sweeps, or a test process, does), each `bnplace run -j 2 --no-compare` into a
fresh SQLite store, called in-process: the wall time and the CPU time of every process involved
(the driver, its workers, and the forkserver with the workers it forked), per start method, and
the ratios forkserver / spawn. Each start method runs in a fresh process (`--child`), in turn
spawn, forkserver, forkserver, spawn, ... so that drift in the machine's speed hits both alike;
the medians over `--repeats` are printed. The final metrics of every trial must be equal under
both (they are, bit for bit: tests/test_run.py checks the pool against the driver's process).
Measured on 2 cores: see benchmarks/README.md.
Run: python benchmarks/worker_start.py [--sweeps 3] [--repeats 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# the tiny sweep this benchmark's numbers in benchmarks/README.md were measured on
CONFIG = """
experiment: tiny
data: {source: synthetic, generator: sine_mix, length: 360, features: 2, window: 12}
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: lstm, units: 4}
train: {epochs: 2, batch_size: 32, learning_rate: 0.01}
sweep: {seeds: 2}
"""


def _process_cpu(pid: int) -> float:
    """CPU seconds of `pid` and of its children it has waited for (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def child(method: str, sweeps: int) -> dict[str, object]:
    """Run the sweeps in this process with the pool's workers started by `method`."""
    import multiprocessing as mp
    from multiprocessing import forkserver

    from typer.testing import CliRunner

    import bnplace.execute.local as local
    from bnplace.console.cli import app

    if method == "spawn":
        local._worker_context = lambda: mp.get_context("spawn")  # type: ignore[assignment]
    metrics = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(sweeps):
            folder = Path(scratch) / str(index)
            folder.mkdir()
            (folder / "c.yaml").write_text(CONFIG)
            with contextlib.chdir(folder):
                result = CliRunner().invoke(app, ["run", "c.yaml", "-j", "2", "--no-compare"])
            assert result.exit_code == 0, result.stdout + result.stderr
            # "done   base seed=1 (1/2) test_rmse=0.6451 ...": the trial and its metric, not
            # the order the trials ended in
            done = [line.split() for line in result.stdout.splitlines() if line.startswith("done ")]
            metrics.append(sorted((d[2], d[4]) for d in done if len(d) > 4))
            shutil.rmtree(folder)
    wall = time.perf_counter() - start
    mine = resource.getrusage(resource.RUSAGE_SELF)
    waited = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = mine.ru_utime + mine.ru_stime + waited.ru_utime + waited.ru_stime
    server = getattr(forkserver._forkserver, "_forkserver_pid", None)
    if server is not None:
        cpu += _process_cpu(server)
    return {"wall": wall, "cpu": cpu, "metrics": metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", choices=["spawn", "forkserver"])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.sweeps)))
        return
    found: dict[str, list[dict]] = {"spawn": [], "forkserver": []}
    order = ["spawn", "forkserver"]
    for repeat in range(args.repeats):
        for method in order if repeat % 2 == 0 else order[::-1]:
            done = subprocess.run(
                [sys.executable, __file__, "--child", method, "--sweeps", str(args.sweeps)],
                capture_output=True,
                text=True,
                check=True,
            )
            found[method].append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert found["spawn"][0]["metrics"] == found["forkserver"][0]["metrics"], "metrics differ"
    median = {
        method: {k: statistics.median(r[k] for r in runs) for k in ("wall", "cpu")}
        for method, runs in found.items()
    }
    print(f"{args.sweeps} sweeps of 2 trials at -j 2, in one process; median of {args.repeats}")
    for method, values in median.items():
        print(f"  {method:10s} wall {values['wall']:6.1f} s   CPU {values['cpu']:6.1f} s")
    for k in ("wall", "cpu"):
        print(f"  forkserver / spawn, {k}: {median['forkserver'][k] / median['spawn'][k]:.2f}")
    print("  same final metrics under both: yes")


if __name__ == "__main__":
    main()
