"""Which trial runs next: a sweep's trials dealt to free workers, all at once or seeds on demand.

In: the trials left to run (after resume), and for seeds on demand the plan (variants, metric,
direction, the comparison family and its looks) and the metric values of trials already
finished in the store; then each trial's result as it ends (`ended`). Out: the next trial for a
free worker (`take`), preferring the variant that worker ran last so that it keeps that
variant's model warm, but never leaving a worker idle while any trial is ready; and, for seeds
on demand, where each comparison stands (`decisions`) and a record per look passed (`looks`).

Seeds on demand (`SeedsOnDemand`): every variant gets the first look's seeds; when a look of a
comparison is complete (every side has ended those seeds) the family is judged again by
`bnplace.stats.pairing.judge_family`, the same function `compare` uses, and a variant gets the next
look's seeds only while a comparison it is in is undecided. Decisions are a function of the
ended trials alone, so a sweep killed at any point and rerun reaches the same decisions. With
several datasets, one runs per dataset (its `dataset`: it deals and judges that dataset's
trials alone) behind `bnplace.execute.schedule_datasets.SeedsOnDemandByDataset`.
Claims (`ClaimedSchedule`): a wrapper around either schedule for drivers that share a plan. Its
`take` claims each trial through a `Claimer` (bnplace/store/claims.py does it over MLflow) before it
deals it, skips trials a live driver holds, passes on the results of trials that ended
elsewhere as if they had ended here, and, once this driver runs nothing, waits for the trials
held elsewhere (their results may release more seeds; a stale one is taken over).
Pure: no TensorFlow, no MLflow, no files.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from bnplace.names.states import FINISHED

if TYPE_CHECKING:
    import pandas as pd

    from bnplace.plan import Plan, Trial
    from bnplace.stats.sequential import Decision
    from bnplace.stats.verdicts import Contrast
    from bnplace.trial.result import TrialResult


class Schedule(Protocol):
    def take(self, prefer: Trial | None = None, busy: Collection[Trial] = ()) -> Trial | None:
        """The next trial to start, or None when none is ready now; an executor stops once
        none is ready and none is running. `prefer`: the trial the asking worker ran last;
        a ready trial whose model is warm there (`warmth`) comes first. `busy`: the trials
        the other workers run now; a model warm there is left to them (`take_from`)."""
        ...

    def ready(self) -> int:
        """How many trials could start now."""
        ...

    def remaining(self) -> int:
        """How many trials may still be dealt (ready now or later): workers past this many
        are not needed. A count, for the executors' loops: `len(to_deal())`, cheaply."""
        ...

    def to_deal(self) -> list[Trial]:
        """The trials that may still be dealt, ready now or later, given the trials ended so
        far (`bnplace status` calls the rest of the plan's trials without a run not needed)."""
        ...

    def ended(self, result: TrialResult) -> None:
        """A trial ended (the executor calls this after emitting its `TrialEnded`)."""
        ...


def warmth(trial: Trial, prefer: Trial) -> int:
    """How warm `trial` is for a worker that ran `prefer` last, lower first: 0 its variant on
    its dataset (the model the worker keeps, `bnplace.trial.reuse`: its next seed is reused,
    not rebuilt and traced), 1 its variant on a dataset of the same shapes (the kept model
    moves there), 2 its variant elsewhere, 3 another variant."""
    if trial.variant_id != prefer.variant_id:
        return 3
    if trial.dataset == prefer.dataset:
        return 0
    return 1 if trial.model == prefer.model else 2


def _rank(trial: Trial, prefer: Trial | None, busy: Collection[Trial]) -> int:
    """`warmth`, where a trial cold for the asking worker comes after the cold ones whose
    model no other worker is building: a trial of a variant and shapes another worker runs
    now is warm there, and taking it here would build that model twice (two workers on one
    variant's seeds; a search round's placements on datasets of the same shapes)."""
    warm = warmth(trial, prefer) if prefer is not None else 3
    if warm < 2:
        return warm
    shared = any(t.variant_id == trial.variant_id and t.model == trial.model for t in busy)
    return warm + 2 if shared else warm


