"""One table of layer kinds: the schema, the plan (shapes, lint, resolve) and the builder cover
exactly the kinds of `bnplace.names.kinds`, and nothing else names a kind the table lacks."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
import warnings

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
    assert made | set(kinds.HEAD_KINDS) | set(PLACEABLE) | {kinds.MASK_KIND} == set(LAYER_KINDS)


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
    assert kinds.NOISE_KINDS | {"activation", "masking"} == kinds.PASS_THROUGH
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


# One Keras argument set per kind that needs some, for building each kind after a Masking layer.
_MASK_PROBE_ARGS: dict[str, dict[str, object]] = {
    "conv1d": {"filters": 2, "kernel_size": 2},
    "dense": {"units": 2},
    "output": {"units": 2},
    "activation": {"activation": "relu"},
    "group_norm": {"groups": 1},
    "gaussian_noise": {"stddev": 0.1},
    "max_pool": {"pool_size": 2},
    "average_pool": {"pool_size": 2},
    "se": {"ratio": 1},
    "lstm": {"units": 2, "return_sequences": True},
    **{kind: {"rate": 0.1} for kind in kinds.DROPOUT_KINDS},
}


@pytest.mark.parametrize("cell", ["standard", "layer_norm", "batch_norm"])
def test_keeps_mask_is_what_keras_does_with_a_padding_mask(cell: str) -> None:
    """The table's `keeps_mask` (the plan's lint reads it) is Keras' own behaviour: each kind,
    built by the registry after a Masking layer, hands a mask on exactly when the table says."""
    keras = pytest.importorskip("keras")
    from bnplace.build.registry import REGISTRY
    from bnplace.plan.spec import LayerSpec

    kept: dict[str, bool] = {}
    for name in LAYER_KINDS:
        args = {**_MASK_PROBE_ARGS.get(name, {}), **({"cell": cell} if name == "lstm" else {})}
        masked = keras.layers.Masking(0.0)(keras.Input((6, 2)))
        with warnings.catch_warnings():  # Keras warns where a layer ends the mask
            warnings.simplefilter("ignore", UserWarning)
            out = REGISTRY[name](LayerSpec.of(name, "probe", **args), f"probe_{name}")(masked)
        kept[name] = getattr(out, "_keras_mask", None) is not None
    assert kept == {name: kind.keeps_mask for name, kind in LAYER_KINDS.items()}


@pytest.mark.parametrize(
    ("padding", "strides"), [("causal", 1), ("same", 1), ("valid", 1), ("causal", 2)]
)
def test_a_conv1d_keeps_the_mask_where_its_spec_says(padding: str, strides: int) -> None:
    """`LayerSpec.keeps_mask` of a conv1d (stride 1, causal or same) is what the built layer
    does with a padding mask."""
    keras = pytest.importorskip("keras")
    from bnplace.build.registry import REGISTRY
    from bnplace.plan.spec import LayerSpec

    spec = LayerSpec.of("conv1d", "c", filters=2, kernel_size=3, padding=padding, strides=strides)
    masked = keras.layers.Masking(0.0)(keras.Input((8, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = REGISTRY["conv1d"](spec, "c")(masked)
    assert (getattr(out, "_keras_mask", None) is not None) == spec.keeps_mask
    assert spec.keeps_mask == (padding != "valid" and strides == 1)
