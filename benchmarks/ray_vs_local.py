"""Throughput of the Ray executor against the local process pool on the same grid. Prints ratios.

In: nothing (a synthetic grid written to a temporary folder: sine_mix, 2 channels, 4 variants x
2 seeds = 8 trials of a small Conv1D -> (BN) -> ReLU -> LSTM -> Dense, 3 epochs). Out, printed:
    start-up    Ray's fixed cost, measured on its own: ray.init of a local Ray (2 CPUs, no
                dashboard), then 2 actors constructed (each imports TensorFlow), then shutdown
    local       `ProcessPool(jobs=2)` (what `--jobs 2` runs): wall time of the whole grid,
                trials/minute end to end and in steady state (between the first and the last
                trial end, i.e. without start-up)
    ray         `RayExecutor()` starting its own local Ray (what `--executor ray` runs on a
                2-core machine): the same figures
and the ratio ray / local of each (> 1: Ray is faster). MLflow is left out (the driver's
logging is the same for both executors): events go to a recorder. Each executor runs the grid
`--repeats` times, alternating, and the medians are printed.
Run: python benchmarks/ray_vs_local.py [--repeats 1] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # local Ray on 127.0.0.1 only

GRID = """
experiment: bench
data: {source: synthetic, generator: sine_mix, length: 2000, features: 2, window: 24}
model:
  - conv1d: {id: conv, filters: 16, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: lstm, units: 16}
train: {epochs: EPOCHS, batch_size: 64, learning_rate: 0.005}
sweep:
  axes:
    conv.post_act: {none: [], bn: [batch_norm]}
    lstm.units: [8, 16]
  seeds: 2
"""


def run_grid(executor: object, prepared: object) -> dict[str, float]:
    from bnplace.execute import TrialEnded

    ends: list[float] = []
    failed: list[str] = []

    def record(event: object) -> None:
        if isinstance(event, TrialEnded):
            ends.append(time.perf_counter())
            if event.result.status != "finished":
                failed.append(f"{event.result.variant}: {event.result.reason}")

    trials = prepared.plan.trials  # type: ignore[attr-defined]
    started = time.perf_counter()
    executor.run(trials, prepared.datasets, record)  # type: ignore[attr-defined]
    executor.close()  # type: ignore[attr-defined]  # the Ray executor leaves Ray here
    wall = time.perf_counter() - started
    if failed or len(ends) != len(trials):
        raise SystemExit(f"benchmark grid did not finish cleanly: {failed}")
    steady = (len(ends) - 1) / (ends[-1] - ends[0]) * 60 if ends[-1] > ends[0] else float("nan")
    return {"wall_s": wall, "per_min": len(trials) / wall * 60, "steady_per_min": steady}


def ray_startup() -> dict[str, float]:
    """ray.init + 2 actors that import TensorFlow + shutdown, each timed on its own."""
    import ray

    from bnplace.execute.ray import _EventBox, _TrialWorker

    t0 = time.perf_counter()
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="WARNING",
    )
    t1 = time.perf_counter()
    box = ray.remote(_EventBox).options(num_cpus=0).remote()
    workers = [ray.remote(_TrialWorker).options(num_cpus=1).remote({}, box, 1) for _ in range(2)]
    ray.get([worker.where.remote() for worker in workers])
    t2 = time.perf_counter()
    ray.shutdown()
    t3 = time.perf_counter()
    return {"init_s": t1 - t0, "actors_s": t2 - t1, "shutdown_s": t3 - t2, "total_s": t3 - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    from bnplace.execute.local import ProcessPool
    from bnplace.execute.ray import RayExecutor
    from bnplace.run.sweep import plan_sweep

    folder = Path(tempfile.mkdtemp(prefix="bnplace-bench-"))
    config = folder / "grid.yaml"
    config.write_text(GRID.replace("EPOCHS", str(args.epochs)))
    prepared = plan_sweep(config)
    n = len(prepared.plan.trials)
    print(
        f"grid: {n} trials ({len(prepared.plan.variants)} variants x 2 seeds), "
        f"{args.epochs} epochs, {os.cpu_count()} cores"
    )

    startup = ray_startup()
    print(
        f"ray start-up: ray.init {startup['init_s']:.1f} s + 2 actors with TensorFlow "
        f"{startup['actors_s']:.1f} s + shutdown {startup['shutdown_s']:.1f} s "
        f"= {startup['total_s']:.1f} s"
    )
    results: dict[str, list[dict[str, float]]] = {"local": [], "ray": []}
    for _ in range(args.repeats):
        results["local"].append(run_grid(ProcessPool(jobs=2, threads=1), prepared))
        results["ray"].append(run_grid(RayExecutor(threads=1), prepared))

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    for name in ("local", "ray"):
        print(
            f"{name:5s}: {median(name, 'wall_s'):6.1f} s wall, "
            f"{median(name, 'per_min'):5.1f} trials/min end to end, "
            f"{median(name, 'steady_per_min'):5.1f} trials/min steady"
        )
    print(
        f"ratio ray/local: {median('ray', 'per_min') / median('local', 'per_min'):.2f} end to end, "
        f"{median('ray', 'steady_per_min') / median('local', 'steady_per_min'):.2f} steady "
        f"(> 1: Ray faster); wall time ray - local: "
        f"{median('ray', 'wall_s') - median('local', 'wall_s'):+.1f} s on this grid"
    )


if __name__ == "__main__":
    main()
