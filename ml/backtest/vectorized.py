"""Many policies x many assets backtested at once: one stacked forward pass and one kernel call per asset per bar.

For sweeps (every checkpoint of a tuning run on every asset), stepping policies one by one wastes the time in
Python and small matrix products. Here the MLPs of same-shaped policies are stacked and evaluated with batched
matrix products, and each asset's envs (one per policy) are stepped by the same execution kernel as always.
Actions are the deterministic ones `Policy.act` gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from ml.agents.normalization import OBS_CLIP
from ml.agents.policy import Policy
from ml.envs.batched import BatchedTradingEnv
from ml.envs.config import EnvConfig
from ml.envs.market import MarketData
from rlops.errors import RlopsError

_NORM_EPS = 1e-8  # the epsilon RunningMeanStd.normalize adds to the variance
_ACTIVATIONS = {nn.Tanh: torch.tanh, nn.ReLU: torch.relu}


class StackedPolicy:
    """Same-architecture policies as one batched MLP: `act(obs)` maps (P, B, D) observations to (P, B) actions."""

    def __init__(self, policies: Sequence[Policy]) -> None:
        if not policies:
            raise RlopsError("StackedPolicy needs at least one policy")
        spec = policies[0].spec
        if any(p.spec != spec for p in policies):
            raise RlopsError("stacked policies must share observation and action spaces")
        if spec.action_nvec:
            raise RlopsError("stacked evaluation supports one action head per policy (single-asset discrete)")
        self.spec = spec
        self.discrete = spec.is_discrete
        self.layers: list[tuple[Tensor, Tensor] | Any] = []
        per_policy = [self._flatten(p.model.actor) for p in policies]
        if any(len(layers) != len(per_policy[0]) for layers in per_policy):
            raise RlopsError("stacked policies must share their network shape")
        for parts in zip(*per_policy, strict=True):
            if isinstance(parts[0], nn.Linear):
                weights = torch.stack([layer.weight.detach().T for layer in parts])
                biases = torch.stack([layer.bias.detach()[None, :] for layer in parts])
                self.layers.append((weights, biases))
            else:
                self.layers.append(_ACTIVATIONS[type(parts[0])])
        norms = [p.obs_norm for p in policies]
        self.mean: Tensor | None = None
        self.scale: Tensor | None = None
        if any(n is not None for n in norms):
            if not all(n is not None for n in norms):
                raise RlopsError("stacked policies must all use observation normalisation, or none")
            self.mean = torch.stack([n.mean for n in norms if n is not None])[:, None, :]
            self.scale = torch.stack([torch.sqrt(n.var + _NORM_EPS) for n in norms if n is not None])[:, None, :]
        self.low = torch.as_tensor(np.asarray(spec.action_low, dtype=np.float32))
        self.high = torch.as_tensor(np.asarray(spec.action_high, dtype=np.float32))

    @staticmethod
    def _flatten(module: nn.Module) -> list[nn.Module]:
        leaves = [m for m in module.modules() if not list(m.children())]
        for leaf in leaves:
            if not isinstance(leaf, nn.Linear | nn.Tanh | nn.ReLU):
                raise RlopsError(f"stacked evaluation supports Linear/Tanh/ReLU MLPs, not {type(leaf).__name__}")
        return leaves

    @torch.no_grad()
    def act(self, obs: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        x = torch.as_tensor(obs)
        if self.mean is not None and self.scale is not None:
            x = ((x.to(torch.float64) - self.mean) / self.scale).clamp(-OBS_CLIP, OBS_CLIP).to(torch.float32)
        for layer in self.layers:
            x = torch.baddbmm(layer[1], x, layer[0]) if isinstance(layer, tuple) else layer(x)
        if self.discrete:
            return x.argmax(dim=-1).numpy()
        return torch.clamp(x, self.low, self.high).numpy()


@dataclass(frozen=True)
class SweepResult:
    """Equity of every (policy, market) pair, bar by bar: (policies, markets, bars + 1)."""

    equity: npt.NDArray[np.float64]
    decisions: int

    def returns(self) -> npt.NDArray[np.float64]:
        out: npt.NDArray[np.float64] = self.equity[..., 1:] / self.equity[..., :-1] - 1.0
        return out


def sweep(policies: Sequence[Policy], markets: Sequence[MarketData], config: EnvConfig) -> SweepResult:
    """Every policy on every market over each market's whole period, all markets stepped bar by bar together."""
    if not markets:
        raise RlopsError("sweep needs at least one market")
    stacked = StackedPolicy(policies)
    envs = [BatchedTradingEnv(market, config, num_envs=len(policies)) for market in markets]
    lengths = {env.market.decision_bars for env in envs}
    if len(lengths) != 1:
        raise RlopsError(f"sweep markets must have the same number of decision bars (got {sorted(lengths)})")
    steps = lengths.pop()
    if envs[0].sim.obs_size != stacked.spec.obs_dim:
        raise RlopsError(
            f"policies expect observations of size {stacked.spec.obs_dim}, the markets give {envs[0].sim.obs_size}"
        )
    equity = np.empty((len(policies), len(markets), steps + 1))
    obs = np.stack([env.reset(seed=0)[0] for env in envs], axis=1)  # (P, M, D)
    equity[:, :, 0] = config.initial_cash
    threads = torch.get_num_threads()
    # The matrices are small: one thread avoids cross-core synchronisation that costs more than it saves.
    torch.set_num_threads(1)
    try:
        for t in range(1, steps + 1):
            actions = stacked.act(obs)
            for m, env in enumerate(envs):
                step_obs, _, _, _, info = env.step(actions[:, m])
                obs[:, m] = step_obs
                # On the last bar the envs auto-reset; the equity they ended with is in the info.
                equity[:, m, t] = info.get("final_equity", env.sim.state.equity)
    finally:
        torch.set_num_threads(threads)
    return SweepResult(equity, decisions=len(policies) * len(markets) * steps)
