"""`bnplace run --executor ray`: the same sweep as the local executor, on a real local Ray.

One Ray (1 CPU, token auth off, loopback only) is started per module in this process; each
sweep is the CLI in a subprocess that joins it with --ray-address, the way a user joins a
cluster, and the store is read back with MLflow's own client. One CPU: one trial actor at a
time, each a process that imports TensorFlow (~6 CPU-s: Ray starts its workers fresh, it forks
no preloaded one), so this file's nine sweeps start 14 Ray workers where two CPUs started 23
(81 against 117 CPU-s for the file, scripts/suite_cpu.py); trials side by side on Ray are the
contract suite's (tests/test_executor_contract.py) and the two-node cluster's.
Covers: same runs, hierarchy and metrics (`==`) as `--jobs 1` (diverging trials included);
resume; a worker process killed mid-trial (FAILED, or FINISHED after a retry); Ctrl-C; a trial
too big for the cluster; and the install hint when Ray is missing.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.forked import listening_on, server_address, start_driver
from tests.forked_python import local_ray
from tests.sweeps import (
    bnplace,
    client,
    ctrl_c_at_every_moment,
    environment,
    runs,
    write_config,
)

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with local_ray(tmp_path_factory.mktemp("ray"), cpus=1) as address:
        yield address


def test_this_modules_ray_forks_its_workers_from_the_tests_server(ray_address: str) -> None:
    """tests/forked_python.py: each worker of this module's Ray is forked from the tests' server
    with TensorFlow imported (~4 s of CPU each otherwise), and is the worker the raylet asked
    for: of its job (the raylet's environment, not the server's), Ray's own entry point."""

    @ray.remote
    def where() -> tuple[int, bool, str, str]:
        return (
            os.getppid(),
            "tensorflow" in sys.modules,
            ray.get_runtime_context().get_job_id(),
            Path(sys.argv[0]).name,
        )

    parent, preloaded, job, script = ray.get(where.remote())
    assert parent in listening_on(server_address()) and preloaded
    assert (job, script) == (ray.get_runtime_context().get_job_id(), "default_worker.py")


def layout(folder: Path) -> dict[str, object]:
    """What must not depend on the executor: runs, hierarchy, params, statuses, metrics."""
    found = runs(folder)
    store = client(folder)
    (sweep,) = found["sweep"]
    variants = {run.info.run_id: run for run in found["variant"]}
    assert all(v.data.tags["mlflow.parentRunId"] == sweep.info.run_id for v in variants.values())
    trials = {}
    for run in found["trial"]:
        parent = variants[run.data.tags["mlflow.parentRunId"]]
        history = store.get_metric_history(run.info.run_id, "val_loss")
        trials[run.data.tags["bnplace.trial_key"]] = {
            "name": run.info.run_name,
            "variant": parent.data.tags["bnplace.variant"],
            "status": run.info.status,
            "failure": run.data.tags.get("bnplace.failure", ""),
            "params": run.data.params,
            "metric_names": sorted(run.data.metrics),
            "test_rmse": run.data.metrics.get("test_rmse"),
            "val_loss": [m.value for m in sorted(history, key=lambda m: m.step)],
            "steps": sorted(m.step for m in history),
        }
    return {
        "sweep_status": sweep.info.status,
        "variants": sorted(v.data.tags["bnplace.variant"] for v in variants.values()),
        "variant_params": sorted(str(sorted(v.data.params.items())) for v in variants.values()),
        "trials": trials,
    }


