"""Resident memory of one worker over a 200-trial sweep, with each variant's model reused.

In: nothing (synthetic sine_mix, a tiny Conv1D -> BN -> ReLU -> LSTM(4) model, 1 epoch; 4
variants x 50 seeds, run in variant order as `--jobs 1` and a pool worker run them). Out: the
process's resident set size (from /proc/self/statm) after trials 1, 10, 50, 100, 150 and 200,
the growth per trial over each stretch, and the mean trial time of fresh and reused trials.
A pool worker is replaced after RECYCLE_AFTER trials (bnplace.execute.local), so the growth
over that many trials is the most a worker gains before it is recycled.
Run: python benchmarks/memory.py [--trials 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CONFIG = """
experiment: memory
data: {source: synthetic, generator: sine_mix, length: 600, features: 2, window: 12}
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: lstm, units: 4}
placements: {conv.pre_act: [batch_norm]}
train: {epochs: 1, batch_size: 32}
sweep:
  arms:
    drop:
      none: {}
      dropout: {conv.post_act: [{dropout: 0.2}]}
      recurrent: {lstm.recurrent_dropout: 0.2}
      noise: {conv.post_act: [{gaussian_noise: 0.1}]}
  seeds: SEEDS
"""


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    from bnplace.execute import set_tf_threads
    from bnplace.execute.local import RECYCLE_AFTER
    from bnplace.run.sweep import plan_sweep

    set_tf_threads(1)
    from bnplace.trial.train import TrialRunner

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(CONFIG.replace("SEEDS", str(args.trials // 4)))
        prepared = plan_sweep(path)
    runner = TrialRunner()
    marks = {1, 10, 50, 100, 150, 200, args.trials}
    seen: dict[int, float] = {0: rss_mb()}
    times: dict[str, list[float]] = {"fresh": [], "reused": []}
    for n, trial in enumerate(prepared.plan.trials, 1):
        started = time.perf_counter()
        result = runner.run(trial, prepared.datasets[trial.data_fingerprint])
        times[result.tags["bnplace.reuse"]].append(time.perf_counter() - started)
        if n in marks:
            seen[n] = rss_mb()
    print(f"RSS (MB) of one worker, {args.trials} trials, reuse on (RECYCLE_AFTER={RECYCLE_AFTER})")
    last = 0
    for n, mb in sorted(seen.items()):
        growth = (
            "" if n == 0 else f"  +{(mb - seen[last]) / max(1, n - last):.2f} MB/trial since {last}"
        )
        print(f"  after {n:4d} trials: {mb:7.1f}{growth}")
        last = n
    for kind, spans in times.items():
        if spans:
            print(f"  {kind}: {len(spans)} trials, mean {sum(spans) / len(spans):.3f} s")


if __name__ == "__main__":
    main()