NONE_READY = 6  # the rank of an empty queue: after every `_rank` (0-5)


def best_in(queue: deque[Trial], prefer: Trial | None, busy: Collection[Trial]) -> tuple[int, int]:
    """(`_rank`, index) of the first of the best trials in `queue`; (NONE_READY, -1) when it
    is empty."""
    best, best_index = NONE_READY, -1
    for index, trial in enumerate(queue):  # one pass, stopping at rank 0 (queues are long)
        rank = _rank(trial, prefer, busy)
        if rank < best:
            best, best_index = rank, index
            if rank == 0:
                break
    return best, best_index


def take_from(
    queue: deque[Trial], prefer: Trial | None, busy: Collection[Trial] = ()
) -> Trial | None:
    """The first of the best trials in `queue` (`best_in`), removed; None when it is empty."""
    index = best_in(queue, prefer, busy)[1]
    if index < 0:
        return None
    trial = queue[index]
    del queue[index]
    return trial


@dataclass
class FixedSchedule:
    """Every trial is ready from the start, in plan order (a variant's seeds together)."""

    trials: deque[Trial]

    def __init__(self, trials: Iterable[Trial]) -> None:
        self.trials = deque(trials)

    def take(self, prefer: Trial | None = None, busy: Collection[Trial] = ()) -> Trial | None:
        return take_from(self.trials, prefer, busy)

    def ready(self) -> int:
        return len(self.trials)

    def remaining(self) -> int:
        return len(self.trials)

    def to_deal(self) -> list[Trial]:
        return list(self.trials)

    def ended(self, result: TrialResult) -> None:
        """Nothing to do: every trial was ready from the start."""


def as_schedule(trials: Sequence[Trial] | Schedule) -> Schedule:
    """A schedule for `trials`: a plain sequence is dealt all at once."""
    if isinstance(trials, Sequence):
        return FixedSchedule(trials)
    return trials


@dataclass(frozen=True)
class LookRecord:
    """The sweep after look `look` (1-based) of every comparison: what is still open and the
    seeds each variant (by id) has been given; with several datasets, on `dataset` ("": the
    only one)."""

    look: int
    open_comparisons: int
    seeds: dict[str, int]
    dataset: str = ""
    # where every comparison of the family stood when the sweep passed this look (a comparison
    # already judged at a later look shows that look)
    decisions: Mapping[str, Decision] = field(default_factory=dict)


