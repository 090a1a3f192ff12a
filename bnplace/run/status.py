"""Where a config's trials stand, for `bnplace status` and `bnplace export`.

In: a `Prepared` plan and a tracking URI. Out: one `TrialRecord` per planned trial (the store's
view, `bnplace.store.inventory.trial_records`) and a note, with the trials a rerun would never
train marked "not needed": a trial with no run that the sweep's own schedule
(`bnplace.run.sweep.dealing_schedule`: seeds on demand, a search's race), built from the
finished trials as a rerun builds it, will not deal (its comparisons decided, its placement
eliminated, the race over). A plain sweep needs every trial. For a search the note also says
where the race stands: the placements still in, the seeds it has read, and each elimination
with its reason (what a user watching a long search asks); and, once trials have finished,
the pending ones' time at the lengths measured (`time_left`). Reads only; trains nothing.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from bnplace.store.inventory import TrialRecord, trial_records

if TYPE_CHECKING:
    from bnplace.execute.schedule_search import Racing
    from bnplace.run.sweep import Prepared


def plan_standing(prepared: Prepared, uri: str) -> tuple[list[TrialRecord], str]:
    """The plan's trials as the store holds them, the ones no rerun would train marked."""
    from bnplace.execute.schedule_search import Racing
    from bnplace.run.sweep import dealing_schedule

    plan = prepared.plan
    records, note = trial_records(plan, uri)
    if not (plan.combinations or plan.design.sequential):
        return records, "\n".join(filter(None, (note, time_left(records, ""))))
    finished = {
        r.trial_key: r.metrics.get(plan.metric, math.nan) for r in records if r.status == "done"
    }
    todo = [t for t in prepared.selected.trials if t.key not in finished]
    names = [v.name for v in prepared.selected.variants]
    schedule = dealing_schedule(plan, todo, finished, names)
    dealt = {t.key for t in schedule.to_deal()}
    marked = [
        dataclasses.replace(r, status="not needed")
        if r.status == "pending" and r.trial_key not in dealt
        else r
        for r in records
    ]
    race = race_note(schedule) if isinstance(schedule, Racing) else ""  # a search
    sooner = "the race may end sooner" if race else "comparisons may decide sooner"
    return marked, "\n".join(filter(None, (note, race, time_left(marked, sooner))))


def time_left(records: list[TrialRecord], sooner: str) -> str:
    """The pending trials' time at the lengths measured (`bnplace.run.estimate`), from the
    finished trials' wall times: what a user resuming a long sweep asks first. "" before any
    trial finished. `sooner`: why a sequential design may need less ("" for a grid)."""
    from bnplace.run.estimate import duration, typical_seconds

    pending = [r for r in records if r.status == "pending"]
    walls = [
        (r.variant_id, r.dataset, r.wall_s)
        for r in records
        if r.status == "done" and r.wall_s is not None
    ]
    seconds = typical_seconds(pending, walls)
    if not pending or seconds is None:
        return ""
    bound = f" (at most: {sooner})" if sooner else ""
    return (
        f"pending: {len(pending):,} trials, ~{duration(seconds)} of trial time at the lengths "
        f"measured on {len(walls):,} finished trials, shared among the --jobs workers{bound}"
    )


def race_note(race: Racing) -> str:
    """Where a search's race stands: placements still in, seeds read, each elimination."""
    names = {v.id: v.name for v in race.plan.variants}
    lines = [
        f"the race: {int(race.survivors.sum())} of {len(names)} placements still in, "
        f"{race.read} seeds read (of at most {race.rule.last})"
    ]
    for vid, out in sorted(race.eliminations.items(), key=lambda item: item[1].seeds):
        lines.append(f"eliminated: {names[vid]}, {out.sentence(names)}")
    return "\n".join(lines)