def test_ray_gives_the_same_runs_hierarchy_and_metrics_as_jobs_1(
    tmp_path: Path, ray_address: str
) -> None:
    extra = """
    placements: {conv.post_act: [{dropout: 0.2}]}
    sweep:
      arms:
        lr:
          sane: {}
          huge: {train.learning_rate: 1.0e+12, train.optimizer: sgd}
      seeds: [3]
    """
    seen, stdout = {}, {}
    for name, options in (
        ("local", ["--jobs", "1"]),
        ("ray", ["--executor", "ray", "--ray-address", ray_address]),
    ):
        folder = tmp_path / name
        done = bnplace(folder, "run", str(write_config(folder, extra)), *options, "--no-compare")
        assert done.returncode == 1, done.stdout + done.stderr  # the huge-lr trials fail
        seen[name], stdout[name] = layout(folder), done.stdout
    local, on_ray = seen["local"], seen["ray"]
    assert on_ray["sweep_status"] == local["sweep_status"] == "FINISHED"
    assert on_ray["variants"] == local["variants"] and len(local["variants"]) == 2
    assert on_ray["variant_params"] == local["variant_params"]
    assert on_ray["trials"].keys() == local["trials"].keys() and len(local["trials"]) == 2
    for key, expected in local["trials"].items():
        got = on_ray["trials"][key]
        for field in ("name", "variant", "status", "failure", "params", "metric_names", "steps"):
            assert got[field] == expected[field], (key, field)
        if expected["status"] == "FINISHED":
            assert got["test_rmse"] == expected["test_rmse"]  # bit for bit
            assert got["val_loss"] == expected["val_loss"]
            assert got["steps"] == [0, 1]
        else:
            assert got["failure"] == "diverged"
    assert "[ray-1 " in stdout["ray"] and "[main]" in stdout["local"]  # progress names workers

    again = bnplace(
        tmp_path / "ray",
        "run",
        str(tmp_path / "ray" / "c.yaml"),
        "--executor",
        "ray",
        "--ray-address",
        ray_address,
        "--filter",
        "lr=sane",
        "--no-compare",
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 already finished" in again.stdout
    assert len(runs(tmp_path / "ray")["trial"]) == 2  # nothing trained or logged twice


class Sweep:
    """The CLI in a process of its own (tests/forked.py) whose progress lines are read while
    it runs."""

    def __init__(self, folder: Path, *args: str) -> None:
        self.process = start_driver(folder, args, environment())
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    # bounds against a hang, not timing windows: under busy cores a Ray actor's start (its
    # TensorFlow import) took over 120 s
    def wait_for(self, prefix: str, timeout: float = 600) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            self.output.append(line)
            if line.startswith(prefix):
                return line
        self.stop()
        raise AssertionError(f"no line starting {prefix!r}:\n" + "".join(self.output))

    def finish(self, timeout: float = 600) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        time.sleep(0.2)
        while not self.lines.empty():
            self.output.append(self.lines.get())
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


KILL_CONFIG = """
sweep:
  arms:
    length:
      short: {}
      long: {train.epochs: 20}
  seeds: 1
"""


@pytest.mark.parametrize("retries", [0, 1])
def test_worker_killed_mid_trial_fails_or_retries_its_trial_only(
    tmp_path: Path, ray_address: str, retries: int
) -> None:
    config = write_config(tmp_path, KILL_CONFIG)
    sweep = Sweep(
        tmp_path,
        "run",
        str(config),
        "--executor",
        "ray",
        "--ray-address",
        ray_address,
        "--max-retries",
        str(retries),
        "--no-compare",
    )
    victim = "length=long seed=0"
    started = sweep.wait_for(f"start  {victim} [")
    pid = int(started.rsplit(":", 1)[1].rstrip("]\n"))  # "[ray-N host:pid]"
    sweep.wait_for(f"epoch  {victim} 1/20")
    os.kill(pid, signal.SIGKILL)
    code = sweep.finish()
    text = "".join(sweep.output)

    found = runs(tmp_path)
    assert [run.info.status for run in found["sweep"]] == ["FINISHED"], text
    trials = {t.info.run_name: t for t in found["trial"]}
    assert len(found["trial"]) == len(trials) == 2  # none missing, none twice
    others = [run for name, run in trials.items() if name != victim]
    assert all(run.info.status == "FINISHED" for run in others), text
    killed = trials[victim]
    if retries == 0:
        assert code == 1, text
        assert killed.info.status == "FAILED"
        assert killed.data.tags["bnplace.status"] == "failed"
        assert killed.data.tags["bnplace.failure"].startswith("error: worker died"), text
        assert str(pid) in killed.data.tags["bnplace.failure"]
    else:
        assert code == 0, text
        assert killed.info.status == "FINISHED"
        assert killed.data.metrics["epochs_run"] == 20
        history = client(tmp_path).get_metric_history(killed.info.run_id, "loss")
        assert sorted(m.step for m in history) == list(range(20))  # each epoch logged once


def test_ctrl_c_is_acted_on_at_the_first_press_and_a_rerun_resumes(
    tmp_path: Path, ray_address: str
) -> None:
    """One Ctrl-C at each moment of CTRL_C_MOMENTS (tests/sweeps.py); scripts/ctrl_c.py presses
    at 20 random moments."""
    ctrl_c_at_every_moment(tmp_path, "--executor", "ray", "--ray-address", ray_address)


def test_a_trial_bigger_than_the_cluster_is_refused_before_anything_is_written(
    tmp_path: Path, ray_address: str
) -> None:
    config = write_config(tmp_path, "sweep: {seeds: 1}\n", store=False)
    done = bnplace(
        tmp_path,
        "run",
        str(config),
        "--executor",
        "ray",
        "--ray-address",
        ray_address,
        "--cpus-per-trial",
        "2",
        "--no-compare",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the Ray cluster has 1 CPU and 0 GPUs" in done.stderr
    assert "a trial asks for 2 CPUs and 0 GPUs" in done.stderr and "--cpus-per-trial" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "mlflow.db").exists()  # the actors start before the store opens


def test_without_ray_the_error_says_how_to_install_it(tmp_path: Path) -> None:
    config = write_config(tmp_path, "sweep: {seeds: 1}\n", store=False)
    blocked = (
        "import sys; sys.modules['ray'] = None; "  # `import ray` now raises ImportError
        "from bnplace.console.cli import app; app(prog_name='bnplace')"
    )
    done = subprocess.run(
        [sys.executable, "-c", blocked, "run", str(config), "--executor", "ray"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment(),
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--executor ray needs the 'ray' package" in done.stderr
    assert "pip install 'bnplace[ray]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "mlflow.db").exists()  # failed before anything was written
