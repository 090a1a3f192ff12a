"""The rules the process pool and Ray share: one slot per worker, time limits, workers not needed.

In: the executors' slots (a worker each, subclassed with what the executor holds: a process and
its pipe, a Ray actor and its call) and the trials they run. Out: which trial a slot runs since
when (`Slot.assign`, `Slot.release`, `Slot.fit_began`), whether it is overdue (its worker is
killed and the trial fails "timeout"), the trials the workers run now (`running`, what a free
worker's `Schedule.take` leaves to them), and the stopping of workers started ahead for trials
that turned out to have nothing to run (`stop_unneeded`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from bnplace.plan import Trial

# A trial past its time limit stops itself at the next batch; the executor kills its worker only
# when it has not stopped this long after the limit (a single batch that never ends). Both clocks
# start when the fit begins (the worker says so): the build, and on a loaded machine a worker's
# TensorFlow import, come before it. Until then the slot's clock runs from the hand-over with
# the longer SETUP_GRACE_S, so a trial stuck before its fit is still ended.
HARD_LIMIT_GRACE_S = 60.0
SETUP_GRACE_S = 600.0


@dataclass
class Slot:
    """A worker and the trial it runs (None: idle), named as progress shows it."""

    name: str
    trial: Trial | None = None
    started: float = 0.0  # time.monotonic() when the trial was handed over, or its fit began
    fitting: bool = False  # its worker has said a fit began
    last: Trial | None = None  # the trial it ran last: that variant's model is warm there

    def assign(self, trial: Trial) -> None:
        self.trial, self.started, self.fitting = trial, time.monotonic(), False
        self.last = trial

    def fit_began(self, trial_key: str) -> None:
        """The worker began a fit of `trial_key` (one per candidate of a `{choose:}` trial): its
        time limit counts from now. A late word about a trial this slot no longer runs is
        ignored."""
        if self.trial is not None and self.trial.key == trial_key:
            self.started, self.fitting = time.monotonic(), True

    def release(self) -> Trial:
        """The trial this slot ran, which has ended (or is given up); the slot is idle again."""
        trial = self.trial
        assert trial is not None, f"{self.name} runs no trial"
        self.trial = None
        return trial

    def overdue(self, now: float | None = None) -> bool:
        """Past its trial's time limit by more than the grace: stuck, so its worker is killed."""
        if self.trial is None or not self.trial.config.train.time_limit:
            return False
        elapsed = (time.monotonic() if now is None else now) - self.started
        grace = HARD_LIMIT_GRACE_S if self.fitting else SETUP_GRACE_S
        return elapsed > self.trial.config.train.time_limit + grace


S = TypeVar("S", bound=Slot)


def running(slots: Iterable[Slot]) -> list[Trial]:
    """The trials the slots run now (`Schedule.take`'s `busy`)."""
    return [slot.trial for slot in slots if slot.trial is not None]


def stop_unneeded(slots: list[S], trials: int, stop: Callable[[S], None]) -> None:
    """Stop the workers past the first `trials`: `start` spawned them before resume knew how
    many trials were left to run. They hold nothing yet (and may still be importing TensorFlow)."""
    for slot in slots[trials:]:
        stop(slot)
    del slots[trials:]
