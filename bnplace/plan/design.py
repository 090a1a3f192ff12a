"""The comparison design of a plan: which comparisons form the family, and what seeds it needs.

In: the config's `compare` section, the planned variants (names and axis labels), the variants
merged away, the baseline and the seeds. Out: a `bnplace.stats.verdicts.Design` (alpha, margin,
failure rule, declared contrasts resolved to variant names, axis contrasts expanded at every
level of the other axes, interactions in two-axis grids), and sweep-level lint findings: whether
any verdict is reachable with these seeds (exact test, Bonferroni over the family), and the
seeds that give power 0.8 at the margin and an equivalence verdict at no effect, by simulating
the shipped rule. Pure: no TensorFlow, no MLflow, no files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bnplace.config.schema import AxisContrast, Compare
from bnplace.names.errors import PlanError, UnknownVariant, did_you_mean
from bnplace.plan.lint import Finding
from bnplace.stats.seed_figures import DETECT, EQUIVALENCE, seeds_for
from bnplace.stats.sequential import SequentialRule, expected_seeds, live_looks, spending_words
from bnplace.stats.verdicts import (
    POWER,
    SIGNED_RANK,
    Contrast,
    Design,
    T,
    family,
    min_seeds,
)

if TYPE_CHECKING:
    from bnplace.plan.trials import Merge, Variant


def resolve_variant(
    wanted: str, variants: Sequence[Variant], merges: Sequence[Merge], key: str
) -> str:
    """A variant name, a merged-away name, or `axis=label` pairs that pick exactly one variant."""
    names = [v.name for v in variants]
    if wanted in names:
        return wanted
    for merge in merges:
        if merge.dropped == wanted:
            return merge.kept
    pairs = {p.strip() for p in wanted.split(",") if p.strip()}
    matches = [v.name for v in variants if pairs <= {f"{a}={b}" for a, b in v.labels}]
    if len(matches) == 1:
        return matches[0]
    raise UnknownVariant(key, wanted, len(matches), names, did_you_mean(wanted, names) or "")


def _axis_contrasts(spec: AxisContrast, variants: Sequence[Variant], key: str) -> list[Contrast]:
    """`levels[0]` vs `levels[1]` of `spec.axis` at every combination of the other labels; in a
    two-axis grid also the interaction: the effect at each other level minus at the first."""
    axes = list(dict.fromkeys(a for v in variants for a, _l in v.labels))
    if spec.axis not in axes:
        hint = did_you_mean(spec.axis, axes)
        raise PlanError(
            f"{key}: no sweep axis '{spec.axis}'; axes: {', '.join(axes) or 'none'}"
            + (f" (did you mean '{hint}'?)" if hint else "")
        )
    first, second = spec.levels
    by_rest: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for v in variants:
        labels = dict(v.labels)
        rest = tuple((a, lab) for a, lab in v.labels if a != spec.axis)
        by_rest.setdefault(rest, {})[labels.get(spec.axis, "")] = v.name
    levels = {lab for group in by_rest.values() for lab in group}
    for level in spec.levels:
        if level not in levels:
            raise PlanError(
                f"{key}: axis '{spec.axis}' has no level '{level}'; levels: "
                + ", ".join(sorted(levels))
            )
    pairs = [
        (rest, group[first], group[second])
        for rest, group in by_rest.items()
        if first in group and second in group
    ]
    if not pairs:
        raise PlanError(f"{key}: no two variants differ only in {spec.axis} = {first} / {second}")
    out = []
    for rest, a, b in pairs:
        where = ", ".join(f"{ax}={lab}" for ax, lab in rest)
        name = f"{spec.axis}: {first} vs {second}" + (f" @ {where}" if where else "")
        out.append(Contrast(name, a, b, "contrast"))
    others = [a for a in axes if a != spec.axis]
    if len(others) == 1 and len(pairs) >= 2:  # two-axis grid: the difference of differences
        (ref_rest, ref_a, ref_b), *rest_pairs = pairs
        ref = ref_rest[0][1] if ref_rest else ""
        for rest, a, b in rest_pairs:
            at = rest[0][1] if rest else ""
            name = f"{spec.axis}: {first} vs {second}, {others[0]}={at} minus {others[0]}={ref}"
            out.append(Contrast(name, a, b, "interaction", ref_a, ref_b))
    return out


def make_design(
    compare: Compare,
    variants: Sequence[Variant],
    merges: Sequence[Merge],
    looks: tuple[int, ...] = (),
    spending: float | None = None,
) -> Design:
    """The config's compare section with every declared contrast resolved to variant names,
    and the looks of seeds on demand (() for a fixed number of seeds) with the exponent of their
    alpha spending (None: the interval family's default)."""
    contrasts: list[Contrast] = []
    for i, spec in enumerate(compare.contrasts):
        key = f"compare.contrasts[{i}]"
        if isinstance(spec, AxisContrast):
            contrasts += _axis_contrasts(spec, variants, key)
            continue
        a = resolve_variant(spec[0], variants, merges, f"{key}[0]")
        b = resolve_variant(spec[1], variants, merges, f"{key}[1]")
        if a == b:
            raise PlanError(f"{key}: '{spec[0]}' and '{spec[1]}' are the same variant ('{a}')")
        contrasts.append(Contrast(f"{a} vs {b}", a, b, "contrast"))
    unique = tuple(dict.fromkeys(contrasts))
    # a keyword per field, like the calls that build compare's Comparison and Statistics:
    # alike in shape only, no logic shared
    design = Design(
        alpha=compare.alpha,
        margin=compare.margin,
        seed_sd=compare.seed_sd,
        failures=compare.failures,
        contrasts=unique,
        looks=looks,
        versus_baseline=compare.versus_baseline,
        interval=compare.interval_family,
        spending=spending if looks else None,
    )
    m = family_size(design, len(variants))
    if looks and m:  # dead looks get no alpha: the design starts at the first live look
        live = live_looks(looks, design.alpha, m, design.interval, design.spending)
        design = replace(design, looks=live)
    return design


def auto_looks(
    compare: Compare,
    variants: Sequence[Variant],
    merges: Sequence[Merge],
    maximum: int,
    pool: bool,
    spending: float | None = None,
) -> tuple[tuple[int, ...], float | None]:
    """`sweep.seeds: auto`: the looks min, min + step, ..., max of the design chosen for this
    family, margin and seed sd, and its spending exponent (`spending` when the config gives one;
    `bnplace.stats.sequential_design.choose_design`; with several datasets the first look has
    at least `MIN_PAIRS_TO_POOL` seeds)."""
    from bnplace.stats.pooling import MIN_PAIRS_TO_POOL
    from bnplace.stats.sequential import look_sizes
    from bnplace.stats.sequential_design import choose_design

    m = family_size(make_design(compare, variants, merges), len(variants))
    if m == 0:
        return look_sizes(maximum, maximum, 1), spending
    chosen = choose_design(
        m, compare.alpha, compare.margin, compare.seed_sd, maximum,
        MIN_PAIRS_TO_POOL if pool else 2, interval=compare.interval_family, spending=spending,
    )  # fmt: skip
    return look_sizes(chosen.min, chosen.max, chosen.step), chosen.spending


def auto_finding(
    design: Design, m: int, maximum: int, pool: bool, spending: float | None = None
) -> Finding:
    """What `seeds: auto` chose and why, in words (`spending`: the config's, if it gave one)."""
    from bnplace.stats.pooling import MIN_PAIRS_TO_POOL
    from bnplace.stats.sequential_design import AUTO_POWER, choose_design

    c = choose_design(
        m, design.alpha, design.margin, design.seed_sd, maximum,
        MIN_PAIRS_TO_POOL if pool else 2, interval=design.interval, spending=spending,
    )  # fmt: skip
    met = "meets" if c.meets_power else "is the most powerful; none reaches"
    searching_rho = design.interval == T and spending is None
    searched = "min, step and spending" if searching_rho else "min and step"
    return Finding(
        "seeds_auto",
        "info" if c.meets_power else "warning",
        f"seeds: auto chose min {c.min}, step {c.step}, max {c.max} (looks from "
        f"{c.looks[0]}; {design.interval} intervals; alpha spent as "
        f"{spending_words(design.interval, c.spending)}): of every {searched} searched, "
        f"the fewest expected seeds per compared variant (~{c.seeds_null:.1f} at no effect, "
        f"~{c.seeds_margin:.1f} at the margin, ~{c.seeds_2x:.1f} at 2x) with power "
        f"{c.power_1_5:.0%} at 1.5x the margin by the last look ({met} {AUTO_POWER:.0%}), "
        f"if the seed sd of a paired ratio is {100 * design.seed_sd:g}% (simulated)",
    )


def family_size(design: Design, n_variants: int) -> int:
    """Comparisons in the family: every variant against the baseline (unless the design asks
    for its contrasts alone), plus the contrasts."""
    return max(n_variants - 1, 0) * design.versus_baseline + len(design.contrasts)


def design_findings(
    design: Design,
    variants: Sequence[str],
    baseline: str,
    n_seeds: int,
    configured: tuple[int, ...] = (),
    datasets: int = 0,
) -> list[Finding]:
    """Sweep-level findings: reachability of any verdict, and the prospective seed figures
    (`configured`: the config's looks, before the dead ones were dropped)."""
    m = family_size(design, len(variants))
    if m == 0:
        return []
    limit = [skew_limit(m, design.interval)] if m >= 2 or design.interval == T else []
    if design.sequential:
        figures = sequential_figures(design, variants, baseline, configured or design.looks)
        return sequential_findings(figures, design, datasets) + limit
    need = min_seeds(m, design.alpha, design.interval)
    findings = []
    if n_seeds < need:
        findings.append(
            Finding(
                "seeds_too_few_for_any_verdict",
                "warning",
                f"no verdict is reachable: {n_seeds} seed{'s' if n_seeds != 1 else ''}, but "
                f"with {m} comparison{'s' if m != 1 else ''} (Bonferroni, alpha "
                f"{design.alpha:g}/{m}) the {_TEST[design.interval]} needs at least {need} seeds",
            )
        )
    detect, equal = (
        seeds_for(
            goal, design.margin, design.seed_sd, m, alpha=design.alpha, interval=design.interval
        )
        for goal in (DETECT, EQUIVALENCE)
    )

    def shown(n: int | None) -> str:
        return f"~{n}" if n is not None else ">400"

    findings += limit
    findings.append(
        Finding(
            "seeds_for_power",
            "info",
            f"power {POWER:.0%} to call a ±{design.margin:.0%} effect better/worse needs "
            f"{shown(detect)} seeds, and 'equivalent within ±{design.margin:.0%}' at no effect "
            f"needs {shown(equal)}, if the seed-to-seed sd of a paired ratio is "
            f"{design.seed_sd:.0%} (compare.seed_sd; `bnplace compare` reports the measured one)",
        )
    )
    return findings


_TEST = {SIGNED_RANK: "exact signed-rank test", T: "t test"}


def pooling_findings(datasets: int, seeds: int) -> tuple[Finding, ...]:
    """Several datasets, each with fewer seeds than a dataset's effect needs to enter the
    pooled verdict (`MIN_PAIRS_TO_POOL`): no pooled verdict is reachable, whatever the data.
    (Seeds on demand check their first look in `config.checks.check_datasets_seeds_pool`.)"""
    if datasets < 2:
        return ()
    from bnplace.stats.pooling import MIN_PAIRS_TO_POOL  # NumPy and SciPy: only when it applies

    if seeds >= MIN_PAIRS_TO_POOL:
        return ()
    return (
        Finding(
            "seeds_too_few_to_pool",
            "warning",
            f"no pooled verdict is reachable: each of the {datasets} datasets gets at most "
            f"{seeds} seed{'s' if seeds != 1 else ''}, but a dataset's effect enters the pooled "
            f"one with {MIN_PAIRS_TO_POOL} or more (fewer give standard errors too noisy to "
            f"weight by); give {MIN_PAIRS_TO_POOL} seeds or more to ask the question across "
            "datasets (the per-dataset verdicts stand on their own)",
        ),
    )


def skew_limit(m: int, interval: str = SIGNED_RANK) -> Finding:
    """The verdict rule's known limit: exact signed-rank intervals assume paired log ratios
    symmetric around their centre, t intervals near-normal ones (measured in
    tests/test_verdicts.py and tests/test_t_interval.py)."""
    if interval == T:
        return Finding(
            "interval_assumption",
            "info",
            f"the {m} t interval{'s' if m != 1 else ''} hold together with 95% confidence when "
            "the paired log ratios are near-normal (normal 0.94-0.96, heavy-tailed t3 0.96-0.98 "
            "measured, also over every look of seeds on demand); with strongly skewed ratios "
            "(lognormal, skewness 6) they covered the mean together in only 0.45-0.89 of "
            "simulated sweeps at 3-30 seeds, 0.29-0.76 over the looks of seeds on demand: use "
            "interval: signed_rank where a few seeds may land far off",
        )
    return Finding(
        "interval_assumption",
        "info",
        f"the {m} intervals hold together with 95% confidence when the paired log ratios are "
        "symmetric around their centre (normal, heavy-tailed t3: 0.94-0.97 measured); with "
        "strongly skewed ratios (lognormal, skewness 6) and 8-11 comparisons they covered "
        "together in only 0.91-0.93 of simulated sweeps at 10-30 seeds",
    )


def sequential_figures(
    design: Design, variants: Sequence[str], baseline: str, configured: tuple[int, ...]
) -> dict[str, Any]:
    """What seeds on demand may cost on one dataset, for `plan` and `plan --json`: the looks as
    configured and as run (dead ones dropped), the first look that can decide (None: none
    can), and the fewest, most and expected trials and the power (`expected_seeds`). {} for a
    fixed design or an empty family."""
    if not design.sequential or family_size(design, len(variants)) == 0:
        return {}
    comparisons = family(variants, baseline, design)
    m = len(comparisons)
    rule = SequentialRule.of(design, m)
    index = {name: i for i, name in enumerate(variants)}
    sides = tuple(tuple(index[v] for v in c.variants) for c in comparisons)
    expected = expected_seeds(rule, len(variants), index[baseline], sides, design)
    first = rule.first_reachable_look()
    return {
        "comparisons": m,
        "configured_looks": list(configured),
        "looks": list(design.looks),
        "dead_looks": [n for n in configured if n < design.looks[0]],
        "first_deciding_look": None if first is None else design.looks[first],
        "seed_sd": design.seed_sd,
        "margin": design.margin,
        "per_dataset": expected.to_dict(),
    }


def sequential_findings(figures: dict[str, Any], design: Design, datasets: int) -> list[Finding]:
    """`sequential_figures` in words: dead looks (a warning), no reachable look (a warning),
    and per dataset the looks, trials (fewest, expected at 0, 1x and 2x the margin, most) and
    power at the last look."""
    m, looks, e = figures["comparisons"], figures["looks"], figures["per_dataset"]
    comparisons = f"{m} comparison{'s' if m != 1 else ''}"
    findings = []
    if figures["first_deciding_look"] is None:
        findings.append(
            Finding(
                "seeds_too_few_for_any_verdict",
                "warning",
                f"no verdict is reachable at any look: with {comparisons} the "
                f"{_TEST[design.interval]} needs more than {looks[-1]} seeds at the last "
                "look's level (raise seeds.max)",
            )
        )
    elif figures["dead_looks"]:
        dead = ", ".join(str(n) for n in figures["dead_looks"])
        findings.append(
            Finding(
                "looks_that_cannot_decide",
                "warning",
                f"the look{'s' if len(figures['dead_looks']) > 1 else ''} at {dead} seeds "
                f"cannot decide any of the {comparisons} (the {_TEST[design.interval]}'s "
                "interval cannot reach its level there): skipped, and given no alpha; the first "
                f"look that can decide is at {figures['first_deciding_look']} seeds (set "
                "seeds.min to it)",
            )
        )
    shown = ", ".join(str(n) for n in looks)
    where = f"per dataset ({datasets} datasets)" if datasets else "per sweep"
    findings.append(
        Finding(
            "seeds_on_demand",
            "info",
            f"seeds on demand: looks at {shown} seeds per variant ({comparisons}, "
            f"{design.interval} intervals, alpha "
            f"{design.alpha:g} spent over the looks as "
            f"{spending_words(design.interval, design.spending)}; first look that can decide: "
            f"{figures['first_deciding_look'] or 'none'}); trials {where}: "
            f"{e['fewest']:.0f} fewest, expected ~{e['trials_null']:.0f} when nothing differs, "
            f"~{e['trials_margin']:.0f} when every variant differs from the baseline by the "
            f"margin (±{design.margin:.0%}) and ~{e['trials_2x']:.0f} by twice it, "
            f"{e['most']:.0f} most; power at the last look {e['power_margin']:.0%} at the "
            f"margin, {e['power_1_5']:.0%} at 1.5x and {e['power_2x']:.0%} at 2x, if the "
            f"seed-to-seed sd of a paired ratio is {100 * design.seed_sd:g}% (compare.seed_sd; "
            "simulated, 1,000 sweeps of this rule)",
        )
    )
    return findings
