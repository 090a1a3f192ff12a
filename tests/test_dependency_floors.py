"""The version floors in pyproject.toml cover what the code calls, and cover every import.

In: pyproject.toml, the import statements of bnplace/ (read with `ast`), and a table of the
APIs bnplace needs with the release that introduced each. Out: every third-party package the
code imports is declared (a dependency or an extra) with a `>=` floor; each floor is at least
the newest release any listed API needs; a keyword that raised a floor before (SciPy's `rng=`,
1.15) is not passed without the floor that has it; the installed versions meet the floors. Why
no CI job installs the floors themselves: see the README (*Dependency floors*).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

# package -> (the release it first has, what bnplace calls that needs it)
API_NEEDS: dict[str, list[tuple[str, str]]] = {
    "scipy": [
        ("1.7", "scipy.stats.binomtest (McNemar's exact test, compare/paired.py)"),
        ("1.7", "scipy.stats.studentized_range (Friedman's post-hoc, compare/stats.py)"),
    ],
    "pandas": [
        ("2.0", "pd.to_datetime(format='mixed') (csv time columns, data/csvcolumns.py)"),
    ],
    "numpy": [("1.20", "numpy.lib.stride_tricks.sliding_window_view (data/dataset.py)")],
    "pydantic": [("2.0", "BaseModel.model_validate / model_dump, Field(discriminator=...)")],
    "keras": [
        ("3.0", "keras.ops, keras.random.SeedGenerator, keras.saving (build/layers.py)"),
        ("3.0", "keras.src.layers.rnn.dropout_rnn_cell.DropoutRNNCell (build/layers.py)"),
    ],
    "mlflow": [("3.0", "the UI's model-training view link, ?workflowType=machine_learning")],
    "typer": [
        ("0.9", "typing.Annotated parameters (cli.py)"),
        ("0.12", "rich_markup_mode=None and --install-completion / --show-completion"),
    ],
    "pyyaml": [("5.1", "yaml.SafeLoader.get_single_node, flatten_mapping (config/yamlpos.py)")],
    "rich": [("12.0", "Console(soft_wrap=...), Text(no_wrap=...)")],
    "pyarrow": [("7.0", "DataFrame.to_parquet(engine='pyarrow') (bnplace export)")],
}
# import name -> distribution name where they differ
DISTRIBUTION = {"yaml": "pyyaml", "pydantic_core": "pydantic"}


def floors() -> dict[str, Version]:
    """Every `>=` floor of the dependencies and extras, by distribution name."""
    project = PYPROJECT["project"]
    texts = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        texts += extra
    out: dict[str, Version] = {}
    for text in texts:
        req = Requirement(text)
        name = "tensorflow" if req.name == "tensorflow-cpu" else req.name
        for spec in req.specifier:
            if spec.operator == ">=":
                out[name] = max(out.get(name, Version(spec.version)), Version(spec.version))
    return out


def imported() -> set[str]:
    """Third-party packages bnplace imports (statements and importlib.import_module('x'))."""
    found: set[str] = set()
    for path in (ROOT / "bnplace").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", "") == "import_module"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(str(node.args[0].value).split(".")[0])
    return {DISTRIBUTION.get(m, m) for m in found if m not in sys.stdlib_module_names} - {"bnplace"}


def test_every_imported_package_has_a_floor() -> None:
    missing = sorted(imported() - set(floors()))
    assert not missing, f"imported but not declared with a >= floor in pyproject: {missing}"


@pytest.mark.parametrize("package", sorted(API_NEEDS))
def test_each_floor_covers_the_apis_the_code_calls(package: str) -> None:
    floor = floors().get(package)
    assert floor is not None, f"{package}: no >= floor in pyproject.toml"
    for needed, what in API_NEEDS[package]:
        assert floor >= Version(needed), f"{package}>={floor}, but {what} needs {needed}"


def test_no_keyword_is_passed_that_the_floor_lacks() -> None:
    """SciPy's `rng=` keyword (the bootstrap once passed it) exists from 1.15 on."""
    calls = []
    for path in (ROOT / "bnplace").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if "scipy" in text:
            calls += [f"{path.name}: {m}" for m in re.findall(r"\bst\.\w+\([^)]*\brng=", text)]
    if calls:
        assert floors()["scipy"] >= Version("1.15"), calls


def test_the_installed_versions_meet_the_floors() -> None:
    for package, floor in floors().items():
        names = ("tensorflow-cpu", "tensorflow") if package == "tensorflow" else (package,)
        for name in names:
            try:
                installed = Version(version(name))
            except PackageNotFoundError:
                continue
            assert installed >= floor, f"{name} {installed} is below its floor {floor}"
