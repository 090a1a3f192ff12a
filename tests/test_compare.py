"""End-to-end tests of `bnplace.compare` against a real MLflow SQLite store.

In: sweeps written here with `MlflowClient` in exactly the layout of notes/TRACKING.md (sweep
run > variant runs > trial runs). The numbers are SYNTHETIC: no model is trained; each trial's
final metrics and per-epoch curves are made up so that the verdicts are known in advance.
Out: assertions on the `Comparison`, the files in `out_dir`, and what `compare_runs` logged
back to MLflow (report, plots as valid PNG files, the statistics table, variant-run metrics
and verdict tags), read back with `MlflowClient`.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from bnplace.compare import compare_frames, compare_runs, render_table, render_text
from bnplace.compare.frame import SweepData, load_sweep
from bnplace.names.errors import BnplaceError, TrackingError
from bnplace.store.client import existing_client, sqlite_path
from tests.sweeps import sqlite_store

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
AXES = ("conv.pre_act", "dropout.where")


@dataclass(frozen=True)
class FakeVariant:
    """A variant of the synthetic sweep: its rmse is the seed's base value plus `shift`."""

    name: str
    labels: tuple[str, str]  # labels of AXES
    shift: float
    time_per_epoch: float
    bn: bool = False
    failures: dict[int, str] = field(default_factory=dict)  # seed -> reason

    @property
    def variant_id(self) -> str:
        return hashlib.sha1(self.name.encode()).hexdigest()[:8]


VARIANTS = (
    FakeVariant("conv.pre_act=none, dropout.where=none", ("none", "none"), 0.0, 1.0),
    FakeVariant(
        "conv.pre_act=batch_norm, dropout.where=none", ("batch_norm", "none"), -0.25, 1.3, bn=True
    ),
    FakeVariant(
        "conv.pre_act=none, dropout.where=after_act",
        ("none", "after_act"),
        0.002,
        1.05,
        failures={3: "diverged"},
    ),
    FakeVariant(
        "conv.pre_act=batch_norm, dropout.where=after_act",
        ("batch_norm", "after_act"),
        0.2,
        1.4,
        bn=True,
    ),
)


def base_rmse(seed: int) -> float:
    """Synthetic per-seed difficulty shared by all variants (what pairing cancels)."""
    return 0.8 + 0.15 * math.sin(seed * 1.7)


def trial_key(variant: FakeVariant, seed: int) -> str:
    return hashlib.sha1(f"{variant.variant_id}/{seed}".encode()).hexdigest()[:16]


