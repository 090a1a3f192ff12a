"""Before/after check of a refactoring: the same comparison from the same store, and the same
trial metrics from the same sweep.

In: a folder. Out: exit status 0 when everything matches, 1 with the differences printed.

    python scripts/compare_check.py make DIR    # with the OLD code: train three small sweeps
                                                # into DIR/<name>/ and keep their comparison
                                                # (before.json) and trial metrics (before.csv)
    python scripts/compare_check.py check DIR   # with the NEW code: compare the same stores
                                                # again; comparison.json equal but timings
    python scripts/compare_check.py rerun DIR   # with the NEW code: train the same sweeps into
                                                # DIR/<name>-again/; every trial metric
                                                # bit-identical, the comparison equal

The three sweeps (tiny models, 1 epoch): seeds on demand with one clearly worse variant, two
datasets with seeds on demand (per-dataset and pooled rows), and a fixed 2 x 2 grid with a
declared contrast and its interaction. Run it with PYTHONPATH set to the checkout under test
(the CLI runs as `python -m bnplace`). A few minutes on 2 cores.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

TINY = """
data: {source: synthetic, generator: sine_mix, length: 360, features: 2, window: 12}
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: lstm, units: 4}
train: {epochs: 1, batch_size: 32, learning_rate: 0.01}
"""
SWEEPS = {
    "ondemand": TINY
    + """
experiment: check_ondemand
sweep:
  arms:
    v:
      plain: {}
      tiny_lr: {train.learning_rate: 1.0e-7}
      bn: {conv.post_act: [batch_norm]}
  seeds: {min: 8, max: 16, step: 4}
""",
    "datasets": """
experiment: check_datasets
datasets:
  sine: {source: synthetic, generator: sine_mix, length: 360, features: 2, window: 12}
  ar: {source: synthetic, generator: ar, length: 360, features: 2, window: 12}
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: lstm, units: 4}
train: {epochs: 1, batch_size: 32, learning_rate: 0.01}
sweep:
  arms:
    v:
      plain: {}
      tiny_lr: {train.learning_rate: 1.0e-7}
  seeds: {min: 6, max: 10, step: 2}
""",
    "grid": TINY
    + """
experiment: check_grid
sweep:
  axes:
    conv.post_act: {none: [], bn: [batch_norm]}
    train.learning_rate: {fast: 0.01, slow: 0.001}
  seeds: 3
compare:
  contrasts:
    - {axis: conv.post_act, levels: [bn, none]}
""",
}
# The one line compare adds for a store an older bnplace wrote (`check` on a store `make` wrote
# with the old code): seeds on demand's decisions were not logged per look, so compare
# recomputes them and says so. Printed as expected, not counted as a difference.
OLDER_STORE_NOTE = "seeds on demand: this sweep logged no decisions per look"
# keys whose values are timings or depend on when the comparison ran
TIMING_KEYS = {"duration_s", "seconds", "elapsed_s", "wall_s", "timing", "timings", "created"}


def bnplace(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, "-m", "bnplace", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _must(done: subprocess.CompletedProcess[str], what: str) -> str:
    if done.returncode != 0:
        sys.exit(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def train(folder: Path, name: str) -> None:
    """Train sweep `name` into `folder` (its config is written there)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "c.yaml").write_text(textwrap.dedent(SWEEPS[name]))
    _must(bnplace(folder, "run", "c.yaml", "--jobs", "1", "--no-compare"), f"run {name}")


def comparison(folder: Path) -> Any:
    out = bnplace(folder, "compare", "c.yaml", "--format", "json", "--no-log")
    return json.loads(_must(out, f"compare in {folder}"))


def trial_metrics(folder: Path) -> list[dict[str, str]]:
    """Every finished trial's metrics, keyed by its trial key (run ids differ between sweeps)."""
    _must(bnplace(folder, "export", "c.yaml", "--out", "trials.csv"), f"export in {folder}")
    rows = list(csv.DictReader(io.StringIO((folder / "trials.csv").read_text())))
    drop = ("run_id", "sweep_run_id", "variant_run_id", "start", "end", "duration", "_s")
    keep = [
        {k: v for k, v in r.items() if not any(d in k for d in drop) and "time" not in k}
        for r in rows
    ]
    return sorted(keep, key=lambda r: json.dumps(r, sort_keys=True))


def without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: without_timings(v)
            for k, v in value.items()
            if k not in TIMING_KEYS and "seconds" not in k and not k.endswith("_s")
        }
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def differences(before: Any, after: Any, where: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        out = [f"{where}/{k}: only before" for k in before.keys() - after.keys()]
        out += [f"{where}/{k}: only after" for k in after.keys() - before.keys()]
        for k in before.keys() & after.keys():
            out += differences(before[k], after[k], f"{where}/{k}")
        return out
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return [f"{where}: {len(before)} items before, {len(after)} after"]
        return [
            d
            for i, (b, a) in enumerate(zip(before, after, strict=True))
            for d in differences(b, a, f"{where}[{i}]")
        ]
    return [] if before == after else [f"{where}: {before!r} before, {after!r} after"]


def _check(before_dir: Path, after_dir: Path, name: str, metrics: bool) -> list[str]:
    before = json.loads((before_dir / "before.json").read_text())
    after = comparison(after_dir)
    if metrics:  # a new sweep: its own run ids and name
        for key in ("sweep_run_id", "sweep_run_name", "merged_sweeps"):
            before.pop(key, None), after.pop(key, None)
    said = [n for n in after["notes"] if n.startswith(OLDER_STORE_NOTE)]
    if said and not any(n.startswith(OLDER_STORE_NOTE) for n in before["notes"]):
        print(f"{name}: expected on a store an older bnplace wrote: note {said[0]!r}")
        after["notes"] = [n for n in after["notes"] if not n.startswith(OLDER_STORE_NOTE)]
    found = differences(without_timings(before), without_timings(after))
    if metrics:
        kept = json.loads((before_dir / "before_trials.json").read_text())
        found += differences(kept, trial_metrics(after_dir), "/trials")
    return [f"{name}: {d}" for d in found]


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("make", "check", "rerun"):
        print(__doc__)
        return 2
    step, root = argv[0], Path(argv[1]).resolve()
    found: list[str] = []
    for name in SWEEPS:
        folder = root / name
        if step == "make":
            train(folder, name)
            (folder / "before.json").write_text(json.dumps(comparison(folder), indent=1))
            (folder / "before_trials.json").write_text(json.dumps(trial_metrics(folder), indent=1))
        elif step == "check":
            found += _check(folder, folder, name, metrics=False)
        else:
            again = root / f"{name}-again"
            train(again, name)
            found += _check(folder, again, name, metrics=True)
        print(f"{step} {name}: done", flush=True)
    for line in found:
        print(line)
    print(f"{len(found)} difference(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
