"""A search in `compare`: what the race selected and eliminated, read from the variant runs.

In: a sweep's own variant runs (their `bnplace.search`, `bnplace.eliminated_at` and
`bnplace.elimination` tags, written by `bnplace.store.track_search`), its design (alpha, margin)
and the placements still in after each look (the sweep run's `search.survivors`).
Out: a `SearchView`: per eliminated placement the seeds it had (its later planned seeds were
never meant to run, so compare drops their "not run" rows instead of counting them as failed),
and the notes compare prints and reports: the selected placements, the guarantee, and what was
eliminated when and why. Empty for a sweep that is not a search. `ranked` then sets every
placement against the best with the race's bounds, and `sited` each site's options against the
site's baseline on the race's first stage (`bnplace.stats.site_effects`), which comparison.json
holds whole (`SearchView.to_dict`) and the report opens with (`search_section`, and the plots
`plot_survivors` and `plot_sites`). Pure (reads run objects and frames; the plots write PNGs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from bnplace.compare.blocks import Grid, Section
from bnplace.compare.format import named
from bnplace.compare.stats import axis_column
from bnplace.config.sweep import NOTHING
from bnplace.execute.schedule_search import Standing
from bnplace.names import tags as names
from bnplace.names.states import FINISHED
from bnplace.stats.selection import SelectionRule
from bnplace.stats.site_effects import SiteEffect, site_effects
from bnplace.stats.verdicts import Design

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from bnplace.store.read import StoredRun

MAX_LISTED = 20  # placements named per note list; the rest are counted


@dataclass(frozen=True)
class RankedPlacement:
    """One placement against the best: its gap in percent of the metric, with the race's bound
    on each side (None for the best itself), on the seeds both finished."""

    name: str
    gap_pct: float
    low_pct: float | None
    high_pct: float | None
    seeds: int


@dataclass(frozen=True)
class SearchView:
    eliminated_at: dict[str, int]  # variant name -> seeds it had when eliminated
    notes: tuple[str, ...]
    placements: int = 0  # placements the race started with
    rule: SelectionRule | None = None  # the race's rule (alpha, margin, seeds), when recorded
    selected: tuple[str, ...] = ()
    why: dict[str, str] | None = None  # eliminated variant name -> why (when, by whom)
    guarantee: str = ""
    ranking: tuple[RankedPlacement, ...] = ()  # best first (`ranked`), once compare computed it
    # (seeds read, placements still in) after each look, as the sweep logged them
    looks: tuple[tuple[int, int], ...] = ()
    sites: tuple[SiteEffect, ...] = ()  # each site's options against its baseline (`sited`)

    def to_dict(self) -> dict[str, object]:
        """The selection as comparison.json holds it: every placement named, none cut off."""
        why = self.why or {}
        return {
            "placements": self.placements,
            "selected": list(self.selected),
            "eliminated": {
                name: {"after_seeds": seeds, "why": why.get(name, "")}
                for name, seeds in sorted(self.eliminated_at.items(), key=lambda i: (i[1], i[0]))
            },
            "guarantee": self.guarantee,
            "alpha": None if self.rule is None else self.rule.alpha,
            "seeds": None if self.rule is None else [self.rule.first, self.rule.last],
            "ranking": [vars(row) for row in self.ranking],
            "survivors": [list(point) for point in self.survivors()],
            "site_effects": [vars(effect) for effect in self.sites],
        }

    def survivors(self) -> list[tuple[int, int]]:
        """(seeds, placements still in after that many seeds): every look the sweep logged,
        from the first stage to the seeds read so far; from a sweep that logged none (a
        bnplace before 2026-12-06 logged them when a driver stopped), the eliminations."""
        if self.looks:
            return sorted(self.looks)
        if not self.eliminated_at:
            return []
        steps = sorted(set(self.eliminated_at.values()))
        gone = list(self.eliminated_at.values())
        return [(s, self.placements - sum(1 for g in gone if g <= s)) for s in steps]


def search_view(
    own_runs: Sequence[StoredRun],
    design: Design,
    seeds: Mapping[str, int] | None = None,
    datasets: Sequence[str] = (),
    looks: Sequence[tuple[int, int]] = (),
) -> SearchView:
    states = {
        r.tags.get(names.VARIANT_NAME, ""): r.tags
        for r in own_runs
        if r.tags.get(names.SEARCH_STATE)
    }
    if not (states or seeds):  # `seeds`: the plan's search.seeds, which only a search has
        return SearchView({}, ())
    # every variant run of a search is a placement; mid-race only the eliminated ones carry a
    # state (survivors are tagged selected when the race ends), and the race's bounds are for
    # all of them
    placements = len(own_runs) or len(states)
    selected = tuple(n for n, t in states.items() if t[names.SEARCH_STATE] == names.SELECTED)
    gone = sorted(
        (
            (n, int(t.get(names.ELIMINATED_AT, 0)), t.get(names.ELIMINATION, ""))
            for n, t in states.items()
            if t[names.SEARCH_STATE] == names.ELIMINATED
        ),
        key=lambda item: (item[1], item[0]),
    )
    standing = Standing(
        selected, tuple(gone), 0, bool(selected), design.alpha, design.margin, tuple(datasets)
    )
    shown = named(selected, MAX_LISTED, "; ")
    notes = [
        f"search: {len(selected)} placements selected: {shown}"
        if selected
        else "search: not over yet (no placement selected)",
        f"search: {standing.guarantee()}",
    ]
    notes += [f"search: eliminated {name}: {why}" for name, _, why in gone[:MAX_LISTED]]
    if len(gone) > MAX_LISTED:
        notes.append(f"search: ... and {len(gone) - MAX_LISTED} more eliminated")
    rule = None
    if seeds and "min" in seeds and "max" in seeds:
        rule = SelectionRule(design.alpha, math.log1p(design.margin), seeds["min"], seeds["max"])
    at = {name: count for name, count, _ in gone}
    why = {name: reason for name, _, reason in gone}
    return SearchView(
        at, tuple(notes), placements, rule, selected, why, standing.guarantee(), (), tuple(looks)
    )


def with_results(view: SearchView, trials: pd.DataFrame, metric: str, direction: str) -> SearchView:
    """`view` with its ranking (`ranked`) and site effects (`sited`), both read from one table
    of the finished trials' losses."""
    if view.rule is None or metric not in trials.columns:
        return view
    losses = _trial_losses(trials, metric, direction)
    datasets = trials["dataset"].nunique() if "dataset" in trials.columns else 1
    table = seed_losses(losses, datasets)
    if table.empty:
        return view
    return replace(view, ranking=ranked(view, table), sites=sited(view, trials, losses, table))


