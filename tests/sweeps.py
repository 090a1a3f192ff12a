"""Helpers for the end-to-end tests: a tiny config, the CLI as a subprocess, the store's runs.

Each sweep test runs `python -m bnplace` the way a user does and reads the SQLite store back with
MLflow's own client.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
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
    """The tiny config plus `extra` in `folder`, beside an empty store (`sqlite_store`)."""
    folder.mkdir(parents=True, exist_ok=True)
    sqlite_store(folder)
    path = folder / name
    path.write_text(TINY + textwrap.dedent(extra))
    return path


def _template_store() -> Path:
    """An empty MLflow SQLite store with every schema migration applied, made once per MLflow
    version on this machine and shared by the test processes (written under another name,
    then renamed: a process never sees half a file)."""
    import mlflow

    template = Path(tempfile.gettempdir()) / f"bnplace-tests-empty-store-{mlflow.__version__}.db"
    if not template.exists():
        partial = template.with_suffix(f".{os.getpid()}.partial")
        MlflowClient(tracking_uri=f"sqlite:///{partial}").search_experiments()
        os.replace(partial, template)
    return template


def sqlite_store(folder: Path, name: str = "mlflow.db") -> str:
    """The URI of an MLflow SQLite store in `folder`: a copy of an empty, migrated store where
    there is none yet. The same store `bnplace run` would create; copying it skips the ~2 s of
    schema migrations each new store costs (tests/test_cli.py creates one the user's way)."""
    path = folder / name
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_template_store(), path)
    return f"sqlite:///{path}"


# Claims of a killed driver go stale after this many seconds (30 by default): short in tests,
# which kill drivers and resume at once.
STALE_S = "4"


def environment() -> dict[str, str]:
    """This process's environment without MLFLOW_TRACKING_URI (the store is ./mlflow.db), with
    claims that go stale after STALE_S seconds."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "BNPLACE_CLAIM_STALE_S": STALE_S}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def ctrl_c_as_in_a_terminal() -> None:
    """`preexec_fn` for a driver the test sends Ctrl-C: SIGINT at its default, as a terminal
    gives it. A process started in the background (`cmd &` in a script, nohup) inherits SIGINT
    ignored, and Python then leaves it ignored: the sweep would run on through Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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


class Driver:
    """`bnplace ARGS` started in `folder` in its own process group, its output in a log file."""

    def __init__(self, folder: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.log = folder / f"driver-{len(list(folder.glob('driver-*.log')))}.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bnplace", *args],
                cwd=folder,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**environment(), **(env or {})},
                start_new_session=True,
            )

    def finish(self, timeout: float = 300) -> tuple[int, str]:
        """Its exit code and output, once it ended (killed with its group past `timeout`)."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        return code, self.log.read_text()

    def kill(self) -> None:
        """SIGKILL the whole process group (the driver and its workers), as a crash would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)


def done_counts(text: str) -> dict[str, int]:
    """The counts of a run's closing line: finished, failed, skipped, and by other drivers."""
    flat = " ".join(text.split())
    found = re.search(r"done: (\d+) finished, (\d+) failed, (\d+) skipped", flat)
    assert found, text
    others = re.search(r"; (\d+) finished and (\d+) failed in other drivers", flat)
    finished, failed, skipped = map(int, found.groups())
    by_others = tuple(map(int, others.groups())) if others else (0, 0)
    return {
        "finished": finished,
        "failed": failed,
        "skipped": skipped,
        "finished_elsewhere": by_others[0],
        "failed_elsewhere": by_others[1],
    }


def two_drivers(
    folder: Path, *args: str, store: MlflowClient, experiment: str, timeout: float = 300
) -> list[tuple[int, str]]:
    """`bnplace ARGS` twice on one plan: the second started once the first holds a trial.
    Returns each one's exit code and output."""
    first = Driver(folder, *args)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and first.process.poll() is None:
        exp = store.get_experiment_by_name(experiment)
        if exp is not None and store.search_runs(
            [exp.experiment_id], "tags.`bnplace.kind` = 'trial'", max_results=1
        ):
            break
        time.sleep(0.3)
    second = Driver(folder, *args)
    return [first.finish(timeout), second.finish(timeout)]


def trained_once(store: MlflowClient, experiment: str) -> list:
    """The experiment's trial runs, checked: none RUNNING, no trial key FINISHED twice."""
    exp = store.get_experiment_by_name(experiment)
    trials = store.search_runs(
        [exp.experiment_id], "tags.`bnplace.kind` = 'trial'", max_results=1000
    )
    assert not [t for t in trials if t.info.status == "RUNNING"]
    finished = [t.data.tags["bnplace.trial_key"] for t in trials if t.info.status == "FINISHED"]
    assert len(finished) == len(set(finished)), "a trial key FINISHED twice"
    return trials
