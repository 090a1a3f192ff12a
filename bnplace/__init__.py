"""bnplace: where does BatchNormalization go? Placement experiments for time-series Keras models.

The data flows one way: config (YAML -> Config) -> plan (variants x seeds -> Trials) -> execute
(data, build, train -> TrialResults) -> track (MLflow, the driver the only writer) -> compare
(runs -> statistics, plots, report). `bnplace.console.cli` wires the steps to commands.
"""

__version__ = "0.1.0"
