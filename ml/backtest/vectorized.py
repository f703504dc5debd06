"""Many policies x many assets backtested at once: one stacked forward pass and one kernel call per asset per bar.

For sweeps (every checkpoint of a tuning run on every asset), stepping policies one by one wastes the time in
Python and small matrix products. Here the MLPs of same-shaped policies are stacked and evaluated with batched
matrix products, and each asset's envs (one per policy) are stepped by the same execution kernel as always.
Actions are the deterministic ones `Policy.act` gives.
"""

from __future__ import annotations

import copy
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from ml.agents.networks import mlp_layers
from ml.agents.normalization import OBS_CLIP
from ml.agents.policy import Policy
from ml.backtest.certain_argmax import CertainArgmax
from ml.backtest.fork_map import fork_map
from ml.backtest.sweep_kernel import observe_stacked, step_stacked
from ml.backtest.sweep_ledger import Ledger
from ml.envs.config import EnvConfig
from ml.envs.execution import pack_params
from ml.envs.market import MarketData, check_fits, observation_size
from rlops_core.errors import RlopsError

_NORM_EPS = 1e-8  # the epsilon RunningMeanStd.normalize adds to the variance
# In place: every activation follows a Linear whose fresh output nobody else holds, and tanh's allocation is
# a fifth of its cost at these sizes.
_ACTIVATIONS = {nn.Tanh: torch.tanh_, nn.ReLU: torch.relu_}


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
        self.count = len(policies)
        self.policies = list(policies)
        self.discrete = spec.is_discrete
        self.layers: list[tuple[Tensor, Tensor] | Any] = []
        per_policy = [mlp_layers(p.model.actor) for p in policies]
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
        self._certain: CertainArgmax | None = None  # built on first use, from this stack's own rows
        self.low = torch.as_tensor(np.asarray(spec.action_low, dtype=np.float32))
        self.high = torch.as_tensor(np.asarray(spec.action_high, dtype=np.float32))

    def rows(self, start: int, stop: int) -> StackedPolicy:
        """Policies start..stop-1 as their own stack: views into this one's tensors, nothing stacked again."""
        part = copy.copy(self)
        part.count = stop - start
        part._certain = None
        part.policies = self.policies[start:stop]
        part.layers = [
            (layer[0][start:stop], layer[1][start:stop]) if isinstance(layer, tuple) else layer for layer in self.layers
        ]
        part.mean = None if self.mean is None else self.mean[start:stop]
        part.scale = None if self.scale is None else self.scale[start:stop]
        return part

    @torch.no_grad()
    def act(self, obs: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        x = torch.as_tensor(obs)
        if self.mean is not None and self.scale is not None:
            x = ((x.to(torch.float64) - self.mean) / self.scale).clamp(-OBS_CLIP, OBS_CLIP).to(torch.float32)
        return self.act_normalised(x)

    def act_exact(self, x: Tensor) -> npt.NDArray[Any]:
        """`act_normalised`, bit for bit what `Policy.act` gives one observation: each (policy, row) alone.

        A batched product rounds differently from the one-row product an env's backtest makes (the BLAS
        kernels block the sums differently), and over millions of decisions a near tie between two actions
        does flip; so a result that must equal the per-cell backtest runs each row through the policy's own
        `sample_actions`, as `Policy.act` does after normalising. For discrete actions only the rows whose
        choice a bounded-error stacked pass cannot settle (`CertainArgmax`: near ties) take that path.
        """
        rows = x.shape[1]
        if self.discrete:
            if self._certain is None:
                self._certain = CertainArgmax(self.layers)
            best, certain = self._certain(x)
            for p, r in zip(*np.nonzero(~certain), strict=True):
                best[p, r] = self.policies[p].model.sample_actions(x[p, r : r + 1], None, True)[0]
            chosen: npt.NDArray[Any] = best[..., None]
            return chosen
        actions = [policy.model.sample_actions(x[p, r : r + 1], None, True)[0].numpy()
                   for p, policy in enumerate(self.policies) for r in range(rows)]  # fmt: skip
        out: npt.NDArray[Any] = np.stack(actions).reshape(self.count, rows, -1)
        clipped: npt.NDArray[Any] = np.clip(out, self.low.numpy(), self.high.numpy())
        return clipped

    def act_normalised(self, x: Tensor) -> npt.NDArray[Any]:
        """`act` for (P, B, D) observations that are already normalised (or need none); the caller turns
        gradients off (once for a whole sweep rather than per bar)."""
        for layer in self.layers:
            x = torch.baddbmm(layer[1], x, layer[0]) if isinstance(layer, tuple) else layer(x)
        if self.discrete:
            return x.argmax(dim=-1).numpy()
        return torch.clamp(x, self.low, self.high).numpy()


@dataclass(frozen=True)
class SweepResult:
    """Equity of every (policy, market) pair, bar by bar: (policies, markets, bars + 1).

    `solvent` (policies, markets) is False for an account ruined on the way: its env would have ended there,
    while the sweep kept stepping it in lockstep. `ledger` holds every account's full rows when asked for.
    """

    equity: npt.NDArray[np.float64]
    decisions: int
    solvent: npt.NDArray[np.bool_]
    ledger: Ledger | None = None

    def returns(self) -> npt.NDArray[np.float64]:
        out: npt.NDArray[np.float64] = self.equity[..., 1:] / self.equity[..., :-1] - 1.0
        return out


@dataclass(frozen=True)
class _Panel:
    """The read-only inputs every chunk of policies shares: prices, features and execution parameters."""

    opens: npt.NDArray[np.float64]
    closes: npt.NDArray[np.float64]
    volumes: npt.NDArray[np.float64]
    features: npt.NDArray[np.float64]
    params: npt.NDArray[np.float64]
    levels: npt.NDArray[np.float64]
    first: MarketData
    obs_size: int


def default_workers() -> int:
    """The CPUs this process may run on: the sweep's chunks of policies run one per core."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def sweep(
    policies: Sequence[Policy],
    markets: Sequence[MarketData],
    config: EnvConfig,
    workers: int | None = None,
    use_fork: bool | None = None,
    ledger: bool = False,
    exact: bool = False,
) -> SweepResult:
    """Every policy on every market over each market's whole period, all markets stepped bar by bar together.

    Markets must share their time axis and decision range (e.g. single-asset slices of one panel); each bar is
    one stacked forward pass and one compiled call that steps every (market, policy) account. The policies are
    split into `workers` chunks (default: one per available core) that run in parallel (`fork_map`: forked
    processes on Linux unless `use_fork` is False, threads otherwise); a policy's results do not depend on the
    chunk it ran in. The stacked forward pass can round a near tie between two actions the other way from a
    one-observation `Policy.act`; `exact` evaluates each (policy, market) row on its own instead, slower and
    bit for bit the per-cell backtest's actions. With `ledger`, every account's cash, costs, positions and
    fills are kept bar by bar too.
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
    chunks = min(workers if workers is not None else default_workers(), len(policies))
    if chunks < 1:
        raise RlopsError(f"sweep: workers must be >= 1 (got {workers})")
    opens, closes, volumes, features = (
        np.ascontiguousarray(np.stack([getattr(m, name) for m in markets]))
        for name in ("open", "close", "volume", "features")
    )
    panel = _Panel(
        opens, closes, volumes, features, pack_params(config, first.periods_per_year),
        np.asarray(config.levels, dtype=np.float64), first, obs_size,
    )  # fmt: skip
    bounds = np.linspace(0, len(policies), chunks + 1).round().astype(int)
    groups = [stacked.rows(int(start), int(stop)) for start, stop in itertools.pairwise(bounds)]
    threads = torch.get_num_threads()
    # The matrices are small: one intra-op thread per chunk; the chunks themselves give the parallelism.
    torch.set_num_threads(1)
    try:
        parts = fork_map(lambda group: _sweep_chunk(group, panel, config, ledger, exact), groups, use_fork)
    finally:
        torch.set_num_threads(threads)
    equity = np.concatenate([part[0] for part in parts], axis=0)
    solvent = np.concatenate([part[1] for part in parts], axis=0)
    ledgers = [part[2] for part in parts if part[2] is not None]
    kept = Ledger.concat(ledgers) if ledgers else None
    return SweepResult(equity, len(policies) * len(markets) * first.decision_bars, solvent, kept)


def _sweep_chunk(
    stacked: StackedPolicy, panel: _Panel, config: EnvConfig, keep_ledger: bool, exact: bool
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], Ledger | None]:
    """Equity (policies, markets, bars + 1), solvency and (when kept) the ledger of one chunk of policies."""
    first = panel.first
    num_markets, num_policies, assets = panel.closes.shape[0], stacked.count, first.num_assets
    shape = (num_markets, num_policies)
    t = np.full(shape, first.first_decision, dtype=np.int64)
    end = np.full(shape, first.last_bar, dtype=np.int64)
    cash, equity_now = np.full(shape, config.initial_cash), np.full(shape, config.initial_cash)
    shares, basis = np.zeros((*shape, assets)), np.zeros((*shape, assets))
    dsr_a, dsr_b, rewards = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    terminated, truncated = np.zeros(shape, dtype=np.bool_), np.zeros(shape, dtype=np.bool_)
    fills, costs, weights = np.zeros((*shape, assets, 3)), np.zeros((*shape, 3)), np.zeros((*shape, assets))
    rows = np.arange(num_policies, dtype=np.int64)
    alive = np.ones(shape, dtype=np.bool_)
    normalise = stacked.mean is not None and stacked.scale is not None
    mean = stacked.mean[:, 0].numpy() if stacked.mean is not None else np.zeros((1, 1))
    scale = stacked.scale[:, 0].numpy() if stacked.scale is not None else np.ones((1, 1))
    scratch = np.empty((num_policies, panel.obs_size), dtype=np.float32)
    obs = np.empty((num_policies, num_markets, panel.obs_size), dtype=np.float32)
    obs_tensor = torch.from_numpy(obs)  # shares memory: the kernel refills it in place every bar
    steps = first.decision_bars
    equity = np.empty((num_policies, num_markets, steps + 1))
    equity[:, :, 0] = config.initial_cash
    ledger = (
        Ledger.empty(num_policies, num_markets, steps + 1, assets, first.first_decision, config.initial_cash)
        if keep_ledger
        else None
    )

    def observe() -> None:
        observe_stacked(
            panel.features, config.window, panel.closes, t, cash, shares, basis, equity_now, rows, mean, scale,
            normalise, scratch, obs,
        )  # fmt: skip

    observe()
    with torch.inference_mode():
        for step in range(1, steps + 1):
            act = stacked.act_exact if exact else stacked.act_normalised
            actions = act(obs_tensor).reshape(num_policies, num_markets, -1)
            step_stacked(
                actions, weights, panel.levels, panel.params, panel.opens, panel.closes, panel.volumes, t, end,
                cash, shares, basis, equity_now, dsr_a, dsr_b, rewards, terminated, truncated, fills, costs, alive,
                equity, step,
            )  # fmt: skip
            if ledger is not None:
                ledger.record(step, t, cash, costs, shares, fills)
            if step < steps:
                observe()
    return equity, alive.T.copy(), ledger