@dataclass
class SeedsOnDemand:
    """Seeds dealt look by look while a variant's comparisons are undecided. With `dataset`
    (several datasets: one per dataset, `bnplace.execute.schedule_datasets`), only that dataset's
    trials are dealt and judged: each dataset runs its own copy of the family."""

    plan: Plan
    todo: Sequence[Trial]  # trials that may still run (the selection, less what finished)
    finished: Mapping[str, float] = field(default_factory=dict)  # trial key -> metric value
    selected: Collection[str] = ()  # variant names --filter kept (empty: every variant)
    dataset: str | None = None  # None: every trial of the plan (one dataset)
    rows: list[dict[str, object]] = field(default_factory=list, init=False)
    decisions: dict[str, Decision] = field(default_factory=dict, init=False)
    looks: list[LookRecord] = field(default_factory=list, init=False)  # drained by the driver
    _pending: dict[str, dict[int, Trial]] = field(default_factory=dict, init=False)
    _queue: deque[Trial] = field(default_factory=deque, init=False)
    _given: dict[str, int] = field(default_factory=dict, init=False)  # variant name -> seeds
    _ended: dict[str, set[int]] = field(default_factory=dict, init=False)
    _passed: int = field(default=0, init=False)  # looks recorded so far

    def __post_init__(self) -> None:
        from bnplace.stats.sequential import SequentialRule
        from bnplace.stats.verdicts import family

        design = self.plan.design
        names = [v.name for v in self.plan.variants]
        self._family = family(names, self.plan.baseline, design)
        self._rule = SequentialRule.of(design, len(self._family))  # fixed for the sweep
        self._ids = {v.name: v.id for v in self.plan.variants}
        for trial in self._mine(self.todo):
            self._pending.setdefault(trial.variant, {})[trial.seed] = trial
        for trial in self._mine(self.plan.trials):
            if trial.key in self.finished:
                self._record(trial.variant, trial.seed, FINISHED, self.finished[trial.key])
        self._given = dict.fromkeys(names, 0)
        self._judge()

    def _mine(self, trials: Iterable[Trial]) -> list[Trial]:
        return [t for t in trials if self.dataset is None or t.dataset == self.dataset]

    # --- the Schedule protocol -------------------------------------------------------------

    def take(self, prefer: Trial | None = None, busy: Collection[Trial] = ()) -> Trial | None:
        return take_from(self._queue, prefer, busy)

    def best(self, prefer: Trial | None, busy: Collection[Trial]) -> int:
        """The rank of the trial `take` would deal now (NONE_READY: none is ready)."""
        return best_in(self._queue, prefer, busy)[0]

    def ready(self) -> int:
        return len(self._queue)

    def remaining(self) -> int:
        return len(self._queue) + sum(len(self._pending.get(v, {})) for v in self._open())

    def to_deal(self) -> list[Trial]:
        later = [t for v in self._open() for t in self._pending.get(v, {}).values()]
        return [*self._queue, *later]

    def ended(self, result: TrialResult) -> None:
        value = result.metrics.get(self.plan.metric, float("nan"))
        self._record(result.variant, result.seed, str(result.status), value)
        if self._look_completed(result.variant):
            self._judge()

    # --- looks -----------------------------------------------------------------------------

    def _record(self, variant: str, seed: int, status: str, value: float) -> None:
        self.rows.append(
            {"variant": variant, "seed": seed, "status": status, self.plan.metric: value}
        )
        self._ended.setdefault(variant, set()).add(seed)

    def _look_completed(self, variant: str) -> bool:
        """Whether an open comparison with `variant` can now be judged at its next look."""
        from bnplace.stats.pairing import complete_seeds
        from bnplace.stats.sequential import next_look_seeds

        for c in self._family:
            if variant not in c.variants:
                continue
            need = next_look_seeds(self.decisions[c.name], self._rule)
            if need and complete_seeds(self._ended, c.variants, range(need)) >= need:
                return True
        return False

    def _judge(self) -> None:
        """Judge the family on the trials ended so far; give each variant the seeds its open
        comparisons need next, and queue the trials for them."""
        from bnplace.stats.pairing import FamilyQuestion, judge_family, seeds_needed

        design = self.plan.design
        question = FamilyQuestion(self.plan.metric, self.plan.direction, self._family, design)
        self.decisions = judge_family(self._table(), question)
        for name, need in seeds_needed(self.decisions, self._dealt_family(), design).items():
            if need > self._given[name]:
                pending = self._pending.get(name, {})
                self._queue.extend(pending.pop(s) for s in sorted(pending) if s < need)
                self._given[name] = need
        self._record_looks()

    def _dealt_family(self) -> list[Contrast]:
        """The comparisons this sweep deals seeds for: a side --filter left out never gets
        seeds, so no comparison waits on it."""
        return [
            c for c in self._family if not self.selected or set(c.variants) <= set(self.selected)
        ]

    def _open(self) -> set[str]:
        """The variants in an undecided comparison: later looks may still give them seeds."""
        return {
            name
            for c in self._dealt_family()
            if not self.decisions[c.name].decided
            for name in c.variants
        }

    def _record_looks(self) -> None:
        """A `LookRecord` for every look the sweep has passed: the lowest look an undecided
        comparison has been judged at (once all are decided, the last look any was judged at)."""
        judged = {name: 0 if d.look is None else d.look + 1 for name, d in self.decisions.items()}
        undecided = [judged[name] for name, d in self.decisions.items() if not d.decided]
        passed = min(undecided) if undecided else max(judged.values(), default=0)
        while self._passed < passed:
            self._passed += 1
            open_now = sum(
                1
                for name, d in self.decisions.items()
                if not d.decided or judged[name] > self._passed
            )
            seeds = {self._ids[name]: given for name, given in self._given.items()}
            record = LookRecord(
                self._passed, open_now, seeds, self.dataset or "", dict(self.decisions)
            )
            self.looks.append(record)

    def _table(self) -> pd.DataFrame:
        import pandas as pd

        columns = ["variant", "seed", "status", self.plan.metric]
        return pd.DataFrame(self.rows, columns=columns)


