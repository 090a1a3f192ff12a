"""Faults of the store under a running sweep: a SQLite store locked by another writer for
seconds, and a disk that fills (the driver's file-size limit, RLIMIT_FSIZE, reached mid-sweep).
The sweep waits the lock out, or stops with one clear message and no traceback; a rerun
resumes with nothing lost, nothing FINISHED twice, nothing left RUNNING.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tests.forked import start_driver
from tests.sweeps import (
    Driver,
    bnplace,
    client,
    environment,
    sqlite_store,
    trained_once,
    write_config,
)

pytestmark = pytest.mark.slow

SEEDS = "sweep: {seeds: 4}\n"
RUN = ("-j", "1", "--epochs", "2", "--no-compare")


def test_a_store_locked_by_another_writer_for_seconds_is_waited_out(tmp_path: Path) -> None:
    config = write_config(tmp_path, SEEDS)
    driver = Driver(tmp_path, "run", str(config), *RUN)
    driver.wait_for("start ")
    lock = sqlite3.connect(tmp_path / "mlflow.db", timeout=60)
    lock.execute("BEGIN EXCLUSIVE")  # another writer: no reads, no writes until it ends
    try:
        time.sleep(3)  # the fault's length (a trial ends meanwhile), not a wait for the driver
    finally:
        lock.rollback()
        lock.close()
    code, text = driver.finish()
    assert code == 0, text
    assert "Traceback" not in text
    trials = trained_once(client(tmp_path), "tiny")
    assert sorted(t.info.status for t in trials) == ["FINISHED"] * 4


def test_a_disk_that_fills_stops_the_sweep_clearly_and_a_rerun_resumes(tmp_path: Path) -> None:
    config = write_config(tmp_path, SEEDS)
    first = bnplace(tmp_path, "run", str(config), *RUN, "--seeds", "1")  # the store, 1 trial
    assert first.returncode == 0, first.stdout + first.stderr
    room = (tmp_path / "mlflow.db").stat().st_size + 24 * 1024  # a few trials' records
    full = start_driver(
        tmp_path, ["run", str(config), *RUN, "--seeds", "8"], environment(), fsize=room
    )
    output, _ = full.communicate(timeout=600)
    assert full.returncode == 1, output
    assert "the MLflow store failed while the sweep recorded to it" in output, output
    assert "Traceback" not in output
    store = client(tmp_path)
    kept = {t.info.run_id for t in trained_once(store, "tiny") if t.info.status == "FINISHED"}
    assert kept  # the first sweep's trial at least

    again = bnplace(tmp_path, "run", str(config), *RUN, "--seeds", "8")
    assert again.returncode == 0, again.stdout + again.stderr
    trials = trained_once(store, "tiny")  # none RUNNING, no key FINISHED twice
    finished = {t.info.run_id for t in trials if t.info.status == "FINISHED"}
    assert kept <= finished and len(finished) == 8  # nothing finished was lost
    assert os.path.getsize(tmp_path / "mlflow.db") > room


def test_opening_a_store_that_another_writer_holds_locked_waits_it_out(tmp_path: Path) -> None:
    """MLflow checks the schema on opening a SQLite store on a plain connection (Python's
    5 s timeout, here 0.1 s by the URI's own `timeout`), outside its sessions' 20 s busy
    timeout: a driver starting while another holds the store locked waits, as every later call
    does, instead of stopping with "cannot open the MLflow store"."""
    from bnplace.store.client import make_client

    db = tmp_path / "mlflow.db"
    sqlite_store(tmp_path)  # the store exists, its tables made
    lock = sqlite3.connect(db, check_same_thread=False)
    lock.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(1.0, lock.rollback)  # 10x the open's timeout
    release.start()
    try:
        opened = make_client(f"sqlite:///{db}?timeout=0.1")  # a URI this process has not opened
        assert [e.name for e in opened.search_experiments()] == ["Default"]
    finally:
        release.join()
        lock.close()
