"""The `rlops` command line: one Typer sub-app per command group, heavy imports deferred to the command."""
