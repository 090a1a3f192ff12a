"""The one way bnplace opens an MLflow store, parses a SQLite URI and pages through a search.

In: a tracking URI. Out: `make_client` (every `MlflowClient` bnplace uses is made here),
`existing_client` (the same, but a SQLite file that does not exist is an error, not a new empty
store), `sqlite_path` (the file a `sqlite:///` URI names; None for servers and `:memory:`),
`search_all` and `all_experiments` (MLflow's paginated searches, read to the end or to a limit),
`refresh_query_statistics` (a SQLite store's query-planner statistics, before many reads).
mlflow is imported inside the functions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bnplace.names.errors import StoreNotFound
from bnplace.store.retrying import while_locked

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

PAGE = 1000  # MLflow's largest page of runs for a search
# Rows `ANALYZE` samples per index (PRAGMA analysis_limit, SQLite >= 3.32): 0.4 s on a 750 MB
# store of 2.4 million metric values, where a full ANALYZE reads every row.
ANALYSIS_ROWS = 400
# How long the statistics wait for a store that another process is writing: they are an
# optimisation, never worth holding up a command (nor a driver's next write) for.
ANALYSIS_LOCK_S = 2.0


def sqlite_path(tracking_uri: str) -> Path | None:
    """The SQLite file of a `sqlite:///` URI (query string dropped); None for a server URI or
    an in-memory database, which have no file."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    text = tracking_uri.removeprefix("sqlite:///").split("?", 1)[0]
    return None if text in ("", ":memory:") else Path(text)


def make_client(tracking_uri: str) -> MlflowClient:
    """A client of the store; opening it (MLflow checks the schema) waits out a writer that
    holds a SQLite store locked, as every later call does (`bnplace.store.retrying`)."""
    from mlflow import MlflowClient

    return while_locked(MlflowClient, tracking_uri=tracking_uri)


def existing_client(tracking_uri: str) -> MlflowClient:
    """A client for a store that must exist already: opening a missing SQLite file would create
    an empty store where the user mistyped a path."""
    path = sqlite_path(tracking_uri)
    if path is not None and not path.exists():
        raise StoreNotFound(
            f"MLflow store {tracking_uri}: the SQLite file {path} does not exist "
            "(run `bnplace run` first, or pass the store the sweep was logged to)"
        )
    return make_client(tracking_uri)


def search_all(
    client: MlflowClient,
    experiment_ids: Sequence[str],
    filter_string: str,
    *,
    order_by: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[Run]:
    """All runs matching `filter_string`, every page read, or only the first `limit`."""
    runs: list[Run] = []
    token: str | None = None
    while True:
        page = client.search_runs(
            list(experiment_ids),
            filter_string,
            max_results=min(limit, PAGE) if limit else PAGE,
            order_by=list(order_by) if order_by else None,
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token or (limit is not None and len(runs) >= limit):
            return runs[:limit] if limit else runs


def all_experiments(client: MlflowClient) -> list[Any]:
    """Every experiment of the store (active ones), every page read."""
    experiments: list[Any] = []
    token: str | None = None
    while True:
        page = client.search_experiments(max_results=PAGE, page_token=token)
        experiments.extend(page)
        token = page.token
        if not token:
            return experiments


def refresh_query_statistics(tracking_uri: str) -> bool:
    """Refresh a SQLite store's query-planner statistics (`ANALYZE`, sampled); True when done.

    Why: MLflow's schema leaves SQLite without statistics, and without them SQLite reads one
    run's history of a metric (`get_metric_history`, what compare's learning curves and the
    MLflow UI's charts read) through the metrics table's primary key, which starts with the
    metric's name: every run's values of that metric are scanned, rather than the (run_uuid,
    key, step) index MLflow made for this read. On the search study's store (4,000 trials, 2.4
    million values) the query took 13 ms against 0.13 ms, MLflow's whole call 8.7 against 0.93;
    `bnplace compare` there took 95 CPU-s before and 45 after, the same comparison.json
    (benchmarks/history_reads.py). Statistics change which index a query uses, not the rows it
    returns, and MLflow orders what it returns (searches by start time and run id, a history by
    time, step and value).

    A best effort, False without an error: a server or `:memory:` (nothing to do), a missing
    or read-only file, a store another process holds locked past ANALYSIS_LOCK_S, SQLite older
    than 3.32 (no sampling: a full ANALYZE would read the whole store)."""
    import sqlite3

    path = sqlite_path(tracking_uri)
    if path is None or not path.is_file() or sqlite3.sqlite_version_info < (3, 32):
        return False
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=ANALYSIS_LOCK_S)) as db:
            db.execute(f"PRAGMA analysis_limit = {ANALYSIS_ROWS}")
            db.execute("ANALYZE")
            db.commit()
    except sqlite3.Error:
        return False
    return True
