"""`python -m bnplace`: the same command line as `bnplace` (and the same completion name)."""

from bnplace.console.cli import app

app(prog_name="bnplace")
