"""Seeds on demand with t intervals: designs and spending functions at m = 6, seed sd 4.5%, printed.

In: nothing (seeded simulations of `bnplace.stats.sequential.simulate`, the rule a sweep runs,
with `compare.interval: t`). Out, per spending exponent rho of alpha·t^rho (`sweep.seeds.spending`:
0.6, 0.75, 1 the default, 1.5, 2) and looks (4..14, 5..14, 5..16 by 1): power at 1.5x the margin,
mean seeds per compared variant at 2x the margin, the fixed t design of the same power at 2x
(noncentral t, capped at 0.999) and their ratio; the figures README "Seeds on demand" quotes
(issue 25: <= 0.6x); and what the normal boundaries read as t quantiles would spend instead of
alpha/6. tests/test_t_interval.py checks looks 5..14 at rho = 1 and 0.75.
Run: python benchmarks/t_spending.py [--reps 20000]   (~20 s on 2 cores)
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scipy import stats as st

from bnplace.stats.sequential import SPENDING_POWER, SequentialRule, look_sizes, simulate
from bnplace.stats.verdicts import WORSE, T

M, SD, MARGIN = 6, 0.045, 0.05
PAIRS = [(v, 0) for v in range(1, M + 1)]


def fixed_power(n: int, effect: float) -> float:
    """The fixed t design's power (one look at 1 − alpha/m), exactly."""
    q = st.t.isf(0.05 / M / 2, n - 1)
    return float(st.nct.sf(q, n - 1, effect / SD * math.sqrt(n)))


def row(looks: tuple[int, ...], rho: float, reps: int) -> str:
    rule = SequentialRule(looks, 0.05, M, T, rho)
    figures = []
    for times, seed in ((1.5, 51), (2.0, 52)):
        effects = [0.0] + [math.log1p(times * MARGIN)] * M
        sim = simulate(rule, effects, PAIRS, sd=SD, margin=MARGIN, reps=reps, seed=seed)
        figures.append((float(sim.seeds[:, 1:].mean()), float(sim.share(WORSE).mean())))
    (_, power_15), (seeds, power_2) = figures
    effect = math.log1p(2 * MARGIN)
    fixed = next(n for n in range(2, 100) if fixed_power(n, effect) >= min(power_2, 0.999))
    return (
        f"looks {looks[0]}..{looks[-1]}: power at 1.5x {power_15:.3f}; at 2x {seeds:.2f} seeds "
        f"(power {power_2:.5f}), fixed {fixed}: {seeds / fixed:.3f}x"
    )


def significance_level_approach(paths: int = 1 << 19) -> str:
    """The alternative not shipped: the score's normal boundaries (`nominal_levels`, alpha·t²)
    read as t quantiles at each look; the share of null paths it calls at some look, against
    alpha/6."""
    from bnplace.stats.sequential import nominal_levels
    from bnplace.stats.t_sequential import null_abs_t

    looks = look_sizes(3, 10, 1)
    alpha = 0.05 / M
    levels = nominal_levels(looks, alpha)
    bounds = [st.t.isf(p / 2, n - 1) for n, p in zip(looks, levels, strict=True)]
    abs_t = null_abs_t(looks, looks[-1], paths, seed=7)
    spent = float((abs_t > [[c] for c in bounds]).any(axis=0).mean())
    return f"normal boundaries as t quantiles, looks 3..10: spent {spent:.4f} of {alpha:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=20000)
    reps = parser.parse_args().reps
    for rho in (0.6, 0.75, 1.0, 1.5, 2.0):
        for looks in (look_sizes(4, 14, 1), look_sizes(5, 14, 1), look_sizes(5, 16, 1)):
            mark = " (the default)" if rho == SPENDING_POWER[T] else ""
            print(f"rho {rho:g}, {row(looks, rho, reps)}{mark}")
    print(significance_level_approach())


if __name__ == "__main__":
    main()
