"""Run test files N times while every core is kept busy: do the tests hold on a loaded machine?

In: test files (or pytest node ids), or `--command CMD` (a whole command, e.g. "make test", the
README's test command), `--times N` (3), `--hogs K` (one per core), `--max-s` (the hogs' hard
time limit, 3600). Out: one line per round (passed or failed, its duration and
pytest's summary line), then `green K/N`; exit 1 unless every round passed.

The CPU hogs are plain busy loops in child processes that this script starts before the first
round and stops after the last (each also stops by itself after --max-s, should the script be
killed). The tests run one process each round (no xdist), with this checkout first on
PYTHONPATH, so their CLI subprocesses import this checkout's bnplace.

    python scripts/stress.py tests/test_run.py tests/test_postgres.py --times 3
    python scripts/stress.py --command "make test" --times 3   # in a fresh clone
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _hog(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tests", nargs="*")
    parser.add_argument(
        "--command", default="", help='a whole command each round, e.g. "make test"'
    )
    parser.add_argument("--times", type=int, default=3)
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--max-s", type=float, default=3600.0)
    options = parser.parse_args()
    if bool(options.tests) == bool(options.command):
        parser.error("give test files or --command, not both")
    command = (
        shlex.split(options.command)
        if options.command
        else [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options.tests]
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    hogs = [
        mp.Process(target=_hog, args=(options.max_s,), daemon=True) for _ in range(options.hogs)
    ]
    for hog in hogs:
        hog.start()
    green = 0
    try:
        for round_ in range(1, options.times + 1):
            started = time.monotonic()
            done = subprocess.run(
                command,
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            lines = [
                line for line in done.stdout.splitlines() if " passed" in line or " failed" in line
            ]
            summary = (lines or done.stdout.strip().splitlines() or ["(no output)"])[-1]
            verdict = "passed" if done.returncode == 0 else "FAILED"
            green += done.returncode == 0
            took = time.monotonic() - started
            print(f"round {round_}: {verdict} in {took:.0f} s under {len(hogs)} hogs: {summary}")
            if done.returncode != 0:
                print(done.stdout[-4000:])
    finally:
        for hog in hogs:
            hog.terminate()
        for hog in hogs:
            hog.join(5)
    print(f"green {green}/{options.times}")
    return 0 if green == options.times else 1


if __name__ == "__main__":
    sys.exit(main())
