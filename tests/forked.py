"""`bnplace` driver processes for the end-to-end tests, forked from a server that imported bnplace,
MLflow and TensorFlow once, instead of each started with `python -m bnplace`; and the tests'
`mlflow server`s, forked the same way (`start_mlflow_server`).

In: the CLI's arguments, a folder, an environment, where its output goes. Out: `Forked`, a real
process in a session of its own (its own pid and process group, signals, exit code, stdout and
stderr on a pipe or in a file, its own workers and store connections), used as
`subprocess.Popen` is: `pid`, `stdout`, `poll`, `wait`, `returncode`, `communicate`.
`mlflow server` runs mlflow's own CLI, which starts uvicorn as a second interpreter; here that
uvicorn command runs in the forked process itself (`_mlflow`): ~2.5 s of CPU less a server
(`scripts/suite_cpu.py` on the three files that start six).

Why: a driver started with `python -m bnplace` spends ~7 s of CPU importing TensorFlow, MLflow
and bnplace before it reads its config, and the suite starts about 30 of them to send them
signals, kill them and run two at once (a fifth of the suite's CPU). Here multiprocessing's
forkserver imports them once (`tests.driver_preload`; the pool's own preload,
`bnplace.execute.preload`, first, so the pool's workers may fork from the same server): once
per run under pytest-xdist, whose controller starts one server for all its test processes
(`start_shared_server`) and forks those processes from it too (tests/forked_python.py, which
also forks the workers of the Ray clusters the tests start), else once per test process; and
it forks each driver from it, before
any thread or TensorFlow runtime starts, as bnplace forks its pool workers. The child then
makes itself what a fresh `bnplace` process is: its own session
(`start_new_session`), folder, environment, stdout and stderr; SIGINT raising KeyboardInterrupt
(what a terminal's Ctrl-C meets); at the end Python's own shutdown (non-daemon threads joined,
atexit handlers run, streams flushed) and the exit code `sys.exit` or an uncaught exception
gives. A `--jobs 2` driver's pool forks its own forkserver from the driver rather than starting
a new interpreter that imports TensorFlow again (`_fork_a_forkserver`). A test process that
runs end-to-end tests starts this server, or joins the controller's, when it has collected them
(conftest.py, `start_server`), before any in-process sweep's pool can start one without the
drivers' imports.

What it does not test is the interpreter's start: the entry point, `python -m bnplace`, what a
command imports, a missing package. The tests of those start `python -m bnplace` themselves.
Linux only, as bnplace's own forkserver (TensorFlow and macOS's frameworks do not survive a fork
without exec): elsewhere `start_driver` starts `python -m bnplace`.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.util
import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO

PRELOAD = ["bnplace.execute.preload", "tests.driver_preload"]


# The address of the server pytest-xdist's controller started for all its test processes
# (`start_shared_server`), in the environment they inherit from it.
SHARED_SERVER = "BNPLACE_TESTS_FORKSERVER"


def _context() -> multiprocessing.context.ForkServerContext:
    """The forkserver of this test process: the shared one where the controller started one,
    else its own. Its preload applies when it starts: a test process whose in-process sweep
    started the pool's server first forks drivers from that one (they then import MLflow and
    bnplace's CLI themselves, ~1.5 s of CPU each), hence `start_server`."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    attach_to_shared_server()
    return context


def attach_to_shared_server() -> bool:
    """Whether this process forks from the controller's server (`SHARED_SERVER`), attached now
    where it was not yet; False where there is none."""
    shared = os.environ.get(SHARED_SERVER)
    if not shared or not os.path.exists(shared):
        return False
    server = multiprocessing.forkserver._forkserver  # type: ignore[attr-defined]
    # not by the address: a process the server forked knows it (the server's own), unattached
    if "ensure_running" not in vars(server):
        _attach(server, shared)
    return True


def start_server() -> None:
    """Start this test process's forkserver now (or join the shared one), with the drivers'
    preload, before an in-process sweep (`--jobs 2`) or a pool test starts the pool's own
    (`bnplace.execute.local`): every driver then forks with MLflow and the CLI imported, and the
    pool's workers fork from the same server (which imported what theirs does first). Returns at
    once: the server imports in the background. Linux only, as `start_driver`'s forking."""
    if sys.platform.startswith("linux"):
        _context()
        # the instance's: `multiprocessing.forkserver.ensure_running` is bound before `_attach`
        multiprocessing.forkserver._forkserver.ensure_running()  # type: ignore[attr-defined]


def start_shared_server() -> None:
    """In pytest-xdist's controller, before it starts its test processes: one server for all
    of them (`SHARED_SERVER`), instead of one each that imports TensorFlow, MLflow and the CLI
    again (~7 s of CPU a server). It lives as long as the controller, which outlives every test
    process and so every driver they fork from it (a server ends when the process that started
    it does, and with it the exit codes of the children it forked)."""
    if sys.platform.startswith("linux"):
        start_server()
        server = multiprocessing.forkserver._forkserver  # type: ignore[attr-defined]
        os.environ[SHARED_SERVER] = server._forkserver_address


