"""rlops: one repository from RL trading research to production."""

__version__ = "0.1.0"
