"""A `python` whose processes fork from the tests' shared forkserver (tests/forked.py) instead of
starting as new interpreters that import TensorFlow, Keras, MLflow and bnplace again.

Two kinds of process of the test run start through it:
- pytest-xdist's test processes: execnet starts `python -u [-B] -c BOOTSTRAP` (conftest.py's
  `pytest_xdist_setupnodes` names this script their `python=`), ~7 s of CPU each;
- the workers of a Ray the tests start in their own process (`local_ray`): its raylet
  starts `python [setup_worker.py] default_worker.py ARGS` for each actor, which imports
  TensorFlow for its trials, ~4 s of CPU each (test_ray and test_executor_contract: 70 CPU-s
  against 101, scripts/suite_cpu.py). They import Ray themselves: the server does not
  (tests/driver_preload.py says why).

In: that command line, with this script in front. Out: a child of the server, in this script's
folder, environment and standard streams, that runs what the command would run (`-c CODE`;
Ray's worker, after what `setup_worker.py` would do) as that interpreter would, and ends as it
ends (tests/forked.py); this script waits for it and exits with its exit code (or dies of its
signal), as the process its starter started would. Any other command (Ray's agents), a command
this script cannot reproduce (a runtime environment with a command prefix or another Python), no
shared server, or a failed fork: it becomes that interpreter (`os.execv`), slower, not different.

A forked child starts with SIGINT as Python's default (the server ignores it), in the server's
process group; it forks its own drivers from the same server. One thread of its own waits for
this script's process to end, and then kills it (`_die_with`): whatever kills the process its
starter knows (a raylet kills a worker that did not register in time) kills the child too.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import ctypes
import dataclasses
import json
import os
import runpy
import select
import signal
import sys
import threading
import types
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path

# what `ps -o comm` shows for a test process forked here (a forked process keeps the server's
# command line); a Ray worker names itself (`ray::IDLE`, `ray::<Actor>`)
TITLE = "xdist-worker"
_PR_SET_NAME = 15  # prctl(2)


def command() -> list[str]:
    """The `python=` of an execnet spec that starts a test process through this script."""
    return [sys.executable, str(Path(__file__).resolve())]


@contextlib.contextmanager
def local_ray(folder: Path, cpus: int) -> Iterator[str]:
    """A Ray of `cpus` CPUs started in this process (`address="local"`: never a cluster some
    `ray start` left on this machine; no dashboard, no worker logs in the driver's output),
    whose workers start through this script, forked from this test process's server (the
    shared one under pytest-xdist); its GCS address, and shut down after.

    Ray's raylet runs `sys.executable` as its workers' Python (and its agents', which this
    script hands to Python): while Ray starts, an executable in `folder` that runs this script."""
    import ray

    from tests.forked import SHARED_SERVER, server_address

    real = sys.executable
    if sys.platform.startswith("linux"):
        python = folder / "python"
        server = f"{SHARED_SERVER}='{server_address()}'"
        python.write_text(f"#!/bin/sh\n{server} exec '{real}' '{command()[1]}' \"$@\"\n")
        python.chmod(0o755)
        sys.executable = str(python)
    try:
        context = ray.init(
            address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False
        )
    finally:
        sys.executable = real
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()


def _become(
    python: _Python, env: dict[str, str], folder: str, streams: Sequence[Connection], starter: int
) -> None:
    """In the forked child: become `python`, started in `folder` with `env`, its standard
    streams `streams`; die with `starter` (this script's process), as if they were one."""
    from tests.forked import exit_as_python_does, start_as_python_does

    start_as_python_does(folder, env, {fd: stream.fileno() for fd, stream in enumerate(streams)})
    for stream in streams:
        stream.close()
    os.environ.update(python.variables)
    sys.path[:] = python.path
    sys.argv[:] = python.argv
    sys.dont_write_bytecode = python.dont_write_bytecode
    if python.title:
        with contextlib.suppress(OSError, AttributeError):  # its name in ps and suite_cpu.py
            ctypes.CDLL(None).prctl(_PR_SET_NAME, python.title.encode(), 0, 0, 0)
    threading.Thread(target=_die_with, args=(starter,), daemon=True).start()
    if python.code is not None:
        main = types.ModuleType("__main__")
        main.__builtins__ = builtins  # type: ignore[attr-defined]
        sys.modules["__main__"] = main
        exit_as_python_does(lambda: exec(python.code, main.__dict__))
    else:
        exit_as_python_does(lambda: runpy.run_path(python.argv[0], run_name="__main__"))


def _die_with(pid: int) -> None:
    """SIGKILL this process when process `pid` ends: what kills the process its starter started
    (a raylet kills a worker that does not register in time) kills this one too."""
    with contextlib.suppress(OSError):
        ended = os.pidfd_open(pid)
        select.select([ended], [], [])
        os.kill(os.getpid(), signal.SIGKILL)


@dataclasses.dataclass(frozen=True)
class _Python:
    """What a command line runs: `code` (`-c`), else the script `argv[0]`, with `argv` as
    sys.argv, `path` as sys.path and `variables` added to the environment."""

    argv: list[str]
    path: list[str]
    code: str | None = None
    variables: dict[str, str] = dataclasses.field(default_factory=dict)
    title: str | None = None
    dont_write_bytecode: bool = sys.dont_write_bytecode  # PYTHONDONTWRITEBYTECODE, read here


def _python_c(args: list[str], path: list[str]) -> _Python | None:
    """execnet's `python -u [-B] -c CODE`, with `python -c`'s sys.path (its folder first)."""
    if "-c" not in args or any(not a.startswith("-") for a in args[: args.index("-c")]):
        return None
    code = args[args.index("-c") + 1]
    bytecode = "-B" in args or sys.dont_write_bytecode
    return _Python(["-c"], ["", *path], code, title=TITLE, dont_write_bytecode=bytecode)


def _ray_worker(args: list[str], path: list[str]) -> _Python | None:
    """Ray's `python [setup_worker.py] default_worker.py ARGS` (the raylet leaves setup_worker.py
    out where there is no runtime environment): what setup_worker.py does (the runtime
    environment's variables set; `--serialized-runtime-env-context` and `--language` taken out
    of ARGS), then `python default_worker.py ARGS`; only where the runtime environment asks for
    nothing more (no command prefix, this Python, Ray's own entry point)."""
    if args and Path(args[0]).name == "setup_worker.py":
        parser = argparse.ArgumentParser(add_help=False)
        parser.add_argument("--serialized-runtime-env-context", default="{}")
        parser.add_argument("--language", default="PYTHON")
        known, args = parser.parse_known_args(args[1:])
        context = json.loads(known.serialized_runtime_env_context or "{}")
        if (
            known.language != "PYTHON"
            or context.get("command_prefix")
            or context.get("py_executable") not in (None, sys.executable)
            or context.get("override_worker_entrypoint")
        ):
            return None
    else:
        context = {}
    if not args or Path(args[0]).name != "default_worker.py":
        return None
    folder = str(Path(args[0]).resolve().parent)  # `python SCRIPT`'s sys.path[0]
    return _Python(args, [folder, *path], variables=context.get("env_vars") or {})


def _serve(args: list[str], path: list[str]) -> None:
    """Fork the interpreter `python ARGS` would be from the shared server, wait for it and exit
    as it does; where that is not this script's to do, be that interpreter."""
    from tests.forked import SHARED_SERVER, attach_to_shared_server

    python = _python_c(args, path) or _ray_worker(args, path)
    if python is None:  # not ours to fork (Ray's agents): that interpreter, without a word
        os.execv(sys.executable, [sys.executable, *args])
    try:
        if not attach_to_shared_server():
            raise LookupError(f"no shared forkserver in ${SHARED_SERVER}")
        import multiprocessing

        streams = [Connection(os.dup(fd)) for fd in (0, 1, 2)]
        process = multiprocessing.get_context("forkserver").Process(
            target=_become,
            args=(python, dict(os.environ), os.getcwd(), streams, os.getpid()),
            name=python.title or "forked-python",
        )
        process.start()
    except Exception as error:  # no server, or it failed: an interpreter of its own
        print(f"tests/forked_python.py: {error!r}; starting Python", file=sys.stderr)
        os.execv(sys.executable, [sys.executable, *args])
    for stream in streams:
        stream.close()
    for sig in (signal.SIGTERM, signal.SIGHUP):  # what stops this stops the child
        signal.signal(sig, lambda number, _: os.kill(process.pid, number))  # type: ignore[arg-type]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the child itself
    process.join()
    status = process.exitcode or 0
    if status < 0:
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    sys.exit(status)


if __name__ == "__main__":
    interpreter_path = sys.path[1:]  # the interpreter's own, without this script's folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.forked_python import _serve as serve  # by its name: the child unpickles `_become`

    serve(sys.argv[1:], interpreter_path)
