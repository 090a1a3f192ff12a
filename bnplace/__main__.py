from bnplace.cli import app

app()