@dataclass(frozen=True)
class Claim:
    """A claim's outcome: `won` (this driver holds the trial and runs it), else `result` (it
    ended elsewhere since this driver started), else held by the live driver `holder` (or a
    tie both claimants yielded: try again later)."""

    won: bool = False
    result: TrialResult | None = None
    holder: str = ""


class Claimer(Protocol):
    def claim(self, trial: Trial) -> Claim:
        """Claim `trial` for this driver; asked again for a trial it found held elsewhere."""
        ...


@dataclass
class ClaimedSchedule:
    """`inner`'s trials, each claimed before it is dealt; see the module docstring.

    `on_elsewhere` hears of each trial that ended in another driver (after `inner` did).
    `poll_s`: how often trials held elsewhere are looked at again.
    """

    inner: Schedule
    claimer: Claimer
    on_elsewhere: Callable[[TrialResult], None] = lambda result: None
    poll_s: float = 2.0
    sleep: Callable[[float], None] = time.sleep
    held: dict[str, Trial] = field(default_factory=dict, init=False)  # key -> held elsewhere
    _won: deque[Trial] = field(default_factory=deque, init=False)  # claimed, not yet dealt
    _open: int = field(default=0, init=False)  # dealt and not yet ended
    _polled: float = field(default=0.0, init=False)

    def take(self, prefer: Trial | None = None, busy: Collection[Trial] = ()) -> Trial | None:
        while True:
            self._poll(wait=False)
            trial = self._claim_next(prefer, busy)
            if trial is not None:
                self._open += 1
                return trial
            if self._open or not self.held:
                return None  # the executor asks again when a trial of this driver ends
            self._poll(wait=True)  # nothing runs here: wait for the trials held elsewhere

    def ready(self) -> int:
        return self.inner.ready() + len(self._won) + len(self.held)

    def remaining(self) -> int:
        return self.inner.remaining() + len(self._won) + len(self.held)

    def to_deal(self) -> list[Trial]:
        return [*self.inner.to_deal(), *self._won, *self.held.values()]

    def ended(self, result: TrialResult) -> None:
        self._open -= 1
        self.inner.ended(result)

    def _claim_next(self, prefer: Trial | None, busy: Collection[Trial]) -> Trial | None:
        if self._won:
            return self._won.popleft()
        while (trial := self.inner.take(prefer, busy)) is not None:
            if self._settle(trial, self.claimer.claim(trial)):
                return trial
        return None

    def _settle(self, trial: Trial, claim: Claim) -> bool:
        """Whether `trial` is now this driver's; else remember or pass on where it is."""
        if claim.won:
            self.held.pop(trial.key, None)
            return True
        if claim.result is not None:
            self.held.pop(trial.key, None)
            self.inner.ended(claim.result)
            self.on_elsewhere(claim.result)
        else:
            self.held[trial.key] = trial
        return False

    def _poll(self, wait: bool) -> None:
        """Ask again for the trials held elsewhere, at most every `poll_s` (jittered) seconds;
        with `wait`, sleep until then."""
        if not self.held:
            return
        due = self._polled + self.poll_s * random.uniform(0.75, 1.25)
        if time.monotonic() < due:
            if not wait:
                return
            self.sleep(due - time.monotonic())
        self._polled = time.monotonic()
        for trial in list(self.held.values()):
            if self._settle(trial, self.claimer.claim(trial)):
                self._won.append(trial)
