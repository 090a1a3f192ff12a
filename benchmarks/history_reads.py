"""Reading every trial's learning curve from a large SQLite store, before and after its query
statistics are refreshed (`bnplace.store.client.refresh_query_statistics`).

In: --runs trial runs, each logging --epochs epochs of --metrics metric names (the studies'
trials log ~12 per epoch), written once into a new store under a temporary folder. Out: CPU
time per history read the way compare read before (MLflow's `get_metric_history`, the store
as MLflow's schema leaves it: no statistics), the time to refresh the statistics, the CPU per
read after it (`store.read.metric_histories`, what compare reads through now), their ratio,
and whether every read returned the same values. The baseline runs first, in the same script,
on the same store.
Run: python benchmarks/history_reads.py [--runs 2000] [--epochs 40] [--metrics 8] [--reads 400]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def write_store(uri: str, runs: int, epochs: int, metrics: int) -> list[str]:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("history-reads")
    names = ["loss", "val_loss", *(f"metric_{i}" for i in range(metrics - 2))]
    run_ids = []
    for i in range(runs):
        run_id = client.create_run(experiment).info.run_id
        values = [Metric(k, i + e / 1000, 0, e) for k in names for e in range(epochs)]
        for start in range(0, len(values), 1000):  # MLflow's most metrics a batch
            client.log_batch(run_id, metrics=values[start : start + 1000])
        run_ids.append(run_id)
    return run_ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--metrics", type=int, default=8)
    parser.add_argument(
        "--reads", type=int, default=400, help="runs whose loss and val_loss are read"
    )
    args = parser.parse_args()

    from mlflow import MlflowClient

    from bnplace.store.client import refresh_query_statistics
    from bnplace.store.read import metric_histories

    with tempfile.TemporaryDirectory(prefix="bnplace-history-") as folder:
        uri = f"sqlite:///{Path(folder) / 'mlflow.db'}"
        started = time.perf_counter()
        run_ids = write_store(uri, args.runs, args.epochs, args.metrics)
        written_s = time.perf_counter() - started
        values = args.runs * args.epochs * args.metrics
        print(f"store: {args.runs:,} runs, {values:,} values, {written_s:.0f} s to write")
        step = max(1, len(run_ids) // args.reads)
        wanted = [(run_id, key) for run_id in run_ids[::step] for key in ("loss", "val_loss")]
        client = MlflowClient(tracking_uri=uri)

        cpu = time.process_time()
        before = [
            (run_id, key, [(m.step, m.value) for m in client.get_metric_history(run_id, key)])
            for run_id, key in wanted
        ]
        before_ms = (time.process_time() - cpu) / len(wanted) * 1000

        wall = time.perf_counter()
        assert refresh_query_statistics(uri)
        refresh_s = time.perf_counter() - wall

        cpu = time.process_time()
        after = list(metric_histories(client, wanted))
        after_ms = (time.process_time() - cpu) / len(wanted) * 1000

    print(f"reads: {len(wanted):,} histories of {args.epochs} values")
    print(f"before (no statistics): {before_ms:6.2f} ms CPU a read")
    print(f"refresh (ANALYZE):      {refresh_s:6.2f} s")
    print(f"after:                  {after_ms:6.2f} ms CPU a read")
    print(f"ratio after/before:     {after_ms / before_ms:.2f}x")
    print(f"same values: {after == before}")


if __name__ == "__main__":
    main()
