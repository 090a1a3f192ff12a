"""The house rules import-linter has no contract for, checked on the import graph (grimp).

In: the installed `bnplace` package. Out: exit 0, or 1 with one line per broken rule:
- a package's `__init__` only faces outward: no module inside a package imports the package
  itself (its `__init__`), which would make the package's leaves depend on its front door;
- top-level subsystems only: bnplace/ holds packages, plus `__init__` and `__main__`.
Run by `make lint` after `lint-imports` (pyproject.toml [tool.importlinter] holds the layers).
"""

from __future__ import annotations

import sys

import grimp


def inward_imports(graph: grimp.ImportGraph, root: str) -> list[str]:
    """Imports of a package's own `__init__` by modules inside that package."""
    found = []
    for module in sorted(graph.modules):
        if not module.startswith(root + ".") or not graph.find_children(module):
            continue
        for importer in sorted(graph.find_modules_that_directly_import(module)):
            if importer.startswith(module + "."):
                found.append(f"{importer} imports its own package {module} (its __init__)")
    return found


def loose_modules(graph: grimp.ImportGraph, root: str) -> list[str]:
    allowed = {f"{root}.__main__"}
    return [
        f"{child} is a loose module: bnplace/ holds the subsystems' packages"
        for child in sorted(graph.find_children(root))
        if not graph.find_children(child) and child not in allowed
    ]


def main() -> int:
    graph = grimp.build_graph("bnplace", cache_dir=None)
    problems = inward_imports(graph, "bnplace") + loose_modules(graph, "bnplace")
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
