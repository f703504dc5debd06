"""Hyperparameter optimisation of the PPO and A3C agents with Ray Tune, scored out of sample.

Modules import Ray lazily where they can, so ``rlops --help`` and the settings checks stay fast.
"""
