"""The base every rlops package stands on: the error users see and the memory-bank library.

It imports nothing else of the project, so `ml`, `patchbot`, `workflows` and the CLI (`rlops`) all point down to
it and never to each other's tops.
"""

__version__ = "0.1.0"
