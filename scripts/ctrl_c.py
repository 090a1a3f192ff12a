"""Press Ctrl-C at random moments of Ray (or process-pool) sweeps; count presses acted on at once.

In: `--presses N` (20), `--executor ray|pool`, `--seed`. Out: one line per press (the event it
followed, the extra delay, how long the driver took to exit, its exit code, whether the store is
left clean) and `acted on at the first press: K/N`; exit 1 unless every press was acted on.

Each sweep is the CLI in a subprocess (its own process group, SIGINT at its default as a terminal
gives it), joined to one local Ray that this script starts (2 CPUs), on a config with a short and
a long trial. The press follows a random progress line (the k-th, k random) plus a random delay
of up to 1 s, so it lands anywhere: while a trial is being claimed, started, logged or ended,
while the driver waits on Ray, or after the short trial ended. A press is acted on when the driver
exits within `--grace` seconds with code 130 and leaves no run RUNNING; then the sweep is rerun
and must finish every trial once (`--no-rerun` skips that: the suite's Ctrl-C tests rerun).

    python scripts/ctrl_c.py --presses 20
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from tests.sweeps import (  # noqa: E402
    CTRL_C_CONFIG,
    bnplace,
    ctrl_c_as_in_a_terminal,
    environment,
    runs,
    write_config,
)


def press_once(
    folder: Path, executor: list[str], rng: random.Random, grace: float, rerun: bool = True
) -> str:
    config = write_config(folder, CTRL_C_CONFIG)
    args = ["run", str(config), *executor, "--no-compare"]
    env = {**environment(), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "bnplace", *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
        preexec_fn=ctrl_c_as_in_a_terminal,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    output: list[str] = []
    # press after the after-th line: the first few are the store's creation and the plan, the
    # rest the trials' start, epoch and done lines (Ray sends epochs in batches)
    after = rng.randint(1, 16)
    seen = 0
    while seen < after:
        line = lines.get(timeout=300)
        if line is None:
            return "ended before the press: " + "".join(output)[-300:]
        output.append(line)
        seen += 1
    delay = rng.uniform(0.0, 1.0)
    time.sleep(delay)
    event = output[-1].split("  ")[0].strip()[:40]
    pressed = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    try:
        code = process.wait(grace)
        took = time.monotonic() - pressed
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return f"LOST after {event!r} +{delay:.2f}s: no exit in {grace:g}s"
    while (line := lines.get(timeout=10)) is not None:
        output.append(line)
    found = runs(folder)
    statuses = [run.info.status for run in found["trial"] + found["sweep"]]
    if code != 130 or "RUNNING" in statuses:
        return f"BAD after {event!r}: exit {code}, statuses {statuses}\n" + "".join(output)[-600:]
    if not rerun:
        return f"ok after {event!r} +{delay:.2f}s: exit 130 in {took:.1f}s, nothing RUNNING"
    again = bnplace(folder, *args)
    finished = [
        t.data.tags["bnplace.trial_key"]
        for t in runs(folder)["trial"]
        if t.info.status == "FINISHED"
    ]
    if again.returncode != 0 or len(finished) != 2 or len(set(finished)) != 2:
        return f"RERUN BAD: exit {again.returncode}, finished {finished}\n{again.stdout[-600:]}"
    return f"ok after {event!r} +{delay:.2f}s: exit 130 in {took:.1f}s, rerun finished both"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--executor", choices=("ray", "pool"), default="ray")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grace", type=float, default=30.0, help="seconds to exit after a press")
    parser.add_argument(
        "--no-rerun", action="store_true", help="skip the rerun after each press (faster)"
    )
    options = parser.parse_args()
    rng = random.Random(options.seed)
    ray = None
    if options.executor == "ray":
        import ray

        context = ray.init(
            address="local", num_cpus=2, include_dashboard=False, log_to_driver=False
        )
        executor = ["--executor", "ray", "--ray-address", context.address_info["gcs_address"]]
    else:
        executor = ["--jobs", "2"]
    acted = 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in range(options.presses):
                folder = Path(tmp) / f"press-{n}"
                verdict = press_once(folder, executor, rng, options.grace, not options.no_rerun)
                acted += verdict.startswith("ok")
                print(f"{n + 1:2d}. {verdict}", flush=True)
    finally:
        if ray is not None:
            ray.shutdown()
    print(f"acted on at the first press: {acted}/{options.presses}")
    return 0 if acted == options.presses else 1


if __name__ == "__main__":
    sys.exit(main())
