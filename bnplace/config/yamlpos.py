"""YAML text -> plain Python data plus the position of every key and value.

In: YAML text and the file name it came from. Out: `Parsed(data, positions)`, where `positions`
maps a key path such as `("model", 0, "conv1d", "filters")` to its (line, column), 1-based.
Safe-loader semantics only: a tag that would construct an object (`!!python/...`, `!include`)
is reported, never run; duplicate keys, which PyYAML would silently overwrite, are reported
(keys merged in by `<<: *anchor` may be overridden, as YAML intends). A document that expands
to more than `MAX_NODES` values (an "alias bomb": nested anchors a few hundred bytes long that
repeat each other into billions of values) is refused while it is expanded, at the key whose
value overflowed, before any of it is validated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from bnplace.names.errors import ConfigError, Problem

# A path into the parsed YAML: mapping keys as written (str, int, float, bool) and list indexes.
KeyPath = tuple[str | int | float, ...]
MERGE = "tag:yaml.org,2002:merge"
# Values (mappings, lists, scalars, each alias expansion counted again) one document may expand
# to. A large real config has a few thousand (a 1,000-seed list is 1,000); expanding 100,000
# takes ~0.3 s, so an alias bomb is refused well within a second.
MAX_NODES = 100_000


@dataclass(frozen=True)
class Parsed:
    data: Any
    positions: dict[KeyPath, tuple[int, int]]
    key_positions: dict[KeyPath, tuple[int, int]]  # where the key itself is written

    def locate(self, path: KeyPath) -> tuple[int, int] | None:
        """The position of `path`, or of its nearest ancestor that exists in the file."""
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in self.key_positions and end == len(path):
                return self.key_positions[prefix]
            if prefix in self.positions:
                return self.positions[prefix]
        return None


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def parse_yaml(text: str, file: str) -> Parsed:
    loader = yaml.SafeLoader(text)
    converter = _Converter(loader, file)
    try:
        root = loader.get_single_node()
        if root is None:
            raise ConfigError([_empty_file(file)])
        data = converter.convert(root, ())
    except _TooLarge as exc:
        raise ConfigError([_too_large(exc, converter.key_positions, file)]) from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_syntax_error(exc, file)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(f"invalid YAML: {exc}", file=file)]) from None
    finally:
        loader.dispose()
    if converter.problems:
        raise ConfigError(converter.problems)
    return Parsed(data, converter.positions, converter.key_positions)


class _TooLarge(Exception):
    """Raised inside `parse_yaml` when the document expands past `MAX_NODES` values."""

    def __init__(self, path: KeyPath, node: yaml.Node) -> None:
        super().__init__(path)
        self.path, self.node = path, node


class _Converter:
    """YAML nodes -> plain data, noting positions and collecting problems as it goes.

    Counts every value it expands (aliases again each time) against `MAX_NODES` and raises
    `_TooLarge` past it.
    """

    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader, self.file = loader, file
        self.positions: dict[KeyPath, tuple[int, int]] = {}
        self.key_positions: dict[KeyPath, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self.written: dict[int, set[int]] = {}  # per mapping node, on its first visit
        self.budget = MAX_NODES
        self.merged_sizes: dict[int, int] = {}

    def convert(self, node: yaml.Node, path: KeyPath) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _TooLarge(path, node)
        self.positions[path] = _mark(node)
        if not _plain_tag(node):
            self.problems.append(self._tag_problem(node, path))
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[Any, Any]:
        # keys written here, as opposed to merged in by `<<: *anchor`, which they override
        own = self.written.setdefault(id(node), {id(k) for k, _ in node.value if k.tag != MERGE})
        if _merged_size(node, self.merged_sizes) > self.budget:  # `<<:` chains multiply too
            raise _TooLarge(path, node)
        self.loader.flatten_mapping(node)  # YAML merge keys (<<)
        out: dict[Any, Any] = {}
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) or key is None:
                line, column = _mark(key_node)
                self.problems.append(
                    Problem(
                        "keys must be plain scalars",
                        file=self.file,
                        line=line,
                        column=column,
                        got=repr(key),
                    )
                )
                continue
            if id(key_node) in own:
                if key in seen:
                    self.problems.append(self._duplicate(key_node, (*path, key)))
                seen.add(key)
            self.key_positions[(*path, key)] = _mark(key_node)
            out[key] = self.convert(value_node, (*path, key))
        return out

    def _duplicate(self, key_node: yaml.Node, path: KeyPath) -> Problem:
        line, column = _mark(key_node)
        return Problem(
            f"duplicate key {path[-1]!r}; the earlier value would be silently replaced",
            file=self.file,
            line=line,
            column=column,
            key=dotted(path),
        )

    def _tag_problem(self, node: yaml.Node, path: KeyPath) -> Problem:
        line, column = _mark(node)
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        return Problem(
            f"tag '{tag}' is not allowed: a config is plain data, "
            "and bnplace never builds objects from it",
            file=self.file,
            line=line,
            column=column,
            key=dotted(path),
            expected="plain values, lists and mappings (no tags)",
            got=tag,
        )


def _empty_file(file: str) -> Problem:
    return Problem(
        "the file is empty; a config is a YAML mapping",
        file=file,
        line=1,
        column=1,
        expected="a mapping with 'experiment', 'data' and 'model'",
    )


def _too_large(exc: _TooLarge, key_positions: dict[KeyPath, tuple[int, int]], file: str) -> Problem:
    """The alias-bomb refusal, at the top-level key whose value overflowed."""
    top = exc.path[:1]
    where = key_positions.get(top) or _mark(exc.node)
    return Problem(
        f"the YAML expands to more than {MAX_NODES:,} values: anchors (&name) and "
        "aliases (*name) repeat what they name, and nested ones multiply; refused "
        "before validation",
        file=file,
        line=where[0],
        column=where[1],
        key=dotted(top),
        expected="a config of at most a few thousand values (write each value "
        "once, or use fewer nested aliases)",
        got=f"the count passed {MAX_NODES:,} at {dotted(exc.path) or 'the top'}",
    )


def _syntax_error(exc: yaml.MarkedYAMLError, file: str) -> Problem:
    """PyYAML's syntax error, located, with where its context starts and a hint at the fix."""
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
    message = f"invalid YAML: {exc.problem or exc}"
    if exc.context:
        message += f" ({exc.context}"
        if exc.context_mark and exc.problem_mark and exc.context_mark.line != exc.problem_mark.line:
            start = exc.context_mark
            message += f" that starts at line {start.line + 1}, column {start.column + 1}"
        message += ")"
    return Problem(message, file=file, line=line, column=column, expected=_yaml_hint(exc))


