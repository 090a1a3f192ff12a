"""The one rule for a trial key's run (`bnplace.store.keys`), on MLflow's own `Run` objects: the
newest FINISHED run, else the newest; a superseded run never stands for its key. Resume
(`Tracker.latest_finished`), `bnplace status`/`export` and compare all call it; the store
contract suite checks the first two on every store."""

from __future__ import annotations

from mlflow.entities import Run, RunData, RunInfo, RunTag

from bnplace.store.keys import key_runs


def _run(run_id: str, key: str, status: str, start: int, superseded: bool = False) -> Run:
    tags = [RunTag("bnplace.trial_key", key)]
    if superseded:
        tags.append(RunTag("bnplace.superseded_by", "other-run"))
    info = RunInfo(
        run_id=run_id,
        experiment_id="0",
        user_id="",
        status=status,
        start_time=start,
        end_time=start + 1,
        lifecycle_stage="active",
    )
    return Run(info, RunData(tags=tags))


def test_a_keys_run_is_its_newest_finished_else_its_newest_and_never_a_superseded_one() -> None:
    runs = [
        _run("a-done", "a", "FINISHED", 1),
        _run("a-failed-later", "a", "FAILED", 5),
        _run("a-superseded", "a", "FINISHED", 9, superseded=True),
        _run("b-failed", "b", "FAILED", 1),
        _run("b-killed-later", "b", "KILLED", 2),
        _run("c-superseded-only", "c", "KILLED", 1, superseded=True),
        _run("d-first", "d", "FINISHED", 3),
        _run("d-same-ms", "d", "FINISHED", 3),  # a tie keeps the first given
    ]
    chosen = {k: r.info.run_id for k, r in key_runs(runs).items()}
    assert chosen == {"a": "a-done", "b": "b-killed-later", "d": "d-first"}
    finished = {k: r.info.run_id for k, r in key_runs(runs, finished_only=True).items()}
    assert finished == {"a": "a-done", "d": "d-first"}
