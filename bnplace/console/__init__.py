"""The console: Typer commands (thin: parse, call, render), terminal rendering, progress, UI.

In: the command line. Out: what the user sees, and exit codes (0 ok, 1 failed trials,
2 bad input, 130 interrupted). The only place a `BnplaceError` is rendered.
"""
