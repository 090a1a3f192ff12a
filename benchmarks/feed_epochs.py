"""Short series, many epochs: windows sliced from memory (bnplace) against gathered per batch.

In: two of the benchmark suite's short real series (us_consumption: quarterly, ~200 points,
window 8; wineind: monthly, 176 points, window 12), the studies' Conv1D(16) -> LSTM(16) model
and regime (2,000 optimizer steps, batch 32, early stopping with patience 10, every trial
choosing its learning rate among 3), `--seeds` seeds. Out: the wall time of `bnplace run CONFIG
--jobs 1 --no-compare` (the CLI in this process, a fresh store each run) with the feed as shipped
(a split that fits `bnplace.data.feed.SLICED_FLOATS` is sliced from its materialised windows)
and with every split gathered from the series by a `map` (the feed before: each epoch's new
iterator instantiates the map's function for the train and the validation feed); their ratio;
and whether every trial's metrics but the timings are `==`. Arms alternate by round, after a
warm-up round.
Run: python benchmarks/feed_epochs.py [--seeds 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics

# the thread and path set-up, the timing metrics left out, one sweep timed in a fresh folder
from search_reuse import sweep

CONFIG = """
experiment: benchmark
datasets:
  us_consumption: {{source: packaged, name: us_consumption, window: 8, season: 4}}
  wineind: {{source: packaged, name: wineind, window: 12, season: 12}}
model:
  - conv1d: {{id: conv, filters: 16, kernel_size: 3, padding: causal, activation: relu}}
  - lstm: {{id: lstm, units: 16}}
sweep: {{seeds: {seeds}}}
train:
  steps: 2000
  batch_size: 32
  learning_rate: {{choose: [0.001, 0.003, 0.01]}}
  early_stopping: {{patience: 10}}
  steps_per_execution: 8
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from bnplace.data import feed

    shipped = feed.SLICED_FLOATS
    config_text = CONFIG.format(seeds=args.seeds)

    def arm(sliced_floats: int) -> tuple[float, dict, int]:
        feed.SLICED_FLOATS = sliced_floats
        feed._in_order.cache_clear()  # the kept validation and test feeds of the other arm
        try:
            return sweep(config_text)
        finally:
            feed.SLICED_FLOATS = shipped

    arm(shipped)  # warm-up: imports, first tracing in this process
    times: dict[str, list[float]] = {"sliced": [], "gathered": []}
    same = True
    for _ in range(args.rounds):
        sliced_s, sliced, _ = arm(shipped)
        gathered_s, gathered, _ = arm(0)
        times["sliced"].append(sliced_s)
        times["gathered"].append(gathered_s)
        differ = sorted(
            {k for key in sliced for k in sliced[key] if sliced[key][k] != gathered[key].get(k)}
        )
        if differ:
            print("differ:", differ)
        same = same and sliced == gathered and len(sliced) == 2 * args.seeds
    sliced_median = statistics.median(times["sliced"])
    gathered_median = statistics.median(times["gathered"])
    print(
        f"2 short series x {args.seeds} seeds, 3 learning rates a trial, --jobs 1: sliced "
        f"{sliced_median:.1f} s, gathered {gathered_median:.1f} s (median of {args.rounds} "
        f"rounds): ratio {sliced_median / gathered_median:.2f}; metrics identical: {same}"
    )


if __name__ == "__main__":
    main()
