"""Checkov checks of our own (see rollout.py)."""
