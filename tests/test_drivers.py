"""Two drivers on one plan and one SQLite store, started seconds apart: every trial trained
once, one sweep run, each driver's summary and exit code right, the comparison the same as one
driver's; and with seeds on demand, the same decisions from the trials both drivers trained.

Each driver is a `bnplace run` process of its own (-j 1, so the two share the 2 cores of CI),
forked from the tests' server (tests/forked.py; the last test checks that under pytest-xdist
every test process forks from the controller's one server); the store is read back with
MLflow's own client.
"""

from __future__ import annotations

import json
import multiprocessing.forkserver
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests import forked_python
from tests.forked import SHARED_SERVER, listening_on, server_address
from tests.sweeps import (
    bnplace,
    client,
    done_counts,
    frozen_driver_is_superseded,
    sqlite_store,
    trained_once,
    two_drivers,
    write_config,
)

pytestmark = pytest.mark.slow

GRID = "sweep: {axes: {conv.post_act: {none: [], bn: [batch_norm]}}, seeds: 6}\n"
WORSE = """
sweep:
  arms:
    lr:
      plain: {}
      tiny: {train.learning_rate: 1.0e-7}
  seeds: {min: 8, max: 16, step: 4}
"""
RUN = ("--epochs", "1", "-j", "1", "--no-compare")


def comparison(folder: Path, config: Path) -> list[dict]:
    shown = bnplace(folder, "compare", str(config), "--format", "json", "--no-log")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)["comparisons"]
    return [{k: v for k, v in row.items() if "run" not in k} for row in rows]


def test_two_drivers_train_each_trial_once_and_compare_as_one(tmp_path: Path) -> None:
    shared, alone = tmp_path / "shared", tmp_path / "alone"
    config = write_config(shared, GRID)
    ended = two_drivers(shared, "run", str(config), *RUN, store=client(shared), experiment="tiny")
    counts = []
    for code, text in ended:
        assert code == 0, text
        assert "Traceback" not in text
        counts.append(done_counts(text))
    trials = trained_once(client(shared), "tiny")
    assert len(trials) == 12 and all(t.info.status == "FINISHED" for t in trials)
    first, second = counts
    assert first["finished"] + second["finished"] == 12  # trained = planned, none twice
    assert first["finished"] + first["finished_elsewhere"] == 12
    assert second["finished"] + second["finished_elsewhere"] + second["skipped"] == 12
    assert first["finished"] > 0 and second["finished"] > 0  # both trained some
    drivers = Counter(t.data.tags["bnplace.driver"] for t in trials)
    assert sorted(drivers.values()) == sorted([first["finished"], second["finished"]])
    store = client(shared)
    exp = store.get_experiment_by_name("tiny").experiment_id
    (sweep,) = store.search_runs([exp], "tags.`bnplace.kind` = 'sweep'")
    assert sweep.info.status == "FINISHED"
    variants = store.search_runs([exp], "tags.`bnplace.kind` = 'variant'")
    assert len(variants) == 2 and all(v.info.status == "FINISHED" for v in variants)

    one = bnplace(alone, "run", str(write_config(alone, GRID)), *RUN)
    assert one.returncode == 0, one.stdout + one.stderr
    assert comparison(shared, config) == comparison(alone, alone / "c.yaml")


def test_two_drivers_with_seeds_on_demand_reach_one_drivers_decisions(tmp_path: Path) -> None:
    config = write_config(tmp_path, WORSE)
    ended = two_drivers(
        tmp_path, "run", str(config), *RUN, store=client(tmp_path), experiment="tiny"
    )
    for code, text in ended:
        assert code == 0, text
    trials = trained_once(client(tmp_path), "tiny")
    (row,) = comparison(tmp_path, config)
    assert row["verdict"] == "worse"
    finished = Counter(
        t.data.tags["bnplace.variant"] for t in trials if t.info.status == "FINISHED"
    )
    # no seed past the deciding look, though each driver saw half of the trials itself
    assert finished == {"lr=plain": row["look_seeds"], "lr=tiny": row["look_seeds"]}
    assert len(trials) == 2 * row["look_seeds"]
    store = client(tmp_path)
    (sweep,) = store.search_runs(
        [store.get_experiment_by_name("tiny").experiment_id], "tags.`bnplace.kind` = 'sweep'"
    )
    looks = [m.step for m in store.get_metric_history(sweep.info.run_id, "open_comparisons")]
    assert sorted(set(looks)) == list(range(1, int(row["look"]) + 1))


def test_a_frozen_driver_whose_trial_was_taken_over_never_finishes_it_twice(
    tmp_path: Path,
) -> None:
    sqlite_store(tmp_path)  # before the client: a copy of the migrated empty store
    frozen_driver_is_superseded(tmp_path, store=client(tmp_path))


