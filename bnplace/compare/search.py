"""A search in `compare`: what the race selected and eliminated, read from the variant runs.

In: a sweep's own variant runs (their `bnplace.search`, `bnplace.eliminated_at` and
`bnplace.elimination` tags, written by `bnplace.track_search`) and its design (alpha, margin).
Out: a `SearchView`: per eliminated placement the seeds it had (its later planned seeds were
never meant to run, so compare drops their "not run" rows instead of counting them as failed),
and the notes compare prints and reports: the selected placements, the guarantee, and what was
eliminated when and why. Empty for a sweep that is not a search. Pure (reads run objects).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bnplace import tags as names
from bnplace.schedule_search import Standing
from bnplace.verdicts import Design

MAX_LISTED = 20  # placements named per note list; the rest are counted


@dataclass(frozen=True)
class SearchView:
    eliminated_at: dict[str, int]  # variant name -> seeds it had when eliminated
    notes: tuple[str, ...]
    placements: int = 0  # placements the race started with

    def survivors(self) -> list[tuple[int, int]]:
        """(seeds, placements still in after that many seeds), from the first elimination."""
        if not self.eliminated_at:
            return []
        steps = sorted(set(self.eliminated_at.values()))
        gone = list(self.eliminated_at.values())
        return [(s, self.placements - sum(1 for g in gone if g <= s)) for s in steps]


def search_view(own_runs: Sequence[Any], design: Design) -> SearchView:
    states = {
        r.data.tags.get(names.VARIANT_NAME, ""): r.data.tags
        for r in own_runs
        if r.data.tags.get(names.SEARCH_STATE)
    }
    if not states:
        return SearchView({}, ())
    selected = tuple(n for n, t in states.items() if t[names.SEARCH_STATE] == names.SELECTED)
    gone = sorted(
        (
            (n, int(t.get(names.ELIMINATED_AT, 0)), t.get(names.ELIMINATION, ""))
            for n, t in states.items()
            if t[names.SEARCH_STATE] == names.ELIMINATED
        ),
        key=lambda item: (item[1], item[0]),
    )
    standing = Standing(selected, tuple(gone), 0, bool(selected), design.alpha, design.margin)
    shown = "; ".join(selected[:MAX_LISTED]) + _more(len(selected))
    notes = [
        f"search: {len(selected)} placements selected: {shown}"
        if selected
        else "search: not over yet (no placement selected)",
        f"search: {standing.guarantee()}",
    ]
    notes += [f"search: eliminated {name}: {why}" for name, _, why in gone[:MAX_LISTED]]
    if len(gone) > MAX_LISTED:
        notes.append(f"search: ... and {len(gone) - MAX_LISTED} more eliminated")
    return SearchView({name: seeds for name, seeds, _ in gone}, tuple(notes), len(states))


def plot_survivors(view: SearchView, path: Path) -> Path | None:
    """Placements still in the race against seeds: the elimination over rounds."""
    from matplotlib.ticker import MaxNLocator

    from bnplace.compare.plots import _new_figure, _save

    points = view.survivors()
    if not points:
        return None
    first = min(s for s, _ in points)
    xs = [first - 1, *[s for s, _ in points]]
    ys = [view.placements, *[n for _, n in points]]
    fig = _new_figure(6.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    ax.step(xs, ys, where="post", marker="o")
    ax.set_xlabel("seeds per placement")
    ax.set_ylabel("placements still in")
    ax.set_title("search: eliminations over rounds")
    ax.set_ylim(0, view.placements + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(fig, path)


def _more(count: int) -> str:
    return f" ... and {count - MAX_LISTED} more" if count > MAX_LISTED else ""
