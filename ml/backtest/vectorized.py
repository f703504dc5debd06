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
from ml.envs.config import EnvConfig
from ml.envs.execution import observe_markets_kernel, pack_params, step_markets_kernel
from ml.envs.market import MarketData, check_fits, observation_size
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
    """Every policy on every market over each market's whole period, all markets stepped bar by bar together.

    Markets must share their time axis and decision range (e.g. single-asset slices of one panel); each bar is
    one stacked forward pass and one compiled call that steps every (market, policy) account.
    """
    if not markets:
        raise RlopsError("sweep needs at least one market")
    stacked = StackedPolicy(policies)
    first = markets[0]

    def layout(m: MarketData) -> tuple[int, int, int, int]:
        return m.first_decision, m.last_bar, len(m.timestamps), m.num_assets

    if any(layout(m) != layout(first) for m in markets):
        raise RlopsError("sweep markets must share their bars, decision range and number of assets")
    obs_size = observation_size(first, config)
    if obs_size != stacked.spec.obs_dim:
        raise RlopsError(f"policies expect observations of size {stacked.spec.obs_dim}, the markets give {obs_size}")
    check_fits(first, config)
    num_markets, num_policies, assets = len(markets), len(policies), first.num_assets
    opens, closes, volumes, features = (
        np.ascontiguousarray(np.stack([getattr(m, name) for m in markets]))
        for name in ("open", "close", "volume", "features")
    )
    params = pack_params(config, first.periods_per_year)
    levels = np.asarray(config.levels, dtype=np.float64)
    shape = (num_markets, num_policies)
    t = np.full(shape, first.first_decision, dtype=np.int64)
    end = np.full(shape, first.last_bar, dtype=np.int64)
    cash, equity_now = np.full(shape, config.initial_cash), np.full(shape, config.initial_cash)
    shares, basis = np.zeros((*shape, assets)), np.zeros((*shape, assets))
    dsr_a, dsr_b, rewards = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    terminated, truncated = np.zeros(shape, dtype=np.bool_), np.zeros(shape, dtype=np.bool_)
    fills, costs = np.zeros((*shape, assets, 3)), np.zeros((*shape, 3))
    rows = np.arange(num_policies, dtype=np.int64)
    alive = np.ones(shape, dtype=np.bool_)
    obs = np.empty((num_markets, num_policies, obs_size), dtype=np.float32)
    steps = first.decision_bars
    equity = np.empty((num_policies, num_markets, steps + 1))
    equity[:, :, 0] = config.initial_cash
    threads = torch.get_num_threads()
    # The matrices are small: one thread avoids cross-core synchronisation that costs more than it saves.
    torch.set_num_threads(1)
    try:
        for step in range(1, steps + 1):
            observe_markets_kernel(features, config.window, closes, t, cash, shares, basis, equity_now, rows, obs)
            actions = stacked.act(obs.transpose(1, 0, 2))  # (P, M) or (P, M, A)
            weights = actions.reshape(num_policies, num_markets, assets).transpose(1, 0, 2).astype(np.float64)
            step_markets_kernel(
                np.ascontiguousarray(weights), levels, params, opens, closes, volumes, t, end, cash, shares, basis,
                equity_now, dsr_a, dsr_b, rewards, terminated, truncated, fills, costs,
            )  # fmt: skip
            # A ruined account (equity <= 0) ends there; the kernel keeps stepping it in lockstep, unread.
            equity[:, :, step] = np.where(alive, equity_now, equity[:, :, step - 1].T).T
            alive &= ~terminated
    finally:
        torch.set_num_threads(threads)
    return SweepResult(equity, decisions=num_policies * num_markets * steps)
