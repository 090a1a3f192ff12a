"""Where a config's trials stand, for `bnplace status` and `bnplace export`.

In: a `Prepared` plan and a tracking URI. Out: one `TrialRecord` per planned trial (the store's
view, `bnplace.store.inventory.trial_records`) and a note, with the trials a rerun would never
train marked "not needed": a trial with no run that the sweep's own schedule
(`bnplace.run.sweep.dealing_schedule`: seeds on demand, a search's race), built from the
finished trials as a rerun builds it, will not deal (its comparisons decided, its placement
eliminated, the race over). A plain sweep needs every trial. For a search the note also says
where the race stands: the placements still in, the seeds it has read, and each elimination
with its reason (what a user watching a long search asks). Reads only; trains nothing.
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
        return records, note
    finished = {
        r.trial_key: r.metrics.get(plan.metric, math.nan) for r in records if r.status == "done"
    }
    todo = [t for t in prepared.selected.trials if t.key not in finished]
    names = [v.name for v in prepared.selected.variants]
    schedule = dealing_schedule(plan, todo, finished, names)
    dealt = {t.key for t in schedule.to_deal()}
    if isinstance(schedule, Racing):  # a search
        note = "\n".join(filter(None, (note, race_note(schedule))))
    return [
        dataclasses.replace(r, status="not needed")
        if r.status == "pending" and r.trial_key not in dealt
        else r
        for r in records
    ], note


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
