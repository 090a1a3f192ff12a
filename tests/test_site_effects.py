"""The site effects of a search (`bnplace.stats.site_effects`): which placements pair up, the
effect's arithmetic, and seeded simulations of the rule as shipped: the intervals of every
option at every site hold together with probability >= 1 - alpha (normal, skewed and t3 trial
noise; with interactions between the sites; the study's 32-placement space over 15 datasets and
a 4-placement space on one), a worse-or-better verdict where every placement is alike comes
at most alpha of the time, and an "equivalent" verdict for effects at the margin at most alpha.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from bnplace.config.sweep import NOTHING
from bnplace.stats.site_effects import (
    contrast_weights,
    effect_intervals,
    site_contrasts,
    site_effects,
)
from bnplace.stats.verdicts import margin_bounds

ALPHA = 0.05
REPEATS = 4000
TOLERANCE = 3 * math.sqrt(ALPHA * (1 - ALPHA) / REPEATS)  # three Monte Carlo SEs


def _study_space() -> list[dict[str, str]]:
    """experiments/search's menus: 3 x 3 x 4 placements, at most 2 normalizations."""
    menus = {
        "conv.pre_act": ["none", "batch_norm", "layer_norm"],
        "conv.post_act": ["none", "batch_norm", "dropout"],
        "lstm.after": ["none", "batch_norm", "layer_norm", "dropout"],
    }
    space = [dict(zip(menus, chosen, strict=True)) for chosen in itertools.product(*menus.values())]
    return [p for p in space if sum(v.endswith("_norm") for v in p.values()) <= 2]


SMALL = [{"a": "none", "b": "none"}, {"a": "x", "b": "none"}, {"a": "none", "b": "y"}]
SMALL.append({"a": "x", "b": "y"})


def test_twins_differ_at_one_site_and_the_space_decides_the_pairs() -> None:
    # a: none, x, y; b: none, z; (y, z) not in the space, like a max_norm rule
    space = [{"a": a, "b": b} for a in ("none", "x", "y") for b in ("none", "z")]
    space.remove({"a": "y", "b": "z"})
    found = {(c.site, c.option): c for c in site_contrasts(space, NOTHING)}
    assert list(found) == [("a", "x"), ("a", "y"), ("b", "z")]
    # placements 0..4: (none, none), (none, z), (x, none), (x, z), (y, none)
    assert found["a", "x"].pairs == ((2, 0), (3, 1)) and found["a", "x"].baseline == "none"
    assert found["a", "y"].pairs == ((4, 0),)  # its twin with b=z is not in the space
    assert found["b", "z"].pairs == ((1, 0), (3, 2))
    # a site without "none": its first option is the baseline
    (only,) = site_contrasts([{"s": "bn"}, {"s": "ln"}], NOTHING)
    assert (only.option, only.baseline, only.pairs) == ("ln", "bn", ((1, 0),))


def test_an_effect_is_the_mean_over_seeds_of_the_pairs_mean_difference() -> None:
    # a=x costs log(1.1) beside b=none and log(1.3) beside b=y: the effect is their mean, the
    # seeds add 0, +0.02, -0.02 to both sides of a pair alike and cancel
    shared = np.array([0.0, 0.02, -0.02])
    base = np.array([0.0, 0.0, math.log(1.2), math.log(1.2)])
    cost = np.array([0.0, math.log(1.1), 0.0, math.log(1.3)])
    noise = np.array([[0.0, 0.01, -0.01], [0.0, -0.01, 0.01], [0, 0, 0], [0.01, 0.0, -0.01]])
    losses = (base + cost)[:, None] + shared[None, :] + noise
    effects = {
        (e.site, e.option): e
        for e in site_effects(losses, SMALL, preferred=NOTHING, seeds=3, alpha=ALPHA, margin=0.05)
    }
    x = effects["a", "x"]
    per_seed = ((losses[1] - losses[0]) + (losses[3] - losses[2])) / 2
    assert x.pairs == 2 and x.seeds == 3 and x.baseline == "none"
    assert x.delta_pct == pytest.approx(100 * math.expm1(per_seed.mean()))
    assert x.low_pct < x.delta_pct < x.high_pct
    # a fourth seed is left unread (not in the first stage); a missing loss drops its seed
    # from the contrasts it touches only
    wider = np.column_stack([losses, [9.0, 9.0, 9.0, 9.0]])
    wider[2, 1] = np.nan  # b=y, a=none misses seed 1: a=x's pairs and b=y's pairs touch it
    shown = {
        (e.site, e.option): e
        for e in site_effects(wider, SMALL, preferred=NOTHING, seeds=3, alpha=ALPHA, margin=0.05)
    }
    assert shown["a", "x"].seeds == 2 and shown["b", "y"].seeds == 2
    assert (
        site_effects(
            losses, [{"a": "none"}] * 4, preferred=NOTHING, seeds=3, alpha=ALPHA, margin=0.05
        )
        == ()
    )
    # per dataset (D x P x seeds): each effect counts the datasets its point estimate is worse
    # and better on; a dataset where a pair has no seed at all is not counted
    sets = np.stack([losses, losses - 2 * cost[:, None], losses])
    sets[2, 3] = np.nan  # the third dataset never finished (a=x, b=y)
    counted = site_effects(
        losses, SMALL, preferred=NOTHING, seeds=3, alpha=ALPHA, margin=0.05, by_dataset=sets
    )
    x, y = counted  # a=x: worse on the 1st, better on the 2nd (its cost reversed there)
    assert (x.datasets_worse, x.datasets_better, x.datasets) == (1, 1, 2)
    assert (y.datasets_worse, y.datasets_better, y.datasets) == (2, 0, 2)  # b=y: worse on both
    assert (x.delta_pct, x.verdict) == (effects["a", "x"].delta_pct, effects["a", "x"].verdict)


