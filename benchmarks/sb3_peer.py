"""Stable-Baselines3 PPO given rlops' PPO hyperparameters, translated once for every benchmark that compares them
(`agents_vs_sb3.py` for throughput, `agents_quality.py` for returns across seeds)."""

from __future__ import annotations

from typing import Any

import torch

from ml.agents.config import PPOConfig


def sb3_kwargs(config: PPOConfig) -> dict[str, Any]:
    """The same hyperparameters in SB3's names (network: two 64-unit tanh layers, separate actor and critic)."""
    initial = config.learning_rate

    def schedule(remaining: float) -> float:  # SB3 passes the fraction of training left
        return initial * remaining if config.lr_schedule == "linear" else initial

    return {
        "learning_rate": schedule,
        "n_steps": config.rollout_steps,
        "batch_size": config.batch_size,
        "n_epochs": config.num_epochs,
        "gamma": config.gamma,
        "gae_lambda": config.gae_lambda,
        "clip_range": config.clip_param,
        "ent_coef": config.entropy_coef,
        # SB3's value loss is the plain squared error, ours half of it (CleanRL's convention): the same loss
        # needs half the coefficient on SB3's side.
        "vf_coef": config.value_loss_coef / 2,
        "max_grad_norm": config.max_grad_norm,
        "normalize_advantage": config.normalize_advantages,
        "target_kl": config.target_kl,
        "policy_kwargs": {
            "net_arch": {"pi": list(config.hidden_sizes), "vf": list(config.hidden_sizes)},
            "activation_fn": torch.nn.Tanh,
            "log_std_init": config.log_std_init,
        },
        "seed": config.seed,
        "device": "cpu",
        "verbose": 0,
    }
