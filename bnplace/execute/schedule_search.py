"""Racing a search: which placement trains which seed next, and which placements are out.

In: a search plan (every placement x seeds 0 .. N − 1), the trials left to run (after resume),
the metric values of trials already finished in the store, and each trial's result as it ends.
Out: the next trial for a free worker (`take`, the `execute.schedule.Schedule` protocol: the
worker's last placement on its last dataset, or on one of the same shapes, preferred, and a
placement's model another worker builds left to it), the `Elimination` of each placement
the rule of `bnplace.stats.selection` has put out (`eliminations`; new ones also in `news`,
drained by the driver) and the survivors.

Rounds: every placement gets seeds 0 .. n0 − 1 (`search.seeds.min`); once the survivors have all
ended the seeds dealt so far, they get `step` more, up to `max`, while more than one survives.
The race is read seed by seed: seed r is read once every placement still in has ended it (on
every dataset), and the rule runs on the losses of seeds 0 .. r − 1 alone (`selection.race`,
which never reads a placement's seeds past its elimination). So eliminations are a function of
the ended trials only: a search killed at any point and rerun reaches the same eliminations and
trains nothing twice (finished trials come from the store). Losses are log(metric) (−log for a
metric to maximise), so the margin reads as a ratio; a failed trial counts as the worst loss any
placement reached in the first stage (on its dataset).

Several datasets (`datasets:`): a seed is one trial per dataset, and its loss is the mean over the
datasets of their losses, so the race, and its guarantee, are about the mean log metric over the
datasets (each dataset weighs the same: the pooled effect of a fixed set of series, not a
prediction for a new one). The seeds stay the unit the rule's bound is built on: seed r's
datasets' trials are one observation per placement, independent of seed r' and paired across
placements. One dataset is the same race on that dataset's losses. Pure: no TensorFlow, no
MLflow, no files.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from bnplace.execute.schedule import take_from
from bnplace.stats.selection import SelectionRule, race

if TYPE_CHECKING:
    from bnplace.plan import Plan, Trial
    from bnplace.trial.result import TrialResult

TINY = 1e-12  # a metric of 0 (a perfect fit, a 0 accuracy) stays finite on the log scale


@dataclass(frozen=True)
class Elimination:
    """Placement `variant` (an id) went after `seeds` seeds: shown worse than `by` (an id) by at
    least `worse_by` on the log scale, more than the margin."""

    variant: str
    seeds: int
    by: str
    worse_by: float

    def sentence(self, names: Mapping[str, str]) -> str:
        percent = 100 * math.expm1(self.worse_by)
        return (
            f"after {self.seeds} seeds, worse than '{names.get(self.by, self.by)}' by at least "
            f"{percent:.1f}% (more than the margin)"
        )


def search_rule(plan: Plan) -> SelectionRule:
    """The selection rule of a search plan: compare.alpha, log(1 + compare.margin), seeds."""
    config = plan.variants[0].config
    if config.search is None:
        raise ValueError("not a search plan")
    seeds = config.search.seeds
    assert seeds.min is not None  # a search's seeds always give min and step (config.schema)
    margin = math.log1p(config.compare.margin)
    return SelectionRule(config.compare.alpha, margin, seeds.min, seeds.max)


def to_loss(value: float, direction: str) -> float:
    """A metric value on the race's scale: lower is better, differences are log ratios."""
    if not math.isfinite(value):
        return math.nan
    loss = math.log(max(value, TINY))
    return loss if direction == "min" else -loss


