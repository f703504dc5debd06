"""`python -m rlops.cli` runs the same command as the `rlops` script."""

from rlops.cli.main import run

run()
