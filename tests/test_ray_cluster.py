"""A real two-node Ray cluster on this machine: `ray start --head` and a second node joined
with `ray start --address`, 1 CPU each. `bnplace run --executor ray --ray-address ...` puts
trials on both nodes (each trial run records its node), and SIGKILLing the second node's
processes mid-trial (a machine lost) leaves every trial FINISHED (retried on the head with
--max-retries) or FAILED "worker died": none RUNNING, none missing, the exit code saying which.

Both nodes run in process groups of their own, with a temp dir of their own and free ports;
the fixture kills both groups (never `ray stop`, which stops every Ray on the machine).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import free_port
from tests.sweeps import Driver, client, runs, trained_once, write_config

pytestmark = pytest.mark.slow
pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))  # the `ray` script of this environment
# The long trials' 100 epochs (~18 ms each on an idle core) keep a victim training for ~1.8 s
# after its first epoch is seen, for the 0.2 s poll and the node's loss to land mid-trial.
CONFIG = """
sweep:
  arms:
    length:
      short: {}
      long: {train.epochs: 100}
  seeds: 3
"""


@dataclass
class Cluster:
    address: str
    head: subprocess.Popen
    node: subprocess.Popen  # the second node's `ray start --block`: its processes are its group
    temp: Path

    def groups(self) -> tuple[int, ...]:
        return (self.head.pid, self.node.pid)


def ray_start(args: list[str], temp: Path, name: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),  # the actors import this checkout's bnplace
        "RAY_AUTH_MODE": "disabled",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",  # a second node on the same machine
        "RAY_health_check_period_ms": "1000",  # a lost node is declared dead in seconds
        "RAY_health_check_failure_threshold": "3",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    with (temp / f"{name}.log").open("w") as log:
        return subprocess.Popen(
            [RAY, "start", *args, "--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--block"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def nodes_alive(address: str) -> int:
    shown = subprocess.run(
        [RAY, "status", "--address", address], capture_output=True, text=True, timeout=60
    )
    active = shown.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0]
    return len(re.findall(r"node_[0-9a-f]+", active))


def started(process: subprocess.Popen, log: Path, deadline: float) -> None:
    """Until `ray start` says "Ray runtime started.": it prints that once Ray's `Node` has read
    its raylet back from the GCS (ray/_private/node.py), i.e. the node is in the cluster. A
    read of its log costs nothing; each `ray status` poll is a Python process importing Ray
    (~1 CPU-s)."""
    while "Ray runtime started." not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    temp = Path(tempfile.mkdtemp(prefix="bnray-"))  # short: Ray's socket paths are limited
    address = f"127.0.0.1:{free_port()}"
    port = address.rsplit(":", 1)[1]
    head = ray_start(
        ["--head", "--port", port, "--temp-dir", str(temp), "--include-dashboard=false"],
        temp,
        "head",
    )
    node: subprocess.Popen | None = None
    try:
        deadline = time.monotonic() + 120
        started(head, temp / "head.log", deadline)
        node = ray_start(["--address", address], temp, "node")
        started(node, temp / "node.log", deadline)
        while nodes_alive(address) < 2:  # one `ray status` in the usual case
            assert time.monotonic() < deadline, (temp / "node.log").read_text()
            time.sleep(1)
        yield Cluster(address, head, node, temp)
    finally:
        for process in (node, head):
            if process is not None:
                kill_group(process.pid)
                process.wait(30)
        # anything of this cluster left in another group (none expected): by its temp dir
        listed = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True)
        for line in listed.stdout.splitlines():
            pid, _, args = line.strip().partition(" ")
            if str(temp) in args and int(pid) != os.getpid():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)


def victim_on(driver: Driver, root: int, timeout: float = 240) -> tuple[str, bool]:
    """A long trial running on the node whose `ray start` is process `root`, past its first
    epoch: the trial the node is lost under; and whether that node had finished a trial
    before it (its worker may start late on a busy machine, after the head took the short
    trials). A long trial runs 100 epochs (CONFIG), so a 0.2 s poll sees it running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = driver.log.read_text()
        starts = dict(re.findall(r"^start  (.+?) \[ray-\d+ [^\]]*:(\d+)\]$", text, re.MULTILINE))
        done = set(re.findall(r"^(?:done  |FAILED) (.+?) \(\d+/", text, re.MULTILINE))
        here = {name for name, pid in starts.items() if on_node(int(pid), root)}
        for name in sorted(here - done):
            if name.startswith("length=long") and f"epoch  {name} 1/" in text:
                return name, bool(done & here)
        assert driver.process.poll() is None, text
        time.sleep(0.2)
    driver.kill()
    raise AssertionError(f"the second node ran no long trial:\n{text}")


def parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def on_node(pid: int, root: int) -> bool:
    """Whether process `pid` descends from `root` (a node's `ray start`: its raylet's workers)."""
    while pid > 1:
        if pid == root:
            return True
        pid = parent(pid)
    return False


def lose_node(root: int) -> None:
    """SIGKILL a node's processes, as when its machine dies: the group of its `ray start` and
    every process below it (the raylet's workers are in groups of their own)."""
    listed = subprocess.run(["ps", "-eo", "pid="], capture_output=True, text=True).stdout
    below = [int(p) for p in listed.split() if int(p) != root and on_node(int(p), root)]
    kill_group(root)
    for pid in below:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_trials_spread_over_two_nodes_and_survive_losing_one(
    tmp_path: Path, cluster: Cluster
) -> None:
    config = write_config(tmp_path, CONFIG)
    args = ("run", str(config), "--executor", "ray", "--ray-address", cluster.address)
    driver = Driver(tmp_path, *args, "--max-retries", "1", "--no-compare")
    victim, node_finished_one = victim_on(driver, cluster.node.pid)
    lose_node(cluster.node.pid)  # the second node is lost mid-trial, as with a dead machine
    code, text = driver.finish()

    trials = trained_once(client(tmp_path), "tiny")  # none RUNNING, no key finished twice
    assert len(trials) == 6, text  # none missing: the lost trial went on under its run
    for trial in trials:
        status, failure = trial.info.status, trial.data.tags.get("bnplace.failure", "")
        assert status == "FINISHED" or (status == "FAILED" and "worker died" in failure), text
    failed = [t for t in trials if t.info.status == "FAILED"]
    assert code == (1 if failed else 0), text
    lost = next(t for t in trials if t.info.run_name == victim)
    assert lost.info.status == "FINISHED", text  # retried on the head (--max-retries 1)
    # the trial each run records is where it finished: the second node's own, if it finished
    # one before it was lost (the victim's start line above shows it ran trials either way)
    nodes = {t.data.tags["bnplace.node"] for t in trials}
    assert len(nodes) == (2 if node_finished_one else 1), text
    (sweep,) = runs(tmp_path)["sweep"]
    assert sweep.info.status == "FINISHED"