@dataclass
class Racing:
    """The racing schedule of one search plan (on one dataset or several)."""

    plan: Plan
    todo: Sequence[Trial]
    finished: Mapping[str, float] = field(default_factory=dict)  # trial key -> metric value
    eliminations: dict[str, Elimination] = field(default_factory=dict, init=False)
    news: list[Elimination] = field(default_factory=list, init=False)  # drained by the driver
    read: int = field(default=0, init=False)  # seeds the race has read
    _queue: deque[Trial] = field(default_factory=deque, init=False)

    def __post_init__(self) -> None:
        config = self.plan.variants[0].config
        assert config.search is not None
        self.rule = search_rule(self.plan)
        self.step = config.search.seeds.step_or_default
        self._ids = [v.id for v in self.plan.variants]
        self._index = {vid: i for i, vid in enumerate(self._ids)}
        datasets = {name: d for d, name in enumerate(self.plan.datasets or ("",))}
        # each trial's cell: (placement, seed, dataset)
        self._cell = {
            t.key: (self._index[t.variant_id], t.seed, datasets[t.dataset])
            for t in self.plan.trials
        }
        shape = (len(self._ids), self.rule.last, len(datasets))
        self._losses = np.full(shape, np.nan)
        self._ended = np.zeros(shape, dtype=bool)
        self._failed = np.zeros(shape, dtype=bool)
        self._pending: dict[int, dict[int, list[Trial]]] = {}  # placement -> seed -> trials
        for trial in self.todo:
            i, seed, _ = self._cell[trial.key]
            self._pending.setdefault(i, {}).setdefault(seed, []).append(trial)
        for trial in self.plan.trials:
            if trial.key in self.finished:
                self._note(trial.key, self.finished[trial.key], True)
        self.dealt = 0
        self._deal(self.rule.first)
        self._advance()

    # --- the Schedule protocol -------------------------------------------------------------

    def take(self, prefer: Trial | None = None, busy: Collection[Trial] = ()) -> Trial | None:
        return take_from(self._queue, prefer, busy)

    def ready(self) -> int:
        return len(self._queue)

    def remaining(self) -> int:
        return len(self._queue) + sum(len(seeds) for seeds in self._later().values())

    def to_deal(self) -> list[Trial]:
        later = [t for seeds in self._later().values() for trials in seeds.values() for t in trials]
        return [*self._queue, *later]

    def ended(self, result: TrialResult) -> None:
        value = result.metrics.get(self.plan.metric, math.nan)
        self._note(result.trial_key, value, result.finished)
        self._advance()

    # --- the race --------------------------------------------------------------------------

    @property
    def survivors(self) -> np.ndarray:
        alive = np.ones(len(self._ids), dtype=bool)
        for vid in self.eliminations:
            alive[self._index[vid]] = False
        return alive

    def _later(self) -> dict[int, dict[int, list[Trial]]]:
        """The seeds later rounds may still deal, by placement: the survivors' undealt seeds
        while the race is open (more than one survivor; `_advance` deals no more after)."""
        alive = self.survivors
        if alive.sum() <= 1:
            return {}
        return {i: seeds for i, seeds in self._pending.items() if alive[i]}

    def _note(self, trial_key: str, value: float, finished: bool) -> None:
        cell = self._cell[trial_key]
        loss = to_loss(value, self.plan.direction) if finished else math.nan
        self._failed[cell] = not math.isfinite(loss)
        self._losses[cell] = loss
        self._ended[cell] = True

    def _deal(self, seeds: int) -> None:
        """Give every survivor seeds up to `seeds` (queued unless finished already)."""
        self.dealt = seeds
        alive = self.survivors
        for i in range(len(self._ids)):
            pending = self._pending.get(i, {})
            if alive[i]:
                for seed in [s for s in sorted(pending) if s < seeds]:
                    self._queue.extend(pending.pop(seed))

    def _advance(self) -> None:
        """Read every seed the survivors have all ended; deal the next round when due."""
        while True:
            alive = self.survivors
            target = self.read + 1 if self.read >= self.rule.first else self.rule.first
            if target <= self.dealt and self._ended[alive, :target].all():
                self.read = target
                self._judge()
                continue
            if self.read == self.dealt and alive.sum() > 1 and self.dealt < self.rule.last:
                self._deal(min(self.rule.last, self.dealt + self.step))
                continue
            return

    def _judge(self) -> None:
        losses = self._losses[:, : self.read].copy()
        first = self._losses[:, : self.rule.first]  # complete: every placement ended it
        for d in range(losses.shape[2]):  # a failure: its dataset's worst first-stage loss
            seen = first[..., d][np.isfinite(first[..., d])]
            losses[..., d][self._failed[:, : self.read, d]] = float(seen.max()) if seen.size else 0
        losses = losses.mean(axis=2)  # one dataset: its own losses, unchanged
        result = race(losses, self.rule)
        for i in np.flatnonzero(result.eliminated_at):
            vid = self._ids[i]
            if vid not in self.eliminations:
                out = Elimination(
                    vid,
                    int(result.eliminated_at[i]),
                    self._ids[int(result.eliminated_by[i])],
                    float(result.lower_bound[i]),
                )
                self.eliminations[vid] = out
                self.news.append(out)


@dataclass(frozen=True)
class Standing:
    """Where a search stands: the selected placements (names), the eliminated ones (name,
    seeds, why), the seeds read, whether the race is over, its alpha and margin, and the
    datasets it raced on (several: the race is on the mean over them)."""

    selected: tuple[str, ...]
    eliminated: tuple[tuple[str, int, str], ...]
    seeds: int
    over: bool
    alpha: float
    margin: float  # compare.margin: a ratio, 0.05 = 5%
    datasets: tuple[str, ...] = ()  # the names under `datasets:`; () for a `data:` config

    def guarantee(self) -> str:
        level, margin = f"{100 * (1 - self.alpha):g}%", f"{100 * self.margin:g}%"
        scale = "mean log metric"
        if len(self.datasets) > 1:
            scale += f" over the {len(self.datasets)} datasets, each weighing the same"
        return (
            f"with probability >= {level} the selected set holds the best placement (by "
            f"{scale}) when it leads the others by >= {margin}, and each placement within "
            f"{margin} of the best is kept with probability >= {level}"
        )


def standing(racing: Racing) -> Standing:
    names = {v.id: v.name for v in racing.plan.variants}
    alive = racing.survivors
    out = sorted(racing.eliminations.values(), key=lambda e: (e.seeds, names[e.variant]))
    config = racing.plan.variants[0].config
    return Standing(
        selected=tuple(v.name for v, kept in zip(racing.plan.variants, alive, strict=True) if kept),
        eliminated=tuple((names[e.variant], e.seeds, e.sentence(names)) for e in out),
        seeds=racing.read,
        over=racing.read >= racing.rule.last or int(alive.sum()) == 1,
        alpha=racing.rule.alpha,
        margin=config.compare.margin,
        datasets=racing.plan.datasets,
    )
