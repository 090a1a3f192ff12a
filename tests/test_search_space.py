"""Search space: site menus -> placements, bounded, pruned by the bounds and by lint (pure)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bnplace.config import parse_config
from bnplace.config.sweep import MAX_PLACEMENTS
from bnplace.names.errors import ConfigError
from bnplace.plan import DataShape, Plan, make_plan
from bnplace.plan.search_space import search_space, site_options

ROOT = Path(__file__).resolve().parents[1]
HEADER = """
experiment: s
data: {source: synthetic, generator: sine_mix, length: 400, features: 3, window: 16}
model:
  - conv1d: {id: conv, filters: 8, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: lstm, units: 8}
"""


def loaded_of(search: str):
    return parse_config(HEADER + textwrap.dedent(search), "s.yaml")


def plan_of(search: str) -> Plan:
    def describe(config):
        return DataShape("forecast", config.data.window, config.data.features, 1, "fp", 0)

    return make_plan(loaded_of(search), describe)


def test_menus_expand_to_ordered_stacks_without_a_kind_twice() -> None:
    options = site_options(["none", "batch_norm", {"dropout": [0.1, 0.3]}], 2)
    labels = [o.label for o in options]
    assert labels[:4] == ["none", "batch_norm", "dropout(0.1)", "dropout(0.3)"]
    assert "batch_norm+dropout(0.1)" in labels and "dropout(0.3)+batch_norm" in labels
    assert not any("dropout(0.1)+dropout" in label for label in labels)
    # none, 3 single layers, bn with each rate in both orders: 1 + 3 + 4
    assert len(options) == 8
    assert [o.label for o in site_options(["batch_norm", [{"dropout": 0.2}, "batch_norm"]], 1)] == [
        "batch_norm"  # the fixed stack has 2 layers: past max_per_site 1
    ]


def test_plan_enumerates_prunes_by_each_bound_and_lint_and_says_why() -> None:
    plan = plan_of("""
    search:
      sites:
        conv.pre_act: [none, batch_norm, layer_norm]
        conv.post_act: [none, batch_norm]
        lstm.after: [none, batch_norm, {dropout: 0.2}, {alpha_dropout: 0.1}]
      max_norm: 1
      apart: [[alpha_dropout, layer_norm]]
      prune: [alpha_dropout_needs_selu]
      seeds: {min: 4, max: 6}
    """)
    assert plan.combinations == 3 * 2 * 4
    pruned = {p.reason: p.count for p in plan.pruned}
    # brute force over the same product: norms > 1; then alpha_dropout with layer_norm
    norms = [0, 1, 1]
    assert pruned["more than 1 normalization layers in the model (search.max_norm)"] == sum(
        1 for a in range(3) for b in range(2) for c in range(4) if norms[a] + b + (c == 1) > 1
    )
    assert pruned["alpha_dropout and layer_norm in one model (search.apart)"] == 1
    # alpha_dropout with none/bn x none/bn, at most one norm, no layer_norm
    assert pruned["lint alpha_dropout_needs_selu (search.prune)"] == 3
    kept = len(plan.variants) + len(plan.merges)
    assert kept + sum(pruned.values()) == plan.combinations
    assert all("alpha_dropout" not in v.name for v in plan.variants)
    assert len(plan.trials) == len(plan.variants) * 6
    assert plan.to_dict()["search"]["combinations"] == 24


def test_lint_errors_prune_instead_of_failing_the_plan() -> None:
    plan = plan_of("""
    search:
      sites:
        lstm.after: [none, spatial_dropout, layer_norm]
    """)
    assert {p.reason for p in plan.pruned} == {"lint error spatial_dropout_on_flat"}
    assert not plan.errors and len(plan.variants) == 2


def test_equivalent_placements_merge() -> None:
    # a linear conv: pre_act and post_act are the same point of the network
    text = HEADER.replace("activation: relu", "activation: linear") + textwrap.dedent("""
    search:
      sites:
        conv.pre_act: [none, batch_norm]
        conv.post_act: [none, batch_norm]
    """)

    def describe(config):
        return DataShape("forecast", config.data.window, config.data.features, 1, "fp", 0)

    plan = make_plan(parse_config(text, "s.yaml"), describe)
    assert len(plan.variants) == 3 and len(plan.merges) == 1


def test_a_ten_thousand_placement_space_enumerates_in_full() -> None:
    loaded = loaded_of("""
    search:
      sites:
        input: [none, {gaussian_noise: 0.1}, {dropout: [0.1, 0.2]}]
        conv.before: [none, batch_norm, layer_norm, {dropout: 0.1}, {dropout: 0.3}]
        conv.pre_act: [none, batch_norm, layer_norm, {dropout: 0.1}, {dropout: 0.3}]
        conv.post_act: [none, batch_norm, layer_norm, {dropout: 0.1}, {dropout: 0.3}]
        lstm.after: [none, batch_norm, layer_norm, {dropout: 0.1}, {dropout: 0.3}]
        pre_output: [none, {dropout: 0.1}, {dropout: 0.5}, layer_norm]
      seeds: {min: 4, max: 10}
    """)
    space = search_space(loaded)
    assert space.combinations == 4 * 5**4 * 4 == 10_000
    assert len(space.cells) == 10_000 == MAX_PLACEMENTS
    assert len({c.name for c in space.cells}) == len(space.cells)


@pytest.mark.parametrize(
    ("search", "where", "words"),
    [
        ("search:\n  sites: {conv.pre_akt: [none, batch_norm]}", "s.yaml:8", "conv.pre_act"),
        ("search:\n  sites: {conv.pre_act: [none, batch_nrm]}", "s.yaml:8", "batch_nrm"),
        ("search:\n  sites: {conv.pre_act: [none]}\n  apart: [[bn, dropout]]", "s.yaml:9", "bn"),
        (
            "search:\n  sites: {conv.pre_act: [none, batch_norm]}\n"
            "sweep: {axes: {lstm.units: [4, 8]}}",
            "s.yaml:9",
            "cannot be combined",
        ),
        (
            "search:\n  max_per_site: 2\n  sites:\n"
            + "".join(
                f"    {site}: [none, batch_norm, layer_norm, dropout, gaussian_noise, "
                "alpha_dropout]\n"
                for site in ("input", "conv.before", "conv.pre_act", "conv.post_act", "lstm.after")
            ),
            "s.yaml:10",
            "11,881,376 combinations",
        ),
        (
            "search:\n  sites: {conv.pre_act: [none, batch_norm]}\n"
            "  seeds: {min: 4, max: 8, step: 1, spending: 1}",
            "s.yaml:9",
            "take no spending",
        ),
    ],
)
def test_bad_search_sections_are_located(search: str, where: str, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        plan_of(search)
    message = str(raised.value)
    assert where in message and words in message, message


def test_max_placements_bound_is_located(monkeypatch: pytest.MonkeyPatch) -> None:
    space = importlib.import_module("bnplace.plan.search_space")  # the module, not its function
    monkeypatch.setattr(space, "MAX_PLACEMENTS", 5)
    with pytest.raises(ConfigError) as raised:
        plan_of(
            "search:\n  sites: {conv.pre_act: [none, batch_norm, layer_norm, dropout, "
            "spatial_dropout, gaussian_noise]}"
        )
    assert "s.yaml:8" in str(raised.value) and "more than 5 placements" in str(raised.value)


def test_cli_plan_reports_the_space(tmp_path: Path) -> None:
    config = tmp_path / "s.yaml"
    config.write_text(
        HEADER
        + textwrap.dedent("""
    search:
      sites:
        conv.pre_act: [none, batch_norm]
        lstm.after: [none, batch_norm, spatial_dropout]
      max_norm: 1
    """)
    )
    done = subprocess.run(
        [sys.executable, "-m", "bnplace", "plan", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert "s: 3 placements x up to 40 seeds = at most 120 trials (a race)" in done.stdout
    assert "the menus make 6 combinations; 3 placements remain" in done.stdout
    assert "pruned 1: more than 1 normalization layers" in done.stdout
    assert "pruned 2: lint error spatial_dropout_on_flat" in done.stdout
    checked = subprocess.run(
        [sys.executable, "-m", "bnplace", "validate", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert checked.returncode == 0, checked.stderr
    # validate plans the search (bounds, lint pruning, merges): the placements plan shows
    assert "a search of 3 placements within the bounds, seeds 5 to 40" in checked.stdout


@pytest.mark.parametrize(
    ("option", "words"),
    [
        (["--filter", "batch_norm"], "--filter cannot narrow a search"),
        (["--seeds", "4"], "--seeds does not apply to a search"),
    ],
)
def test_run_refuses_options_a_race_cannot_take(
    tmp_path: Path, option: list[str], words: str
) -> None:
    config = tmp_path / "s.yaml"
    config.write_text(HEADER + "search:\n  sites: {conv.pre_act: [none, batch_norm]}\n")
    done = subprocess.run(
        [sys.executable, "-m", "bnplace", "run", str(config), *option],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert words in done.stderr
    assert not (tmp_path / "mlflow.db").exists()
