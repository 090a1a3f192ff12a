"""Cross-field rules of a config: one small named function per rule.

In: a `Config` that passed pydantic's field-level validation. Out: a list of `Issue`s, each with
the key path it concerns, so the loader can point at the line in the file. Rules that need the
resolved model (shapes, lint) belong to the plan, not here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from bnplace.config.overrides import UnknownKey, block_refs, site_names, target_paths
from bnplace.config.schema import MAX_CANDIDATES, SECTIONS, Choose, Config
from bnplace.config.sweep import SeedSchedule
from bnplace.config.yamlpos import KeyPath
from bnplace.names.errors import did_you_mean
from bnplace.names.kinds import BLOCK_SITES, MODEL_SITES
from bnplace.names.metrics import selectable

FORECAST_METRICS = selectable("forecast")  # the names compare.metric accepts, per task
CLASSIFY_METRICS = selectable("classify")


@dataclass(frozen=True)
class Issue:
    path: KeyPath
    message: str
    expected: str = ""
    got: str = ""
    suggestion: str = ""
    on_key: bool = False  # point at the key itself rather than its value


def check_unique_block_ids(config: Config) -> list[Issue]:
    seen: dict[str, int] = {}
    issues = []
    for ref in block_refs(config):
        if ref.id in seen:
            issues.append(
                Issue(
                    ("model", ref.index, ref.block_type, "id"),
                    f"block id '{ref.id}' is already used by model[{seen[ref.id]}]",
                    expected="a unique id per block",
                    got=ref.id,
                )
            )
        seen.setdefault(ref.id, ref.index)
    return issues


def check_reserved_block_ids(config: Config) -> list[Issue]:
    reserved = set(SECTIONS) | set(MODEL_SITES)
    return [
        Issue(
            ("model", ref.index, ref.block_type, "id"),
            f"block id '{ref.id}' is reserved (it names a config section or a site)",
            expected=f"an id other than {', '.join(sorted(reserved))}",
            got=ref.id,
        )
        for ref in block_refs(config)
        if ref.id in reserved
    ]


def check_placement_sites(config: Config) -> list[Issue]:
    sites = site_names(config)
    issues = []
    for site in config.placements:
        if site in sites:
            continue
        path = ("placements", site)
        issues.append(
            _site_of_another_type(path, site, config)
            or Issue(
                path,
                f"unknown site '{site}'",
                expected=f"one of {', '.join(sites)}",
                got=site,
                suggestion=did_you_mean(site, sites) or "",
                on_key=True,
            )
        )
    return issues


# `conv.after` and `pool.post_act` mean the same place: right after the block's output
_SAME_PLACE = {"after": "post_act", "post_act": "after"}
_LSTM_CELL_HINT = (
    " (to normalise inside the LSTM cell, set `cell: layer_norm` or `cell: batch_norm` on the "
    "block)"
)


def _site_of_another_type(path: KeyPath, key: str, config: Config) -> Issue | None:
    """`lstm.pre_act`, `conv.after`: a real site name on a block type that does not offer it."""
    types = {ref.id: ref.block_type for ref in block_refs(config)}
    block, _, name = key.partition(".")
    if block not in types or not any(name in offered for offered in BLOCK_SITES.values()):
        return None
    block_type, own = types[block], BLOCK_SITES[types[block]]
    same = _SAME_PLACE.get(name, "")
    hint = _LSTM_CELL_HINT if block_type == "lstm" and name in ("pre_act", "post_act") else ""
    return Issue(
        path,
        f"block '{block}' ({block_type}) has no site '{name}'",
        expected=f"one of {', '.join(f'{block}.{s}' for s in own)}{hint}",
        got=key,
        suggestion=f"{block}.{same}" if same in own else "",
        on_key=True,
    )


def check_axis_keys(config: Config) -> list[Issue]:
    issues = []
    keys: list[tuple[KeyPath, str]] = [(("sweep", "axes", key), key) for key in config.sweep.axes]
    for arm_set, arms in config.sweep.arms.items():
        for arm, settings in arms.items():
            keys += [(("sweep", "arms", arm_set, arm, key), key) for key in settings]
    for path, key in keys:
        try:
            target_paths(key, config)
        except UnknownKey as exc:
            issues.append(
                _site_of_another_type(path, key, config)
                or Issue(path, str(exc), got=key, suggestion=exc.suggestion, on_key=True)
            )
    return issues


def check_axes_have_values(config: Config) -> list[Issue]:
    issues = [
        Issue(("sweep", "axes", key), f"axis '{key}' has no values", expected="at least one value")
        for key, values in config.sweep.axes.items()
        if len(values) == 0
    ]
    issues += [
        Issue(("sweep", "arms", name), f"arm set '{name}' has no arms", expected="at least one arm")
        for name, arms in config.sweep.arms.items()
        if not arms
    ]
    return issues


def check_axes_disjoint(config: Config) -> list[Issue]:
    """A key swept by an axis must not also be set by an arm (which value would win?)."""
    issues = []
    for arm_set, arms in config.sweep.arms.items():
        for arm, settings in arms.items():
            for key in settings:
                if key in config.sweep.axes:
                    issues.append(
                        Issue(
                            ("sweep", "arms", arm_set, arm, key),
                            f"'{key}' is both a sweep axis and set by arm '{arm}'",
                            expected="each key swept in one place only",
                            on_key=True,
                        )
                    )
    return issues


DATASET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")  # goes into tags and metric names


def check_data_given(config: Config) -> list[Issue]:
    """Exactly one of `data:` (one dataset) and `datasets:` (several, by name)."""
    if config.data is not None and config.datasets is not None:
        return [
            Issue(
                ("datasets",),
                "a config has `data:` or `datasets:`, not both",
                expected="one data section under `data:`, or every dataset under `datasets:`",
                on_key=True,
            )
        ]
    if config.data is None and config.datasets is None:
        return [Issue(("data",), "missing required key 'data'", expected="data: or datasets:")]
    if config.datasets is not None and not config.datasets:
        return [
            Issue(
                ("datasets",),
                "`datasets:` names no dataset",
                expected="at least one `name: {source: ...}` entry",
            )
        ]
    return []


def check_dataset_names(config: Config) -> list[Issue]:
    return [
        Issue(
            ("datasets", name),
            f"dataset name {name!r} cannot be used in tags and metric names",
            expected="letters, digits, '_' and '-', starting with a letter",
            got=name,
            on_key=True,
        )
        for name in config.datasets or {}
        if not DATASET_NAME.match(name)
    ]


def check_one_task(config: Config) -> list[Issue]:
    """Every dataset of one question has the task of the first (one metric, one verdict)."""
    if not config.datasets:
        return []
    first, *rest = config.datasets.items()
    return [
        Issue(
            ("datasets", name, "task"),
            f"dataset '{name}' is a {section.task} dataset, but '{first[0]}' is a "
            f"{first[1].task} one; one config asks one question of one task",
            expected=f"task: {first[1].task} (or split the datasets into two configs)",
            got=section.task,
            on_key=True,
        )
        for name, section in rest
        if section.task != first[1].task
    ]


def check_datasets_seeds_pool(config: Config) -> list[Issue]:
    """Seeds on demand with several datasets: each dataset decides its own comparisons, and
    the pooled verdict weighs every dataset's effect; a dataset enters the pool with
    `MIN_PAIRS_TO_POOL` seeds (bnplace.stats.pooling), so the first look must give it that many."""
    seeds = config.sweep.seeds
    if len(config.datasets or {}) < 2 or not isinstance(seeds, SeedSchedule) or seeds.min is None:
        return []  # auto starts at MIN_PAIRS_TO_POOL itself with several datasets
    from bnplace.stats.pooling import MIN_PAIRS_TO_POOL  # NumPy and SciPy: only when it applies

    if seeds.min >= MIN_PAIRS_TO_POOL:
        return []
    return [
        Issue(
            ("sweep", "seeds", "min"),
            f"seeds on demand with several datasets start at {seeds.min} seeds, but a "
            f"dataset's effect enters the pooled verdict with {MIN_PAIRS_TO_POOL} seeds or more "
            "(fewer give standard errors too noisy to weight by); a dataset decided at the "
            "first look would be left out of the pool",
            expected=f"min: {MIN_PAIRS_TO_POOL} or more",
            got=str(seeds.min),
        )
    ]


def check_loss_fits_task(config: Config) -> list[Issue]:
    loss, task = config.train.loss, config.task
    bad = (task == "classify" and loss in ("mse", "mae", "huber")) or (
        task == "forecast" and loss == "sparse_categorical_crossentropy"
    )
    if not bad:
        return []
    return [
        Issue(
            ("train", "loss"),
            f"loss '{loss}' does not fit a {task} task",
            expected="sparse_categorical_crossentropy"
            if task == "classify"
            else "mse, mae or huber",
            got=str(loss),
        )
    ]


def check_metric_known(config: Config) -> list[Issue]:
    metric = config.compare.metric
    known = FORECAST_METRICS if config.task == "forecast" else CLASSIFY_METRICS
    if metric is None or metric in known:
        return []
    return [
        Issue(
            ("compare", "metric"),
            f"unknown metric '{metric}' for a {config.task} task",
            expected=", ".join(known),
            got=metric,
            suggestion=did_you_mean(metric, known) or "",
        )
    ]


def check_family_not_empty(config: Config) -> list[Issue]:
    """`versus_baseline: false` leaves the declared contrasts as the whole family."""
    if config.compare.versus_baseline or config.compare.contrasts:
        return []
    return [
        Issue(
            ("compare", "versus_baseline"),
            "versus_baseline: false with no compare.contrasts leaves nothing to compare",
            expected="compare.contrasts listing the comparisons the question asks for, or "
            "versus_baseline: true",
            got="false",
        )
    ]


def check_t_interval_drops_failures(config: Config) -> list[Issue]:
    """`compare.interval: t` reads a mean, which cannot rank a failed seed (rank_worst):
    failed seeds leave the pairing and their counts are compared by McNemar beside it."""
    compare = config.compare
    if compare.interval != "t" or compare.failures == "drop":
        return []
    return [
        Issue(
            ("compare", "failures"),
            "compare.interval: t judges the mean paired log ratio, which a failed seed (ranked "
            "worse than every finished one under rank_worst) has none of",
            expected="failures: drop (failure counts are then compared by McNemar beside the "
            "interval), or interval: signed_rank",
            got=compare.failures,
        )
    ]


def check_search_sites(config: Config) -> list[Issue]:
    """Every site of `search.sites` is a site of the skeleton."""
    if config.search is None:
        return []
    sites = site_names(config)
    return [
        Issue(
            ("search", "sites", site),
            f"unknown site '{site}'",
            expected=f"one of {', '.join(sites)}",
            got=site,
            suggestion=did_you_mean(site, sites) or "",
            on_key=True,
        )
        for site in config.search.sites
        if site not in sites
    ]


def check_search_alone(config: Config) -> list[Issue]:
    """A search is its own grid: no sweep axes or arms beside it."""
    if config.search is None:
        return []
    issues = [
        Issue(
            ("sweep", part),
            f"sweep.{part} cannot be combined with search:",
            expected="either sweep axes and arms (a grid) or search: (a race over placements)",
            got=", ".join(getattr(config.sweep, part)),
            on_key=True,
        )
        for part in ("axes", "arms")
        if getattr(config.sweep, part)
    ]
    return issues


def check_candidates_bounded(config: Config) -> list[Issue]:
    """`{choose: [...]}` on several train keys trains every combination: bound the product."""
    train = config.train
    sizes = [len(v.choose) for k in train.chosen_keys if isinstance(v := getattr(train, k), Choose)]
    if math.prod(sizes) <= MAX_CANDIDATES:
        return []
    return [
        Issue(
            ("train", train.chosen_keys[-1]),
            f"the chosen settings give {math.prod(sizes)} combinations, each trained per trial",
            expected=f"at most {MAX_CANDIDATES} combinations of `choose:` values",
            got=" x ".join(str(n) for n in sizes),
        )
    ]


def check_extend_one_setting(config: Config) -> list[Issue]:
    """`extend` walks one setting's grid past its ends; with several chosen settings the best
    combination's "end" is not one direction, so it is refused there."""
    train = config.train
    if len(train.chosen_keys) < 2:
        return []
    return [
        Issue(
            ("train", key, "extend"),
            "`extend` tries values past an end of one chosen setting's list",
            expected=f"extend with one `choose:` setting, not {len(train.chosen_keys)}",
            got=str(value.extend),
            on_key=True,
        )
        for key in train.chosen_keys
        if isinstance(value := getattr(train, key), Choose) and value.extend
    ]


def check_one_budget(config: Config) -> list[Issue]:
    """The budget is `epochs` or `steps`, not both."""
    train = config.train
    if train.steps is None or "epochs" not in train.model_fields_set:
        return []
    return [
        Issue(
            ("train", "steps"),
            "train.epochs and train.steps both state the budget",
            expected="one of epochs (passes over the data) or steps (optimizer updates)",
            got=f"epochs: {train.epochs}, steps: {train.steps}",
        )
    ]


RULES: tuple[Callable[[Config], list[Issue]], ...] = (
    check_data_given,
    check_dataset_names,
    check_one_task,
    check_datasets_seeds_pool,
    check_unique_block_ids,
    check_reserved_block_ids,
    check_placement_sites,
    check_axis_keys,
    check_axes_have_values,
    check_axes_disjoint,
    check_loss_fits_task,
    check_metric_known,
    check_family_not_empty,
    check_t_interval_drops_failures,
    check_search_sites,
    check_search_alone,
    check_candidates_bounded,
    check_extend_one_setting,
    check_one_budget,
)


def run_checks(config: Config) -> list[Issue]:
    return [issue for rule in RULES for issue in rule(config)]
