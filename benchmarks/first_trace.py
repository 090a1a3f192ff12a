"""A fresh trial's tracing: metric state built before the first fit (bnplace) against in the trace.

In: the tiny config of the test suite (Conv1D(4) -> BN -> ReLU -> Dropout -> LSTM(4) -> Dense on
a 360-step sine_mix, window 12, batch 32, 2 epochs) and a larger one (Conv1D(16) -> LSTM(16) on
2,000 steps, window 48, batch 64, 4 epochs). Out, printed per config: the mean time of a fresh
trial (`run_trial`: build, compile, trace, fit, evaluate, diagnostics; nothing kept) with
`bnplace.trial.reuse.build_state` as shipped, and with it switched off, so Keras creates the
compiled metrics' variables inside the first traced train step and TensorFlow traces that
step a second time; the functions each arm traced; their time ratio; and whether every metric
but the timings is `==` between the two arms. Arms alternate by round, in one process
(TensorFlow imported once), after a warm-up round. Run: python benchmarks/first_trace.py
[--seeds 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

# the config at its two sizes, the thread and path set-up and the timing metrics of the
# kernel-cache benchmark; here with a Dropout after the ReLU as well
from kernel_cache import SIZES, TIMINGS, sized_trials

PLACEMENTS = "{conv.pre_act: [batch_norm], conv.post_act: [{dropout: 0.2}]}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import bnplace.trial.reuse as reuse
    from bnplace.names import tags
    from bnplace.trial.train import run_trial

    shipped = reuse.build_state

    def arm(build_state: object, trials: list, data: object) -> tuple[float, list, set]:
        """Mean seconds of a fresh trial, the outcomes, and the trace counts seen."""
        reuse.build_state = build_state
        took, outcomes, traced = [], [], set()
        for trial in trials:
            started = time.perf_counter()
            result = run_trial(trial, data)
            took.append(time.perf_counter() - started)
            metrics = {k: v for k, v in result.metrics.items() if k not in TIMINGS}
            outcomes.append((result.status, metrics, result.history))
            traced.add(result.tags[tags.TRACES])
        return statistics.mean(took), outcomes, traced

    def in_trace(model: object, spec: object) -> None:
        """Keras' own way: the state is created inside the first traced step."""

    for name in SIZES:
        trials, dataset = sized_trials(name, PLACEMENTS, args.seeds)
        arm(shipped, trials[:1], dataset)  # warm-up: imports, first tracing in this process
        times: dict[str, list[float]] = {"before": [], "in_trace": []}
        traces: dict[str, set] = {"before": set(), "in_trace": set()}
        same = True
        for _ in range(args.rounds):
            before_s, before_out, before_traced = arm(shipped, trials, dataset)
            in_s, in_out, in_traced = arm(in_trace, trials, dataset)
            times["before"].append(before_s)
            times["in_trace"].append(in_s)
            traces["before"] |= before_traced
            traces["in_trace"] |= in_traced
            same = same and before_out == in_out
        before, inside = statistics.median(times["before"]), statistics.median(times["in_trace"])
        print(
            f"{name}: fresh trial {before:.2f} s with the state built first "
            f"({'/'.join(sorted(traces['before']))} traces), {inside:.2f} s built in the trace "
            f"({'/'.join(sorted(traces['in_trace']))} traces) (median of {args.rounds} rounds "
            f"x {args.seeds} seeds): ratio {before / inside:.2f}; metrics identical: {same}"
        )
    reuse.build_state = shipped


if __name__ == "__main__":
    main()
