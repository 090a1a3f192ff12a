"""Planning a 10,000-placement search: seconds, against the same space written as a grid.

In: nothing (a synthetic data section; the data shape is given, nothing is prepared). Out: the
wall time of `make_plan` on a `search:` of 10,000 placements (4 x 5 x 5 x 5 x 5 x 4 menus over
six sites), on the same space written as `sweep.axes` (which validates each variant's whole
config), their ratio, and the placements per second.
Run: python benchmarks/search_plan.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bnplace.config import parse_config
from bnplace.plan import DataShape, make_plan

HEADER = """
experiment: bench
data: {source: synthetic, generator: sine_mix, length: 400, features: 3, window: 16}
model:
  - conv1d: {id: conv, filters: 8, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: lstm, units: 8}
"""
NORM_DROP = ["none", "batch_norm", "layer_norm", "{dropout: 0.1}", "{dropout: 0.3}"]
MENUS = {
    "input": ["none", "{gaussian_noise: 0.1}", "{dropout: 0.1}", "{dropout: 0.2}"],
    "conv.before": NORM_DROP,
    "conv.pre_act": NORM_DROP,
    "conv.post_act": NORM_DROP,
    "lstm.after": NORM_DROP,
    "pre_output": ["none", "{dropout: 0.1}", "{dropout: 0.5}", "layer_norm"],
}


def shape(config):
    return DataShape("forecast", config.data.window, config.data.features, 1, "fp", 0)


def timed(text: str) -> tuple[float, int]:
    start = time.perf_counter()
    plan = make_plan(parse_config(text, "bench.yaml"), shape)
    return time.perf_counter() - start, len(plan.variants) + len(plan.merges)


def main() -> None:
    sites = "".join(f"    {site}: [{', '.join(menu)}]\n" for site, menu in MENUS.items())
    search = HEADER + "search:\n  seeds: {min: 5, max: 10}\n  sites:\n" + sites
    axes = "".join(
        f"    {site}: [{', '.join('[]' if e == 'none' else f'[{e}]' for e in menu)}]\n"
        for site, menu in MENUS.items()
    )
    grid = HEADER + "sweep:\n  seeds: 1\n  axes:\n" + axes
    s_time, s_count = timed(search)
    g_time, g_count = timed(grid)
    print(f"search: {s_count:,} placements planned in {s_time:.1f} s ({s_count / s_time:,.0f}/s)")
    print(f"grid:   {g_count:,} variants planned in {g_time:.1f} s ({g_count / g_time:,.0f}/s)")
    print(f"search / grid time: {s_time / g_time:.2f}")


if __name__ == "__main__":
    main()