def log_sweep(
    client: MlflowClient,
    experiment_id: str,
    experiment: str,
    *,
    variants: Sequence[FakeVariant] = VARIANTS,
    seeds: Sequence[int] = tuple(range(8)),
    start: int = 1_700_000_000_000,
    epochs: int = 5,
    task: str = "forecast",
    metric: str = "test_rmse",
    plan: tuple[Sequence[FakeVariant], Sequence[int]] | None = None,
    with_plan: bool = True,
    design: dict[str, Any] | None = None,
) -> str:
    """Write one synthetic sweep in the TRACKING.md layout; returns the sweep run id.

    `variants` x `seeds` are the trials run by this sweep; `plan` (default: the same) the
    trials its plan.json lists, as the runner writes it (a resumed sweep runs fewer)."""
    sweep = client.create_run(
        experiment_id,
        start_time=start,
        run_name=f"sweep {experiment} 2024-01-01T00:00:00Z",
        tags={
            "bnplace.kind": "sweep",
            "bnplace.experiment": experiment,
            "bnplace.task": task,
            "bnplace.metric": metric,
            "bnplace.direction": "min",
            "bnplace.baseline": variants[0].name,
            "bnplace.axes": json.dumps(list(AXES)),
            "bnplace.config_digest": "cafe0123",
            "bnplace.version": "0.1.0",
        },
    )
    sweep_id = sweep.info.run_id
    if with_plan:
        plan_variants, plan_seeds = plan or (variants, seeds)
        client.log_dict(
            sweep_id,
            {
                "experiment": experiment,
                "axes": list(AXES),
                "seeds": list(plan_seeds),
                "variants": [
                    {
                        "id": v.variant_id,
                        "name": v.name,
                        "labels": dict(zip(AXES, v.labels, strict=True)),
                    }
                    for v in plan_variants
                ],
                "trials": [
                    {
                        "key": trial_key(v, s),
                        "variant_id": v.variant_id,
                        "variant": v.name,
                        "seed": s,
                    }
                    for v in plan_variants
                    for s in plan_seeds
                ],
                **({"design": design} if design else {}),
            },
            "plan.json",
        )
    rng = np.random.default_rng(start % 1000)
    for vi, v in enumerate(variants):
        layers = "Conv1D>BN>ReLU>LSTM>Dense" if v.bn else "Conv1D>ReLU>LSTM>Dense"
        vrun = client.create_run(
            experiment_id,
            start_time=start + 10 * (vi + 1),
            run_name=v.name,
            tags={
                "mlflow.parentRunId": sweep_id,
                "bnplace.kind": "variant",
                "bnplace.variant": v.name,
                "bnplace.variant_id": v.variant_id,
                "bnplace.layers": layers,
                "bnplace.params": "1234",
                "bnplace.cudnn": "true",
            },
        )
        client.log_batch(
            vrun.info.run_id, params=[Param(a, lab) for a, lab in zip(AXES, v.labels, strict=True)]
        )
        for seed in seeds:
            failed = seed in v.failures
            trun = client.create_run(
                experiment_id,
                start_time=start + 1000 * (vi + 1) + seed,
                run_name=f"{v.name} seed={seed}",
                tags={
                    "mlflow.parentRunId": vrun.info.run_id,
                    "bnplace.kind": "trial",
                    "bnplace.variant": v.name,
                    "bnplace.variant_id": v.variant_id,
                    "bnplace.seed": str(seed),
                    "bnplace.trial_key": trial_key(v, seed),
                    "bnplace.layers": layers,
                    "bnplace.status": "failed" if failed else "finished",
                    "bnplace.failure": v.failures.get(seed, ""),
                },
            )
            rmse = base_rmse(seed) + v.shift + rng.normal(0, 0.01)
            n_epochs = 2 if failed else epochs - (seed % 2)  # some runs stop early
            metrics = []
            for e in range(n_epochs):
                loss = rmse**2 * (1 + 2.0 * math.exp(-e)) + (10.0 * e if failed else 0.0)
                metrics += [
                    Metric("loss", loss, start, e),
                    Metric("val_loss", loss * 1.1 + 0.01 * seed, start, e),
                    Metric("mae", loss * 0.8, start, e),
                    Metric("val_mae", loss * 0.9, start, e),
                ]
            if not failed:
                finals = {
                    "test_rmse": rmse,
                    "test_mse": rmse**2,
                    "test_mae": rmse * 0.8,
                    "persistence_rmse": 1.0,
                    "persistence_mae": 0.8,
                    "train_time_s": v.time_per_epoch * n_epochs,
                    "time_per_epoch_s": v.time_per_epoch + rng.normal(0, 0.01),
                    "epochs_run": n_epochs,
                    "params": 1234 + 64 * v.bn,
                }
                if v.bn:
                    finals |= {"bn_shift_max": 1.1, "bn_train_vs_infer_max": 1.05}
                metrics += [Metric(k, float(x), start, 0) for k, x in finals.items()]
            client.log_batch(trun.info.run_id, metrics=metrics)
            client.set_terminated(trun.info.run_id, "FAILED" if failed else "FINISHED")
        client.set_terminated(vrun.info.run_id, "FINISHED")
    client.set_terminated(sweep_id, "FINISHED")
    return sweep_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, MlflowClient, Path]:
    """One SQLite store for the module (a copy of the migrated empty one, `sqlite_store`)."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = sqlite_store(root)
    return uri, MlflowClient(tracking_uri=uri), root


def new_experiment(store: tuple[str, MlflowClient, Path], name: str) -> str:
    _uri, client, root = store
    return client.create_experiment(name, artifact_location=(root / "artifacts" / name).as_uri())


@pytest.fixture(scope="module")
def forecast(store, tmp_path_factory):
    """The main synthetic sweep, compared once (with out_dir and MLflow logging)."""
    uri, client, _root = store
    exp_id = new_experiment(store, "forecast")
    sweep_id = log_sweep(client, exp_id, "forecast")
    out = tmp_path_factory.mktemp("out")
    comparison = compare_runs(uri, experiment="forecast", out_dir=out)
    return comparison, sweep_id, out


def variant_named(comparison, name: str) -> pd.Series:
    return comparison.table.set_index("variant").loc[name]


def test_verdicts_and_counts_on_the_synthetic_sweep(forecast) -> None:
    comparison, sweep_id, _out = forecast
    assert comparison.sweep.run_id == sweep_id
    assert (comparison.metric, comparison.direction) == ("test_rmse", "min")
    assert comparison.baseline == VARIANTS[0].name
    v = {fv.name: variant_named(comparison, fv.name) for fv in VARIANTS}
    assert v[VARIANTS[0].name]["verdict"] == "baseline"
    assert v[VARIANTS[1].name]["verdict"] == "better"
    assert v[VARIANTS[3].name]["verdict"] == "worse"
    assert v[VARIANTS[2].name]["verdict"] == "inconclusive"
    # its diverged seed ranks worst: 8 pairs, and the failure is counted on its side
    assert v[VARIANTS[2].name]["n_pairs"] == 8
    assert comparison.best == VARIANTS[1].name
    # The diverged seed is counted as failed and left out of the pairs.
    assert (v[VARIANTS[2].name]["n_finished"], v[VARIANTS[2].name]["n_failed"]) == (7, 1)
    assert v[VARIANTS[2].name]["failures"] == "diverged: 1"
    assert comparison.failures.to_dict("records") == [
        {"variant": VARIANTS[2].name, "reason": "diverged", "n": 1}
    ]
    # Axis labels, cost, persistence and BN diagnostics come along.
    assert v[VARIANTS[1].name]["axis:conv.pre_act"] == "batch_norm"
    assert v[VARIANTS[1].name]["params"] == 1234 + 64
    assert v[VARIANTS[1].name]["time_per_epoch_s"] == pytest.approx(1.3, abs=0.02)
    assert v[VARIANTS[1].name]["persistence"] == 1.0
    assert v[VARIANTS[1].name]["bn_shift_max"] == pytest.approx(1.1)
    assert comparison.friedman is not None and comparison.friedman.n_seeds == 7
    assert set(comparison.history["metric"]) == {"loss", "val_loss"}
    assert comparison.history["run_id"].nunique() == 4 * 8 - 1  # finished trials only


def test_compare_leaves_its_sqlite_store_with_query_statistics(store, forecast) -> None:
    """Read before its learning curves (`store.client.refresh_query_statistics`): each run's
    history then reads through MLflow's run index (tests/test_store_statistics.py)."""
    uri, _client, _root = store
    with sqlite3.connect(sqlite_path(uri)) as db:
        analysed = {table for (table,) in db.execute("SELECT tbl FROM sqlite_stat1")}
    assert "metrics" in analysed


