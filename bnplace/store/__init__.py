"""The MLflow store: the only package that calls MLflow.

In: a tracking URI, the plan and trial results. Out: the run layout written by the driver
(`track`: sweep run > variant runs > trial runs, see docs/tracking.md), trial claims across
drivers (`claims`), what is finished and what is pending (`records`, `inventory`), and the
store as compare reads it (`read`). mlflow is imported lazily inside the functions.
"""
