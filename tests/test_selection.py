"""The racing rule as shipped (stats.selection): seeded, vectorised simulations of its promises.

P(keeping the best) >= 1 − alpha and P(eliminating a placement within the margin of the best)
<= alpha under normal, skewed (lognormal) and heavy-tailed (t3) noise at 10, 50 and 500
placements; clearly worse placements go after few seeds; the race reads only what it has seen;
compare's ranking bounds (the race's, against the leader) hold per placement.
alpha 0.2 here, so that a rule that broke its level would show in a few hundred races.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bnplace.stats.selection import (
    SelectionRule,
    fixed_seeds_same_power,
    losses_for,
    race,
    simulate,
)

MARGIN = math.log(1.05)
ALPHA = 0.2


def slack(rate: float, repeats: int) -> float:
    """Three binomial standard errors at the nominal rate."""
    return 3 * math.sqrt(rate * (1 - rate) / repeats)


def near_means(k: int) -> np.ndarray:
    """The least favourable case for both promises: every other placement within the margin,
    some at exactly the margin (a tie with the best at a gap of δ)."""
    means = np.full(k, MARGIN)
    means[0] = 0.0
    means[1 : max(2, k // 5)] = MARGIN / 2
    return means


@pytest.mark.parametrize("noise", ["normal", "lognormal", "t3"])
@pytest.mark.parametrize(("k", "repeats"), [(10, 600), (50, 200), (500, 12)])
def test_keeps_the_best_and_the_near_best_at_the_stated_rate(
    noise: str, k: int, repeats: int
) -> None:
    rule = SelectionRule(ALPHA, MARGIN, first=5, last=20)
    figures = simulate(near_means(k), 0.05, rule, repeats, noise, seed=k)  # type: ignore[arg-type]
    assert figures.kept_best >= 1 - ALPHA - slack(ALPHA, repeats)
    assert figures.lost_near <= ALPHA + slack(ALPHA, repeats)


@pytest.mark.parametrize("noise", ["normal", "t3"])
def test_keeps_the_best_when_it_leads_by_the_margin(noise: str) -> None:
    """The indifference-zone configuration: the best leads every other by exactly δ."""
    rule = SelectionRule(ALPHA, MARGIN, first=5, last=30)
    means = np.full(20, MARGIN)
    means[0] = 0.0
    figures = simulate(means, 0.08, rule, 600, noise, seed=7)  # type: ignore[arg-type]
    assert figures.kept_best >= 1 - ALPHA - slack(ALPHA, 600)


def test_clearly_worse_placements_go_early_and_the_race_saves_trials() -> None:
    rule = SelectionRule(0.05, MARGIN, first=5, last=30)
    means = np.concatenate([[0.0, MARGIN / 2], np.full(38, 12 * MARGIN)])
    rng = np.random.default_rng(11)
    result = race(losses_for(means, 0.05, 30, 200, "normal", rng), rule)
    worse_at = result.eliminated_at[:, 2:]
    assert (worse_at > 0).mean() > 0.99  # clearly worse: eliminated
    assert np.median(worse_at) <= 7  # within two seeds of the first stage
    assert result.survivors[:, 0].mean() > 0.95
    figures = simulate(means, 0.05, rule, 200, seed=11)
    assert figures.trials < 0.4 * figures.full
    assert figures.trials < figures.same_power  # fewer than the fixed design of the same power


def test_the_race_reads_only_the_seeds_it_has_seen() -> None:
    """Eliminations up to seed r are those of a race stopped at r, and a placement's losses
    after its elimination (never trained) change nothing: a resumed race decides the same."""
    rule = SelectionRule(0.05, MARGIN, first=4, last=16)
    rng = np.random.default_rng(3)
    means = np.linspace(0, 10 * MARGIN, 12)
    losses = losses_for(means, 0.05, 16, 50, "normal", rng)
    full = race(losses, rule)
    for seeds in (4, 9, 16):
        part = race(losses[..., :seeds], rule)
        early = (full.eliminated_at > 0) & (full.eliminated_at <= seeds)
        assert np.array_equal(part.eliminated_at > 0, early)
        assert np.array_equal(part.eliminated_at[early], full.eliminated_at[early])
    gone = losses.copy()
    index = np.arange(16)[None, None, :]
    gone[(full.eliminated_at[..., None] > 0) & (index >= full.eliminated_at[..., None])] = np.nan
    again = race(gone, rule)
    assert np.array_equal(again.eliminated_at, full.eliminated_at)
    assert np.array_equal(again.eliminated_by, full.eliminated_by)


def test_rule_constants() -> None:
    rule = SelectionRule(0.05, MARGIN, first=5, last=30)
    nu = 4  # E[exp(-h² χ²_ν / ν)] = α / (k − 1), checked by quadrature
    from scipy.integrate import quad
    from scipy.stats import chi2

    value, _ = quad(lambda x: math.exp(-rule.h2(50, 5) * x / nu) * chi2.pdf(x, nu), 0, np.inf)
    assert value == pytest.approx(0.05 / 49, rel=1e-6)
    assert fixed_seeds_same_power(rule, 50) < 30
    with pytest.raises(ValueError):
        SelectionRule(0.05, MARGIN, first=2, last=30)


def test_fewer_trials_than_the_fixed_design_of_the_same_power() -> None:
    """50 placements: the best, two within the margin, the rest 2-10x the margin worse."""
    rng = np.random.default_rng(1)
    means = np.concatenate([[0.0], [MARGIN] * 2, rng.uniform(2 * MARGIN, 10 * MARGIN, 47)])
    figures = simulate(means, 0.05, SelectionRule(0.05, MARGIN, first=5, last=30), 60, seed=2)
    assert figures.kept_best >= 0.95
    assert figures.trials < 0.55 * figures.same_power  # measured 0.43
    assert figures.trials < 0.4 * figures.full  # measured 0.32


@pytest.mark.parametrize("noise", ["normal", "t3"])
def test_the_default_search_seeds_keep_both_promises(noise: str) -> None:
    """The rule at `search.seeds`' default first stage and most seeds (config.sweep.Search),
    50 placements in the least favourable configuration."""
    from bnplace.config.sweep import Search

    default = Search(sites={"x": ["none"]}).seeds
    assert default.min is not None and default.max is not None
    rule = SelectionRule(ALPHA, MARGIN, first=default.min, last=default.max)
    figures = simulate(near_means(50), 0.05, rule, 150, noise, seed=40)  # type: ignore[arg-type]
    assert figures.kept_best >= 1 - ALPHA - slack(ALPHA, 150)
    assert figures.lost_near <= ALPHA + slack(ALPHA, 150)


def _ranking_misses(
    means: np.ndarray, noise: str, repeats: int, seed: int, alpha: float = ALPHA
) -> np.ndarray:
    """compare's ranking as shipped (`bnplace.compare.search.ranked`) after the race as shipped,
    `repeats` times: (repeats, k) whether placement i's printed interval against the leader
    (chosen after the fact) missed its true gap. The leader's own row has none (False)."""
    import pandas as pd

    from bnplace.compare.search import SearchView, ranked

    rule = SelectionRule(alpha, MARGIN, first=5, last=20)
    rng = np.random.default_rng(seed)
    losses = losses_for(means, 0.05, rule.last, repeats, noise, rng)  # type: ignore[arg-type]
    result = race(losses, rule)
    names = [f"p{i}" for i in range(len(means))]
    missed = np.zeros((repeats, len(means)), dtype=bool)
    for r in range(repeats):
        at = result.eliminated_at[r]
        table = losses[r].copy()
        table[(at[:, None] > 0) & (np.arange(rule.last)[None, :] >= at[:, None])] = np.nan
        gone = {names[i]: int(at[i]) for i in np.flatnonzero(at)}
        view = SearchView(eliminated_at=gone, notes=(), placements=len(means), rule=rule)
        rows = ranked(view, pd.DataFrame(table, index=names))
        lead = names.index(rows[0].name)
        for row in rows[1:]:
            i = names.index(row.name)
            true = 100 * math.expm1(means[i] - means[lead])
            assert row.low_pct is not None and row.high_pct is not None
            missed[r, i] = not row.low_pct <= true <= row.high_pct
    return missed


