"""`bnplace ui`: the MLflow UI on bnplace's store, on this machine only by default.

In: a tracking URI (resolved like `bnplace run` does), host and port. Out: a running
`mlflow server` child process (until Ctrl-C) and the links that open each bnplace experiment
in the UI's "Model training" view (MLflow 3 opens experiments in its GenAI "Overview"
otherwise); `run_link`, the link the end of `bnplace run` prints. The experiments are read by
`bnplace.store.read.experiment_ids`; this module only starts the server and words the links.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from bnplace.names.errors import BnplaceError
from bnplace.store.client import refresh_query_statistics
from bnplace.store.read import experiment_ids
from bnplace.store.track import resolve_tracking_uri

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 5000  # `bnplace ui`'s defaults


_VIEW = "?workflowType=machine_learning"  # the UI's "Model training" view


def experiment_link(base: str, experiment_id: str) -> str:
    """The link that opens an experiment's runs in the UI's model-training view."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}{_VIEW}"


def sweep_page(base: str, experiment_id: str, run_id: str) -> str:
    """The link that opens a sweep run's page: its description is the comparison's answer
    (each variant's Δ% and verdict, written by `bnplace compare`)."""
    # without the view MLflow 3 opens the page in its GenAI frame ("Evaluations")
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}{_VIEW}"


def answer_link(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """`run_link`'s twin for the sweep run's page."""
    if tracking_uri.startswith(("http://", "https://")):
        return sweep_page(tracking_uri, experiment_id, run_id)
    return sweep_page(_base(DEFAULT_HOST, DEFAULT_PORT), experiment_id, run_id)


def _base(host: str, port: int) -> str:
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"


def run_link(tracking_uri: str, experiment_id: str) -> str:
    """Where a sweep shows: on the tracking server itself, else on `bnplace ui`'s default."""
    if tracking_uri.startswith(("http://", "https://")):
        return experiment_link(tracking_uri, experiment_id)
    return experiment_link(_base(DEFAULT_HOST, DEFAULT_PORT), experiment_id)


def experiment_links(uri: str, host: str, port: int) -> list[tuple[str, str]]:
    base = _base(host, port)
    links = []
    for name, exp_id, sweep_id in experiment_ids(uri):
        links.append((name, experiment_link(base, exp_id)))
        if sweep_id:  # its page's description is the answer, once compared
            links.append((f"{name} (answer)", sweep_page(base, exp_id, sweep_id)))
    return links


def server_command(uri: str, host: str, port: int) -> list[str]:
    # mlflow server ignores MLFLOW_TRACKING_URI: the store must be passed explicitly.
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def serve(tracking_uri: str | None, host: str, port: int, console: Any) -> None:
    uri = resolve_tracking_uri(tracking_uri, None)
    if not uri.startswith(("sqlite:", "postgresql", "mysql")):
        raise BnplaceError(f"{uri} is a tracking server already: open it in a browser")
    refresh_query_statistics(uri)  # the UI's charts read metric histories: store/client.py
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    process = subprocess.Popen(server_command(uri, host, port), env=env)
    console.print(f"MLflow UI for {uri} on http://{host}:{port} (Ctrl-C stops it)")
    for name, link in experiment_links(uri, host, port):
        console.print(f"  {name}: {link}", soft_wrap=True)  # a broken link cannot be clicked
    try:
        raise SystemExit(process.wait())
    except KeyboardInterrupt:
        process.terminate()
        process.wait(10)