def server_address() -> str:
    """The address of this test process's forkserver (the shared one where there is one),
    started or joined now (`start_server`)."""
    start_server()
    return multiprocessing.forkserver._forkserver._forkserver_address  # type: ignore[attr-defined]


def listening_on(address: str) -> set[int]:
    """The processes that hold the Unix socket bound to `address` (a forkserver's listener:
    the server closes it in every process it forks)."""
    with open("/proc/net/unix") as table:
        inodes = {line.split()[6] for line in table if line.rstrip().endswith(" " + address)}
    holders = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] in inodes for fd in fds):
                holders.add(int(pid))
    return holders


def _attach(server: multiprocessing.forkserver.ForkServer, address: str) -> None:
    """Make this process's forkserver client fork from the server at `address`, which another
    process started. multiprocessing's client needs only the address to ask for a child (the
    pid and later the exit code come back on a pipe of the request's own); checking that the
    server is alive, or starting one, works only in the process that started it."""
    from multiprocessing import resource_tracker

    server._forkserver_address = address  # type: ignore[attr-defined]
    # handed to each child as the "alive" end of a server of its own: never read there
    server._forkserver_alive_fd = os.open(os.devnull, os.O_RDONLY)  # type: ignore[attr-defined]
    server.ensure_running = resource_tracker.ensure_running  # type: ignore[method-assign]


def _become_a_fresh_process(
    folder: str, env: Mapping[str, str], out: Connection | str, fsize: int | None
) -> None:
    os.setsid()
    if fsize is not None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND) if isinstance(out, str) else None
    output = fd if fd is not None else out.fileno()  # type: ignore[union-attr]
    start_as_python_does(folder, env, {1: output, 2: output})
    if fd is not None:
        os.close(fd)
    else:
        out.close()  # type: ignore[union-attr]
    multiprocessing.util.spawnv_passfds = _fork_a_forkserver  # type: ignore[attr-defined]


def start_as_python_does(folder: str, env: Mapping[str, str], streams: Mapping[int, int]) -> None:
    """In a forked child, what a process started in `folder` with `env` has: `streams` (standard
    descriptor -> the descriptor it gets) as its standard descriptors, fresh unbuffered text
    streams on them (nothing the server buffered; as PYTHONUNBUFFERED=1 or `-u` makes them) and
    SIGINT raising KeyboardInterrupt (the server ignores it)."""
    os.chdir(folder)
    os.environ.clear()
    os.environ.update(env)
    for standard, fd in streams.items():
        os.dup2(fd, standard)
    if 0 in streams:
        sys.stdin = open(0, closefd=False, encoding="utf-8")  # noqa: SIM115
    sys.stdout = open(1, "w", buffering=1, closefd=False, encoding="utf-8")  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False, encoding="utf-8")  # noqa: SIM115
    sys.stdout.reconfigure(write_through=True)
    sys.stderr.reconfigure(write_through=True)
    signal.signal(signal.SIGINT, signal.default_int_handler)


_spawnv_passfds = multiprocessing.util.spawnv_passfds  # type: ignore[attr-defined]
_FORKSERVER = "from multiprocessing.forkserver import main"


def _fork_a_forkserver(path: str, args: Sequence[str], passfds: Sequence[int]) -> int:
    """In a forked driver, the pool's forkserver (`bnplace.execute.local`) forked from the
    driver instead of started as a new interpreter that imports TensorFlow again (~4 s of CPU
    for each `--jobs 2` driver): the driver already has what the pool's preload imports (this
    server's preload ran first), and runs no TensorFlow op. As a started server it is the
    driver's child, in its process group (a Ctrl-C reaches it, and it ignores it), holding only
    the descriptors it is passed and the standard three. Only while the driver has one thread
    (native ones counted), as every fork here; any other command is started as before. The
    preload in a new interpreter still runs in the tests' server (`PRELOAD` begins with it) and
    in the pools of the `python -m bnplace` drivers."""
    command = args[-1]
    if not command.startswith(_FORKSERVER) or len(os.listdir("/proc/self/task")) != 1:
        return _spawnv_passfds(path, args, passfds)
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as bnplace.execute.preload's first line
        keep = {0, 1, 2, *passfds}
        for fd in [int(fd) for fd in os.listdir("/proc/self/fd")]:
            if fd not in keep:  # what a started server would not have
                with contextlib.suppress(OSError):
                    os.close(fd)
        gc.freeze()  # the driver's objects are never collected here (their descriptors are gone)
        exec(command, {})  # multiprocessing's own server command (ForkServer.ensure_running)
        code = 0
    except SystemExit:  # how multiprocessing's server ends: its last client left
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _child(
    program: str,
    args: Sequence[str],
    folder: str,
    env: Mapping[str, str],
    out: Connection | str,
    fsize: int | None,
) -> None:
    """The forked child: a fresh process that runs `PROGRAM ARGS`, then Python's own exit."""
    _become_a_fresh_process(folder, env, out, fsize)
    exit_as_python_does(lambda: _MAINS[program](args))


