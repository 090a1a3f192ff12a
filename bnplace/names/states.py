"""Trial states: the one vocabulary of results, the `bnplace.status` tag and MLflow statuses.

In: nothing from bnplace. Out: `TrialState`, its members as plain names, and the state groups
(`RESULT_STATES`, `UNFINISHED_STATES`, `ENDED_STATES`) every other module uses instead of
spelling its own tuple.
"""

from __future__ import annotations

from enum import StrEnum


class TrialState(StrEnum):
    """The state of one trial; the value is the `bnplace.status` tag of its MLflow run.

    RUNNING: its run is open (started, not ended). FINISHED: trained and evaluated to the end;
    its metrics are complete. FAILED: it ended without finishing, and says why (`reason`:
    "diverged", "timeout" or "error: ..."); whatever metrics it reached are kept. KILLED: the
    sweep stopped while it ran (Ctrl-C, or a driver that died): it has no result, only a run
    the tracker marks so. A `TrialResult` is therefore FINISHED or FAILED, never RUNNING or
    KILLED; a KILLED or FAILED trial trains again on resume, a FINISHED one does not.
    MISSING is only the comparison's word for a planned trial that no run records yet.
    """

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"
    MISSING = "missing"

    @property
    def run_status(self) -> str:
        """The MLflow run status that goes with this state (MLflow spells them upper case)."""
        return self.value.upper()

    @classmethod
    def of_run_status(cls, status: str) -> TrialState:
        """The state an MLflow run status stands for (SCHEDULED and RUNNING: still open)."""
        try:
            return cls(status.lower())
        except ValueError:
            return cls.RUNNING


# The states as plain names, for short imports.
RUNNING = TrialState.RUNNING
FINISHED = TrialState.FINISHED
FAILED = TrialState.FAILED
KILLED = TrialState.KILLED
MISSING = TrialState.MISSING
# The state groups, named once (a trial's run is open, or it ended one of these ways).
RESULT_STATES = (FINISHED, FAILED)  # the states a TrialResult can carry
UNFINISHED_STATES = (FAILED, KILLED)  # ran and did not finish: ranks worst in a comparison
ENDED_STATES = (FINISHED, FAILED, KILLED)  # its run is closed
