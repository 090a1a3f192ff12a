"""Statistics, pure NumPy/SciPy: verdicts, group-sequential looks, meta-analysis, pairing.

In: per-seed metric values and a design (margin, level, family). Out: intervals, verdicts,
decisions per look, pooled effects. Imports neither TensorFlow nor MLflow and touches no
files, so every rule here is tested by seeded simulation (tests/test_verdicts.py,
test_sequential.py, test_pooling.py).
"""
