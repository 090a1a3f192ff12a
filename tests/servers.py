"""Real services for the end-to-end tests: a PostgreSQL cluster and an `mlflow server`.

`postgres` runs `initdb` into a fresh directory and `pg_ctl start` on 127.0.0.1 at a free port
(as the `postgres` user when the tests run as root: PostgreSQL refuses root), and stops it with
`pg_ctl stop -m immediate`. `mlflow_server` starts `mlflow server` on a backend store URI with
proxied artifacts (forked, its uvicorn in the same process: tests/forked.py, `_mlflow`) and waits
for /health; it is stopped with its whole process group. `bnplace ui` (tests/test_store_views.py)
starts `mlflow server` itself, as a user's does.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.forked import Forked, start_mlflow_server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen | Forked) -> None:
    """Stop a process started with start_new_session=True, with its whole group."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def postgres_bin() -> Path | None:
    """The folder with initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/*/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def _as_postgres_user() -> tuple[Callable[[], None] | None, int | None]:
    """A preexec function that drops root for the `postgres` (or `nobody`) user, and its uid."""
    if os.geteuid() != 0:
        return None, None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            user = pwd.getpwnam(name)
            break
    else:  # pragma: no cover - every Debian image has nobody
        raise RuntimeError("running as root and no postgres or nobody user to run PostgreSQL")

    def drop() -> None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return drop, user.pw_uid


@contextlib.contextmanager
def postgres(bindir: Path) -> Iterator[str]:
    """A fresh PostgreSQL cluster on 127.0.0.1; yields the URI of its `postgres` database
    (through psycopg2: SQLAlchemy 2.1 takes a bare postgresql:// to mean psycopg 3)."""
    root = Path(tempfile.mkdtemp(prefix="bnplace-pg-"))
    data, port = root / "data", free_port()
    drop, uid = _as_postgres_user()
    if uid is not None:
        os.chown(root, uid, -1)
    run = {"preexec_fn": drop, "capture_output": True, "text": True, "timeout": 120}
    try:
        made = subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", "bnplace", "--auth=trust",
             "-E", "UTF8", "--no-sync"],
            **run,
        )  # fmt: skip
        assert made.returncode == 0, made.stdout + made.stderr
        options = f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off"
        started = subprocess.run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "pg.log"),
             "-o", options, "-w", "-t", "60", "start"],
            **run,
        )  # fmt: skip
        assert started.returncode == 0, started.stdout + started.stderr + _read(root / "pg.log")
        try:
            yield f"postgresql+psycopg2://bnplace@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], **run
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


@contextlib.contextmanager
def mlflow_server(
    folder: Path, backend_uri: str, port: int | None = None
) -> Iterator[tuple[str, Path]]:
    """`mlflow server` on `backend_uri` (at `port`, else a free one), artifacts proxied into
    folder/artifacts; yields its URL and that folder."""
    port = port or free_port()
    artifacts = folder / "artifacts"
    process = start_mlflow_server(
        folder,
        ["server", "--backend-store-uri", backend_uri, "--artifacts-destination", str(artifacts),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        folder / "server.log",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, _read(folder / "server.log")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{url}/health", timeout=2) as answer,
            ):
                if answer.status == 200:
                    break
            assert time.monotonic() < deadline, "mlflow server did not answer /health in 120 s"
            time.sleep(0.5)
        yield url, artifacts
    finally:
        stop(process)
