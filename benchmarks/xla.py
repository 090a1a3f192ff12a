"""The studies' trials: candidates on one kept model, and compiled by XLA (`train.jit_compile`).

In: three of the benchmark suite's real series (taylor, half-hourly, window 48; sunspots,
monthly, window 24; wineind, monthly, 176 points, window 12), the bn_conv study's model, arms
and regime (Conv1D(16) -> LSTM(16), BN nowhere or before the Conv1D's ReLU, 2,000 optimizer
steps, batch 32, early stopping with patience 10, every trial choosing its learning rate among
3, 8 steps per execution), `--seeds` seeds. Out: the wall and CPU seconds of `bnplace run CONFIG
--jobs 1 --no-compare` (the CLI in a fresh process each run, one TensorFlow thread as a worker
has, a fresh store) in three arms, and their ratios to the first:

- `own models`: each candidate rate trains a model of its own (bnplace before the candidates
  shared one; `bnplace.trial.reuse.rate_in_variable` answers no), traced once per candidate;
- `shared`: as shipped, the candidates train one kept model in turn, traced once;
- `shared + XLA`: the same with `jit_compile: true`, compiled once per model.

The first two must give `==` metrics (the script says whether they did); XLA fuses and
reorders float operations, so its numbers are not `==` to the graphs' (tests/test_reuse.py
shows they are `==` run to run and between a kept and a fresh model): the script counts the
trials that chose the same rate in both and the relative difference of their test RMSE. Arms
alternate by round.
Run: python benchmarks/xla.py [--seeds 2] [--rounds 1]
"""

from __future__ import annotations

import json
import resource
import statistics

# the studies' model and regime; the thread and path set-up, one sweep timed in a fresh folder
from feed_epochs import CONFIG as STUDY_TRIALS
from search_reuse import arms_in_fresh_processes, print_ratios, sweep

SERIES = """
  taylor: {source: packaged, name: taylor, window: 48, season: 48}
  sunspots: {source: packaged, name: sunspots, window: 24, season: 12}
  wineind: {source: packaged, name: wineind, window: 12, season: 12}"""
SWEEP = """sweep:
  arms:
    bn:
      none: {}
      pre_act: {conv.pre_act: [{batch_norm: {momentum: 0.9}}], conv.use_bias: false}
  seeds: %d"""
ARMS = ("own models", "shared", "shared + XLA")
Metrics = dict[str, dict[str, float]]  # "dataset/variant/seed" -> its metrics but the timings


def child(arm: str, seeds: int) -> None:
    """One arm in this fresh process: its seconds, CPU seconds and metrics, as JSON on stdout's
    last line."""
    from bnplace.names import tags

    if arm == "own models":
        import bnplace.trial.reuse

        bnplace.trial.reuse.rate_in_variable = lambda train: False  # every rate in the key
    config = STUDY_TRIALS.format(series=SERIES, seeds=seeds)
    config = config.replace(f"sweep: {{seeds: {seeds}}}", SWEEP % seeds)
    config += f"  jit_compile: {str(arm == 'shared + XLA').lower()}\n"
    by_trial = (tags.DATASET, tags.VARIANT_NAME, tags.SEED)  # XLA changes the trial keys
    took, metrics, _ = sweep(config, by_trial)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps([took, usage.ru_utime + usage.ru_stime, metrics]))


def agreement(graphs: Metrics, xla: Metrics) -> str:
    """How many trials chose the same rate in both arms, and their test RMSEs' relative
    difference (median and largest)."""
    pairs = [(graphs[key], xla[key]) for key in graphs]
    same = [(g, x) for g, x in pairs if g["chosen_learning_rate"] == x["chosen_learning_rate"]]
    gaps = [abs(x["test_rmse"] / g["test_rmse"] - 1) for g, x in same]
    if not gaps:
        return f"0 of {len(pairs)} trials chose the same rate under XLA"
    return (
        f"under XLA {len(same)} of {len(pairs)} trials chose the same rate; their test RMSE "
        f"differs by {100 * statistics.median(gaps):.3f}% (median), {100 * max(gaps):.2f}% at most"
    )


def main() -> None:
    timed = arms_in_fresh_processes(__file__, ARMS, child)
    if timed is None:  # this process was one arm's child
        return
    args, walls, cpus, outputs = timed
    same = all(out["own models"][0] == out["shared"][0] for out in outputs)
    last = {arm: metrics for arm, (metrics,) in outputs[-1].items()}
    print(
        f"{len(last[ARMS[0]])} trials (3 real series x 2 arms x {args.seeds} seeds, 3 learning "
        f"rates a trial), --jobs 1, median of {args.rounds} round(s):"
    )
    print_ratios(walls, cpus)
    print(f"own models and shared: every metric == {same}")
    print(agreement(last["shared"], last["shared + XLA"]))


if __name__ == "__main__":
    main()