def test_the_simulations_entry_gives_the_tools_intervals() -> None:
    """`effect_intervals` (what the simulations below call, vectorised over repeats) and
    `site_effects` (what compare calls) read the same losses the same way."""
    rng = np.random.default_rng(3)
    space = _study_space()
    losses = rng.normal(0, 0.2, (1, len(space), 5))
    mean, low, high = effect_intervals(
        contrast_weights(site_contrasts(space, NOTHING), len(space)), losses, ALPHA
    )
    shown = site_effects(losses[0], space, preferred=NOTHING, seeds=5, alpha=ALPHA, margin=0.05)
    assert [e.delta_pct for e in shown] == pytest.approx(list(100 * np.expm1(mean[0])))
    assert [e.low_pct for e in shown] == pytest.approx(list(100 * np.expm1(low[0])))
    assert [e.high_pct for e in shown] == pytest.approx(list(100 * np.expm1(high[0])))


def _simulate(
    space: list[dict[str, str]],
    noise: str,
    *,
    datasets: int,
    seeds: int,
    effects: np.ndarray | None,
    rng: np.random.Generator,
    interactions: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """REPEATS searches' first-stage losses: per placement a true mean (`effects` per contrast
    plus interactions of sd `interactions`, or all alike), per seed a shared offset, per trial
    noise of `noise`'s kind with sd 0.2 averaged over `datasets`; the intervals and the true
    contrasts."""
    contrasts = site_contrasts(space, NOTHING)
    weights = contrast_weights(contrasts, len(space))
    truth = np.zeros(len(space))
    if effects is not None:
        for contrast, effect in zip(contrasts, effects, strict=True):
            for i, _ in contrast.pairs:
                truth[i] += effect
        truth += rng.normal(0, interactions, len(space))
    shape = (REPEATS, len(space), seeds, datasets)
    if noise == "normal":
        draws = rng.normal(0, 1, shape)
    elif noise == "skewed":  # lognormal, centred and scaled to sd 1 (skewness ~6)
        draws = (rng.lognormal(0, 1, shape) - math.exp(0.5)) / math.sqrt((math.e - 1) * math.e)
    else:  # t with 3 degrees of freedom, scaled to sd 1
        draws = rng.standard_t(3, shape) / math.sqrt(3)
    losses = truth[None, :, None] + rng.normal(0, 0.1, (REPEATS, 1, seeds))
    losses = losses + 0.2 * draws.mean(axis=3)
    mean, low, high = effect_intervals(weights, losses, ALPHA)
    return mean, low, high, weights @ truth


@pytest.mark.parametrize("noise", ["normal", "skewed", "t3"])
@pytest.mark.parametrize(
    ("space", "datasets", "seeds"),
    [(_study_space(), 15, 5), (_study_space(), 1, 10), (SMALL, 1, 5)],
    ids=["study-15x5", "study-1x10", "small-1x5"],
)
def test_the_intervals_hold_together_and_alike_placements_get_no_verdict(
    space: list[dict[str, str]], datasets: int, seeds: int, noise: str
) -> None:
    rng = np.random.default_rng(20261206)
    count = len(site_contrasts(space, NOTHING))
    effects = rng.normal(0, 0.05, count)
    _, low, high, truth = _simulate(
        space, noise, datasets=datasets, seeds=seeds, effects=effects, rng=rng
    )
    covered = ((low <= truth) & (truth <= high)).all(axis=1).mean()
    assert covered >= 1 - ALPHA - TOLERANCE, covered
    # A/A: every placement alike, a worse-or-better verdict (an interval without 0) anywhere
    _, low, high, _ = _simulate(space, noise, datasets=datasets, seeds=seeds, effects=None, rng=rng)
    false_verdict = ((low > 0) | (high < 0)).any(axis=1).mean()
    assert false_verdict <= ALPHA + TOLERANCE, false_verdict


@pytest.mark.parametrize("noise", ["normal", "skewed", "t3"])
def test_effects_at_the_margin_are_rarely_called_equivalent(noise: str) -> None:
    """Every option exactly 5% worse than its baseline (no interactions): an interval inside
    ±5% for any of them is a false "equivalent"."""
    rng = np.random.default_rng(7)
    space = _study_space()
    margin = margin_bounds(0.05)
    effects = np.full(len(site_contrasts(space, NOTHING)), margin[1])
    _, low, high, truth = _simulate(
        space, noise, datasets=15, seeds=5, effects=effects, rng=rng, interactions=0.0
    )
    assert truth == pytest.approx(effects)  # each contrast's truth is its effect
    false_equivalent = ((low > margin[0]) & (high < margin[1])).any(axis=1).mean()
    assert false_equivalent <= ALPHA + TOLERANCE, false_equivalent