def test_learning_curves_are_each_variants_mean_over_its_seeds_exactly(forecast) -> None:
    """The curves are grouped once over every variant's rows (`plots._curves`, fast on a
    search's 100,000s of rows): each line is `==` to its variant's rows grouped alone, in rows
    shuffled so that the variants interleave."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from bnplace.compare.plots import _curves, color_map

    comparison, _sweep_id, _out = forecast
    loss = comparison.history[comparison.history["metric"] == "loss"]
    part = loss.sample(frac=1.0, random_state=3)  # interleaved variants and epochs
    names = [v.name for v in VARIANTS]
    ax = Figure().subplots()
    lines = _curves(ax, part, names, color_map(names))
    assert [line.get_label() for line in lines] == names
    for line, name in zip(lines, names, strict=True):
        alone = part[part["variant"] == name].groupby("epoch")["value"].mean()
        assert list(line.get_xdata()) == list(alone.index + 1)
        assert list(line.get_ydata()) == list(alone)  # == : the same sums in the same order
    assert len(ax.collections) == len(names)  # a band each: 7-8 seeds


def test_files_in_out_dir(forecast) -> None:
    comparison, _sweep_id, out = forecast
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {
        "report.md",
        "report.html",
        "statistics.csv",
        "comparison.json",
        "plots/learning_curves.png",
        "plots/final_test_rmse.png",
        "plots/heatmap_test_rmse.png",
        "plots/cost_vs_test_rmse.png",
    } <= names
    for path in comparison.files.values():
        assert path.exists()
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4  # self-contained
    md = (out / "report.md").read_text()
    assert "](plots/final_test_rmse.png)" in md and "inconclusive: effects beyond" in md
    stats = pd.read_csv(out / "statistics.csv")
    assert list(stats["variant"]) == list(comparison.table["variant"])


def test_artifacts_and_tags_in_mlflow(forecast, store, tmp_path: Path) -> None:
    comparison, sweep_id, _out = forecast
    _uri, client, _root = store
    top = {f.path for f in client.list_artifacts(sweep_id, "compare")}
    assert {
        "compare/report.md",
        "compare/report.html",
        "compare/statistics.csv",
        "compare/statistics.json",
        "compare/plots",
    } <= top
    plots = [f.path for f in client.list_artifacts(sweep_id, "compare/plots")]
    assert len(plots) == 4
    for path in plots:
        local = Path(client.download_artifacts(sweep_id, path, str(tmp_path)))
        assert local.read_bytes()[:8] == PNG_SIGNATURE
    # client.load_table searches with the global tracking URI (mlflow.search_runs), so read
    # the logged table as the artifact it is: pandas "split" JSON.
    local = client.download_artifacts(sweep_id, "compare/statistics.json", str(tmp_path))
    table = pd.read_json(io.StringIO(Path(local).read_text()), orient="split")
    assert set(table["variant"]) == {v.name for v in VARIANTS}
    assert {"verdict", "p_adjusted", "ci_low", "ci_high"} <= set(table.columns)
    logged = json.loads(client.get_run(sweep_id).data.tags["mlflow.loggedArtifacts"])
    assert {"path": "compare/statistics.json", "type": "table"} in logged
    assert comparison.artifacts and "compare/statistics.json" in comparison.artifacts
    # Variant runs carry sortable numbers and the verdict.
    runs = client.search_runs([comparison.sweep.experiment_id], "tags.`bnplace.kind` = 'variant'")
    by_name = {r.data.tags["bnplace.variant"]: r.data for r in runs}
    better = by_name[VARIANTS[1].name]
    assert better.tags["bnplace.verdict"] == "better"
    assert better.metrics["p_vs_baseline"] < 0.05
    assert better.metrics["diff_vs_baseline"] < 0
    assert better.metrics["ci_low"] < better.metrics["ci_high"]
    assert by_name[VARIANTS[0].name].tags["bnplace.verdict"] == "baseline"
    assert "p_vs_baseline" not in by_name[VARIANTS[0].name].metrics


def test_renderings(forecast) -> None:
    comparison, _sweep_id, _out = forecast
    data = json.loads(render_text(comparison, "json"))
    assert data["baseline"] == VARIANTS[0].name
    assert [r["variant"] for r in data["variants"]] == list(comparison.table["variant"])
    assert data["variants"][0]["verdict"] == "better"
    csv = pd.read_csv(io.StringIO(render_text(comparison, "csv")))
    assert len(csv) == 4 and "p_adjusted" in csv.columns
    md = render_text(comparison, "markdown")
    header = next(line for line in md.splitlines() if line.startswith("| # | variant"))
    assert "verdict" in header and "median [IQR]" in header
    assert f"| 1 | {VARIANTS[1].name} |" in md  # best first
    assert "![" not in md  # no plots in the stdout rendering
    from rich.console import Console

    console = Console(record=True, width=400)
    console.print(render_table(comparison))
    text = console.export_text()
    assert text.index(VARIANTS[1].name) < text.index(VARIANTS[3].name)  # best first
    assert "better" in text and "worse" in text and "inconclusive" in text
    for width in (80, 120):  # a narrow terminal: fewer columns, never a cut-off table
        narrow = Console(record=True, width=width)
        narrow.print(render_table(comparison))
        lines = [ln.rstrip() for ln in narrow.export_text().splitlines()]
        table_lines = [ln for ln in lines if ln[:1] in "┏┃┡│└"]
        assert table_lines and all(ln[-1] in "┓┃┩│┘" for ln in table_lines)
        assert max(map(len, lines)) <= width
        assert "worse" in "\n".join(lines)  # the verdict column survives
    with pytest.raises(BnplaceError, match="unknown output format 'xml'"):
        render_text(comparison, "xml")


def test_resumed_and_extended_sweep_counts_each_trial_once(store) -> None:
    uri, client, _root = store
    exp_id = new_experiment(store, "resume")
    first = log_sweep(client, exp_id, "resume")
    # The resume re-runs the diverged trial (same trial key) and adds seeds 8 and 9; trials
    # finished in the first sweep are skipped, as the runner does.
    healed = tuple(FakeVariant(v.name, v.labels, v.shift, v.time_per_epoch, v.bn) for v in VARIANTS)
    second = log_sweep(
        client, exp_id, "resume", variants=healed[2:3], seeds=(3,), start=1_800_000_000_000,
        plan=(healed, range(8)),
    )  # fmt: skip
    third = log_sweep(
        client, exp_id, "resume", variants=healed, seeds=(8, 9), start=1_900_000_000_000,
        plan=(healed, range(10)),
    )  # fmt: skip
    comparison = compare_runs(uri, experiment="resume", log_to_mlflow=False)
    assert comparison.sweep.run_id == third  # the newest sweep
    assert set(comparison.merged_sweeps) == {first, second, third}
    row = variant_named(comparison, VARIANTS[2].name)
    assert (row["n_trials"], row["n_finished"], row["n_failed"]) == (10, 10, 0)
    assert any("superseded" in n for n in comparison.notes)
    assert (comparison.table["n_trials"] == 10).all()
    assert (comparison.table["n_finished"] == 10).all()
    # Only the first sweep's own runs: the diverged trial is still failed.
    alone = compare_runs(uri, sweep_run_id=first, merge_sweeps=False, log_to_mlflow=False)
    assert variant_named(alone, VARIANTS[2].name)["n_failed"] == 1
    assert (alone.table["n_trials"] == 8).all()
    # The resume alone ran one trial of its plan of 32: the rest is listed as not run.
    resumed = compare_runs(uri, sweep_run_id=second, merge_sweeps=False, log_to_mlflow=False)
    assert resumed.table["n_finished"].sum() == 1
    assert resumed.failures["reason"].unique().tolist() == ["not run"]
    assert resumed.failures["n"].sum() == 31
    assert any("31 planned trial(s) have no run yet" in n for n in resumed.notes)


def test_other_metric_and_baseline_and_run_lookup(store, forecast) -> None:
    uri, client, _root = store
    comparison, sweep_id, _out = forecast
    trial = client.search_runs(
        [comparison.sweep.experiment_id], "tags.`bnplace.kind` = 'trial'", max_results=1
    )[0]
    other = compare_runs(
        uri, sweep_run_id=trial.info.run_id, metric="test_mae", baseline=VARIANTS[1].name
    )
    assert other.sweep.run_id == sweep_id
    assert other.baseline == VARIANTS[1].name and other.metric == "test_mae"
    assert variant_named(other, VARIANTS[0].name)["verdict"] == "worse"
    assert any("is a trial run" in n for n in other.notes)
    paths = {f.path for f in client.list_artifacts(sweep_id, "compare/test_mae")}
    assert "compare/test_mae/report.html" in paths
    variant_run = client.get_run(variant_named_run(client, comparison, VARIANTS[0].name))
    assert variant_run.data.tags["bnplace.verdict.test_mae"] == "worse"
    assert variant_run.data.tags["bnplace.verdict"] == "baseline"  # main metric untouched
    assert "test_mae.p_vs_baseline" in variant_run.data.metrics


def variant_named_run(client: MlflowClient, comparison, name: str) -> str:
    runs = client.search_runs(
        [comparison.sweep.experiment_id],
        f"tags.`bnplace.kind` = 'variant' and tags.`bnplace.variant` = '{name}'",
    )
    return next(
        r.info.run_id for r in runs if r.data.tags["mlflow.parentRunId"] == comparison.sweep.run_id
    )


def test_errors_name_what_was_asked(store, forecast, tmp_path: Path) -> None:
    uri, _client, _root = store
    missing = tmp_path / "typo" / "mlflow.db"
    with pytest.raises(TrackingError, match=r"the SQLite file .* does not exist"):
        compare_runs(f"sqlite:///{missing}", log_to_mlflow=False)
    assert not missing.parent.exists()  # no empty store created by mistake
    with pytest.raises(
        TrackingError, match=r"no experiment named 'forcast' \(did you mean 'forecast'\?\)"
    ):
        compare_runs(uri, experiment="forcast", log_to_mlflow=False)
    with pytest.raises(
        TrackingError,
        match=r"no trial logged a metric named 'test_rmes' \(did you mean 'test_rmse'\?\)",
    ):
        compare_runs(uri, experiment="forecast", metric="test_rmes", log_to_mlflow=False)
    with pytest.raises(TrackingError, match="no variant named 'nope' to use as the baseline"):
        compare_runs(uri, experiment="forecast", baseline="nope", log_to_mlflow=False)
    with pytest.raises(TrackingError, match="no run with id 'deadbeef'"):
        compare_runs(uri, sweep_run_id="deadbeef", log_to_mlflow=False)
    empty_id = new_experiment(store, "empty")
    assert empty_id
    with pytest.raises(TrackingError, match="no bnplace sweep run in experiment 'empty'"):
        compare_runs(uri, experiment="empty", log_to_mlflow=False)


def test_load_sweep_tables(store, forecast) -> None:
    uri, _client, _root = store
    _comparison, sweep_id, _out = forecast
    data = load_sweep(existing_client(uri), sweep_run_id=sweep_id)
    assert list(data.variants["variant"]) == [v.name for v in VARIANTS]  # plan order
    t = data.trials
    assert len(t) == 32 and t.groupby(["variant", "seed"]).size().max() == 1
    axis_columns = [f"axis:{a}" for a in AXES]
    assert {
        "variant",
        "variant_id",
        "seed",
        "trial_key",
        "status",
        "failure",
        *axis_columns,
    } <= set(t)
    assert {"test_rmse", "persistence_rmse", "time_per_epoch_s"} <= set(data.metric_columns)
    assert t.loc[t["status"] == "failed", "failure"].tolist() == ["diverged"]
    assert data.sweep.axes == AXES and data.sweep.task == "forecast"


def test_compare_frames_without_mlflow(forecast) -> None:
    comparison, _sweep_id, _out = forecast
    again = compare_frames(SweepData.of_trials(comparison.trials, comparison.sweep))
    pd.testing.assert_frame_equal(again.table, comparison.table)
    assert again.files == {} and again.artifacts == ()


def test_a_sweep_where_every_trial_failed_still_reports(store, tmp_path: Path) -> None:
    uri, client, _root = store
    exp_id = new_experiment(store, "dead")
    dead = tuple(
        FakeVariant(
            v.name,
            v.labels,
            v.shift,
            v.time_per_epoch,
            failures=dict.fromkeys(range(3), "diverged"),
        )
        for v in VARIANTS[:2]
    )
    sweep_id = log_sweep(client, exp_id, "dead", variants=dead, seeds=range(3))
    comparison = compare_runs(uri, experiment="dead", out_dir=tmp_path)
    assert (comparison.table["n_finished"] == 0).all()
    assert (comparison.table["n_failed"] == 3).all()
    assert comparison.verdicts[dead[1].name] == "inconclusive"
    assert any("has no finished trial" in n for n in comparison.notes)
    assert (tmp_path / "report.html").exists() and not (tmp_path / "plots").exists()
    paths = {f.path for f in client.list_artifacts(sweep_id, "compare")}
    assert "compare/report.md" in paths and "compare/statistics.json" in paths
    assert "diverged" in render_text(comparison, "markdown")


def test_verdict_text_says_margin_exclusion_or_too_few_seeds() -> None:
    from bnplace.compare.format import verdict_text

    assert verdict_text({"verdict": "equivalent"}, 0.05) == "equivalent within ±5%"
    assert verdict_text({"verdict": "better", "within_margin": True}, 0.02) == (
        "better (by less than ±2%)"
    )
    assert verdict_text({"verdict": "worse", "within_margin": False}, 0.02) == "worse"
    row = {
        "verdict": "inconclusive",
        "reachable": True,
        "excluded": "effects beyond -4.0%/+7.0% excluded",
    }
    assert verdict_text(row, 0.05) == "inconclusive: effects beyond -4.0%/+7.0% excluded"
    assert "too few seeds" in verdict_text({**row, "reachable": False}, 0.05)


def test_declared_contrast_and_equivalence_reach_table_json_and_variant_runs(store) -> None:
    uri, client, _root = store
    exp_id = new_experiment(store, "contrast")
    tiny = FakeVariant("conv.pre_act=none, dropout.where=tiny", ("none", "tiny"), 0.002, 1.0)
    variants = (VARIANTS[0], VARIANTS[1], tiny)
    design = {
        "margin": 0.05,
        "contrasts": [{"name": "bn vs tiny", "a": VARIANTS[1].name, "b": tiny.name}],
    }
    log_sweep(client, exp_id, "contrast", variants=variants, design=design)
    comparison = compare_runs(uri, experiment="contrast")
    assert comparison.verdicts[tiny.name] == "equivalent"  # within ±5% at 8 seeds
    declared = comparison.comparisons.set_index("comparison").loc["bn vs tiny"]
    assert declared["verdict"] == "better" and declared["delta_pct_high"] < 0
    assert len(comparison.comparisons) == 3  # one family of three
    as_json = json.loads(render_text(comparison, "json"))
    assert [c["comparison"] for c in as_json["comparisons"]][-1] == "bn vs tiny"
    assert as_json["design"]["margin"] == 0.05 and "Bonferroni" in as_json["rule"]
    runs = {
        r.data.tags["bnplace.variant"]: r
        for r in client.search_runs([exp_id], "tags.`bnplace.kind` = 'variant'")
    }
    bn_run = runs[VARIANTS[1].name]
    assert bn_run.data.tags["bnplace.contrast1"].startswith("bn vs tiny: better")
    assert bn_run.data.metrics["contrast1.delta_pct"] < 0
    assert runs[tiny.name].data.tags["bnplace.verdict"] == "equivalent"
    assert -5 < runs[tiny.name].data.metrics["delta_pct_low"] < 0
    narrow = compare_runs(uri, experiment="contrast", margin=0.001, log_to_mlflow=False)
    assert narrow.verdicts[tiny.name] == "inconclusive"  # --margin overrides the config's


def test_a_sweep_run_without_a_plan_is_refused_with_a_reason(store) -> None:
    uri, client, _root = store
    exp_id = new_experiment(store, "planless")
    log_sweep(client, exp_id, "planless", with_plan=False)
    with pytest.raises(TrackingError, match=r"no plan\.json artifact"):
        compare_runs(uri, experiment="planless", log_to_mlflow=False)
