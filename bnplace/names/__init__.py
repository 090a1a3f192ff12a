"""Shared names: errors, layer kinds, metric names, MLflow tag names and trial states.

The bottom of the house: every other package imports these tables, and they import nothing
from bnplace. One home per shared name (`errors`, `kinds`, `metrics`, `tags`, `states`).
"""
