"""The run that stands for a trial key: the one rule resume, `status`/`export` and compare use.

In: trial runs (MLflow `Run`s, or anything with their `info` and `data.tags`). Out: per trial
key, its newest FINISHED run, else its newest run of any state (`finished_only`: FINISHED runs
alone); a run tagged `bnplace.superseded_by` (its claim was taken over while it ran) never
stands for its key. "Newest" is the latest start time; of runs started in the same
millisecond the first in the order given. Pure: reads the runs it is handed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from bnplace.names.states import FINISHED
from bnplace.names.tags import SUPERSEDED, TRIAL_KEY

if TYPE_CHECKING:
    from mlflow.entities import Run


def trial_key(run: Run) -> str:
    """The trial key a run is tagged with ("" without one)."""
    return run.data.tags.get(TRIAL_KEY, "")


def _rank(run: Run) -> tuple[bool, int]:
    return (run.info.status == FINISHED.run_status, int(run.info.start_time or 0))


def key_runs(runs: Iterable[Run], *, finished_only: bool = False) -> dict[str, Run]:
    """{trial key: the run that stands for it} (see the module docstring), keys in the order
    their first run comes."""
    chosen: dict[str, Run] = {}
    for run in runs:
        if SUPERSEDED in run.data.tags:
            continue
        if finished_only and run.info.status != FINISHED.run_status:
            continue
        key = trial_key(run)
        if key not in chosen or _rank(run) > _rank(chosen[key]):
            chosen[key] = run
    return chosen