def ranked(view: SearchView, table: pd.DataFrame) -> tuple[RankedPlacement, ...]:
    """Each placement against the best (the lowest mean log loss among the selected, else among
    all; several datasets: a seed's loss is its mean over them): its gap in percent on the
    seeds both finished, with the race's bound on each side at that many seeds (w_il(r) of
    `bnplace.stats.selection`); best first. Placements with fewer than 2 seeds beside the best
    have no interval and are left out. `table`: placement x seed losses (`seed_losses`)."""
    import numpy as np

    assert view.rule is not None  # with_results asks
    losses = table.to_numpy(dtype=float)
    names = [str(n) for n in table.index]
    means = np.nanmean(losses, axis=1)
    eligible = [i for i, n in enumerate(names) if n not in view.eliminated_at] or range(len(names))
    lead = min(eligible, key=lambda i: means[i])
    rows = [RankedPlacement(names[lead], 0.0, None, None, int((~np.isnan(losses[lead])).sum()))]
    for i, name in enumerate(names):
        both = ~np.isnan(losses[i]) & ~np.isnan(losses[lead])
        diff = losses[i, both] - losses[lead, both]
        seeds = int(both.sum())
        if i == lead or seeds < 2:
            continue
        factor = view.rule.width_factor(view.placements or len(names), min(seeds, view.rule.last))
        width = float(np.std(diff, ddof=1)) * factor
        gap = float(diff.mean())
        low, high = (100 * math.expm1(x) for x in (gap - width, gap + width))
        rows.append(RankedPlacement(name, 100 * math.expm1(gap), low, high, seeds))
    return (rows[0], *sorted(rows[1:], key=lambda row: row.gap_pct))


