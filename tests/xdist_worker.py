"""pytest-xdist's test processes forked from the tests' shared forkserver (tests/forked.py)
instead of started as new interpreters: each would import TensorFlow, Keras, MLflow and bnplace
(~7 s of CPU on 2 cores) that the server has imported already.

In: what execnet starts as a test process's Python (`python -u [-B] -c BOOTSTRAP`, its stdin
and stdout the controller's channel), with this script in front (conftest.py's
`pytest_xdist_setupnodes` names it the workers' `python=`). Out: a child of the server, in this
script's folder, environment, standard streams and `sys.path` (those of `python -c`), that runs
`BOOTSTRAP` as `python -c` would and ends as the interpreter ends (tests/forked.py); this script
waits for it and exits with its exit code (or dies of its signal), as the process execnet
started would. Where there is no shared server, or the fork fails, it becomes that
interpreter instead (`os.execv`): the run is slower, not different.

The child starts with SIGINT as Python's default (the server ignores it) in the controller's
process group, as a started test process is. It never holds a thread the server did not have
(none), and it forks its drivers from the same server, as any test process does.
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import os
import signal
import sys
import types
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path

# what `ps -o comm` shows for a test process forked here (a forked process keeps the server's
# command line)
TITLE = "xdist-worker"
_PR_SET_NAME = 15  # prctl(2)


def command() -> list[str]:
    """The `python=` of an execnet spec that starts a test process through this script."""
    return [sys.executable, str(Path(__file__).resolve())]


def _child(
    code: str,
    path: Sequence[str],
    env: dict[str, str],
    folder: str,
    streams: Sequence[Connection],
    dont_write_bytecode: bool,
) -> None:
    """In the forked child: become `python -u -c CODE` started in `folder` with `env`."""
    from tests.forked import exit_as_python_does, start_as_python_does

    start_as_python_does(folder, env, {fd: stream.fileno() for fd, stream in enumerate(streams)})
    for stream in streams:
        stream.close()
    sys.path[:] = path
    sys.argv[:] = ["-c"]
    sys.dont_write_bytecode = dont_write_bytecode
    with contextlib.suppress(OSError, AttributeError):  # its name in ps and scripts/suite_cpu.py
        ctypes.CDLL(None).prctl(_PR_SET_NAME, TITLE.encode(), 0, 0, 0)
    main = types.ModuleType("__main__")
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    sys.modules["__main__"] = main
    exit_as_python_does(lambda: exec(code, main.__dict__))


def _no_bytecode(args: Sequence[str]) -> bool:
    """Whether `python ARGS` would write no bytecode: `-B`, or PYTHONDONTWRITEBYTECODE (which
    this script's interpreter has read)."""
    return "-B" in args or sys.dont_write_bytecode


def _serve(args: list[str], path: list[str]) -> None:
    """Fork `python ARGS` (`-u [-B] -c CODE`) from the shared server, wait for it, exit as it."""
    from tests.forked import SHARED_SERVER, attach_to_shared_server

    code = args[args.index("-c") + 1]
    try:
        if not attach_to_shared_server():
            raise LookupError(f"no shared forkserver in ${SHARED_SERVER}")
        import multiprocessing

        streams = [Connection(os.dup(fd)) for fd in (0, 1, 2)]
        process = multiprocessing.get_context("forkserver").Process(
            target=_child,
            args=(code, path, dict(os.environ), os.getcwd(), streams, _no_bytecode(args)),
            name="xdist-worker",
        )
        process.start()
    except Exception as error:  # no server, or it failed: a test process of its own
        print(f"tests/xdist_worker.py: {error!r}; starting Python", file=sys.stderr)
        os.execv(sys.executable, [sys.executable, *args])
    for stream in streams:
        stream.close()
    for sig in (signal.SIGTERM, signal.SIGHUP):  # what stops this stops the test process
        signal.signal(sig, lambda number, _: os.kill(process.pid, number))  # type: ignore[arg-type]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the child itself
    process.join()
    status = process.exitcode or 0
    if status < 0:
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    sys.exit(status)


if __name__ == "__main__":
    python_c_path = ["", *sys.path[1:]]  # `python -c`'s: the folder it runs in, then the rest
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.xdist_worker import _serve as serve  # by its name: the child unpickles `_child`

    serve(sys.argv[1:], python_c_path)
