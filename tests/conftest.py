"""Fixtures shared by the test files.

`prepared`: a module's `CONFIG` (a config text, module constant) planned with its data prepared,
once per module, in a folder of its own beside an empty store (tests/sweeps.py has the helpers
that run the CLI and read the store back).
"""

from __future__ import annotations

import pytest

from bnplace.run.sweep import Prepared, plan_sweep
from tests.sweeps import sqlite_store


@pytest.fixture(scope="module")
def prepared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """The plan and prepared data of the requesting module's `CONFIG`."""
    folder = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    sqlite_store(folder)
    path = folder / "c.yaml"
    path.write_text(request.module.CONFIG)
    return plan_sweep(path)
