"""One table of layer kinds: the schema, the plan (shapes, lint, resolve) and the builder cover
exactly the kinds of `bnplace.names.kinds`, and nothing else names a kind the table lacks."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys

import pytest

import bnplace.plan.shapes
from bnplace.config import layers
from bnplace.names import kinds
from bnplace.names.kinds import BLOCKS, LAYER_KINDS, PLACEABLE


def _kind_literals(module: object) -> set[str]:
    """Every string a module compares with a `.kind` attribute (`x.kind == "y"`, `in (...)`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):  # type: ignore[arg-type]
        if not isinstance(node, ast.Compare):
            continue
        if not (isinstance(node.left, ast.Attribute) and node.left.attr == "kind"):
            continue
        for right in node.comparators:
            items = right.elts if isinstance(right, ast.Tuple | ast.Set | ast.List) else [right]
            found |= {i.value for i in items if isinstance(i, ast.Constant)}
    return found


def test_schema_placeable_layers_and_blocks_are_the_tables() -> None:
    assert set(layers.LAYER_TYPES) == set(PLACEABLE)
    assert set(layers.PlacedLayer.model_fields) == set(PLACEABLE)
    assert set(layers.BLOCK_TYPES) == set(BLOCKS)
    assert set(layers.Block.model_fields) == set(BLOCKS)


def test_blocks_head_and_placements_make_every_kind() -> None:
    made = {kind for block in BLOCKS.values() for kind in block.makes}
    assert made | set(kinds.HEAD_KINDS) | set(PLACEABLE) == set(LAYER_KINDS)


def test_shapes_has_one_rule_per_kind() -> None:
    assert set(bnplace.plan.shapes.RULES) == set(LAYER_KINDS)


@pytest.mark.parametrize("name", ["lint", "resolve", "spec"])
def test_plan_names_only_kinds_of_the_table(name: str) -> None:
    # import_module: `bnplace.plan.lint` the attribute is the function the package re-exports
    literals = _kind_literals(importlib.import_module(f"bnplace.plan.{name}"))
    assert literals, "the scan found no kind comparisons: has the code changed shape?"
    assert literals <= set(LAYER_KINDS)


def test_kind_groups_come_from_the_table() -> None:
    assert {"batch_norm", "layer_norm", "group_norm"} == kinds.NORM_KINDS
    assert {
        "dropout",
        "spatial_dropout",
        "gaussian_dropout",
        "alpha_dropout",
    } == kinds.DROPOUT_KINDS
    assert kinds.DROPOUT_KINDS | {"gaussian_noise"} == kinds.NOISE_KINDS
    assert {"conv1d", "max_pool", "average_pool", "se", "lstm"} == kinds.SEQUENCE_ONLY
    assert kinds.NOISE_KINDS | {"activation"} == kinds.PASS_THROUGH
    assert {"flatten", "global_average_pool", "last_step"} == kinds.REDUCE_KINDS


def test_every_kind_has_a_short_name_or_a_special_one() -> None:
    for name, kind in LAYER_KINDS.items():
        assert kind.does and kind.keras and kind.params, name
        assert kind.short or name == "activation", name


def test_check_covers_names_what_is_missing() -> None:
    with pytest.raises(RuntimeError, match=r"missing \['b'\], unknown \['c'\]"):
        kinds.check_covers(["a", "c"], ["a", "b"], "here")


def test_table_config_and_plan_import_without_tensorflow() -> None:
    code = (
        "import sys, bnplace.names.kinds, bnplace.config, bnplace.plan, bnplace.names.metrics, "
        "bnplace.names.tags; "
        "bad = [m for m in ('tensorflow', 'keras', 'mlflow') if m in sys.modules]; "
        "sys.exit(', '.join(bad) or None)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_builder_registry_covers_the_table_and_makes_its_classes() -> None:
    keras = pytest.importorskip("keras")
    from bnplace.build.registry import REGISTRY

    assert set(REGISTRY) == set(LAYER_KINDS)
    from bnplace.build import layers as own

    for name, kind in LAYER_KINDS.items():
        cls = getattr(own, kind.keras, None) or getattr(keras.layers, kind.keras)
        assert issubclass(cls, keras.layers.Layer), name
