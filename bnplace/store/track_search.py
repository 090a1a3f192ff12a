"""A search in MLflow: each placement's elimination on its variant run, the survivors per seed.

In: the sweep's `Tracker` (its client, sweep run and variant runs), the search plan and the
`Racing` schedule's eliminations. Out: on each eliminated placement's variant run the tags
`bnplace.search = eliminated`, `bnplace.eliminated_at` (seeds), `bnplace.eliminated_by` and
`bnplace.elimination` (why, in words); on each survivor's `bnplace.search = selected` (written
when the search ends); on the sweep run the metric `search.survivors` with the seeds read as its
step. Writes are idempotent: a resumed search, or a second driver, rewrites the same values.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from bnplace.names.metrics import SURVIVORS
from bnplace.names.tags import (
    ELIMINATED,
    ELIMINATED_AT,
    ELIMINATED_BY,
    ELIMINATION,
    SEARCH_STATE,
    SELECTED,
)

if TYPE_CHECKING:
    from bnplace.execute.schedule_search import Elimination, Racing
    from bnplace.plan import Plan
    from bnplace.store.track import Tracker


def record_eliminations(tracker: Tracker, plan: Plan, news: Iterable[Elimination]) -> None:
    from mlflow.entities import RunTag

    variants = {v.id: v for v in plan.variants}
    names = {v.id: v.name for v in plan.variants}
    for out in news:
        tags = [
            RunTag(SEARCH_STATE, ELIMINATED),
            RunTag(ELIMINATED_AT, str(out.seeds)),
            RunTag(ELIMINATED_BY, names[out.by]),
            RunTag(ELIMINATION, out.sentence(names)),
        ]
        tracker.client.log_batch(tracker.variant_run(variants[out.variant]), tags=tags)


def record_selection(tracker: Tracker, plan: Plan, racing: Racing) -> None:
    """When the search ends: the survivors tagged selected (only once the race is over: all
    seeds read, or one placement left), and the survivors after each seed read."""
    from mlflow.entities import RunTag

    alive = racing.survivors
    over = racing.read >= racing.rule.last or int(alive.sum()) == 1
    if over:
        for variant, kept in zip(plan.variants, alive, strict=True):
            if kept:
                run = tracker.variant_run(variant)
                tracker.client.log_batch(run, tags=[RunTag(SEARCH_STATE, SELECTED)])
    record_survivors(tracker, plan, racing)


def record_survivors(tracker: Tracker, plan: Plan, racing: Racing) -> None:
    """The placements still in after each seed read so far (`search.survivors`, step = seeds):
    after each look, so that a comparison mid-race plots every look made (compare reads them)."""
    from mlflow.entities import Metric

    logged = {m.step for m in tracker.client.get_metric_history(tracker.sweep_run_id, SURVIVORS)}
    k = len(plan.variants)
    gone = [out.seeds for out in racing.eliminations.values()]
    now = int(time.time() * 1000)
    points = [
        Metric(SURVIVORS, float(k - sum(1 for s in gone if s <= seeds)), now, seeds)
        for seeds in range(racing.rule.first, racing.read + 1)
        if seeds not in logged
    ]
    if points:
        tracker.client.log_batch(tracker.sweep_run_id, metrics=points)
