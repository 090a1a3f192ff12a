"""A search against the full grid and against successive halving, on a real series.

In: a space of 54 placements of a Conv1D -> LSTM skeleton (conv pre-activation x conv
post-activation x after the LSTM) on pmdarima's sunspots (the `packaged` extra; synthetic
mackey_glass where it is absent, the script says which), `--seeds` N seeds each.
Out, printed: the full grid's trials and its best placement (by mean log test RMSE over the N
seeds); then, replayed on those very trials over `--orders` random orders of the seeds (the race
is a function of finished trials alone, so replaying it on the grid's trials is exactly what
`bnplace run` on the search would have done with those seeds):
    race             trials used, whether its selected set holds the grid's best, set size;
    fixed same power the trials of the one-look design of the same power
                     (`selection.fixed_seeds_same_power`) and the race's ratio to it (target
                     <= 0.4) and to the full grid at N;
    halving          plain successive halving (keep the better half by mean, double the seeds)
                     at the race's budget: how often it dropped the grid's best.
`--save CSV` writes the grid's test RMSE (placement, seed, test_rmse) and `--grid CSV` replays
a saved grid without training, so the race can be replayed with another `--first` (and
`--also-first`) in seconds; `--last N` races to N of the grid's seeds (each order draws N of
them), the grid's best still judged on all of them, so one 40-seed grid measures the races to
20, 30 and 40 seeds;
benchmarks/results/search_sunspots.csv is the 40-seed grid quoted in benchmarks/README.md.
Run: python benchmarks/search.py [--seeds 20] [--epochs 4] [--jobs 2] [--orders 200] [--first 5]
     [--also-first 3,8,10] [--last N] [--save CSV | --grid CSV]
(one full grid: 54 x N trials; 1,080 trials at N = 20 took 18 min on 2 cores with --jobs 2).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bnplace.stats.selection import SelectionRule, fixed_seeds_same_power, race  # noqa: E402

DATA_PACKAGED = "{source: packaged, name: sunspots, window: 24}"
DATA_SYNTHETIC = (
    "{source: synthetic, generator: mackey_glass, length: 2820, features: 1, window: 24}"
)
CONFIG = """
experiment: search-bench
data: DATA
model:
  - conv1d: {id: conv, filters: 16, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: lstm, units: 16}
search:
  sites:
    conv.pre_act: [none, batch_norm, layer_norm]
    conv.post_act: [none, batch_norm, {dropout: 0.2}]
    lstm.after: [none, batch_norm, layer_norm, {dropout: [0.2, 0.5]}, {gaussian_noise: 0.5}]
  seeds: {min: SEEDS, max: SEEDS, step: 1}
train: {epochs: EPOCHS, batch_size: 64}
compare: {alpha: 0.05, margin: 0.05}
"""


def grid_losses(folder: Path, seeds: int, epochs: int, jobs: int) -> pd.DataFrame:
    """Run the space as a full grid (search seeds min = max = N: every placement every seed):
    its trials' placement, seed and test RMSE."""
    packaged = importlib.util.find_spec("pmdarima") is not None
    print(f"data: {'sunspots (pmdarima)' if packaged else 'synthetic mackey_glass'}")
    text = CONFIG.replace("DATA", DATA_PACKAGED if packaged else DATA_SYNTHETIC)
    config = folder / "search.yaml"
    config.write_text(text.replace("SEEDS", str(seeds)).replace("EPOCHS", str(epochs)))
    command = [sys.executable, "-m", "bnplace"]
    subprocess.run([*command, "run", str(config), "--jobs", str(jobs), "--no-compare"],
                   cwd=folder, check=False)  # fmt: skip
    out = folder / "trials.csv"
    subprocess.run([*command, "export", str(config), "--out", str(out)], cwd=folder, check=True)
    frame = pd.read_csv(out).rename(
        columns={"variant": "placement", "metric.test_rmse": "test_rmse"}
    )
    return frame[["placement", "seed", "test_rmse"]]


