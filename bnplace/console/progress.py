"""Progress displays for a sweep: a live rich view on a terminal, plain lines otherwise.

In: the plan, then trial events (started, epoch ended, ended). Out: text on the console. The
live view shows trials done / failed / running, the current epoch of each running trial,
elapsed time and ETA; the plain view prints one line per event, for logs and CI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from bnplace.names.metrics import HISTORY_METRICS, TEST_ACCURACY, TEST_RMSE, TIME_PER_EPOCH_S

if TYPE_CHECKING:
    from bnplace.plan import Plan
    from bnplace.trial.result import TrialResult


def _short(metrics: dict[str, float]) -> str:
    keys = [k for k in HISTORY_METRICS if k in metrics]
    return " ".join(f"{k}={metrics[k]:.4g}" for k in keys)


@dataclass
class _State:
    names: dict[str, str] = field(default_factory=dict)  # trial key -> "variant seed=N"
    epochs: dict[str, int] = field(default_factory=dict)
    running: dict[str, tuple[str, float, str]] = field(default_factory=dict)  # worker, t0, last
    total: int = 0
    done: int = 0
    failed: int = 0

    def planned(self, plan: Plan, todo: int) -> None:
        self.names = {t.key: f"{t.variant} seed={t.seed}" for t in plan.trials}
        # a budget in steps has its epochs from the data: unknown here (0, shown as "?")
        self.epochs = {
            t.key: t.config.train.epochs if t.config.train.steps is None else 0 for t in plan.trials
        }
        self.total = todo


@dataclass
class PlainProgress:
    console: Console
    state: _State = field(default_factory=_State)
    started_at: float = field(default_factory=time.monotonic)

    def planned(self, plan: Plan, todo: int, skipped: int, killed: int) -> None:
        self.state.planned(plan, todo)
        self.console.print(_plan_line(plan, todo, skipped, killed), highlight=False)

    def started(self, trial_key: str, worker: str) -> None:
        self.console.print(
            f"start  {self.state.names[trial_key]} [{worker}]", highlight=False, markup=False
        )

    def epoch(self, trial_key: str, epoch: int, metrics: dict[str, float]) -> None:
        total = self.state.epochs[trial_key]
        self.console.print(
            f"epoch  {self.state.names[trial_key]} {epoch + 1}/{total or '?'} {_short(metrics)}",
            highlight=False,
            markup=False,
        )

    def ended(self, result: TrialResult) -> None:
        self.state.done += 1
        what = "done  " if result.finished else "FAILED"
        detail = _result_detail(result)
        self.console.print(
            f"{what} {self.state.names[result.trial_key]} ({self.state.done}/{self.state.total})"
            f" {detail}",
            highlight=False,
            markup=False,
        )

    def close(self) -> None:
        pass


@dataclass
class LiveProgress:
    """A rich live view; falls back to nothing fancy when the console is not a terminal."""

    console: Console
    state: _State = field(default_factory=_State)
    bar: Progress = field(init=False)
    task: TaskID = field(init=False, default=TaskID(0))
    live: Live | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.bar = Progress(
            TextColumn("[bold]trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )

    def _render(self) -> Group:
        table = Table(box=None, show_header=True, header_style="dim", pad_edge=False)
        table.add_column("running")
        table.add_column("worker", style="dim")
        table.add_column("epoch", justify="right")
        table.add_column("last epoch", style="dim")
        for key, (worker, _, last) in self.state.running.items():
            done = self.state.epochs.get(key, 0)
            table.add_row(
                self.state.names[key],
                worker,
                last.split("|")[0] or f"0/{done}",
                last.partition("|")[2],
            )
        return Group(self.bar, table)

    def _refresh(self) -> None:
        s = self.state
        self.bar.update(
            self.task,
            completed=s.done,
            status=f"[red]{s.failed} failed[/] " if s.failed else "",
        )
        if self.live:
            self.live.update(self._render())

    def planned(self, plan: Plan, todo: int, skipped: int, killed: int) -> None:
        self.state.planned(plan, todo)
        self.console.print(_plan_line(plan, todo, skipped, killed), highlight=False)
        self.task = self.bar.add_task("trials", total=todo, status="")
        self.live = Live(self._render(), console=self.console, refresh_per_second=4)
        self.live.start()

    def started(self, trial_key: str, worker: str) -> None:
        self.state.running[trial_key] = (worker, time.monotonic(), "")
        self._refresh()

    def epoch(self, trial_key: str, epoch: int, metrics: dict[str, float]) -> None:
        worker, t0, _ = self.state.running.get(trial_key, ("", time.monotonic(), ""))
        total = self.state.epochs[trial_key]
        self.state.running[trial_key] = (
            worker,
            t0,
            f"{epoch + 1}/{total or '?'}|{_short(metrics)}",
        )
        self._refresh()

    def ended(self, result: TrialResult) -> None:
        self.state.running.pop(result.trial_key, None)
        self.state.done += 1
        if not result.finished:
            self.state.failed += 1
            self.console.print(
                f"[red]FAILED[/] {self.state.names[result.trial_key]}: {result.reason}",
                highlight=False,
            )
        self._refresh()

    def close(self) -> None:
        if self.live:
            self.live.stop()
            self.live = None


def _plan_line(plan: Plan, todo: int, skipped: int, killed: int) -> str:
    looks = plan.design.looks
    parts = [f"{plan.experiment}: {plan.size}"]
    if looks:
        shown = ", ".join(str(n) for n in looks)
        parts.append(f"seeds on demand (looks at {shown} seeds: up to {len(plan.trials)} trials)")
    if skipped:
        parts.append(f"{skipped} already finished (skipped; --rerun to train them again)")
    if killed:
        parts.append(f"{killed} left running by an interrupted sweep, marked KILLED")
    # seeds on demand and a search's race (plan.combinations) may end before all of them
    parts.append(f"{'up to ' if looks or plan.combinations else ''}{todo} to run")
    # the sweep-level lint (seeds against the comparison design) is worth seeing before training
    warnings = [
        f"warning ({f.rule}): {f.message}" for f in plan.design_findings if f.level == "warning"
    ]
    return "\n".join(["; ".join(parts), *warnings])


def _result_detail(result: TrialResult) -> str:
    if not result.finished:
        return result.reason
    shown = [k for k in (TEST_RMSE, TEST_ACCURACY, TIME_PER_EPOCH_S) if k in result.metrics]
    return " ".join(f"{k}={result.metrics[k]:.4g}" for k in shown)


def make_progress(console: Console) -> PlainProgress | LiveProgress:
    return LiveProgress(console) if console.is_terminal else PlainProgress(console)
