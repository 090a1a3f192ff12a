"""The studies' trials: windows sliced from memory (bnplace) against gathered batch by batch.

In: two of the benchmark suite's short real series (us_consumption: quarterly, ~200 points,
window 8; wineind: monthly, 176 points, window 12), the studies' Conv1D(16) -> LSTM(16) model
and regime (2,000 optimizer steps, batch 32, early stopping with patience 10, every trial
choosing its learning rate among 3), `--seeds` seeds. Out: the wall time of `bnplace run CONFIG
--jobs 1 --no-compare` (the CLI in this process, a fresh store each run) with the feed as shipped
(a split that fits `bnplace.data.feed.SLICED_FLOATS` is sliced from its materialised windows)
and with every split gathered from the series by a `map` (the feed before: each epoch's new
iterator instantiates the map's function for the train and the validation feed); their ratio;
and whether every trial's metrics but the timings are `==`. Each run is a fresh process (an
earlier arm in the same process left kept models and caches behind: in one process the long
series' arms measured 1.37x the other way round); arms alternate by round, after a warm-up run
that only warms the disk cache.
`--series long` runs taylor (half-hourly, 4,032 points, window 48) and co2 (weekly, window 52)
instead: ~90 batches an epoch, where the saving is a smaller share.
Run: python benchmarks/feed_epochs.py [--seeds 2] [--rounds 2] [--series short|long]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable

# the thread and path set-up; one sweep timed in a fresh folder, two arms alternated
from search_reuse import alternate, sweep

SERIES = {
    "short": """
  us_consumption: {{source: packaged, name: us_consumption, window: 8, season: 4}}
  wineind: {{source: packaged, name: wineind, window: 12, season: 12}}""",
    "long": """
  taylor: {{source: packaged, name: taylor, window: 48, season: 48}}
  co2: {{source: packaged, name: co2, window: 52, season: 52, difference: true}}""",
}
CONFIG = """
experiment: benchmark
datasets:{series}
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


def child(sliced: bool, config_text: str) -> None:
    """One arm in this fresh process: the sweep's seconds and metrics, as JSON on stdout's last
    line."""
    from bnplace.data import feed

    if not sliced:
        feed.SLICED_FLOATS = 0
    took, metrics, _ = sweep(config_text)
    print(json.dumps([took, metrics]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--series", choices=sorted(SERIES), default="short")
    parser.add_argument("--child", choices=["sliced", "gathered"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    config_text = CONFIG.format(series=SERIES[args.series].format(), seeds=args.seeds)
    if args.child:
        child(args.child == "sliced", config_text)
        return

    def arm(name: str) -> Callable[[], tuple[float, dict, int]]:
        def run() -> tuple[float, dict, int]:
            command = [sys.executable, __file__, "--child", name]
            command += ["--series", args.series, "--seeds", str(args.seeds)]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            took, metrics = json.loads(done.stdout.strip().splitlines()[-1])
            return took, metrics, 0

        return run

    sliced_median, gathered_median, same, _ = alternate(
        arm("sliced"), arm("gathered"), args.rounds, 2 * args.seeds
    )
    print(
        f"2 {args.series} series x {args.seeds} seeds, 3 learning rates a trial, --jobs 1: sliced "
        f"{sliced_median:.1f} s, gathered {gathered_median:.1f} s (median of {args.rounds} "
        f"rounds): ratio {sliced_median / gathered_median:.2f}; metrics identical: {same}"
    )


if __name__ == "__main__":
    main()
