"""Plan: a loaded config -> the variants and trials of a sweep, linted, with stable keys.

The package faces outward only. `make_plan` (`bnplace.plan.make`) turns a `LoadedConfig` into a
frozen `Plan` of `Variant`s and `Trial`s (`bnplace.plan.trials`). The steps: `grid` (axes and
arms -> cells), `resolve` (a cell -> a canonical `ModelSpec`, `spec`), `shapes` and `memory`
(shapes, parameters, memory, without TensorFlow), `lint` (findings), `design` (the comparison
family), `detail` (a model layer by layer). Pure: imports neither TensorFlow nor MLflow.
"""

from bnplace.names.metrics import direction_for
from bnplace.plan.lint import Finding
from bnplace.plan.make import data_key, make_plan
from bnplace.plan.resolve import DataShape
from bnplace.plan.spec import LayerSpec, ModelSpec
from bnplace.plan.trials import Merge, OnDataset, Plan, Trial, Variant

__all__ = [
    "DataShape",
    "Finding",
    "LayerSpec",
    "Merge",
    "ModelSpec",
    "OnDataset",
    "Plan",
    "Trial",
    "Variant",
    "data_key",
    "direction_for",  # re-exported from bnplace.names.metrics
    "make_plan",
]
