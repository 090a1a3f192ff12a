"""Key paths that address one setting of a config, and applying a value at one.

In: a validated base `Config`, its raw data, a key such as `conv.pre_act`, `lstm.units`,
`train.batch_size` or `data.standardize`, and a value. Out: the raw path the key points at
(`("placements", "conv.pre_act")`, `("model", 1, "lstm", "units")`, ...; `data.<key>` in a
config with `datasets:` points at that key of every dataset) and a new raw mapping with the
value set there. Sweep axes, arms and `--set` all go through here, so a key means the
same thing everywhere. Pure: no files, no TensorFlow.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, cast

from bnplace.config.layers import BLOCK_TYPES, Block
from bnplace.config.schema import SECTIONS, Config
from bnplace.config.yamlpos import KeyPath
from bnplace.names.errors import did_you_mean
from bnplace.names.kinds import BLOCK_SITES, MODEL_SITES


@dataclass(frozen=True)
class BlockRef:
    """A block of the skeleton with its resolved id and its index in `model:`."""

    id: str
    block_type: str  # conv1d, pool, se, lstm, dense
    index: int
    block: Block


def block_refs(config: Config) -> list[BlockRef]:
    """Blocks with ids filled in: an explicit `id`, else the type (`lstm`, then `lstm_2`...)."""
    refs: list[BlockRef] = []
    seen: dict[str, int] = {}
    for index, block in enumerate(config.model):
        block_type = block.block_type
        seen[block_type] = seen.get(block_type, 0) + 1
        default = block_type if seen[block_type] == 1 else f"{block_type}_{seen[block_type]}"
        refs.append(BlockRef(block.settings.id or default, block_type, index, block))
    return refs


def site_names(config: Config) -> list[str]:
    """Every site of this config's skeleton, in model order."""
    first, *last = MODEL_SITES  # input; pre_output, logits
    names = [first]
    for ref in block_refs(config):
        names += [f"{ref.id}.{site}" for site in BLOCK_SITES[ref.block_type]]
    return [*names, *last]


class UnknownKey(ValueError):
    """A key that addresses nothing; carries a suggestion."""

    def __init__(self, message: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.suggestion = suggestion or ""


def target_paths(key: str, config: Config) -> list[KeyPath]:
    """Every raw path a key sets: one, except `data.<key>` in a config with `datasets:`, which
    means that key on every dataset (`datasets.<name>.<key>` sets one)."""
    head, _, rest = key.partition(".")
    if head == "data" and rest and config.datasets is not None:
        return [("datasets", name, *rest.split(".")) for name in config.datasets]
    return [target_path(key, config)]


def set_values(raw: dict[str, Any], paths: list[KeyPath], value: Any) -> dict[str, Any]:
    """A copy of `raw` with `value` at each of `paths` (see `set_value`)."""
    for path in paths:
        raw = set_value(raw, path, value)
    return raw


def target_path(key: str, config: Config) -> KeyPath:
    """The raw path a key sets; raises UnknownKey with a suggestion when it addresses nothing."""
    if key in MODEL_SITES or key in site_names(config):
        return ("placements", key)
    if key in ("experiment", "description"):
        return (key,)
    head, _, rest = key.partition(".")
    if head in ("data", "datasets") and rest:
        _check_data_key(head, rest, config)
    if head in SECTIONS:
        if not rest:
            raise UnknownKey(f"'{key}' names a whole section; name one setting, e.g. {head}.<key>")
        return (head, *rest.split("."))
    refs = {ref.id: ref for ref in block_refs(config)}
    if head in refs and rest:
        ref = refs[head]
        fields = [f for f in BLOCK_TYPES[ref.block_type].model_fields if f != "id"]
        sites = list(BLOCK_SITES[ref.block_type])
        if rest in fields:
            return ("model", ref.index, ref.block_type, rest)
        raise UnknownKey(
            f"block '{head}' ({ref.block_type}) has no site or setting '{rest}'; "
            f"sites: {', '.join(sites)}; settings: {', '.join(fields)}",
            _suggest(key, [f"{head}.{n}" for n in sites + fields]),
        )
    known = (
        site_names(config)
        + [f"{s}.<key>" for s in SECTIONS]
        + [f"{ref.id}.<setting>" for ref in block_refs(config)]
    )
    candidates = site_names(config) + [
        f"{ref.id}.{f}"
        for ref in block_refs(config)
        for f in BLOCK_TYPES[ref.block_type].model_fields
    ]
    raise UnknownKey(
        f"'{key}' is not a site, a block setting or a section key; known: {', '.join(known)}",
        _suggest(key, candidates),
    )


def _check_data_key(head: str, rest: str, config: Config) -> None:
    """`datasets.<name>.<key>` needs a dataset of that name (`data.<key>` with `datasets:` is
    every dataset's key: see `target_paths`)."""
    names = list(config.datasets or {})
    name = rest.split(".", 1)[0]
    if head == "datasets" and name not in names:
        raise UnknownKey(
            f"no dataset named {name!r} under `datasets:`"
            + (f"; datasets: {', '.join(names)}" if names else " (this config has `data:`)"),
            _suggest(name, names),
        )


def _suggest(key: str, candidates: list[str]) -> str | None:
    return did_you_mean(key, candidates)


def set_value(raw: dict[str, Any], path: KeyPath, value: Any) -> dict[str, Any]:
    """A copy of `raw` with `value` at `path` (intermediate mappings created as needed).

    Only the mappings and lists along `path` are copied; the rest is shared with `raw`, which
    stays as it was (a deep copy per override was most of planning a large grid). Callers
    treat raw configs as values: nothing mutates one in place.
    """
    out = copy.copy(raw)
    node: Any = out
    for part in path[:-1]:
        if isinstance(node, list):
            index = cast(int, part)  # target_path steps into a list (`model`) by block index
            if isinstance(node[index], str):  # a bare block name such as `- se`
                node[index] = {node[index]: {}}
            else:
                node[index] = copy.copy(node[index])  # copied along the path only
            node = node[index]
            continue
        child = node.get(part)
        node[part] = copy.copy(child) if isinstance(child, dict | list) else {}
        node = node[part]
    node[path[-1]] = copy.deepcopy(value)
    return out
