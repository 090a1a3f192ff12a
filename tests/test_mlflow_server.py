"""A sweep logged through a real `mlflow server` over HTTP, and read back by `bnplace compare`.

The test starts `mlflow server` on 127.0.0.1 (SQLite backend, artifacts proxied by the server
into a folder of its own), runs `bnplace run --tracking-uri http://...` and `bnplace compare`
as subprocesses, and checks runs and artifacts with MLflow's client over HTTP. The server is
always stopped, with its whole process group.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.servers import mlflow_server
from tests.sweeps import bnplace

pytestmark = pytest.mark.slow

CONFIG = """
experiment: served
data: {source: synthetic, generator: sine_mix, length: 360, features: 2, window: 12}
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
train: {epochs: 2, batch_size: 32, learning_rate: 0.01}
sweep:
  axes:
    conv.post_act: {none: [], bn: [{batch_norm: {momentum: 0.5}}]}
  seeds: 2
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("server")
    with mlflow_server(folder, f"sqlite:///{folder / 'srv.db'}") as served:
        yield served


def test_sweep_logs_through_http_and_compare_reads_it_back(
    tmp_path: Path, server: tuple[str, Path]
) -> None:
    url, artifacts = server
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    done = bnplace(tmp_path, "run", str(config), "--tracking-uri", url, "-j", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert url in done.stdout  # the outcome names the store it wrote to
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()

    compared = bnplace(tmp_path, "compare", "--tracking-uri", url, "served", "--format", "csv")
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert "conv.post_act=bn" in compared.stdout and "conv.post_act=none" in compared.stdout

    client = MlflowClient(tracking_uri=url)
    exp = client.get_experiment_by_name("served")
    found = client.search_runs([exp.experiment_id], max_results=100)
    kinds = sorted(run.data.tags["bnplace.kind"] for run in found)
    assert kinds == ["sweep"] + ["trial"] * 4 + ["variant"] * 2
    (sweep,) = [run for run in found if run.data.tags["bnplace.kind"] == "sweep"]
    variants = {r.info.run_id for r in found if r.data.tags["bnplace.kind"] == "variant"}
    trials = [run for run in found if run.data.tags["bnplace.kind"] == "trial"]
    assert all(t.data.tags["mlflow.parentRunId"] in variants for t in trials)
    assert all(t.info.status == "FINISHED" and "test_rmse" in t.data.metrics for t in trials)
    history = client.get_metric_history(trials[0].info.run_id, "val_loss")
    assert sorted(m.step for m in history) == [0, 1]
    listed = {a.path for a in client.list_artifacts(trials[0].info.run_id)}
    assert {"model_summary.txt", "history.csv"} <= listed
    local = client.download_artifacts(trials[0].info.run_id, "history.csv", str(tmp_path))
    assert Path(local).read_text().startswith("epoch,")
    assert {a.path for a in client.list_artifacts(sweep.info.run_id)} >= {"config", "compare"}
    # the artifacts went through the server into its own folder, not into the client's
    assert any(p.name == "history.csv" for p in artifacts.rglob("*"))
