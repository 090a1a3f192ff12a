"""YAML text -> plain Python data plus the position of every key and value.

In: YAML text and the file name it came from. Out: `Parsed(data, positions)`, where `positions`
maps a key path such as `("model", 0, "conv1d", "filters")` to its (line, column), 1-based.
Safe-loader semantics only (no tags that construct objects, no code); duplicate keys, which
PyYAML would silently overwrite, are reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from bnplace.errors import ConfigError, Problem

KeyPath = tuple[str | int, ...]


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
    try:
        root = loader.get_single_node()
        if root is None:
            raise ConfigError([Problem("the file is empty; a config is a YAML mapping", file=file,
                                       line=1, column=1, expected="a mapping with 'experiment', "
                                       "'data' and 'model'")])
        positions: dict[KeyPath, tuple[int, int]] = {}
        key_positions: dict[KeyPath, tuple[int, int]] = {}
        problems: list[Problem] = []

        def convert(node: yaml.Node, path: KeyPath) -> Any:
            positions[path] = _mark(node)
            if isinstance(node, yaml.MappingNode):
                loader.flatten_mapping(node)  # YAML merge keys (<<)
                out: dict[Any, Any] = {}
                for key_node, value_node in node.value:
                    key = loader.construct_object(key_node, deep=True)
                    if not isinstance(key, str | int | float | bool) or key is None:
                        line, column = _mark(key_node)
                        problems.append(Problem("keys must be plain scalars", file=file,
                                                line=line, column=column, got=repr(key)))
                        continue
                    if key in out:
                        line, column = _mark(key_node)
                        problems.append(Problem(f"duplicate key {key!r}; the earlier value would "
                                                "be silently replaced", file=file, line=line,
                                                column=column, key=dotted(path + (key,))))
                    key_positions[path + (key,)] = _mark(key_node)
                    out[key] = convert(value_node, path + (key,))
                return out
            if isinstance(node, yaml.SequenceNode):
                return [convert(item, path + (i,)) for i, item in enumerate(node.value)]
            return loader.construct_object(node, deep=True)

        data = convert(root, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        message = f"invalid YAML: {exc.problem or exc}"
        if exc.context:
            message += f" ({exc.context})"
        raise ConfigError([Problem(message, file=file, line=line, column=column)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(f"invalid YAML: {exc}", file=file)]) from None
    finally:
        loader.dispose()
    if problems:
        raise ConfigError(problems)
    return Parsed(data, positions, key_positions)


def dotted(path: KeyPath) -> str:
    """("model", 0, "conv1d", "filters") -> "model[0].conv1d.filters"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text

