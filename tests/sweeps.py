"""Helpers for the end-to-end tests: a tiny config, the CLI in this process or as a driver
process of its own, the store's runs.

Each sweep test runs the CLI as a user does (`bnplace`: in this test process, where it needs no
process of its own; `Driver` and `press_ctrl_c_once`: a driver process forked from a preloaded
server, tests/forked.py, where the test signals, kills or races it) and reads the SQLite store
back with MLflow's own client.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

from mlflow import MlflowClient

from tests.forked import start_driver

# The sweeps' model: one Conv1D and the head. The LSTM the tests' sweeps once had made each fresh
# trial ~2x dearer (its loop and gradient are traced per model: 1.15 against 0.53 CPU-s a trial)
# and these tests are about runs, stores, drivers and executors, not the architecture; the
# LSTM, its cells and their dropouts are tested where they are built, trained and reused
# (test_build, test_train, test_reuse, test_draws).
TINY = """
experiment: tiny
data: {source: synthetic, generator: sine_mix, length: 360, features: 2, window: 12}
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
train: {epochs: 2, batch_size: 32, learning_rate: 0.01}
"""


def write_config(folder: Path, extra: str, name: str = "c.yaml", store: bool = True) -> Path:
    """The tiny config plus `extra` in `folder`, beside an empty store (`sqlite_store`; not
    with `store=False`, for a test that checks a failed run wrote no store)."""
    folder.mkdir(parents=True, exist_ok=True)
    if store:
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
# Drivers that all stay alive keep the default: on a busy machine a heartbeat can be seconds
# late, and a claim taken for a dead driver's would be taken over (correctly fenced, but not
# what a test of healthy drivers sharing a plan means to see).
LIVE_STALE_S = "30"


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


def bnplace(folder: Path, *args: str, stale_s: str = STALE_S) -> subprocess.CompletedProcess:
    """`bnplace ARGS` run in `folder` in this test process: the CLI from its entry point
    (typer's CliRunner), in `folder`, with the environment a subprocess gets (`environment`).
    TensorFlow, MLflow and bnplace are then imported once per test process rather than once
    per call (~7 s of CPU each, most of the suite's time); TensorFlow runs one thread per
    trial, as a subprocess's would (conftest.py). An exception that escapes the CLI comes back
    as a subprocess's would: exit 1 and its traceback in stderr; a call runs to its end. Tests
    whose point is the process itself (what it imports, signals, kills, several drivers) start
    one: `Driver`, or `subprocess`."""
    import traceback

    from typer.testing import CliRunner

    from bnplace.console.cli import app

    env: dict[str, str | None] = {"BNPLACE_CLAIM_STALE_S": stale_s, "MLFLOW_TRACKING_URI": None}
    with contextlib.chdir(folder):
        result = CliRunner().invoke(app, list(args), env=env)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(["bnplace", *args], result.exit_code, result.stdout, stderr)


def standings(folder: Path, config: Path, *options: str) -> dict[tuple[str, int], str]:
    """`bnplace status CONFIG --json OPTIONS`: (variant, seed) -> done / failed / pending /
    not needed."""
    import json

    shown = bnplace(folder, "status", str(config), "--json", *options)
    assert shown.returncode == 0, shown.stderr
    return {(t["variant"], t["seed"]): t["status"] for t in json.loads(shown.stdout)["trials"]}


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
    """`bnplace ARGS` in `folder` as a process of its own (forked: tests/forked.py) in its own
    session, its output in a log file."""

    def __init__(self, folder: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.log = folder / f"driver-{len(list(folder.glob('driver-*.log')))}.log"
        self.log.write_text("")
        self.process = start_driver(folder, args, {**environment(), **(env or {})}, log=self.log)

    def wait_for(self, prefix: str, count: int = 1, timeout: float = 600) -> str:
        """Its output once `count` lines start with `prefix`: the driver's own events (plain
        progress lines, written unbuffered), not a timing window."""
        while True:
            text = self.log.read_text()
            if sum(line.startswith(prefix) for line in text.splitlines()) >= count:
                return text
            if self.process.poll() is not None or timeout <= 0:
                self.kill()
                raise AssertionError(f"no {count} lines starting {prefix!r}:\n{text}")
            time.sleep(0.1)  # the log file has no event to wait on; the count is the event
            timeout -= 0.1

    def finish(self, timeout: float = 600) -> tuple[int, str]:
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
    """`bnplace ARGS` twice on one plan: the second started once the first holds a trial,
    the first a process of its own and the second in this process (`bnplace`), both with the
    default stale period (LIVE_STALE_S). Returns each one's exit code and output."""
    # The second driver's TensorFlow import happens now, not after the first holds a trial:
    # on busy cores that import outlasted the first driver's whole sweep, so only one trained.
    importlib.import_module("bnplace.trial.train")

    first = Driver(folder, *args, env={"BNPLACE_CLAIM_STALE_S": LIVE_STALE_S})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and first.process.poll() is None:
        exp = store.get_experiment_by_name(experiment)
        if exp is not None and store.search_runs(
            [exp.experiment_id], "tags.`bnplace.kind` = 'trial'", max_results=1
        ):
            break
        time.sleep(0.3)
    second = bnplace(folder, *args, stale_s=LIVE_STALE_S)
    return [first.finish(timeout), (second.returncode, second.stdout + second.stderr)]


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


# A short and a long trial: the long one is still training when the short one is recorded. Its
# 100 epochs of the conv model (~18 ms each on an idle core) leave ~1.8 s for a press after the
# short one's line to land mid-sweep (30 left ~0.5 s once the sweeps lost their LSTM).
CTRL_C_CONFIG = """
sweep:
  arms:
    length:
      short: {}
      long: {train.epochs: 100}
  seeds: 1
"""

# Moments of a sweep at which Ctrl-C is pressed, each right after the driver prints a line that
# starts so: the plan line (store open, workers starting), a trial's start (claimed, its run
# made), and the first trial recorded (the other one still training).
CTRL_C_MOMENTS = ("tiny: ", "start ", "done ")


def press_ctrl_c_once(
    folder: Path, args: tuple[str, ...], after: str, signum: int | None = None
) -> tuple[int, str]:
    """`bnplace ARGS` with one Ctrl-C (SIGINT to its process group, as a terminal sends it)
    right after it prints a line starting with `after`; its exit code and output (its workers'
    included). A press that is not acted on fails here: there is no second press. `signum`:
    that signal to the driver alone instead, as `kill -s SIGNAL PID` sends it."""
    process = start_driver(folder, args, environment())  # SIGINT raises, as a terminal's Ctrl-C
    assert process.stdout is not None
    seen: list[str] = []
    for line in process.stdout:  # the driver's own events, not the clock
        seen.append(line)
        if line.startswith(after):
            break
    if signum is not None:
        os.kill(process.pid, signum)
    else:
        os.killpg(process.pid, signal.SIGINT)
    try:
        rest, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        rest, _ = process.communicate()
        raise AssertionError(
            f"Ctrl-C after {after!r} not acted on:\n{''.join(seen)}{rest}"
        ) from None
    return process.returncode, "".join(seen) + rest


def ctrl_c_at_every_moment(folder: Path, *options: str) -> None:
    """Ctrl-C once at each of CTRL_C_MOMENTS, each sweep resuming the one before, then a rerun:
    each press is acted on (exit 130, no traceback, the sweep run KILLED, nothing left RUNNING,
    no trial key FINISHED twice), and the rerun finishes every trial, none trained twice."""
    config = write_config(folder, CTRL_C_CONFIG)
    args = ("run", str(config), *options, "--no-compare")
    store = client(folder)
    for moment in CTRL_C_MOMENTS:
        code, output = press_ctrl_c_once(folder, args, moment)
        assert code == 130, output
        assert "Traceback" not in output and "interrupted" in output, output
        trials = trained_once(store, "tiny")
        if moment == "start ":  # a trial was open: its run ends KILLED
            assert "KILLED" in {t.info.status for t in trials}, output
        found = runs(folder)
        assert {r.info.status for r in found["sweep"]} <= {"KILLED"}, output
        assert "RUNNING" not in {r.info.status for r in found["variant"]}
    done = bnplace(folder, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    finished = [t for t in trained_once(store, "tiny") if t.info.status == "FINISHED"]
    assert len(finished) == 2


def _freeze_outside_a_write(driver: Driver, db: Path, tries: int = 20) -> None:
    """A SQLite store is locked by a process frozen inside a write (its heartbeat thread's tag,
    say) until that process runs again: no other driver can even open the store, which no
    protocol on top of SQLite can change. Fencing is about a driver frozen between its writes,
    so thaw and freeze again until the store takes an exclusive lock (PostgreSQL behind a server
    holds no lock for a frozen client: this is SQLite's alone)."""
    import sqlite3

    for _ in range(tries):
        try:
            with sqlite3.connect(db, timeout=1.0) as connection:
                # EXCLUSIVE: no other connection holds even a read lock (a frozen reader's
                # SHARED lock would block every later commit), released at once
                connection.execute("BEGIN EXCLUSIVE")
                connection.rollback()
            return
        except sqlite3.OperationalError:  # "database is locked": frozen inside a write
            os.killpg(driver.process.pid, signal.SIGCONT)
            time.sleep(0.2)
            os.killpg(driver.process.pid, signal.SIGSTOP)
    raise AssertionError(f"the store stayed locked through {tries} freezes")


def frozen_driver_is_superseded(folder: Path, *options: str, store: MlflowClient) -> None:
    """Fencing: driver A claims the one trial and is frozen (SIGSTOP, its whole process group)
    past the stale period; driver B takes the trial over and finishes it; A is thawed
    (SIGCONT) and finishes too. One FINISHED run for the key (B's); A's result is kept in a
    KILLED run tagged with the run that superseded it. Waits on the drivers' own lines."""
    config = write_config(folder, "sweep: {seeds: 1}\n", name="frozen.yaml")
    args = ("run", str(config), *options, "-j", "1", "--epochs", "60", "--no-compare")
    args += ("--experiment", "frozen")
    first = Driver(folder, *args)
    first.wait_for("start ")
    os.killpg(first.process.pid, signal.SIGSTOP)  # a closed laptop lid, a long GC pause
    if not options:  # ./mlflow.db: frozen between two writes, not inside one
        _freeze_outside_a_write(first, folder / "mlflow.db")
    try:
        second = bnplace(folder, *args)  # waits out the stale period, takes over
        text = second.stdout + second.stderr
        assert second.returncode == 0 and done_counts(text)["finished"] == 1, text
    finally:
        os.killpg(first.process.pid, signal.SIGCONT)
    code, text = first.finish()
    assert code == 0, text
    trials = trained_once(store, "frozen")  # none RUNNING, no key FINISHED twice
    (won,) = [t for t in trials if t.info.status == "FINISHED"]
    (late,) = [t for t in trials if t.info.run_id != won.info.run_id]
    assert late.info.status == "KILLED"
    assert late.data.tags["bnplace.superseded_by"] == won.info.run_id, text
    assert "test_rmse" in late.data.metrics  # its result is kept, not lost
    assert int(won.data.tags["bnplace.generation"]) > int(late.data.tags["bnplace.generation"])
