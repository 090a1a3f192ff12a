"""The command line: start-up cost, the commands that need no training, and the quickstart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from bnplace.console.cli import app
from tests.sweeps import bnplace

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_help_loads_no_heavy_library() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from bnplace.console.cli import app; "
        "result = CliRunner().invoke(app, ['--help']); assert result.exit_code == 0; "
        "assert 'bnplace run' in result.output; "
        "heavy = [m for m in ('tensorflow', 'keras', 'mlflow', 'ray', 'pandas', 'matplotlib') "
        "if m in sys.modules]; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_version_and_shell_completion() -> None:
    from bnplace import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"bnplace {__version__}"
    listed = runner.invoke(app, ["--help"]).output
    for name in ("--version", "--install-completion", "status", "export"):
        assert name in listed
    shown = subprocess.run(
        [sys.executable, "-m", "bnplace", "--show-completion", "bash"],
        capture_output=True,
        text=True,
        # the shell by name, not detected from the parent process (a test run started by a
        # script has no shell above it: "Shell  not supported"); typer's own switch for this
        env={**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
    )
    assert shown.returncode == 0, shown.stderr
    assert "complete" in shown.stdout and "_BNPLACE_COMPLETE" in shown.stdout.upper()


def test_compare_on_a_missing_store_is_an_input_error(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'nowhere.db'}"
    result = runner.invoke(app, ["compare", "--tracking-uri", missing])
    assert result.exit_code == 2, result.output
    assert "does not exist" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "nowhere.db").exists()


def test_init_writes_a_config_that_validates_and_plans(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    assert runner.invoke(app, ["init", str(path)]).exit_code == 0
    assert runner.invoke(app, ["init", str(path)]).exit_code == 1  # no silent overwrite
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0 and "valid" in result.output
    result = runner.invoke(app, ["plan", str(path), "--json"])
    assert result.exit_code == 0
    plan = json.loads(result.output)
    assert len(plan["variants"]) == 4 and len(plan["trials"]) == 28
    # the starter follows bnplace's own advice: no variant has a finding, no warning at all
    assert [f for v in plan["variants"] for f in v["findings"]] == []
    text = path.read_text()
    path.write_text(text.replace("  # baseline:", "  baseline:"))  # names a real variant
    result = runner.invoke(app, ["plan", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output and "bias_before_bn" not in result.output
    contrast = text.replace("  # contrasts:", "  contrasts:").replace("  #   - [", "    - [")
    path.write_text(contrast)  # so does the commented contrast
    assert runner.invoke(app, ["plan", str(path)]).exit_code == 0


def test_plan_counts_training_steps_without_a_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = str(ROOT / "configs" / "quickstart.yaml")
    result = runner.invoke(app, ["plan", config, "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    estimate = answer["time_estimate"]
    assert estimate["seconds"] is None and estimate["trials"] == len(answer["trials"])
    assert estimate["steps"] > 0 and estimate["steps"] % len(answer["trials"]) == 0
    assert not (tmp_path / "mlflow.db").exists()  # planning never creates a store
    shown = runner.invoke(app, ["plan", config], env={"COLUMNS": "300"})
    assert "no per-step cost measured in the store yet" in shown.output


def test_plan_exits_2_when_a_variant_has_a_lint_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "experiment: e\n"
        "data: {source: synthetic, length: 300, features: 1, window: 8}\n"
        "model: [{lstm: {units: 4}}]\n"
        "placements: {input: [layer_norm]}\n"
    )
    result = runner.invoke(app, ["plan", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "layer_norm_single_channel" in result.output


def test_plan_warns_of_a_trending_target_and_difference_clears_it(tmp_path: Path) -> None:
    """A target whose test split leaves the train split's range is named by `plan` (and
    `bnplace data`), with the switch that forecasts its changes instead."""
    (tmp_path / "s.csv").write_text("y\n" + "\n".join(f"{0.5 * i + i % 3}" for i in range(300)))
    config = (
        "experiment: e\n"
        "data: {source: csv, path: s.csv, window: 8%s}\n"
        "model: [{lstm: {units: 4}}]\n"
    )
    (tmp_path / "c.yaml").write_text(config % "")
    result = runner.invoke(app, ["plan", str(tmp_path / "c.yaml")], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "target 'y': 100% of the test split lies outside the train split's range" in (
        result.output
    )
    assert "`difference: true`" in result.output
    (tmp_path / "c.yaml").write_text(config % ", difference: true")
    result = runner.invoke(app, ["plan", str(tmp_path / "c.yaml")], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "outside the train split's range" not in result.output


def test_plan_shows_a_variant_layer_by_layer() -> None:
    config = str(ROOT / "configs" / "seed_question.yaml")
    result = runner.invoke(app, ["plan", config, "--variant", "model=answer", "--json"])
    assert result.exit_code == 0, result.output
    detail = json.loads(result.output)
    assert detail["input_shape"] == [None, 21, 4] and detail["outputs"] == 1
    classes = [layer["keras_class"] for layer in detail["layers"]]
    assert classes[:4] == ["StepConv1D", "BatchNormalization", "Activation", "AlphaDropout"]
    bn = detail["layers"][1]
    assert bn["args"]["scale"] is False and bn["args"]["momentum"] == 0.99
    assert bn["output_shape"] == [None, 21, 10] and bn["params"] == 30
    assert detail["layers"][3]["args"] == {"rate": 0.1}
    assert sum(layer["params"] for layer in detail["layers"]) == detail["params"]
    shown = runner.invoke(app, ["plan", config, "--variant", "answer"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "BatchNormalization" in shown.output and "momentum=0.99" in shown.output
    assert "(None, 21, 4)" in shown.output
    whole = json.loads(runner.invoke(app, ["plan", config, "--json"]).output)
    assert whole["variants"][0]["model"]["input_shape"] == [None, 21, 4]
    missing = runner.invoke(app, ["plan", config, "--variant", "nothing"])
    assert missing.exit_code == 2 and "matches 0 variants" in missing.output


def test_data_command_shows_splits_and_fingerprint() -> None:
    result = runner.invoke(app, ["data", str(ROOT / "configs" / "csv_energy.yaml")])
    assert result.exit_code == 0, result.output
    assert "fingerprint:" in result.output and "train" in result.output
    # statistics of the split the scaler is fitted on, and the scaler's fitted values
    assert "feature (train split)" in result.output
    assert "  load_kw                (x - 128.543) / 36.3163" in result.output


def test_dry_run_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", str(ROOT / "configs" / "quickstart.yaml"), "--dry-run"])
    assert result.exit_code == 0
    assert "bn=pre_act" in result.output
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_quickstart_trains_and_compares_end_to_end(tmp_path: Path) -> None:
    """The README's main job, shortened with overrides: runs, comparison and UI pointer."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bnplace",
            "run",
            str(ROOT / "configs" / "quickstart.yaml"),
            "--seeds",
            "2",
            "--epochs",
            "1",
            "--jobs",
            "2",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bnplace ui" in done.stdout
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("quickstart")
    sweeps = client.search_runs([exp.experiment_id], "tags.`bnplace.kind` = 'sweep'")
    assert len(sweeps) == 1
    artifacts = {a.path for a in client.list_artifacts(sweeps[0].info.run_id, "compare")}
    assert {"compare/report.md", "compare/report.html", "compare/plots"} <= artifacts
    plots = client.list_artifacts(sweeps[0].info.run_id, "compare/plots")
    assert plots and all(p.path.endswith(".png") for p in plots)
    variants = client.search_runs([exp.experiment_id], "tags.`bnplace.kind` = 'variant'")
    assert len(variants) == 3
    assert all("bnplace.verdict" in v.data.tags for v in variants)

    # the comparison read back from the store that run wrote (in this process: the entry
    # point's start is the run's above)
    shown = bnplace(tmp_path, "compare", "quickstart", "--format", "json", "--no-log")
    assert shown.returncode == 0, shown.stderr
    assert "bn=pre_act" in shown.stdout
