"""Helpers for the end-to-end tests: a tiny config, the CLI as a subprocess, the store's runs.

Each sweep test runs `python -m bnplace` the way a user does and reads the SQLite store back with
MLflow's own client.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from mlflow import MlflowClient

TINY = """
experiment: tiny
data: {source: synthetic, generator: sine_mix, length: 360, features: 2, window: 12}
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: lstm, units: 4}
train: {epochs: 2, batch_size: 32, learning_rate: 0.01}
"""


def write_config(folder: Path, extra: str, name: str = "c.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(TINY + textwrap.dedent(extra))
    return path


# Claims of a killed driver go stale after this many seconds (30 by default): short in tests,
# which kill drivers and resume at once.
STALE_S = "4"


def environment() -> dict[str, str]:
    """This process's environment without MLFLOW_TRACKING_URI (the store is ./mlflow.db), with
    claims that go stale after STALE_S seconds."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "BNPLACE_CLAIM_STALE_S": STALE_S}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def bnplace(folder: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`bnplace ARGS` run in `folder`, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "bnplace", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment(),
    )


def client(folder: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")


def runs(folder: Path, experiment: str = "tiny") -> dict[str, list]:
    """The experiment's runs by `bnplace.kind`: sweep, variant, trial."""
    store = client(folder)
    exp = store.get_experiment_by_name(experiment)
    by_kind: dict[str, list] = {"sweep": [], "variant": [], "trial": []}
    for run in store.search_runs([exp.experiment_id], max_results=1000):
        by_kind[run.data.tags["bnplace.kind"]].append(run)
    return by_kind
