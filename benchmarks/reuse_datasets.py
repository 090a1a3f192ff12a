"""A worker's kept model carried from one dataset to the next of the same shapes.

In: the benchmark suite's seven quarterly series (ausbeer and the six US macro series, window
8, season 4: the shapes most of the suite's datasets share), the bn_conv study's model, arms
and regime (Conv1D(16) -> LSTM(16), BN nowhere or before the Conv1D's ReLU, 2,000 optimizer
steps, batch 32, early stopping with patience 10, every trial choosing its learning rate among
3, 8 steps per execution) under XLA (`jit_compile: true`, as the studies run), `--seeds` seeds.
Out: the wall and CPU seconds of `bnplace run CONFIG --jobs 1 --no-compare` (the CLI in a fresh
process each run, a fresh store) in two arms, and their ratio:

- `per dataset`: the kept model's key holds the dataset (`bnplace.trial.reuse.variant_key`
  before it left the data out), so each dataset builds and compiles its own model;
- `across datasets`: as shipped, a dataset of the same shapes resets the model the worker
  kept (and remakes only its predict function, `reuse.move_to`).

Every metric but the timings must be `==` between the two (the script says whether it was);
it also counts the trials that reused a kept model. Arms alternate by round.
Run: python benchmarks/reuse_datasets.py [--seeds 2] [--rounds 1]
"""

from __future__ import annotations

# the studies' model and regime; the thread and path set-up, one sweep timed in a fresh folder
from feed_epochs import CONFIG as STUDY_TRIALS
from search_reuse import arms_in_fresh_processes, print_kept_arms, print_sweep_for_parent
from xla import SWEEP

QUARTERLY = ("ausbeer", "us_unemployment", "us_inflation", "us_tbill", "us_consumption")
QUARTERLY += ("us_production", "us_savings")
SERIES = "".join(
    f"\n  {name}: {{source: packaged, name: {name}, window: 8, season: 4}}" for name in QUARTERLY
)
ARMS = ("per dataset", "across datasets")


def child(arm: str, seeds: int) -> None:
    """One arm in this fresh process: its seconds, CPU seconds, metrics and reused trials, as
    JSON on stdout's last line."""
    import bnplace.trial.reuse
    import bnplace.trial.train

    if arm == "per dataset":
        shipped = bnplace.trial.reuse.variant_key

        def per_dataset(trial):  # type: ignore[no-untyped-def]
            return shipped(trial) + trial.data_fingerprint

        bnplace.trial.reuse.variant_key = per_dataset
        bnplace.trial.train.variant_key = per_dataset  # the name train.py imported
    config = STUDY_TRIALS.format(series=SERIES, seeds=seeds)
    config = config.replace(f"sweep: {{seeds: {seeds}}}", SWEEP % seeds)
    config += "  jit_compile: true\n"
    print_sweep_for_parent(config)


def main() -> None:
    timed = arms_in_fresh_processes(__file__, ARMS, child)
    if timed is not None:  # None: this process was one arm's child
        what = "(7 quarterly series x 2 arms x {seeds} seeds, 3 learning rates a trial, XLA)"
        print_kept_arms(timed, ARMS, what)


if __name__ == "__main__":
    main()
