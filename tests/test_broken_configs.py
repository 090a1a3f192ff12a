"""Every file in tests/broken/ is a realistic config mistake; its message must point at it.

In: the YAML files under tests/broken/, each opening with comment lines
`# expect: LINE:COLUMN KEY | fragment | fragment ...` (KEY `-` for a problem with no key), one
per problem the loader must report. Out: pass/fail per file: `load_config` raises a
`ConfigError` with exactly that many problems, each at that line and column, with that key path,
and with every fragment in its rendered text. Plus the CLI: `bnplace validate` on a broken file
exits 2 with `file:line:column` and no traceback. No TensorFlow here; the whole file runs in a
second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnplace.config import load_config, parse_config
from bnplace.console.cli import app
from bnplace.names.errors import ConfigError, Problem

BROKEN_DIR = Path(__file__).parent / "broken"
BROKEN = sorted(BROKEN_DIR.glob("*.yaml"))
QUICKSTART = Path(__file__).parents[1] / "configs" / "quickstart.yaml"
EXPECT = re.compile(r"^# expect: (\d+):(\d+) (\S+)(?: \| (.*))?$")


@dataclass(frozen=True)
class Expected:
    line: int
    column: int
    key: str  # "" for a problem that has no key path (YAML syntax, empty file)
    fragments: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.line}:{self.column} {self.key or '-'} | {' | '.join(self.fragments)}"


def expectations(path: Path) -> list[Expected]:
    out = []
    for text in path.read_text(encoding="utf-8").splitlines():
        if not text.startswith("# expect:"):
            continue
        match = EXPECT.match(text)
        assert match, f"{path.name}: malformed expect line: {text!r}"
        line, column, key, rest = match.groups()
        fragments = tuple(f.strip() for f in (rest or "").split(" | ") if f.strip())
        out.append(Expected(int(line), int(column), "" if key == "-" else key, fragments))
    return out


def rendered(problems: tuple[Problem, ...]) -> str:
    return "\n".join(p.render() for p in problems)


def test_there_are_enough_broken_configs() -> None:
    assert len(BROKEN) >= 30
    for path in BROKEN:
        assert expectations(path), f"{path.name} has no '# expect:' line"


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_config_reports_each_problem_where_it_is(path: Path) -> None:
    expected = expectations(path)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems
    report = rendered(problems)
    assert len(problems) == len(expected), f"expected {len(expected)} problem(s), got:\n{report}"
    for want in expected:
        at = [p for p in problems if (p.line, p.column) == (want.line, want.column)]
        assert at, f"no problem at {want.line}:{want.column} ({want.describe()}); got:\n{report}"
        match = [p for p in at if p.key == want.key]
        assert match, f"no problem with key {want.key!r} at {want.line}:{want.column}:\n{report}"
        problem = match[0]
        text = problem.render()
        assert problem.file == str(path)
        assert text.startswith(f"{path}:{want.line}:{want.column}: ")
        for fragment in want.fragments:
            assert fragment in text, f"{fragment!r} missing from:\n{text}"
    # the exception's own text is every problem, one after the other
    assert str(info.value) == report


def test_problems_come_in_file_order() -> None:
    problems = _problems_of(BROKEN_DIR / "unknown_key_in_train.yaml")
    assert [p.line for p in problems] == sorted(p.line or 0 for p in problems)


def test_python_tag_is_refused_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = f'experiment: !!python/object/apply:os.system ["touch {marker}"]\n'
    with pytest.raises(ConfigError, match="is not allowed"):
        parse_config(text, "x.yaml")
    assert not marker.exists()


# --- --set: problems name the override, not a line of the file ---------------------------------


def _problems_of(path: Path, sets: tuple[str, ...] = ()) -> tuple[Problem, ...]:
    with pytest.raises(ConfigError) as info:
        parse_config(path.read_text(encoding="utf-8"), str(path), sets)
    return info.value.problems


def test_set_with_unknown_key_names_the_set_and_suggests() -> None:
    (problem,) = _problems_of(QUICKSTART, ("train.epoch=3",))
    assert problem.location() == "--set train.epoch=3"
    assert problem.line is None
    assert problem.key == "train.epoch"
    assert "unknown key 'epoch'" in problem.message
    assert problem.suggestion == "epochs"


def test_set_with_unknown_block_setting_suggests_the_setting() -> None:
    (problem,) = _problems_of(QUICKSTART, ("conv.filtres=8",))
    assert problem.location() == "--set conv.filtres=8"
    assert "has no site or setting 'filtres'" in problem.message
    assert problem.suggestion == "conv.filters"


def test_set_with_bad_value_points_at_the_set_not_the_file() -> None:
    # conv.filters is written on line 18 of the file; the bad value came from the command line
    (problem,) = _problems_of(QUICKSTART, ("conv.filters=many",))
    assert problem.location() == "--set conv.filters=many"
    assert problem.key == "conv.filters"
    assert problem.got == "'many'"
    assert problem.render().startswith("--set conv.filters=many: conv.filters: ")


def test_set_of_a_site_reports_the_misspelled_layer_inside_it() -> None:
    (problem,) = _problems_of(QUICKSTART, ("conv.pre_act=[batchnorm]",))
    assert problem.location() == "--set conv.pre_act=[batchnorm]"
    assert problem.key == "conv.pre_act[0].batchnorm"
    assert problem.suggestion == "batch_norm"


def test_set_that_breaks_a_rule_elsewhere_says_so_at_the_file_line() -> None:
    # the metric in the file is fine for forecasting; --set turns the data into classification
    (problem,) = _problems_of(QUICKSTART, ("data.generator=shapes",))
    assert problem.key == "compare.metric"
    assert problem.file == str(QUICKSTART) and problem.line == 37
    assert "(with --set data.generator=shapes)" in problem.message


def test_set_without_equals_and_with_bad_yaml() -> None:
    problems = _problems_of(QUICKSTART, ("train.epochs", "lstm.units=[1"))
    assert [p.location() for p in problems] == ["--set", "--set lstm.units=[1"]
    assert "expected key=value" in problems[0].message
    assert "not valid YAML" in problems[1].message
    assert "\n" not in problems[1].message


# --- the CLI ----------------------------------------------------------------------------------

CLI_CASES = [
    "unknown_key_in_block.yaml",
    "yaml_unclosed_bracket.yaml",
    "duplicate_yaml_key.yaml",
    "several_problems.yaml",
    "python_object_tag.yaml",
    "empty_file.yaml",
]


@pytest.mark.parametrize("name", CLI_CASES)
def test_cli_validate_broken_config_exits_2_with_location(name: str) -> None:
    path = BROKEN_DIR / name
    result = CliRunner().invoke(app, ["validate", str(path)], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for want in expectations(path):
        assert f"{path}:{want.line}:{want.column}: " in result.output


def test_cli_validate_reports_set_problems() -> None:
    args = ["validate", str(QUICKSTART), "--set", "train.epoch=3"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert "--set train.epoch=3: train.epoch: unknown key 'epoch'" in result.output
    assert "did you mean: epochs" in result.output


def test_cli_prints_square_brackets_of_the_message() -> None:
    path = BROKEN_DIR / "layer_used_as_block.yaml"
    result = CliRunner().invoke(app, ["validate", str(path)], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "e.g. `placements: {<block id>.post_act: [batch_norm]}`" in result.output
