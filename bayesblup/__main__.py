"""``python -m bayesblup`` runs the command line."""

from .cli.main import run

run()
