"""Seeds on demand over several datasets: one `SeedsOnDemand` per dataset behind one `Schedule`.

In: the plan (its `datasets`, variants, metric, design), the trials left to run, the metric
values of trials already finished in the store (by trial key) and the variants --filter kept;
then each trial's result as it ends. Out: `seeds_on_demand`, the schedule a sequential sweep
deals from: a plain `SeedsOnDemand` for one dataset, else a `SeedsOnDemandByDataset`, whose
`take` deals the warmest ready trial of any dataset for the asking worker (its last variant on
its last dataset first, then on one of the same shapes, `schedule.take_from`; no worker idles
while one is ready), whose `ended` routes a result to its trial's dataset (by trial key: a
`TrialResult` names no dataset), and whose `looks` gathers every dataset's `LookRecord`s (each
names its dataset) for the driver to log.

Each dataset runs its own copy of the comparison family with the same `SequentialRule`
(`SequentialRule.of(design, len(family))`: alpha/m per comparison within a dataset), exactly
as `compare` judges each dataset (`compute_statistics` per dataset in
bnplace/compare/pooled.py): a (dataset, variant) gets its next look's seeds only while a
comparison it is in on that dataset is undecided. Decisions stay a function of the ended
trials alone (each dataset's are), so a killed sweep rerun reaches the same decisions; the
pooled verdict is read afterwards from the seeds each dataset ended with (tests/test_pooling.py
simulates its error rate and coverage under this stopping). Pure: no TensorFlow, no MLflow.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bnplace.execute.schedule import LookRecord, SeedsOnDemand

if TYPE_CHECKING:
    from bnplace.plan import Plan, Trial
    from bnplace.stats.sequential import Decision
    from bnplace.trial.result import TrialResult


@dataclass
class SeedsOnDemandByDataset:
    """One `SeedsOnDemand` per dataset of the plan, dealt as one schedule."""

    plan: Plan
    todo: Sequence[Trial]
    finished: Mapping[str, float] = field(default_factory=dict)  # trial key -> metric value
    selected: Collection[str] = ()  # variant names --filter kept (empty: every variant)
    parts: dict[str, SeedsOnDemand] = field(default_factory=dict, init=False)  # by dataset
    looks: list[LookRecord] = field(default_factory=list, init=False)  # drained by the driver
    _dataset_of: dict[str, str] = field(default_factory=dict, init=False)  # trial key -> name

    def __post_init__(self) -> None:
        self._dataset_of = {t.key: t.dataset for t in self.plan.trials}
        for dataset in self.plan.datasets:
            self.parts[dataset] = SeedsOnDemand(
                self.plan, self.todo, self.finished, self.selected, dataset=dataset
            )
        self._gather()

    @property
    def decisions(self) -> dict[str, dict[str, Decision]]:
        """Per dataset, where each comparison stands there."""
        return {dataset: part.decisions for dataset, part in self.parts.items()}

    # --- the Schedule protocol -------------------------------------------------------------

    def take(self, prefer: Trial | None = None, busy: Collection[Trial] = ()) -> Trial | None:
        # the dataset whose best trial ranks first (`schedule.take_from`), the first on a tie
        part = min(self.parts.values(), key=lambda part: part.best(prefer, busy))
        return part.take(prefer, busy)

    def ready(self) -> int:
        return sum(part.ready() for part in self.parts.values())

    def remaining(self) -> int:
        return sum(part.remaining() for part in self.parts.values())

    def to_deal(self) -> list[Trial]:
        return [trial for part in self.parts.values() for trial in part.to_deal()]

    def ended(self, result: TrialResult) -> None:
        self.parts[self._dataset_of[result.trial_key]].ended(result)
        self._gather()

    def _gather(self) -> None:
        for part in self.parts.values():
            self.looks.extend(part.looks)
            part.looks.clear()


def seeds_on_demand(
    plan: Plan,
    todo: Sequence[Trial],
    finished: Mapping[str, float],
    selected: Collection[str] = (),
) -> SeedsOnDemand | SeedsOnDemandByDataset:
    """The schedule of a sequential sweep: per dataset when the plan has several."""
    if len(plan.datasets) > 1:
        return SeedsOnDemandByDataset(plan, todo, finished, selected)
    return SeedsOnDemand(plan, todo, finished, selected)
