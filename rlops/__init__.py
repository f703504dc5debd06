"""rlops: one repository from RL trading research to production. This package is the top: the CLI and the
deployment commands; the shared base pieces live in `rlops_core`."""

from rlops_core import __version__

__all__ = ["__version__"]
