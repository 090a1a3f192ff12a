"""The store contract: the same cases on every store bnplace supports, as Optuna's storage
suite runs every storage.

In: three real stores: a SQLite file, `mlflow server` on SQLite and `mlflow server` on
PostgreSQL (tests/servers.py; the PostgreSQL store skips, saying why, where its binaries or
psycopg2 are missing). Out: on each, bnplace's store layer (`bnplace.store`: the client and its
paginated searches, the tracker's sweep/variant/trial layout, claims, the rule that a trial
key's run is its newest FINISHED run, else its newest run, and the readers of a run's state)
behaves the same. No training: results are made by hand.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import bnplace.store.client as store_client
from bnplace.names.states import FAILED, FINISHED, KILLED
from bnplace.run.sweep import Prepared
from bnplace.store.claims import Claims
from bnplace.store.client import all_experiments, existing_client, search_all
from bnplace.store.inventory import TrialRecord, trial_records
from bnplace.store.read import role_filter
from bnplace.store.track import Tracker
from bnplace.trial.result import TrialResult
from tests.servers import mlflow_server, postgres, postgres_bin
from tests.sweeps import TINY, sqlite_store

pytestmark = pytest.mark.slow

CONFIG = TINY + "sweep: {axes: {conv.filters: [2, 3]}, seeds: 2}\n"  # `prepared` (conftest.py)
STORES = ("sqlite", "server-sqlite", "server-postgres")


@pytest.fixture(scope="module", params=STORES)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A tracking URI of each kind; each test uses its own experiment, so one store serves all."""
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        yield sqlite_store(folder)
    elif request.param == "server-sqlite":
        with mlflow_server(folder, sqlite_store(folder, "srv.db")) as (url, _artifacts):
            yield url
    else:
        bindir = postgres_bin()
        if bindir is None:
            pytest.skip(
                "PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql"
            )
        pytest.importorskip("psycopg2", reason="psycopg2 missing: pip install psycopg2-binary")
        with postgres(bindir) as database, mlflow_server(folder, database) as (url, _artifacts):
            yield url


def _driver(uri: str, prepared: Prepared, experiment: str, stale_s: float = 3600.0) -> Claims:
    """A driver whose claims stay live for an hour (no heartbeat is started: a busy machine
    must not turn a slow test's live claims stale)."""
    tracker = Tracker(uri, experiment)
    claims = Claims(tracker, stale_s=stale_s)
    claims.open_plan_sweep(prepared.plan, "# contract\n")
    return claims


def _result(trial, status=FINISHED, value: float = 0.5) -> TrialResult:  # type: ignore[no-untyped-def]
    reason = "" if status == FINISHED else "error: made by hand"
    return TrialResult(
        trial.key, trial.variant_id, trial.variant, trial.seed, status, reason, {"test_rmse": value}
    )


def _records(prepared: Prepared, experiment: str, store: str) -> dict[str, TrialRecord]:
    """`bnplace status`'s reading of the store, by trial key."""
    found, _note = trial_records(replace(prepared.plan, experiment=experiment), store)
    return {r.trial_key: r for r in found}


def _experiment(request: pytest.FixtureRequest) -> str:
    return request.node.name.split("[")[0].removeprefix("test_")[:60]


def test_a_plan_opens_one_sweep_run_and_a_second_driver_continues_it(
    store: str, prepared: Prepared, request: pytest.FixtureRequest
) -> None:
    name = _experiment(request)
    first = _driver(store, prepared, name)
    second = _driver(store, prepared, name)
    assert first.tracker.sweep_run_id == second.tracker.sweep_run_id
    client = existing_client(store)
    exp = client.get_experiment_by_name(name).experiment_id
    (sweep,) = search_all(client, [exp], role_filter("sweep"))
    assert sweep.data.tags["bnplace.claim"] == "ready"
    variants = search_all(client, [exp], role_filter("variant", sweep.info.run_id))
    assert len(variants) == len(prepared.plan.variants)


