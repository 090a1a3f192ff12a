"""Was the comparison fair in its training regime, and is its metric fit for ratios? Notes on
chosen settings, budgets and the metric's spread.

In: the trials DataFrame (one row per trial; columns `variant`, `status` and, where the trials
logged them, `chosen_learning_rate`, `chosen_weight_decay`, `select_candidates`, `epochs_run`,
`hit_cap`). Out: lines for the comparison's notes (the terminal caption and the reports):

- the values a `{choose: [...]}` setting took per variant, with how many seeds chose each, and
  the choice's cost (candidates trained per trial);
- a warning when more than `EDGE_SHARE` of a variant's finished runs (on a dataset) chose the
  smallest or largest of 3 or more candidates (`chosen_at_edge`): the best value may lie
  outside the list, so the variant may be compared at a setting worse than its best;
- a warning when more than `CAP_SHARE` of a variant's finished runs ran to the epoch cap with
  early stopping on (the budget, not the placement, may decide: raise `train.epochs`); with
  several datasets it names the datasets where a variant did, with each one's share over every
  variant and the range by variant, since the cap is mostly a property of the series (the
  search study: 93% of msft's runs and 91% of taylor's, none on ten of its 15 series), and a
  warning per variant would name most of them on every dataset;
- a warning when the variants' mean stopping epochs differ by more than `EPOCH_RATIO` (a
  variant that makes the validation loss noisier stops earlier: it is compared on a shorter
  training, issue 26 saw 12.6 against 15.5 epochs);
- a warning when the compared metric varies more than `SPREAD_RATIO`-fold over one variant's
  seeds (on a dataset): the paired log ratio is then ruled by the seeds with the smallest
  values. Study bn_ln_classify met it: near-perfect classifiers' test log loss gave per-dataset
  effects of -65% and +597%, where test accuracy gave -0.3% to +11%.
A search names dozens of placements on each of several datasets: past `LISTED` groups the
chosen values are counted per dataset over every variant (each variant's are in `bnplace
export`), and a warning names the first `LISTED` variants it concerns and how many more.
Pure: pandas only (and compare's formatting).
"""

from __future__ import annotations

import pandas as pd

from bnplace.compare.format import named
from bnplace.names import metrics as m
from bnplace.names.states import FINISHED

CAP_SHARE = 0.10  # more than this share of a variant's runs at the epoch cap: warn
EDGE_SHARE = 0.5  # more than this share of a variant's runs chose an end of the list: warn
EPOCH_RATIO = 1.2  # the longest mean stopping epoch over the shortest: warn above this
SPREAD_RATIO = 10.0  # a variant's largest metric value over its smallest (on a dataset): warn above
_CHOSEN = {"learning_rate": "learning rate", "weight_decay": "weight decay"}
LISTED = 8  # a note names at most this many variants (or variant-dataset pairs), then counts


def budget_notes(trials: pd.DataFrame, metric: str | None = None) -> list[str]:
    """The notes on chosen settings and budgets (empty when the trials log none of it), and on
    the spread of the compared `metric`."""
    if "status" not in trials.columns or "variant" not in trials.columns:
        return []
    done = trials[trials["status"].astype(str) == FINISHED]
    if done.empty:
        return []
    return [*_chosen(done), *_at_cap(done), *_stopping(done), *_spread(done, metric)]


def _several_datasets(done: pd.DataFrame) -> bool:
    """Whether the trials span several datasets: the notes then say on which one."""
    return "dataset" in done.columns and done["dataset"].nunique() > 1


def _chosen(done: pd.DataFrame) -> list[str]:
    notes = []
    for key, words in _CHOSEN.items():
        column = m.CHOSEN_PREFIX + key
        if column not in done.columns or done[column].isna().all():
            continue
        several = _several_datasets(done)
        by = ["dataset", "variant"] if several else ["variant"]
        over = ""
        if done.groupby(by, sort=False).ngroups > LISTED:  # a search: per dataset, all variants
            by = ["dataset"] if several else []
            over = f", over all {done['variant'].nunique()} variants (each one's: bnplace export)"
        parts = []
        grouped = done.groupby(by, sort=False)[column] if by else [((), done[column])]
        for group, values in grouped:
            counts = values.dropna().value_counts()
            said = ", ".join(f"{v:g} ({n} of {len(values)})" for v, n in counts.items())
            name = " on ".join(reversed([str(g) for g in group]))
            parts.append(f"{name}: {said}" if name else said)
        notes.append(f"{words} chosen per seed on the validation split{over}: " + "; ".join(parts))
    notes += _at_edge(done)
    if m.SELECT_CANDIDATES in done.columns and done[m.SELECT_CANDIDATES].notna().any():
        fewest, most = (int(done[m.SELECT_CANDIDATES].agg(f)) for f in ("min", "max"))
        candidates = str(most) if fewest == most else f"{fewest} to {most}"  # `extend` walks
        notes.append(
            f"each trial trained {candidates} candidates to choose (its cost: "
            f"{m.SELECT_EPOCHS} per variant in the report); the test split was not read to choose"
        )
    return notes


