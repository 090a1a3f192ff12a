"""The `run` use case: plan, resume, execute on a schedule, record; and its cost estimate.

In: a loaded config and command-line choices (jobs, executor, seeds). Out: a finished (or
cleanly interrupted) sweep in the store, and a summary for the console (`sweep`); the
training-time estimate `plan` prints (`estimate`).
"""
