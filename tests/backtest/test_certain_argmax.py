"""The stacked pass with error bounds settles a row's action only where one-observation acting agrees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from benchmarks.untrained_policies import random_policy_checkpoints
from ml.agents.policy import load_policy
from ml.backtest.certain_argmax import CertainArgmax
from ml.backtest.vectorized import StackedPolicy


def test_settled_rows_are_what_one_observation_acting_picks(tmp_path: Path) -> None:
    policies = [load_policy(p) for p in random_policy_checkpoints(tmp_path, 20, 3, 5, {})]
    noise = torch.Generator().manual_seed(1)
    with torch.no_grad():  # actions 0 and 1 tied to a relative 1e-7 .. 1e-4 in four policies; the fifth as trained
        for k, policy in enumerate(policies[:4]):
            head = [m for m in policy.model.actor.modules() if isinstance(m, torch.nn.Linear)][-1]
            head.weight[0] *= 100
            head.weight[1] = head.weight[0] * (1 + 10.0 ** (k - 7) * torch.randn(head.weight.shape[1], generator=noise))
            head.bias[1] = head.bias[0]
    obs = np.random.default_rng(1).normal(size=(5, 400, 20)).astype(np.float32)
    one = np.stack([np.concatenate([p.act(obs[i, r : r + 1]) for r in range(400)]) for i, p in enumerate(policies)])
    best, certain = CertainArgmax(StackedPolicy(policies).layers)(torch.from_numpy(obs))
    np.testing.assert_array_equal(best[certain], one[certain])
    assert certain[4].mean() > 0.95  # an ordinary network's rows are settled by the stacked pass
    assert (~certain[0]).sum() > 100  # the tightest ties are left to the one-row pass