def _trial_losses(trials: pd.DataFrame, metric: str, direction: str) -> pd.DataFrame:
    """The finished trials' variant, seed, dataset (where several) and loss: the log of the
    metric, signed so that lower is better."""
    import numpy as np

    done = trials[(trials["status"] == FINISHED) & (trials[metric] > 0)]
    sign = 1 if direction == "min" else -1
    keys = [c for c in ("variant", "seed", "dataset") if c in done.columns]
    return done[keys].assign(loss=np.log(done[metric].to_numpy(dtype=float)) * sign)


def seed_losses(losses: pd.DataFrame, datasets: int) -> pd.DataFrame:
    """Placement x seed: the loss; several datasets: a seed's mean over them, as the race
    reads it, and only where every one of the `datasets` finished that seed (else NaN)."""
    by_seed = losses.groupby(["variant", "seed"])["loss"]
    return by_seed.mean().where(by_seed.count() == datasets).unstack("seed").dropna(how="all")


def _dataset_losses(losses: pd.DataFrame, like: pd.DataFrame) -> np.ndarray | None:
    """Dataset x placement x seed: each dataset's losses laid out as `like` (placement x seed);
    None without several datasets."""
    import numpy as np

    if "dataset" not in losses.columns or losses["dataset"].nunique() < 2:
        return None
    return np.stack(
        [
            group.pivot_table(index="variant", columns="seed", values="loss", aggfunc="mean")
            .reindex(index=like.index, columns=like.columns)
            .to_numpy(dtype=float)
            for _, group in losses.groupby("dataset")
        ]
    )


def sited(
    view: SearchView, trials: pd.DataFrame, losses: pd.DataFrame, table: pd.DataFrame
) -> tuple[SiteEffect, ...]:
    """Each site's options against its baseline, averaged over the other sites, on the race's
    first stage (`bnplace.stats.site_effects` says why those seeds), in the plan's order.
    `losses` and `table`: `_trial_losses` and `seed_losses` of `trials`."""
    assert view.rule is not None  # with_results asks
    prefix = axis_column("")
    sites = [c for c in trials.columns if c.startswith(prefix)]
    if not sites:
        return ()
    table = table.reindex([v for v in trials["variant"].unique() if v in table.index])
    labels = trials.drop_duplicates("variant").set_index("variant")[sites]
    options = [{c.removeprefix(prefix): str(labels.at[v, c]) for c in sites} for v in table.index]
    return site_effects(
        table.to_numpy(dtype=float),
        options,
        preferred=NOTHING,  # an empty site, where its menu has one
        seeds=view.rule.first,
        alpha=view.rule.alpha,
        margin=math.expm1(view.rule.margin),
        by_dataset=_dataset_losses(losses, table),
    )


def site_notes(effects: Sequence[SiteEffect]) -> list[str]:
    """The site effects as compare prints them."""
    if not effects:
        return []
    lines = [
        "search: each site's options against its baseline, averaged over the other sites "
        f"(the first {max(e.seeds for e in effects)} seeds, which every placement trained; "
        f"Student t intervals, Bonferroni over {len(effects)}):"
    ]
    for e in effects:
        lines.append(
            f"  {e.site}={e.option} vs {e.baseline}: {e.verdict}, {e.delta_pct:+.1f}% "
            f"[{e.low_pct:+.1f}%, {e.high_pct:+.1f}%] over {e.pairs} pairs, {e.seeds} seeds"
            f"{_on_datasets(e)}"
        )
    return lines


def _on_datasets(effect: SiteEffect) -> str:
    """ ", worse on 12 and better on 3 of 15 datasets' point estimates" ("" with one)."""
    if effect.datasets is None:
        return ""
    return (
        f"; worse on {effect.datasets_worse} and better on {effect.datasets_better} of "
        f"{effect.datasets} datasets' point estimates"
    )


def ranking_notes(rows: Sequence[RankedPlacement], metric: str) -> list[str]:
    """The ranking as compare prints it: best first, at most MAX_LISTED placements."""
    if not rows:
        return []
    lines = [f"search ranking vs the best ({metric}, race bounds): {rows[0].name}: the best"]
    for rank, row in enumerate(rows[1:MAX_LISTED], start=2):
        lines.append(
            f"  {rank}. {row.name}: {row.gap_pct:+.1f}% [{row.low_pct:+.1f}%, "
            f"{row.high_pct:+.1f}%] on {row.seeds} seeds"
        )
    return lines


