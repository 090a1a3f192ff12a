"""Helpers the benchmarks share: the machine's load, and timing wrapped functions.

In: nothing but /proc and the clock. Out: `busy_seconds` and `own_seconds` (to tell whether a
run shared the machine), `timed` (a wrapper that adds a function's wall time to a dict) and
`undisturbed` (repeats a run that shared the cores).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores, /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds used by this process and its finished children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(into: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            into[name] += time.perf_counter() - started

    return wrapper


def undisturbed(run: Callable[[], dict[str, Any]], wall: str, tries: int) -> dict[str, Any]:
    """`run()` again while other processes took more than 5 % of the cores during it.

    Other jobs on a 2-core machine distort timings more than anything measured here. After
    `tries` disturbed runs, the least disturbed one is kept (and shows in the load line).
    """
    cores = os.cpu_count() or 1
    kept: dict[str, Any] | None = None
    for _ in range(max(1, tries)):
        result = run()
        result["load"] = result["others"] / (result[wall] * cores)
        if kept is None or result["load"] < kept["load"]:
            kept = result
        if result["load"] <= 0.05:
            break
        print(f"  (a run shared the machine: {100 * result['load']:.0f} % load; again)")
    assert kept is not None
    return kept


def load_line(counted: list[dict[str, Any]], wall_key: str) -> str:
    """How much CPU other processes took during the counted runs (a shared machine shows)."""
    others = sum(run["others"] for run in counted)
    wall = sum(run[wall_key] for run in counted)
    cores = os.cpu_count() or 1
    share = others / (wall * cores)
    return (
        f"other processes used {others:.0f} CPU-s during the {wall:.0f} s of counted runs "
        f"({100 * share:.0f} % of {cores} cores)"
        + ("; the machine was shared: rerun when it is quiet" if share > 0.05 else "")
    )
