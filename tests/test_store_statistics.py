"""A SQLite store's query statistics (`bnplace.store.client.refresh_query_statistics`).

MLflow's schema leaves SQLite without statistics, and SQLite then reads one run's history of a
metric by scanning every run's values of it (the metrics table's primary key starts with the
metric's name). Refreshed, the read MLflow makes (captured from its engine, not written out
here) goes through MLflow's (run_uuid, key, step) index, and every history read is the same as
before. Where there is nothing to do or it cannot be done (a server, `:memory:`, a missing or
read-only file, a store locked by a writer), it says so without an error; `bnplace compare`
refreshes the store it reads (tests/test_compare.py checks the statistics it left).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from bnplace.store.client import refresh_query_statistics, sqlite_path
from bnplace.store.read import metric_histories
from tests.sweeps import sqlite_store

METRICS = ("loss", "val_loss", "mae")


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, MlflowClient, list[str]]:
    """40 runs, each with 30 epochs of three metrics (3,600 values)."""
    uri = sqlite_store(tmp_path)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("histories")
    run_ids = []
    for i in range(40):
        run_id = client.create_run(experiment).info.run_id
        values = [Metric(k, i + s / 100, 0, s) for k in METRICS for s in range(30)]
        client.log_batch(run_id, metrics=values)
        run_ids.append(run_id)
    return uri, client, run_ids


def history_read_plan(uri: str, client: MlflowClient, run_id: str) -> str:
    """SQLite's plan for the statement MLflow runs to read `run_id`'s history of "loss"."""
    from sqlalchemy import event

    engine = client._tracking_client.store.engine  # the SqlAlchemyStore's, to see its SQL
    seen: list[tuple[str, tuple]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if "FROM metrics" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        client.get_metric_history(run_id, "loss")
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    ((statement, parameters),) = seen
    with sqlite3.connect(sqlite_path(uri)) as db:  # type: ignore[arg-type]
        rows = db.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
    return " | ".join(row[-1] for row in rows)


def test_a_refreshed_store_reads_a_history_through_the_run_index_and_reads_the_same(
    store: tuple[str, MlflowClient, list[str]],
) -> None:
    uri, client, run_ids = store
    wanted = [(run_id, key) for run_id in run_ids for key in METRICS]
    before_plan = history_read_plan(uri, client, run_ids[7])
    # without statistics: the primary key (key, timestamp, ...), every run's "loss" values
    assert "index_metrics_run_uuid" not in before_plan, before_plan
    before = [
        (run_id, key, [(m.step, m.value) for m in client.get_metric_history(run_id, key)])
        for run_id, key in wanted
    ]
    assert refresh_query_statistics(uri)
    after_plan = history_read_plan(uri, client, run_ids[7])
    assert "index_metrics_run_uuid_key_step (run_uuid=? AND key=?)" in after_plan, after_plan
    assert list(metric_histories(client, wanted)) == before
    assert before[0][2] == [(s, 0 + s / 100) for s in range(30)]  # read back as logged


def test_where_there_is_nothing_to_do_or_it_cannot_be_done_it_says_so(
    store: tuple[str, MlflowClient, list[str]], tmp_path: Path
) -> None:
    uri, client, run_ids = store
    assert not refresh_query_statistics("http://127.0.0.1:5000")
    assert not refresh_query_statistics("sqlite:///:memory:")
    assert not refresh_query_statistics(f"sqlite:///{tmp_path / 'missing.db'}")
    assert not (tmp_path / "missing.db").exists()  # not created
    path = sqlite_path(uri)
    assert path is not None
    with sqlite3.connect(path, isolation_level=None) as writer:
        writer.execute("BEGIN EXCLUSIVE")  # a driver in the middle of a write
        assert not refresh_query_statistics(uri)
        writer.execute("ROLLBACK")
    if os.geteuid() != 0:  # root writes read-only files
        path.chmod(0o444)
        assert not refresh_query_statistics(uri)
        path.chmod(0o644)
    assert refresh_query_statistics(uri)
    assert len(client.get_metric_history(run_ids[0], "loss")) == 30  # the store still reads
