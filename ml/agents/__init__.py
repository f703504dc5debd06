"""PPO and A3C agents on one shared core (networks, rollout storage, GAE, normalization, checkpoints).

Import the pieces from their modules (``ml.agents.ppo``, ``ml.agents.checkpoint`` ...); this package root
stays empty so that importing it does not pull in torch.
"""