def _at_edge(done: pd.DataFrame) -> list[str]:
    if m.CHOSEN_AT_EDGE not in done.columns:
        return []
    several = _several_datasets(done)
    by = ["dataset", "variant"] if several else ["variant"]
    flagged = []
    for group, edges in done.groupby(by, sort=False)[m.CHOSEN_AT_EDGE]:
        if edges.isna().any():  # some seeds ran before trials logged it: their choice is unknown
            continue
        if edges.mean() > EDGE_SHARE:
            name = " on ".join(reversed([str(g) for g in group]))
            flagged.append(f"{name} ({int(edges.sum())} of {len(edges)})")
    if not flagged:
        return []
    return [
        "warning: the smallest or largest candidate of a {choose: [...]} list was chosen on "
        f"most seeds of {named(flagged, LISTED)}: the best value may lie beyond the list, so "
        "widen it past that end, or let each trial walk past it (`extend: n` in the "
        "`{choose:}` of one setting)"
    ]


def _at_cap(done: pd.DataFrame) -> list[str]:
    if m.HIT_CAP not in done.columns:
        return []
    if _several_datasets(done):
        return _at_cap_by_dataset(done)
    flagged = []  # (share, "k of n runs of variant")
    for variant, hits in done.groupby("variant", sort=False)[m.HIT_CAP]:
        hits = hits.dropna()
        if len(hits) and hits.mean() > CAP_SHARE:
            flagged.append((hits.mean(), f"{int(hits.sum())} of {len(hits)} runs of {variant}"))
    advice = "the budget may decide this comparison; raise train.epochs or train.steps"
    if len(flagged) <= LISTED:
        return [
            f"warning: {said} ran to the epoch cap (early stopping did not stop them): {advice}"
            for _, said in flagged
        ]
    worst = [said for _, said in sorted(flagged, key=lambda f: -f[0])]
    variants = done["variant"].nunique()
    return [
        f"warning: runs of {len(flagged)} of {variants} variants ran to the epoch cap (early "
        f"stopping did not stop them), the most: {named(worst, LISTED)}: {advice}"
    ]


def _at_cap_by_dataset(done: pd.DataFrame) -> list[str]:
    """Several datasets: the datasets where more than CAP_SHARE of some variant's runs ran to
    the cap, most at the cap first, each with its share over all its runs and the range of
    the variants' shares."""
    flagged = []  # (share, "dataset (k of n runs, a% to b% by variant)")
    for dataset, runs in done.dropna(subset=[m.HIT_CAP]).groupby("dataset", sort=False):
        shares = runs.groupby("variant", sort=False)[m.HIT_CAP].mean()
        if shares.max() <= CAP_SHARE:
            continue
        hits = runs[m.HIT_CAP]
        low, high = f"{shares.min():.0%}", f"{shares.max():.0%}"
        spread = f"{low} for every variant" if low == high else f"{low} to {high} by variant"
        said = f"{int(hits.sum())} of {len(hits)} runs" + (f", {spread}" if len(shares) > 1 else "")
        flagged.append((hits.mean(), f"{dataset} ({said})"))
    if not flagged:
        return []
    worst = [said for _, said in sorted(flagged, key=lambda f: -f[0])]
    datasets = done["dataset"].nunique()
    return [
        f"warning: runs ran to the epoch cap (early stopping did not stop them) on "
        f"{len(flagged)} of {datasets} datasets: {named(worst, LISTED, '; ')}: on those the budget "
        "may decide this comparison; raise train.epochs or train.steps (the share per "
        "variant: the report's cost table)"
    ]


def _stopping(done: pd.DataFrame) -> list[str]:
    if m.HIT_CAP not in done.columns or m.EPOCHS_RUN not in done.columns:
        return []  # a fixed number of epochs: every variant trains as long
    means = done.groupby("variant", sort=False)[m.EPOCHS_RUN].mean().dropna()
    if len(means) < 2 or means.min() <= 0 or means.max() / means.min() <= EPOCH_RATIO:
        return []
    return [
        f"warning: the variants stop at different epochs (mean {means.min():.1f} for "
        f"{means.idxmin()} against {means.max():.1f} for {means.idxmax()}): the earlier one "
        "is compared on a shorter training; see epochs per variant in the report"
    ]


def _spread(done: pd.DataFrame, metric: str | None) -> list[str]:
    if metric is None or metric not in done.columns:
        return []
    several = _several_datasets(done)
    by = ["dataset", "variant"] if several else ["variant"]
    flagged = []
    for group, values in done.groupby(by, sort=False)[metric]:
        finite = pd.to_numeric(values, errors="coerce").dropna()
        if len(finite) < 2 or (finite <= 0).any():  # a ratio needs positive values
            continue
        if finite.max() > SPREAD_RATIO * finite.min():
            name = " on ".join(reversed([str(g) for g in group]))
            flagged.append(f"{name} ({finite.min():.3g} to {finite.max():.3g})")
    if not flagged:
        return []
    hint = (
        ": near-perfect classifiers make tiny losses, so compare them with --metric "
        f"{m.TEST_ACCURACY} or {m.TEST_MACRO_F1}"
        if metric == m.TEST_LOG_LOSS
        else ""
    )
    return [
        f"warning: {metric} varies more than {SPREAD_RATIO:g}-fold over the seeds of "
        f"{named(flagged, LISTED)}: a relative effect (the paired log ratio) is then ruled by the "
        f"seeds with the smallest values{hint}"
    ]
