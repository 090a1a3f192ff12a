"""The house drawn from the imports: `make lint`'s import contracts hold, and they bite.

In: the bnplace/ package and pyproject.toml's [tool.importlinter] contracts. Out: the contracts
and scripts/check_house.py pass on the code as it is, and fail on a temporary copy with one
deliberate import against the house (a pure statistics module importing the MLflow store; a
package's leaf importing its own `__init__`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="import-linter is not installed (pip install -e '.[dev]')"
)


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "bnplace", tmp_path / "bnplace", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    return tmp_path


def _lint(folder: Path) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    # PYTHONPATH puts the copy ahead of the editable install, so grimp reads the copy's files
    env = {**os.environ, "PYTHONPATH": str(folder)}
    run = {"cwd": folder, "env": env, "capture_output": True, "text": True, "timeout": 120}
    contracts = subprocess.run([str(LINT_IMPORTS), "--no-cache"], **run)
    house = subprocess.run([sys.executable, "scripts/check_house.py"], **run)
    return contracts, house


def _add_line(path: Path, line: str) -> None:
    text = path.read_text()
    head, _, rest = text.partition("from __future__ import annotations\n")
    path.write_text(head + "from __future__ import annotations\n\n" + line + "\n" + rest)


def test_the_house_holds_and_a_bad_import_breaks_it(tmp_path: Path) -> None:
    contracts, house = _lint(_copy(tmp_path / "good"))
    assert contracts.returncode == 0, contracts.stdout + contracts.stderr
    assert "0 broken" in contracts.stdout
    assert house.returncode == 0, house.stdout

    bad = _copy(tmp_path / "bad")
    _add_line(bad / "bnplace/stats/verdicts.py", "import bnplace.store.track  # noqa: F401")
    _add_line(bad / "bnplace/plan/lint.py", "import bnplace.plan  # noqa: F401")
    contracts, house = _lint(bad)
    assert contracts.returncode != 0
    assert "bnplace.stats.verdicts -> bnplace.store.track" in contracts.stdout
    assert "BROKEN" in contracts.stdout
    assert house.returncode == 1
    assert "bnplace.plan.lint imports its own package bnplace.plan" in house.stdout
