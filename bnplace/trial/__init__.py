"""One trial, in the worker: seed, build, fit, evaluate, diagnose, reuse -> `TrialResult`.

In: a planned `Trial` and its prepared `Dataset`. Out: a frozen `TrialResult`. No MLflow:
results go back to the driver, which is the only writer (bnplace.store). TensorFlow is
imported by `train`, `reuse` and `diagnose` only when a trial runs.
"""
