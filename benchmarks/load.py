"""Load: 300 tiny trials logged through a real `mlflow server` over HTTP, nothing lost.

In: nothing (synthetic data: sine_mix, 2 channels; Conv1D(4) -> LSTM(6) -> Dense, ~300
parameters, 1 epoch; 3 variants x 100 seeds). Out: on stdout and in --out (JSON), for one
`bnplace run --jobs 2 --no-compare` run in this process against `mlflow server` (SQLite backend,
artifacts proxied by the server, started here on 127.0.0.1 and stopped at the end):
    wall            the run from `run_sweep`'s call to its return
    MLflow          the time the driver's own thread spent inside `bnplace.store.track.Tracker` and
                    `bnplace.store.claims.Claims` calls (outermost calls only: claims, trial runs,
                    epochs, results, aggregates, the sweep run), in total, per trial and as a
                    share of wall; the heartbeat thread's writes are not in it (it has its own
                    client and never blocks the driver's loop) and are counted apart
    store           the server's SQLite file and its artifact folder, in MB and per trial
    lost            planned trials without exactly one FINISHED run, read back over HTTP
Run: python benchmarks/load.py [--seeds 100] [--jobs 2] [--out load.json]  (~5 min on 2 cores)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

CONFIG = """
experiment: load
data: {{source: synthetic, generator: sine_mix, length: 360, features: 2, window: 12}}
model:
  - conv1d: {{id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}}
  - lstm: {{id: lstm, units: 6}}
train: {{epochs: 1, batch_size: 32, learning_rate: 0.01}}
sweep:
  axes:
    conv.post_act: {{none: [], bn: [batch_norm], dropout: [{{dropout: 0.1}}]}}
  seeds: {seeds}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mlflow_server(folder: Path) -> Iterator[str]:
    port = free_port()
    with (folder / "server.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
             f"sqlite:///{folder / 'server.db'}", "--artifacts-destination",
             str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health") as answer:
                if answer.status == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit((folder / "server.log").read_text())
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def timing(classes: list[type], spent: dict[str, float]) -> None:
    """Wrap every public method of `classes` (and the Tracker's opening) with a timer counting
    the outermost calls made from the main thread."""
    depth = [0]

    def wrap(owner: type, name: str, method: Callable[..., Any]) -> None:
        @functools.wraps(method)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is not threading.main_thread():
                return method(*args, **kwargs)
            depth[0] += 1
            begun = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spent[f"{owner.__name__}.{name}"] += time.perf_counter() - begun

        setattr(owner, name, timed)

    for owner in classes:
        for name, value in list(vars(owner).items()):
            if callable(value) and (not name.startswith("_") or name == "__post_init__"):
                wrap(owner, name, value)


def size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path)
    options = parser.parse_args()

    from mlflow import MlflowClient

    from bnplace.run.sweep import RunOptions, run_sweep
    from bnplace.store.claims import Claims, Heartbeat
    from bnplace.store.track import Tracker

    spent: dict[str, float] = defaultdict(float)
    timing([Tracker, Claims], spent)
    beats = [0]
    loop = Heartbeat._loop

    def counted_loop(self: Heartbeat) -> None:
        beats[0] += 1
        loop(self)

    Heartbeat._loop = counted_loop  # type: ignore[method-assign]

    class Quiet:
        def planned(self, *args: Any) -> None: ...
        def started(self, *args: Any) -> None: ...
        def epoch(self, *args: Any) -> None: ...
        def ended(self, *args: Any) -> None: ...
        def close(self) -> None: ...

    with (
        tempfile.TemporaryDirectory(prefix="bnplace-load-") as tmp,
        mlflow_server(Path(tmp)) as url,
    ):
        folder = Path(tmp)
        config = folder / "load.yaml"
        config.write_text(CONFIG.format(seeds=options.seeds))
        begun = time.perf_counter()
        outcome = run_sweep(RunOptions(config=config, jobs=options.jobs, tracking_uri=url), Quiet())
        wall = time.perf_counter() - begun
        client = MlflowClient(tracking_uri=url)
        exp = client.get_experiment_by_name("load")
        trials = client.search_runs(
            [exp.experiment_id], "tags.`bnplace.kind` = 'trial'", max_results=5000
        )
        finished = Counter(
            t.data.tags["bnplace.trial_key"] for t in trials if t.info.status == "FINISHED"
        )
        planned = [t.key for t in outcome.plan.trials]
        lost = sum(1 for key in planned if finished.get(key) != 1)
        mlflow_s = sum(spent.values())
        n = len(planned)
        result = {
            "trials": n,
            "jobs": options.jobs,
            "finished": outcome.finished,
            "failed": outcome.failed,
            "lost": lost,
            "wall_s": round(wall, 1),
            "mlflow_s": round(mlflow_s, 2),
            "mlflow_ms_per_trial": round(1000 * mlflow_s / n, 1),
            "mlflow_share": round(mlflow_s / wall, 4),
            "by_call_s": {k: round(v, 2) for k, v in sorted(spent.items(), key=lambda kv: -kv[1])},
            "store_db_mb": round(size_mb(folder / "server.db"), 2),
            "store_artifacts_mb": round(size_mb(folder / "artifacts"), 2),
            "store_kb_per_trial": round(
                1000 * (size_mb(folder / "server.db") + size_mb(folder / "artifacts")) / n, 1
            ),
            "heartbeat_threads": beats[0],
        }
    print(json.dumps(result, indent=2))
    if options.out:
        options.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