def test_a_claimed_trial_ends_finished_and_every_reader_finds_it(
    store: str, prepared: Prepared, request: pytest.FixtureRequest
) -> None:
    name = _experiment(request)
    claims = _driver(store, prepared, name)
    trial = prepared.plan.trials[0]
    claim = claims.claim(trial)
    assert claim.won
    (run,) = claims.trial_runs(trial.key)
    assert run.info.status == "RUNNING" and run.data.tags["bnplace.claim"] == "held"
    claims.tracker.end_trial(_result(trial, value=0.25))
    assert claims.tracker.finished_values("test_rmse") == {trial.key: 0.25}
    records, note = trial_records(replace(prepared.plan, experiment=name), store)
    by_key = {r.trial_key: r for r in records}
    assert note == "" and by_key[trial.key].status == "done"
    assert {r.status for k, r in by_key.items() if k != trial.key} == {"pending"}


def test_a_keys_run_is_its_newest_finished_run_else_its_newest(
    store: str, prepared: Prepared, request: pytest.FixtureRequest
) -> None:
    """The rule resume (`Tracker.latest_finished`) and `bnplace status` (`trial_records`) share:
    a later FAILED run does not hide a FINISHED one; of two FINISHED runs the newer counts."""
    name = _experiment(request)
    claims = _driver(store, prepared, name)
    tracker = claims.tracker
    done_then_failed, failed_only, finished_twice = prepared.plan.trials[:3]
    for trial, ends in (
        (done_then_failed, [(FINISHED, 0.1), (FAILED, 0.9)]),
        (failed_only, [(FAILED, 0.9)]),
        (finished_twice, [(FINISHED, 0.3), (FINISHED, 0.2)]),
    ):
        for status, value in ends:
            claims.known_ended = tracker.ended_run_ids()  # run it again, as --rerun does
            assert claims.claim(trial).won
            tracker.end_trial(_result(trial, status, value))
            time.sleep(0.01)  # distinct start times (ms), as two runs of one key always have
    assert tracker.finished_values("test_rmse") == {
        done_then_failed.key: 0.1,
        finished_twice.key: 0.2,
    }
    records = {
        r.trial_key: r for r in trial_records(replace(prepared.plan, experiment=name), store)[0]
    }
    assert records[done_then_failed.key].status == "done"
    assert records[done_then_failed.key].metrics["test_rmse"] == 0.1
    assert records[failed_only.key].status == "failed"
    assert records[finished_twice.key].metrics["test_rmse"] == 0.2
    # the variants' aggregates by the same rule; the fourth trial never ran: not a failure
    aggregates = tracker.write_aggregates(prepared.plan)
    counts = {name: (agg["n_finished"], agg["n_failed"]) for name, agg in aggregates.items()}
    assert counts == {"conv.filters=2": (1, 1), "conv.filters=3": (1, 0)}
    assert aggregates["conv.filters=3"]["test_rmse_mean"] == 0.2


def test_a_stale_claim_is_killed_and_its_state_reads_killed(
    store: str, prepared: Prepared, request: pytest.FixtureRequest
) -> None:
    name = _experiment(request)
    dead = _driver(store, prepared, name, stale_s=0.5)
    trial = prepared.plan.trials[0]
    assert dead.claim(trial).won
    time.sleep(1.0)  # no heartbeat was started: the claim is past its stale period
    alive = _driver(store, prepared, name, stale_s=0.5)
    assert alive.kill_stale() == 1
    (run,) = [r for r in alive.trial_runs(trial.key) if r.info.lifecycle_stage == "active"]
    assert run.info.status == KILLED.run_status and run.data.tags["bnplace.status"] == "killed"
    records = {
        r.trial_key: r for r in trial_records(replace(prepared.plan, experiment=name), store)[0]
    }
    assert records[trial.key].status == "pending"  # trains again on the next run


def test_searches_read_every_page(
    store: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setattr(store_client, "PAGE", 2)
    client = existing_client(store)
    names = [f"{_experiment(request)}-{i}" for i in range(3)]
    ids = [client.create_experiment(n) for n in names]
    for _ in range(5):
        client.create_run(ids[0], tags={"bnplace.kind": "trial"})
    assert len(search_all(client, [ids[0]], role_filter("trial"))) == 5
    assert len(search_all(client, [ids[0]], role_filter("trial"), limit=3)) == 3
    assert set(names) <= {e.name for e in all_experiments(client)}


def test_a_missing_sqlite_store_is_an_error_not_a_new_store(tmp_path: Path) -> None:
    from bnplace.names.errors import StoreNotFound

    with pytest.raises(StoreNotFound, match="does not exist"):
        existing_client(f"sqlite:///{tmp_path / 'typo.db'}")
    assert not (tmp_path / "typo.db").exists()
