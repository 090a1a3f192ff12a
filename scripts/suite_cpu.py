"""Where a test run's CPU goes: every process it starts, attributed to the test that started it.

In: a command (default: the README's `make test`). Out: the command's own output, then the CPU
seconds of every process that ran during it (read from /proc every half second, so processes
that live under half a second are missed), summed by test file and by kind of process (the
test processes themselves, `bnplace` drivers, pool and Ray workers, `mlflow server`,
PostgreSQL, the browser), the largest first.

Why not `time make test`: it counts only the reaped children of make; Ray's daemons and actor
workers, PostgreSQL and the `mlflow server`s are not, and a run counted ~800 CPU-s where /proc
showed ~1,300. A process is attributed through PYTEST_CURRENT_TEST in its environment, which
it inherits from the test that started it (a Ray worker: from the test that started Ray).
Linux only; every process on the machine is counted, so run it on otherwise idle cores.

    python scripts/suite_cpu.py                      # make test
    python scripts/suite_cpu.py -- .venv/bin/python -m pytest tests/test_ray.py
    python scripts/suite_cpu.py --processes 40 -- .venv/bin/python -m pytest tests/test_ray.py
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import threading
import time

TICKS = os.sysconf("SC_CLK_TCK")
KINDS = (  # (a word in the command line, the kind it names), the first match wins
    ("exec(eval(sys.stdin.readline()))", "test process"),  # how execnet starts xdist's workers
    ("xdist", "test process"),
    ("execnet", "test process"),
    ("-m bnplace", "bnplace driver"),
    # Ray names its processes (setproctitle), forked or not: its agents, then its workers
    ("ray::DashboardAgent", "Ray daemon"),
    ("ray::RuntimeEnvAgent", "Ray daemon"),
    ("ray::", "Ray worker"),
    # tests/forked.py's server and what forks from it: drivers (with their pools' forkservers
    # and workers, forked from the driver), and the pool workers of the test process's sweeps
    ("tests.driver_preload", "forked driver or pool worker"),
    ("multiprocessing", "pool worker"),
    ("ray/_private/workers", "Ray worker"),
    ("ray", "Ray daemon"),
    ("mlflow server", "mlflow server"),
    ("uvicorn", "mlflow server"),
    ("postgres", "PostgreSQL"),
    ("chromium", "browser"),
)


def _read(pid: str) -> tuple[float, str, str] | None:
    """(CPU seconds, command line, the test it runs for) of a live process, else None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        # a test process forked from the tests' server keeps its command line: by its name
        # (tests/forked_python.py), which the `xdist` below matches
        with open(f"/proc/{pid}/comm") as comm:
            if (name := comm.read().strip()) == "xdist-worker":
                command = f"{name} {command}"
        with open(f"/proc/{pid}/environ", "rb") as environ:
            env = environ.read().split(b"\0")
    except OSError:
        return None
    test = next((e[20:].decode() for e in env if e.startswith(b"PYTEST_CURRENT_TEST=")), "")
    return (int(fields[11]) + int(fields[12])) / TICKS, command, test


def sample(
    seen: dict[tuple[str, str], list], stop: threading.Event, ready: threading.Event
) -> None:
    """Keep each process's CPU since the first pass (processes that ran before the command
    count only what they used during it), keyed by pid and start time (pids are reused)."""
    me, first = str(os.getpid()), True
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid == me:
                continue
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    start = stat.read().rsplit(")", 1)[1].split()[19]
            except OSError:
                continue
            key = (pid, start)
            if key in seen:
                found = _read(pid)
                if found:  # its CPU, and its latest name (a forked process names itself)
                    seen[key][:2] = found[0] - seen[key][3], found[1]
            elif found := _read(pid):
                # [CPU during the command, command line, test, CPU before it, ran before it]
                seen[key] = [0.0 if first else found[0], *found[1:], found[0] * first, first]
        if first:
            first = False
            ready.set()
        stop.wait(0.5)


def kind(command: str) -> str:
    return next((name for word, name in KINDS if word in command), "other")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", nargs="*", default=["make", "test"])
    parser.add_argument("--top", type=int, default=25, help="test files (or tests) listed")
    parser.add_argument(
        "--by-test", action="store_true", help="sum by test rather than by test file"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="also list this many of the costliest processes (not the test processes), each "
        "with its command line or process title (ray::<Actor>, uvicorn, ...) and its test",
    )
    args = parser.parse_args(argv)
    seen: dict[tuple[str, str], list] = {}
    stop, ready = threading.Event(), threading.Event()
    sampler = threading.Thread(target=sample, args=(seen, stop, ready), daemon=True)
    sampler.start()
    ready.wait()  # the processes already running, and their CPU so far, are known
    began = time.monotonic()
    code = subprocess.call(args.command)
    wall = time.monotonic() - began
    stop.set()
    sampler.join()
    by_file: collections.Counter[str] = collections.Counter()
    by_kind: collections.Counter[str] = collections.Counter()
    started: collections.Counter[str] = collections.Counter()
    for cpu, command, test, _before, ran_before in seen.values():
        by_kind[kind(command)] += cpu
        started[kind(command)] += not ran_before
        if kind(command) != "test process":  # a test process runs many files: by kind only
            where = test.rsplit(" ", 1)[0] if args.by_test else test.split("::")[0]
            by_file[where or "(no test)"] += cpu
    total = sum(by_kind.values())
    print(f"\n{total:.0f} CPU-s in {wall:.0f} s ({total / wall:.2f} cores busy on average)")
    for name, cpu in by_kind.most_common():
        print(f"  {cpu:7.1f}  {name} ({started[name]} started)")
    unit = "test" if args.by_test else "test file"
    print(f"processes started by each {unit} (beside the test processes' own CPU):")
    for name, cpu in by_file.most_common(args.top):
        print(f"  {cpu:7.1f}  {name}")
    if args.processes:
        # a Ray worker inherits PYTEST_CURRENT_TEST from the test that started Ray, not from
        # the test whose sweep made it: read a module's Ray share as the module's, not a test's
        print("the costliest processes started by the tests (CPU-s, kind, command, test):")
        others = [v for v in seen.values() if kind(v[1]) != "test process"]
        for cpu, command, test, _before, _ran_before in sorted(others, key=lambda v: -v[0])[
            : args.processes
        ]:
            print(f"  {cpu:7.1f}  {kind(command):<30} {command[:60]!r}  {test.split(' ')[0]}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