@pytest.mark.parametrize("noise", ["normal", "lognormal", "t3"])
def test_the_rankings_race_bounds_hold_per_placement(noise: str) -> None:
    """What compare's ranking (placement vs the best, with the race's bounds) promises: each
    placement's interval, read alone, holds its true gap to the leader with probability >=
    1 − alpha, in the least favourable case for a leader picked after the fact (all 32 equal:
    the leader's mean is the lowest of 32 draws, every gap biased up) and with the best ahead
    by the margin."""
    k, repeats = 32, 300
    for seed, means in enumerate([np.zeros(k), np.r_[0.0, np.full(k - 1, MARGIN)]]):
        missed = _ranking_misses(means, noise, repeats, seed)
        assert missed.mean(0).max() <= ALPHA + slack(ALPHA, repeats), missed.mean(0)


def test_the_rankings_race_bounds_are_not_simultaneous() -> None:
    """Why the READMEs read each ranking bound alone: against a leader picked after the fact,
    the bounds together miss far more often than alpha. 32 equal placements, alpha 0.05,
    normal noise, 400 races: some interval missed its true gap in 10.0% of them (the bound
    here: 8.3%), no interval alone in more than 1.25% (11.9% and about 1% in a run of 800;
    3% under lognormal and t3 noise; 24% at alpha 0.2). Hsu's (1984) constrained intervals
    against the best of the others would be simultaneous."""
    alpha, repeats = 0.05, 400
    missed = _ranking_misses(np.zeros(32), "normal", repeats, seed=7, alpha=alpha)
    assert missed.any(axis=1).mean() > alpha + slack(alpha, repeats), missed.any(axis=1).mean()
    assert missed.mean(0).max() <= alpha + slack(alpha, repeats)
