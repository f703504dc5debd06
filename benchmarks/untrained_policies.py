"""Untrained MLP policies saved as checkpoints: the many same-shaped networks the backtest benchmarks sweep.

Their actions are noise, which is what a throughput or equality check wants (every kind of fill, near ties
included), and each is seeded, so a run's grid is the same every time. The backtest tests use them too.
"""

from __future__ import annotations

from pathlib import Path


def random_policy_checkpoints(
    folder: Path, obs_dim: int, levels: int, count: int, env: dict[str, object]
) -> list[Path]:
    """Untrained (orthogonally initialised) discrete MLP policies saved in the agents' checkpoint format."""
    import torch

    from ml.agents.checkpoint import Checkpoint, save_checkpoint
    from ml.agents.networks import ActorCritic
    from ml.agents.spaces import SpaceSpec

    spec = SpaceSpec(name="trading", obs_dim=obs_dim, action_kind="discrete", num_actions=levels)
    paths = []
    for i in range(count):
        torch.manual_seed(1000 + i)
        model = ActorCritic(spec, hidden_sizes=(64, 64))
        checkpoint = Checkpoint(
            algo="ppo",
            config={"hidden_sizes": [64, 64], "activation": "tanh", "log_std_init": 0.0},
            env_spec=spec,
            model_state=model.state_dict(),
            env_source={"kind": "trading", "env": env},
        )
        paths.append(save_checkpoint(checkpoint, folder / f"policy-{i:02d}.pt"))
    return paths
