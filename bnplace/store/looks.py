"""Seeds on demand in the store: each look the sweep passed, with its decisions.

In: a `LookRecord` (`bnplace.execute.schedule`: the look, the comparisons still open, the seeds
given per variant id and where every comparison stood). Out, on the sweep run: the metrics
`open_comparisons[.<dataset>]` and `seeds.<variant id>[.<dataset>]` with the look as step, and
the artifact `looks/look_<k>.json` (several datasets: `looks/<dataset>/look_<k>.json`) holding
the look and every comparison's decision (`stats.sequential.decision_record`): the one writer.
`logged_decisions` reads the newest look of each dataset back, which is what `bnplace compare`
shows (it recomputes them only for a sweep an older bnplace ran, which logged no decisions).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from bnplace.names import metrics
from bnplace.names.tags import LOOKS_ARTIFACTS
from bnplace.stats.sequential import Decision, decision_from, decision_record

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from bnplace.execute.schedule import LookRecord
    from bnplace.store.read import StoreClient

_PREFIX, _SUFFIX = "look_", ".json"


def look_artifact(look: int, dataset: str = "") -> str:
    """The artifact path of look `look` (1-based) on `dataset` ("": the only one)."""
    folder = f"{LOOKS_ARTIFACTS}/{dataset}" if dataset else LOOKS_ARTIFACTS
    return f"{folder}/{_PREFIX}{look:03d}{_SUFFIX}"


def log_look(client: MlflowClient, sweep_run_id: str, record: LookRecord) -> None:
    """Log one look on the sweep run, once (another driver of the plan that logged the same
    look logged the same decisions)."""
    from mlflow.entities import Metric

    opened = metrics.open_comparisons_on(record.dataset)
    if any(m.step == record.look for m in client.get_metric_history(sweep_run_id, opened)):
        return
    document = {
        "look": record.look,
        "dataset": record.dataset,
        "open_comparisons": record.open_comparisons,
        "seeds": record.seeds,
        "decisions": {name: decision_record(d) for name, d in record.decisions.items()},
    }
    client.log_text(sweep_run_id, json.dumps(document), look_artifact(record.look, record.dataset))
    now = int(time.time() * 1000)
    values = {opened: record.open_comparisons} | {
        metrics.seeds_given(variant_id, record.dataset): seeds
        for variant_id, seeds in record.seeds.items()
    }
    client.log_batch(
        sweep_run_id,
        metrics=[Metric(k, float(v), now, record.look) for k, v in values.items()],
    )


def logged_decisions(
    store: StoreClient, sweep_run_id: str, datasets: Sequence[str] = ()
) -> dict[str, dict[str, Decision]] | None:
    """{dataset ("" for the only one): {comparison: its decision at the newest look logged}};
    empty when no look was logged (a fixed design, or no look passed yet); None when looks
    were passed but no decisions logged (a sweep an older bnplace ran). `datasets`: the plan's
    datasets when it has several."""
    client = cast("MlflowClient", store)
    newest: dict[str, str] = {}  # dataset -> artifact path of its newest look
    for entry in client.list_artifacts(sweep_run_id, LOOKS_ARTIFACTS):
        if entry.is_dir:
            dataset = entry.path.rsplit("/", 1)[-1]
            files = client.list_artifacts(sweep_run_id, entry.path)
        else:
            dataset, files = "", [entry]
        looks = sorted(f.path for f in files if f.path.rsplit("/", 1)[-1].startswith(_PREFIX))
        if looks:
            newest[dataset] = looks[-1]  # zero-padded: the newest sorts last
    if not newest:
        first = datasets[0] if len(datasets) > 1 else ""
        passed = client.get_metric_history(sweep_run_id, metrics.open_comparisons_on(first))
        return None if passed else {}
    out: dict[str, dict[str, Decision]] = {}
    with tempfile.TemporaryDirectory(prefix="bnplace-looks-") as tmp:
        for dataset, path in newest.items():
            local = client.download_artifacts(sweep_run_id, path, tmp)
            document = json.loads(Path(local).read_text(encoding="utf-8"))
            out[dataset] = {
                name: decision_from(record) for name, record in document["decisions"].items()
            }
    return out
