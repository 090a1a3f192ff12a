"""The pooled rule over the whole grid of issue 25: A/A false verdicts and coverage, printed.

In: nothing (seeded simulations of `bnplace.stats.pooling.simulate_pooled`, the rule `compare` runs
over several datasets). Out, per noise (normal, t3), datasets k in 2, 3, 5, 10, 20, 40 and seeds
n in 6, 10, 30 (2,000 sweeps a cell by default): the A/A false better/worse rate of one
comparison, the familywise rate of a family of 6 with a common baseline, and the share of
sweeps in which all 6 pooled intervals cover a true 3% effect spread over datasets with τ = 3%,
plus each column's range. tests/test_pooling.py runs a coarse subset of these cells.
Run: python benchmarks/pooling_grid.py [--reps 2000]   (~15 s on 2 cores)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bnplace.stats.pooling import simulate_pooled

DATASETS = (2, 3, 5, 10, 20, 40)
SEEDS = (6, 10, 30)


def cell(k: int, n: int, noise: str, reps: int) -> tuple[float, float, float]:
    """(A/A one comparison, A/A familywise m = 6, simultaneous coverage m = 6)."""
    one, _ = simulate_pooled(k, n, m=1, noise=noise, reps=reps, seed=2)
    single = float(np.mean((one.low > 0) | (one.high < 0)))
    six, _ = simulate_pooled(k, n, m=6, noise=noise, reps=reps, seed=1)
    familywise = float(np.mean(((six.low > 0) | (six.high < 0)).any(axis=1)))
    hit, mu = simulate_pooled(k, n, m=6, mu=0.03, tau=0.03, noise=noise, reps=reps, seed=3)
    covered = float(np.mean(((hit.low <= mu) & (mu <= hit.high)).all(axis=1)))
    return single, familywise, covered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    reps = parser.parse_args().reps
    for noise in ("normal", "t3"):
        rows = []
        print(f"\n{noise} seed noise, {reps} sweeps a cell")
        print("datasets  seeds  A/A m=1  A/A familywise m=6  coverage (all 6)")
        for k in DATASETS:
            for n in SEEDS:
                rows.append(cell(k, n, noise, reps))
                print(
                    f"{k:8d}  {n:5d}  {rows[-1][0]:7.3f}  {rows[-1][1]:18.3f}  {rows[-1][2]:16.3f}"
                )
        a = np.array(rows)
        print(
            f"range: A/A m=1 {a[:, 0].min():.3f}-{a[:, 0].max():.3f}; familywise "
            f"{a[:, 1].min():.3f}-{a[:, 1].max():.3f}; coverage {a[:, 2].min():.3f}-"
            f"{a[:, 2].max():.3f}"
        )


if __name__ == "__main__":
    main()
