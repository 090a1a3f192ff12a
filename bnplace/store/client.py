"""The one way bnplace opens an MLflow store, parses a SQLite URI and pages through a search.

In: a tracking URI. Out: `make_client` (every `MlflowClient` bnplace uses is made here),
`existing_client` (the same, but a SQLite file that does not exist is an error, not a new empty
store), `sqlite_path` (the file a `sqlite:///` URI names; None for servers and `:memory:`),
`search_all` and `all_experiments` (MLflow's paginated searches, read to the end or to a limit).
mlflow is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bnplace.names.errors import StoreNotFound
from bnplace.store.retrying import while_locked

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

PAGE = 1000  # MLflow's largest page of runs for a search


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
