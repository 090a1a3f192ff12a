"""Every config key given a huge, a negative and a wrongly typed value: `validate` exits 0 or 2,
never with a traceback; `plan` agrees with `validate`; data sizes are bounded like a model's.

In-process through the CLI (typer's CliRunner), on the tiny synthetic config of the end-to-end
tests with every default filled in (the resolved config names every key a config can set).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bnplace.config import load_config
from bnplace.console.cli import app
from tests.sweeps import TINY

HUGE = 10**12  # a typo's size: numpy cannot allocate it, Python can count it
VALUES: tuple[Any, ...] = (HUGE, -1, "x")


def _keys(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [k for key, v in value.items() for k in _keys(v, (*prefix, key))] + [prefix]
    if isinstance(value, list):
        return [k for i, v in enumerate(value) for k in _keys(v, (*prefix, i))] + [prefix]
    return [prefix]


def _with(tree: Any, key: tuple[Any, ...], value: Any) -> Any:
    if not key:
        return value
    copy = list(tree) if isinstance(tree, list) else dict(tree)
    copy[key[0]] = _with(tree[key[0]], key[1:], value)
    return copy


def _invoke(path: Path, command: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [command, str(path), *args], env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{command} raised {result.exception!r}:\n{result.output}")
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_text(TINY)
    return load_config(path, ()).config.model_dump(mode="json", exclude_none=True)


def test_every_key_with_a_bad_value_exits_0_or_2_without_a_traceback(
    tmp_path: Path, resolved: dict[str, Any]
) -> None:
    path = tmp_path / "c.yaml"
    keys = [key for key in _keys(resolved) if key]
    assert len(keys) > 50  # every section's keys, not the few TINY writes
    refused = 0
    for key in keys:
        for value in VALUES:
            path.write_text(yaml.safe_dump(_with(resolved, key, value)))
            code, output = _invoke(path, "validate")
            assert code in (0, 2), (key, value, output)
            refused += code == 2
    assert refused > len(keys)  # most keys refuse most of these values


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("data.length", HUGE),
        ("data.features", HUGE),
        ("data.features", 2**63),
        ("data.window", HUGE),
        ("data.horizon", HUGE),
        ("data.seed", -1),
    ],
)
def test_data_sizes_are_refused_with_a_located_message_by_validate_and_plan(
    tmp_path: Path, key: str, value: int
) -> None:
    path = tmp_path / "c.yaml"
    section, field = key.split(".")
    raw = yaml.safe_load(TINY)
    raw[section][field] = value
    path.write_text(yaml.safe_dump(raw))
    for command in ("validate", "plan"):
        code, output = _invoke(path, command)
        assert code == 2, output
        assert "data: " in output or f"data.{field}: " in output, output
    if field in ("length", "features"):
        assert f"{path}:" in output, output  # file, line and column
        assert f"data.{field}: " in output, output  # the line of the size at fault
        assert "cannot fit this machine" in output and "B at least" in output, output


def test_validate_rejects_a_baseline_that_names_no_variant_as_plan_does(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(TINY + "compare: {baseline: nope}\nsweep: {axes: {conv.filters: [2, 3]}}\n")
    for command in ("validate", "plan"):
        code, output = _invoke(path, command)
        assert code == 2, output
        assert "compare.baseline: 'nope' names 0 of the plan's variants" in output, output