def log_losses(grid: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Log test RMSE, placements x seeds, with the placement names; a failed trial counts as
    the worst loss seen."""
    table = grid.pivot(index="placement", columns="seed", values="test_rmse")
    losses = np.log(table.to_numpy(dtype=float))
    losses[~np.isfinite(losses)] = np.nanmax(losses)
    return losses, [str(v) for v in table.index]


def halving(losses: np.ndarray, budget: int) -> int:
    """Successive halving at `budget` trials: rounds of equal budget, each keeping the better
    half by mean over the seeds so far; the placement left (index)."""
    k, n = losses.shape
    rounds = max(1, math.ceil(math.log2(k)))
    alive = np.arange(k)
    for _ in range(rounds):
        seeds = min(n, max(1, budget // (rounds * len(alive))))
        means = losses[alive, :seeds].mean(1)
        keep = max(1, len(alive) // 2)
        alive = alive[np.argsort(means, kind="stable")[:keep]]
        if len(alive) == 1:
            break
    return int(alive[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first", type=int, default=5, help="the race's first-stage seeds")
    parser.add_argument(
        "--also-first",
        default="3,8,10",
        help="other first stages to replay (comma-separated): one line each",
    )
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument(
        "--last",
        type=int,
        help="the race's most seeds N (default: every seed of the grid); each order reads N "
        "of the grid's seeds, so a 40-seed grid replays races to 20 or 30 seeds too",
    )
    parser.add_argument("--save", type=Path, help="write the grid's test RMSE to this CSV")
    parser.add_argument("--grid", type=Path, help="replay a saved grid instead of training")
    args = parser.parse_args()
    if args.grid:
        grid = pd.read_csv(args.grid)
    else:
        with tempfile.TemporaryDirectory(prefix="bnplace-search-bench-") as tmp:
            grid = grid_losses(Path(tmp), args.seeds, args.epochs, args.jobs)
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        grid.to_csv(args.save, index=False)
    losses, names = log_losses(grid)
    k, n = losses.shape
    best = int(np.nanargmin(losses.mean(1)))
    print(f"full grid: {k} placements x {n} seeds = {k * n} trials; best: {names[best]}")
    last = min(args.last or n, n)
    rule = SelectionRule(0.05, math.log1p(0.05), args.first, last)
    rng = np.random.default_rng(0)
    orders = np.stack([rng.permutation(n)[:last] for _ in range(args.orders)])
    result = race(losses[:, orders].transpose(1, 0, 2), rule)  # (orders, k, n)
    trials = result.trials
    kept = result.survivors[:, best]
    same_power = k * fixed_seeds_same_power(rule, k)
    print(f"race: {trials.mean():.0f} trials on average (min {trials.min()}, max {trials.max()}); "
          f"selected {result.survivors.sum(1).mean():.1f} placements; grid's best kept in "
          f"{kept.mean():.3f} of {args.orders} seed orders")  # fmt: skip
    print(f"race / full grid at {last} seeds: {trials.mean() / (k * last):.2f}")
    print(f"race / fixed design of the same power ({same_power} trials): "
          f"{trials.mean() / same_power:.2f} (target <= 0.4)")  # fmt: skip
    dropped = np.mean([
        halving(losses[:, order], int(budget)) != best
        for order, budget in zip(orders, trials, strict=True)
    ])  # fmt: skip
    print(f"successive halving at the race's budget dropped the grid's best in {dropped:.3f} "
          f"of the orders (the race: {1 - kept.mean():.3f})")  # fmt: skip
    for first in [int(f) for f in args.also_first.split(",") if f and int(f) != args.first]:
        other = SelectionRule(rule.alpha, rule.margin, first, last)
        again = race(losses[:, orders].transpose(1, 0, 2), other)
        print(f"first stage {first}: race / fixed design of the same power "
              f"{again.trials.mean() / (k * fixed_seeds_same_power(other, k)):.2f}, "
              f"grid's best kept in {again.survivors[:, best].mean():.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
