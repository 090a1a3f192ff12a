"""A worker's kept model for the BN-LSTM cell (`lstm: {cell: batch_norm}`): what it saves.

In: the bn_cell study's model (Conv1D(16) -> LSTM(16) over bnplace's `BatchNormLSTMCell`) and
regime (2,000 optimizer steps, batch 32, early stopping with patience 10, every trial choosing
its learning rate among 3, 8 steps per execution) under XLA (`jit_compile: true`, as the study
runs) on `--series` real quarterly series of one shape, `--seeds` seeds. Out: the wall and CPU
seconds of `bnplace run CONFIG --jobs 1 --no-compare` (the CLI in a fresh process each run, a
fresh store) in two arms, and their ratio:

- `built per trial`: the cell's class off `bnplace.trial.reuse`'s list of layers known to keep
  all their state in variables (bnplace before 2026-12-05), so every trial builds and compiles
  its own model (`bnplace.reuse_fallback` says why);
- `kept`: as shipped, a worker keeps the compiled model and resets it for the next seed and
  the next dataset of the same shapes.

Every metric but the timings must be `==` between the two (the script says whether it was);
it also counts the trials that reused a kept model. Arms alternate by round.
Run: python benchmarks/reuse_cells.py [--seeds 2] [--rounds 1]
"""

from __future__ import annotations

# the studies' model and regime; the thread and path set-up, one sweep timed in a fresh folder
from feed_epochs import CONFIG as STUDY_TRIALS
from search_reuse import arms_in_fresh_processes, print_kept_arms, print_sweep_for_parent

SERIES_NAMES = ("ausbeer", "us_tbill")
SERIES = "".join(
    f"\n  {name}: {{source: packaged, name: {name}, window: 8, season: 4}}" for name in SERIES_NAMES
)
PLAIN_LSTM = "  - lstm: {{id: lstm, units: 16}}\n"
BN_CELL_LSTM = "  - lstm: {{id: lstm, units: 16, cell: batch_norm}}\n"
ARMS = ("built per trial", "kept")


def child(arm: str, seeds: int) -> None:
    """One arm in this fresh process (`print_sweep_for_parent`)."""
    import bnplace.trial.reuse

    if arm == "built per trial":
        reuse = bnplace.trial.reuse
        reuse._RESETTABLE = reuse._RESETTABLE - {"BatchNormLSTMCell"}  # type: ignore[attr-defined]
    assert PLAIN_LSTM in STUDY_TRIALS
    config = STUDY_TRIALS.replace(PLAIN_LSTM, BN_CELL_LSTM).format(series=SERIES, seeds=seeds)
    config += "  jit_compile: true\n"
    print_sweep_for_parent(config)


def main() -> None:
    timed = arms_in_fresh_processes(__file__, ARMS, child)
    if timed is not None:  # None: this process was one arm's child
        what = f"of the BN-LSTM cell ({len(SERIES_NAMES)} quarterly series x {{seeds}} seeds, "
        print_kept_arms(timed, ARMS, what + "3 learning rates a trial, XLA)")


if __name__ == "__main__":
    main()