def _merged_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """The pairs a mapping has once its `<<:` merge keys are flattened (without flattening)."""
    if not isinstance(node, yaml.MappingNode):
        return 0
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 0  # a merge cycle adds nothing (PyYAML rejects it later)
    total = 0
    for key, value in node.value:
        if key.tag != MERGE:
            total += 1
            continue
        merged = value.value if isinstance(value, yaml.SequenceNode) else [value]
        total += sum(_merged_size(sub, memo) for sub in merged)
    memo[id(node)] = total
    return total


_PLAIN_TAGS = {
    yaml.MappingNode: {"tag:yaml.org,2002:map"},
    yaml.SequenceNode: {"tag:yaml.org,2002:seq"},
    yaml.ScalarNode: {tag for tag in yaml.SafeLoader.yaml_constructors if tag is not None},
}


def _plain_tag(node: yaml.Node) -> bool:
    """Whether the node is plain data (implicit tags and safe scalar tags such as !!str)."""
    return node.tag in _PLAIN_TAGS.get(type(node), set())


def _yaml_hint(exc: yaml.MarkedYAMLError) -> str:
    """What a common YAML syntax error usually needs, in the words of the fix."""
    problem, context = exc.problem or "", exc.context or ""
    if "'\\t'" in problem:
        return "spaces for indentation (YAML does not allow tabs)"
    if "flow" in context:
        return "a closing '}' or ']' for the bracket opened there, or a ',' between items"
    if problem == "mapping values are not allowed here":
        return "each `key:` at the indentation of its siblings; quote a value that contains ': '"
    if "indentation" in problem or "block end" in problem:
        return "consistent indentation (spaces) for keys at the same level"
    return ""


def dotted(path: KeyPath) -> str:
    """("model", 0, "conv1d", "filters") -> "model[0].conv1d.filters"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