def _bnplace(args: Sequence[str]) -> None:
    """`bnplace ARGS` as `python -m bnplace` runs it."""
    from bnplace.console.cli import app

    app(args=list(args), prog_name="bnplace")


def _mlflow(args: Sequence[str]) -> None:
    """`mlflow ARGS` (`server ...`) as `python -m mlflow` runs it, but the uvicorn command it
    builds runs in this process instead of in a second interpreter (mlflow's `_exec_cmd`, where
    `_run_server` starts it): mlflow's own option parsing, store checks and environment,
    uvicorn's own CLI on mlflow's app."""
    import mlflow.server
    from mlflow.cli import cli

    def run_here(command: list[str], extra_env: Mapping[str, str] | None = None, **_: object):
        assert command[1:3] == ["-m", "uvicorn"], command  # else mlflow changed: say so
        os.environ.update(extra_env or {})
        from uvicorn.main import main as uvicorn

        uvicorn(command[3:], prog_name="uvicorn")  # exits: the server's end is the child's

    mlflow.server._exec_cmd = run_here  # type: ignore[attr-defined]
    cli(list(args), prog_name="mlflow")


_MAINS: dict[str, Callable[[Sequence[str]], None]] = {"bnplace": _bnplace, "mlflow": _mlflow}


def exit_as_python_does(main: Callable[[], object]) -> None:
    """Run `main`, then end as the interpreter ends a script: non-daemon threads joined, atexit
    handlers run, streams flushed, the exit code `sys.exit` or an uncaught exception gives."""
    code = 0
    try:
        main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if not isinstance(stop.code, int | None):
            print(stop.code, file=sys.stderr)  # as Python prints sys.exit("message")
    except KeyboardInterrupt:  # uncaught: Python dies of the SIGINT, as a shell sees it
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:
        traceback.print_exc()
        code = 1
    threading._shutdown()  # type: ignore[attr-defined]  # the interpreter's exit, in its order
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


def start_driver(
    folder: Path,
    args: Sequence[str],
    env: Mapping[str, str],
    log: Path | None = None,
    fsize: int | None = None,
) -> Forked | subprocess.Popen:
    """`bnplace ARGS` in `folder` in a session of its own, its output on a pipe (`stdout`, text)
    or appended to `log`: forked (`Forked`) on Linux, else started."""
    if sys.platform.startswith("linux"):
        return Forked(folder, args, env, log, fsize)

    def as_a_terminal_starts_it() -> None:  # SIGINT at its default even from a background job
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if fsize is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    out = subprocess.PIPE if log is None else log.open("a")
    return subprocess.Popen(
        [sys.executable, "-m", "bnplace", *args],
        cwd=folder,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=as_a_terminal_starts_it,
    )


def start_mlflow_server(
    folder: Path, args: Sequence[str], env: Mapping[str, str], log: Path
) -> Forked | subprocess.Popen:
    """`mlflow ARGS` (`server ...`) in `folder` in a session of its own, its output appended to
    `log`: forked with uvicorn in the same process (`_mlflow`) on Linux, else started."""
    if sys.platform.startswith("linux"):
        return Forked(folder, args, env, log, program="mlflow")
    with log.open("a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mlflow", *args],
            cwd=folder,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the server's workers go down with it
        )


class Forked:
    """`bnplace ARGS` (or, with `program="mlflow"`, `mlflow ARGS` as `_mlflow` runs it) in
    `folder`, forked (see the module docstring). `log`: its stdout and stderr appended to that
    file; else both on a pipe read as text from `stdout`."""

    def __init__(
        self,
        folder: Path,
        args: Sequence[str],
        env: Mapping[str, str],
        log: Path | None = None,
        fsize: int | None = None,
        program: str = "bnplace",
    ) -> None:
        self.args = [program, *args]
        context = _context()
        self.stdout: IO[str] | None = None
        if log is None:
            read, write = context.Pipe(duplex=False)
            out: Connection | str = write
        else:
            out = str(log)
        self.process = context.Process(
            target=_child,
            args=(program, list(args), str(folder), dict(env), out, fsize),
            name=f"{program}-forked",
        )
        self.process.start()
        if log is None:
            write.close()
            self.stdout = open(os.dup(read.fileno()), encoding="utf-8")  # noqa: SIM115
            read.close()
        self.pid: int = self.process.pid  # type: ignore[assignment]
        self._reader: threading.Thread | None = None  # communicate's, one per process
        self._rest: list[str] = []

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode

    def poll(self) -> int | None:
        return self.process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self.process.exitcode

    def communicate(self, timeout: float | None = None) -> tuple[str, None]:
        """The rest of its output (once every holder of the pipe closed it: its workers too)
        and its exit, as Popen.communicate with stdout=PIPE, stderr=STDOUT."""
        if self.stdout is not None and self._reader is None:
            self._reader = threading.Thread(target=self._read_rest, daemon=True)
            self._reader.start()
        if self._reader is not None:
            self._reader.join(timeout)
            if self._reader.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        self.wait(timeout)
        return "".join(self._rest), None

    def _read_rest(self) -> None:
        assert self.stdout is not None
        self._rest.append(self.stdout.read())
