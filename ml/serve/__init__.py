"""The inference service: a FastAPI app that serves one trained policy over HTTP.

Import the pieces from their modules (``ml.serve.app``, ``ml.serve.settings`` ...); this package root stays
empty so that importing it pulls in neither torch nor FastAPI.
"""
