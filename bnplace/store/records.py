"""What a sweep writes into its MLflow runs, as plain values: params, the history, digests.

In: a `Trial`, a plan, the resolved config's text, a trial's history. Out: the trial's readable
flattened params (`flat_params`), its history as CSV (`history_csv`), the digests that tell
whether two sweeps ran the same config (`config_digest`) and the same plan (`plan_digest`, which
decides the sweep run a rerun continues), the library versions tagged on a sweep run, and
`finite` (only finite metrics are logged). No MLflow: `bnplace.store.track` logs these values.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import TYPE_CHECKING, Any

from bnplace.names.tags import LIB_PREFIX, PARAM_DATASET, PARAM_LAYERS

if TYPE_CHECKING:
    from bnplace.plan import Plan, Trial


def config_digest(config_text: str) -> str:
    """Equal digests: the sweeps ran the same resolved config (the header line is skipped)."""
    body = config_text.split("\n", 1)[-1] if config_text.startswith("#") else config_text
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("tensorflow", "tensorflow-cpu", "keras", "mlflow"):
        try:
            out[LIB_PREFIX + package] = version(package)
        except PackageNotFoundError:
            continue
    return out


def flat_params(trial: Trial) -> list[tuple[str, str]]:
    """Readable flattened params of a trial: its axis labels and the settings that matter."""
    config, data = trial.config, trial.config.section
    params = [
        (PARAM_LAYERS, trial.model.layer_order),
        ("data.source", data.source),
        ("data.window", str(data.window)),
        ("data.horizon", str(data.horizon)),
        ("data.standardize", str(data.standardize).lower()),
    ]
    if trial.dataset:  # one of several datasets: its name, for the UI's grouping
        params.append((PARAM_DATASET, trial.dataset))
    params += [
        (f"train.{k}", json.dumps(v) if isinstance(v, dict) else str(v))
        for k, v in config.train.model_dump().items()
        if v is not None
    ]
    return params


def history_csv(history: tuple[dict[str, float], ...]) -> str:
    names = sorted({name for row in history for name in row})
    lines = [",".join(["epoch", *names])]
    for epoch, row in enumerate(history):
        lines.append(",".join([str(epoch), *(repr(row[n]) if n in row else "" for n in names)]))
    return "\n".join(lines) + "\n"


def plan_digest(plan: Plan, config_text: str) -> str:
    """Equal digests: the same question (resolved config) and the same planned trials."""
    keys = "\n".join(sorted(trial.key for trial in plan.trials))
    return hashlib.sha256(f"{config_digest(config_text)}\n{keys}".encode()).hexdigest()[:16]