def test_under_xdist_every_test_process_forks_from_the_controllers_one_server() -> None:
    """pytest-xdist's controller starts the drivers' forkserver once for the run
    (tests/forked.py, `start_shared_server`): a test process is forked from it
    (tests/forked_python.py) and forks its drivers from it, rather than starting a server of its
    own (~7 s of CPU each, one per test process before) or importing what it did again."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        pytest.skip("one test process, no pytest-xdist: it starts a server of its own")
    server = multiprocessing.forkserver._forkserver  # type: ignore[attr-defined]
    assert os.path.exists(os.environ[SHARED_SERVER])
    assert server._forkserver_address == os.environ[SHARED_SERVER]
    assert server._forkserver_pid is None  # no server started here
    assert listening_on(os.environ[SHARED_SERVER]) == {os.getppid()}
    with open("/proc/self/comm") as name:  # what ps and scripts/suite_cpu.py tell it by
        assert name.read().strip() == forked_python.TITLE


STANDARD_STREAMS = """
import os, sys
line = sys.stdin.readline()
print("out", line.strip(), os.getcwd(), os.environ["MARK"], sys.argv, sys.path[0] == "")
print(os.getppid())
print(__import__("gc").get_freeze_count() > 0)  # the server's heap, frozen (driver_preload)
print("err", file=sys.stderr)
if line.startswith("die"):
    os.kill(os.getpid(), 15)
sys.exit(3)
"""


@pytest.mark.parametrize("server", [True, False], ids=["forked", "no-server"])
def test_a_test_process_started_through_forked_python_is_python_c_as_execnet_starts_it(
    tmp_path: Path, server: bool
) -> None:
    """tests/forked_python.py gives the process it forks from the shared server what `python
    -u -c CODE` would have: stdin, stdout and stderr, folder, environment, argv and sys.path,
    its exit code or the signal it died of; without a server it is that `python`."""
    env = {k: v for k, v in os.environ.items() if k != SHARED_SERVER} | {"MARK": "m"}
    if server:
        env[SHARED_SERVER] = server_address()  # the shared one under pytest-xdist
    for line, status in (("hello", 3), ("die", -15)):
        ended = subprocess.run(
            [*forked_python.command(), "-u", "-c", STANDARD_STREAMS],
            input=line + "\n",
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=120,
        )
        assert ended.returncode == status, ended.stderr
        assert ended.stdout.startswith(f"out {line} {tmp_path} m ['-c'] True"), ended.stdout
        assert ended.stderr.endswith("err\n") and ("starting Python" in ended.stderr) != server
        parent, frozen = ended.stdout.splitlines()[1:3]
        assert int(parent) in (listening_on(env[SHARED_SERVER]) if server else {os.getpid()})
        assert frozen == str(server)


def test_forked_python_forks_a_ray_worker_only_where_setup_worker_would_just_start_it() -> None:
    """tests/forked_python.py takes a Ray worker's command apart as Ray's setup_worker.py does
    (the runtime environment's variables; its own two options out), and leaves to Python what
    it cannot reproduce: a command prefix (conda, a container), another Python, another entry
    point, another language, any other script (Ray's agents)."""
    worker = "/ray/_private/workers/default_worker.py"
    setup = "/ray/_private/workers/setup_worker.py"

    def command(context: dict[str, object], language: str = "PYTHON") -> list[str]:
        options = [f"--serialized-runtime-env-context={json.dumps(context)}"]
        return [setup, worker, "--node-id=n", *options, f"--language={language}", "--x=1"]

    assert forked_python._ray_worker([worker, "--x=1"], ["lib"]) == forked_python._Python(
        [worker, "--x=1"], ["/ray/_private/workers", "lib"]
    )
    found = forked_python._ray_worker(command({"env_vars": {"A": "1"}}), ["lib"])
    assert found is not None
    assert (found.argv, found.variables) == ([worker, "--node-id=n", "--x=1"], {"A": "1"})
    for context, language in (
        ({"command_prefix": ["conda", "activate", "x", "&&"]}, "PYTHON"),
        ({"py_executable": "/another/python"}, "PYTHON"),
        ({"override_worker_entrypoint": "/container/default_worker.py"}, "PYTHON"),
        ({}, "JAVA"),
    ):
        assert forked_python._ray_worker(command(context, language), ["lib"]) is None
    assert forked_python._ray_worker(["/ray/_private/log_monitor.py", "--x=1"], []) is None
    assert forked_python._python_c(["-u", "/script.py", "-c", "x"], []) is None