def search_section(view: SearchView) -> Section:
    """The report's answer to a search, first: the guarantee, then every placement (none cut
    off) against the best with the race's bounds and where the race left it."""
    rows = []
    for rank, row in enumerate(view.ranking, start=1):
        if row.name in view.eliminated_at:
            state = f"eliminated after {view.eliminated_at[row.name]} seeds"
        else:
            state = "selected" if row.name in view.selected else "still racing"
        if row.low_pct is None:
            gap, bounds = "the best", ""
        else:
            gap, bounds = f"{row.gap_pct:+.1f}%", f"[{row.low_pct:+.1f}%, {row.high_pct:+.1f}%]"
        rows.append([str(rank), row.name, gap, bounds, str(row.seeds), state])
    grid = Grid(
        ["rank", "placement", "vs the best", "race bounds", "seeds", "race"],
        rows,
        ["right", "left", "right", "left", "right", "left"],
    )
    summary = (
        f"{len(view.selected)} of {view.placements} placements selected, "
        f"{len(view.eliminated_at)} eliminated: {view.guarantee}."
        if view.selected
        else f"Not over yet: {len(view.eliminated_at)} of {view.placements} placements "
        "eliminated so far."
    )
    parts: list[str | Grid] = [summary, grid]
    several = any(e.datasets is not None for e in view.sites)  # point estimates per dataset
    if view.sites:
        parts += [
            "Each site's options against the site's baseline, averaged over the other sites "
            "(over the pairs of placements that differ only there), on the race's first "
            "stage, which every placement trained; Student t intervals at the Bonferroni level "
            f"over the {len(view.sites)} effects, a family of their own beside the race "
            "(bnplace/stats/site_effects.py).",
            Grid(
                ["site", "option", "against", "verdict", "Δ", "interval", "pairs", "seeds"]
                + (["datasets worse / better"] if several else []),
                [
                    [
                        e.site,
                        e.option,
                        e.baseline,
                        e.verdict,
                        f"{e.delta_pct:+.1f}%",
                        f"[{e.low_pct:+.1f}%, {e.high_pct:+.1f}%]",
                        str(e.pairs),
                        str(e.seeds),
                    ]
                    + (
                        [f"{e.datasets_worse} / {e.datasets_better} of {e.datasets}"]
                        if several
                        else []
                    )
                    for e in view.sites
                ],
                ["left", "left", "left", "left", "right", "left", "right", "right"]
                + (["right"] if several else []),
            ),
        ]
    return Section("Search: every placement against the best", parts)


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


def plot_sites(view: SearchView, path: Path) -> Path | None:
    """Each site's options against its baseline: the mean Δ% with its interval, coloured by
    its verdict as the forest plots are, 0 and ±margin marked; None without site effects."""
    from bnplace.compare.forest import VERDICT_COLORS
    from bnplace.compare.plots import _new_figure, _save

    if not view.sites or view.rule is None:
        return None
    count = len(view.sites)
    fig = _new_figure(7.0, 1.2 + 0.45 * count)
    ax = fig.add_subplot(1, 1, 1)
    for y, effect in zip(range(count, 0, -1), view.sites, strict=True):
        color = VERDICT_COLORS.get(effect.verdict, "#444444")
        if math.isfinite(effect.low_pct) and math.isfinite(effect.high_pct):
            ax.plot([effect.low_pct, effect.high_pct], [y, y], color=color, lw=1.6)
        ax.plot([effect.delta_pct], [y], "s", color=color, ms=6)
    ax.axvline(0, color="black", lw=0.8)
    margin = math.expm1(view.rule.margin)
    for bound in (100 * math.expm1(math.log1p(-margin)), 100 * margin):
        ax.axvline(bound, color="#999999", lw=0.8, ls="--")
    labels = [f"{e.site}={e.option}\nvs {e.baseline} ({e.verdict})" for e in view.sites]
    ax.set_yticks(list(range(count, 0, -1)), labels, fontsize="small")
    ax.set_ylim(0.4, count + 0.6)
    ax.set_xlabel("effect, % (each option against its site's baseline; dashed: ±margin)")
    seeds = max(e.seeds for e in view.sites)
    ax.set_title(f"search: site effects, averaged over the other sites ({seeds} seeds)")
    return _save(fig, path)
