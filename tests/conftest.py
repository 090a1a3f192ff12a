"""Fixtures shared by the test files.

`prepared`: a module's `CONFIG` (a config text, module constant) planned with its data prepared,
once per module, in a folder of its own beside an empty store (tests/sweeps.py has the helpers
that run the CLI and read the store back).

It imports nothing heavy at its top: pytest-xdist's controller imports it before it starts the
drivers' forkserver (`pytest_configure`), which its test processes then fork from.
"""

from __future__ import annotations

import gc
import os
from typing import TYPE_CHECKING

import pytest

from tests import forked_python
from tests.forked import SHARED_SERVER, start_server, start_shared_server

if TYPE_CHECKING:
    from bnplace.run.sweep import Prepared

# Sweeps run in the test processes too (tests/sweeps.bnplace): TensorFlow there gets one thread
# per trial, as bnplace's workers and `--jobs 1` do (set_tf_threads), whichever test starts it
# first, so a sweep's numbers do not depend on the process it ran in.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
# Before Ray is imported, in a test process or in what it starts (drivers, Ray's daemons and
# workers, which inherit this environment): test clusters on 127.0.0.1 (Ray otherwise binds the
# machine's network address) and without token auth (a local init turns it on otherwise, and a
# driver without this setting then cannot join a test's cluster).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@pytest.fixture(scope="module")
def prepared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """The plan and prepared data of the requesting module's `CONFIG`."""
    from bnplace.run.sweep import plan_sweep
    from tests.sweeps import sqlite_store

    folder = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    sqlite_store(folder)
    path = folder / "c.yaml"
    path.write_text(request.module.CONFIG)
    return plan_sweep(path)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker more than the cores. The end-to-end tests spend part of their time
    waiting on the processes they start (drivers, servers, Ray), and a third worker on two cores
    fills that time: 554 s against 662 s for the suite with two on this project's 2-core
    machine (`make test` caps the count with --maxprocesses). A fourth did not: 598 s against
    540 s on a slower 2-core machine, with 890 CPU-s against 725 (one more TensorFlow import,
    and more contention)."""
    return (os.cpu_count() or 1) + 1


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, the controller starts the drivers' forkserver (tests/forked.py) once
    for all the test processes it is about to start: one server's imports instead of one per
    process (~7 s of CPU each), and it outlives them all. It starts it without knowing the
    tests (the workers collect them, the controller does not): not for the README's fast tests
    (`-m 'not slow'`), which fork no driver."""
    xdist_controller = getattr(config.option, "numprocesses", None) and not hasattr(
        config, "workerinput"
    )
    if xdist_controller and config.option.markexpr != "not slow":
        start_shared_server()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: list) -> None:
    """The test processes fork from the server `pytest_configure` started (tests/forked_python.py)
    rather than start as new interpreters that import TensorFlow, MLflow and bnplace again
    (~7 s of CPU each): 538 busy CPU-s and 281 s for `make test` against 579 and 299 s."""
    if os.environ.get(SHARED_SERVER):
        import shlex

        from execnet import XSpec

        python = shlex.join(forked_python.command())
        specs[:] = [
            spec if spec.python or not spec.popen else XSpec(f"{spec}//python={python}")
            for spec in specs
        ]


def pytest_collection_finish(session: pytest.Session) -> None:
    """A test process that runs end-to-end tests (a module with a `slow` test) starts its
    drivers' forkserver, or joins the controller's, as soon as it has collected
    (tests/forked.py), so that an in-process sweep's pool does not start one without the
    drivers' imports first (every driver forked from that one imported MLflow and the CLI
    itself: the forkservers and all they forked took 143 CPU-s of a `make test`, 118 with
    this)."""
    if any(item.get_closest_marker("slow") for item in session.items):
        start_server()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with a `slow` test first (in collection order), each module's tests in their
    own order: pytest-xdist (`--dist loadfile --no-loadscope-reorder`; by default it sorts
    modules by their count of tests) hands whole modules out in this order, so the quick
    modules come last and even out the workers' ends."""
    slow = {item.nodeid.split("::", 1)[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::", 1)[0] not in slow)  # a stable sort


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    """After a test file's last test (its module's fixtures torn down): one full collection,
    then what survives it frozen (`gc.freeze`). A test process lives through dozens of files,
    and every later full collection (bnplace's before each fresh build, Python's own) would
    walk what the earlier files left alive (TensorFlow's and Keras' caches, imported test
    modules) again and again; frozen, it walks only what the current file made."""
    outcome = yield
    if nextitem is None or nextitem.path != item.path:
        gc.collect()
        gc.freeze()
    return outcome
