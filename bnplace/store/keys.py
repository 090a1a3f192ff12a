"""The run that stands for a trial key: the one rule resume, `status`/`export` and compare use.

In: trial runs (MLflow `Run`s, or the `StoredRun`s compare reads). Out: per trial
key, its newest FINISHED run, else its newest run of any state (`finished_only`: FINISHED runs
alone); a run tagged `bnplace.superseded_by` (its claim was taken over while it ran) never
stands for its key. "Newest" is the latest start time; of runs started in the same
millisecond the first in the order given. Pure: reads the runs it is handed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, TypeVar

from bnplace.names.states import FINISHED
from bnplace.names.tags import SUPERSEDED, TRIAL_KEY
from bnplace.store.read import StoredRun

if TYPE_CHECKING:
    from mlflow.entities import Run

R = TypeVar("R", "Run", StoredRun)


def _facts(run: Run | StoredRun) -> tuple[Mapping[str, str], str, int]:
    """A run's tags, MLflow status and start time, from MLflow's `Run` or a `StoredRun`."""
    if isinstance(run, StoredRun):
        return run.tags, run.status, run.start_time
    return run.data.tags, str(run.info.status), int(run.info.start_time or 0)


def trial_key(run: Run | StoredRun) -> str:
    """The trial key a run is tagged with ("" without one)."""
    return _facts(run)[0].get(TRIAL_KEY, "")


def _rank(run: Run | StoredRun) -> tuple[bool, int]:
    _tags, status, start = _facts(run)
    return (status == FINISHED.run_status, start)


def key_runs(runs: Iterable[R], *, finished_only: bool = False) -> dict[str, R]:
    """{trial key: the run that stands for it} (see the module docstring), keys in the order
    their first run comes."""
    chosen: dict[str, R] = {}
    for run in runs:
        tags, status, _start = _facts(run)
        if SUPERSEDED in tags:
            continue
        if finished_only and status != FINISHED.run_status:
            continue
        key = trial_key(run)
        if key not in chosen or _rank(run) > _rank(chosen[key]):
            chosen[key] = run
    return chosen
