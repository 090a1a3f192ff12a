"""The team setup on a real PostgreSQL: `mlflow server` on a fresh cluster, two drivers on one
plan at once with a third driver on another config beside them, and a driver killed with
SIGKILL and run again, everything read back over HTTP with MLflow's own client.

PostgreSQL is started with `initdb` into a temporary directory and `pg_ctl` on 127.0.0.1 at a
free port (tests/servers.py); the module is skipped, saying why, where the binaries or psycopg2
are missing (.ci/run installs them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.servers import free_port, mlflow_server, postgres, postgres_bin
from tests.sweeps import (
    Driver,
    bnplace,
    done_counts,
    frozen_driver_is_superseded,
    trained_once,
    two_drivers,
    write_config,
)

pytestmark = pytest.mark.slow

GRID = "sweep: {axes: {conv.post_act: {none: [], bn: [batch_norm]}}, seeds: 3}\n"


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    pytest.importorskip("psycopg2", reason="psycopg2 missing: pip install psycopg2-binary")
    with postgres(bindir) as uri:
        yield uri


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("pg-server")
    with mlflow_server(folder, database) as (url, _artifacts):
        yield url


def run_args(config: Path, url: str, *more: str) -> tuple[str, ...]:
    return ("run", str(config), "--tracking-uri", url, "--epochs", "1", "-j", "1", *more)


def test_two_drivers_and_a_second_config_share_one_postgres_store(
    tmp_path: Path, server: str
) -> None:
    store = MlflowClient(tracking_uri=server)
    plan = write_config(tmp_path / "a", GRID.replace("seeds: 3", "seeds: 4"), "a.yaml")
    other = write_config(tmp_path / "b", GRID)
    args = run_args(plan, server, "--no-compare", "--experiment", "team-a")
    beside = Driver(tmp_path / "b", *run_args(other, server, "--experiment", "team-b"))
    ended = two_drivers(tmp_path / "a", *args, store=store, experiment="team-a")
    code, text = beside.finish()
    assert code == 0, text
    counts = []
    for code, text in ended:
        assert code == 0, text
        counts.append(done_counts(text))
    trials = trained_once(store, "team-a")
    assert len(trials) == 8 and all(t.info.status == "FINISHED" for t in trials)
    assert sum(c["finished"] for c in counts) == 8  # trained = planned
    exp = store.get_experiment_by_name("team-a").experiment_id
    (sweep,) = store.search_runs([exp], "tags.`bnplace.kind` = 'sweep'")
    assert sweep.info.status == "FINISHED"
    other_trials = trained_once(store, "team-b")
    assert len(other_trials) == 6 and all(t.info.status == "FINISHED" for t in other_trials)
    exp_b = store.get_experiment_by_name("team-b").experiment_id
    (sweep_b,) = store.search_runs([exp_b], "tags.`bnplace.kind` = 'sweep'")
    assert "compare" in {a.path for a in store.list_artifacts(sweep_b.info.run_id)}


def test_a_driver_killed_mid_sweep_resumes_on_postgres(tmp_path: Path, server: str) -> None:
    store = MlflowClient(tracking_uri=server)
    config = write_config(tmp_path, GRID)
    args = run_args(config, server, "--no-compare", "--experiment", "team-kill", "--epochs", "3")
    driver = Driver(tmp_path, *args)
    driver.wait_for("done ", count=2)  # two trials recorded (a third may be claimed, or not)
    driver.kill()
    # what the kill left, read after it: the kill may land mid-trial or between two trials
    exp_id = store.get_experiment_by_name("team-kill").experiment_id
    finished = store.search_runs(
        [exp_id], "tags.`bnplace.kind` = 'trial' and attributes.status = 'FINISHED'"
    )
    running = store.search_runs([exp_id], "attributes.status = 'RUNNING'")
    claimed = {r.info.run_id for r in running if r.data.tags["bnplace.kind"] == "trial"}
    assert len(finished) >= 2
    assert running  # the dead driver's sweep (and claim, if any) are left RUNNING ...

    again = bnplace(tmp_path, *args)
    text = again.stdout + again.stderr
    assert again.returncode == 0, text
    assert f"{len(finished)} already finished" in " ".join(text.split())
    trials = trained_once(store, "team-kill")  # ... and are taken over: none RUNNING now
    done = [t for t in trials if t.info.status == "FINISHED"]
    assert len(done) == 6 and {t.info.run_id for t in finished} <= {t.info.run_id for t in done}
    killed = [t for t in trials if t.info.status == "KILLED"]
    assert {t.info.run_id for t in killed} == claimed  # each claim it held, and only those
    assert all(t.data.tags["bnplace.status"] == "killed" for t in killed)
    assert len(trials) == 6 + len(killed)
    (sweep,) = store.search_runs([exp_id], "tags.`bnplace.kind` = 'sweep'")
    assert sweep.info.status == "FINISHED"  # the same sweep run, continued and ended


def test_a_frozen_driver_never_finishes_a_taken_over_trial_on_postgres(
    tmp_path: Path, server: str
) -> None:
    """Fencing through `mlflow server` (tests/sweeps.py, frozen_driver_is_superseded)."""
    store = MlflowClient(tracking_uri=server)
    frozen_driver_is_superseded(tmp_path, "--tracking-uri", server, store=store)


def test_an_mlflow_server_restarted_mid_sweep_is_retried_and_nothing_is_lost(
    tmp_path: Path, database: str
) -> None:
    """The server goes down while a trial trains and comes back on the same address: the
    driver's writes wait in MLflow's HTTP retries, and the sweep ends as if nothing happened."""
    port = free_port()
    config = write_config(tmp_path, "sweep: {seeds: 3}\n")
    with mlflow_server(tmp_path, database, port) as (url, _artifacts):
        args = run_args(config, url, "--no-compare", "--experiment", "restart", "--epochs", "20")
        driver = Driver(tmp_path, *args)
        driver.wait_for("start ")
    try:  # the server is down here: the driver trains on and its writes are retried
        with mlflow_server(tmp_path, database, port):
            code, text = driver.finish()
            assert code == 0, text
            assert "Traceback" not in text
            trials = trained_once(MlflowClient(tracking_uri=url), "restart")
            assert sorted(t.info.status for t in trials) == ["FINISHED"] * 3
    finally:
        driver.kill()
