"""The actor-critic MLP both agents train: separate actor and critic bodies, orthogonal initialization."""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional

from ml.agents.distributions import ActionDistribution, Categorical, DiagGaussian, MultiCategorical
from ml.agents.spaces import SpaceSpec
from rlops_core.errors import RlopsError

Activation = Literal["tanh", "relu"]
_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


class PolicyStep(NamedTuple):
    actions: Tensor
    log_probs: Tensor
    values: Tensor


class Evaluation(NamedTuple):
    log_probs: Tensor
    entropy: Tensor
    values: Tensor


def _linear(in_features: int, out_features: int, gain: float) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    nn.init.orthogonal_(layer.weight, gain=gain)
    nn.init.zeros_(layer.bias)
    return layer


def _body(in_features: int, hidden_sizes: tuple[int, ...], activation: Activation) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_features
    for size in hidden_sizes:
        # sqrt(2) keeps activations' scale through tanh/relu layers (the PPO implementation-details default).
        layers += [_linear(width, size, math.sqrt(2.0)), _ACTIVATIONS[activation]()]
        width = size
    return nn.Sequential(*layers)


def mlp_layers(module: nn.Module) -> list[nn.Module]:
    """The leaf layers of an MLP in order; anything but Linear/Tanh/ReLU is an error (closed-form gradients
    and stacked evaluation know only these)."""
    # An empty Sequential (no hidden layers) is a container, not a layer.
    leaves = [m for m in module.modules() if not list(m.children()) and not isinstance(m, nn.Sequential)]
    for leaf in leaves:
        if not isinstance(leaf, nn.Linear | nn.Tanh | nn.ReLU):
            raise RlopsError(f"expected a Linear/Tanh/ReLU MLP, found {type(leaf).__name__}")
    return leaves


def run_mlp(layers: list[nn.Module], x: Tensor) -> Tensor:
    """The layers applied in order: what ``nn.Sequential`` computes, without its per-module call overhead
    (a third of a small batch's forward time on a CPU)."""
    for layer in layers:
        if isinstance(layer, nn.Linear):
            x = functional.linear(x, layer.weight, layer.bias)
        else:
            x = torch.tanh(x) if isinstance(layer, nn.Tanh) else torch.relu(x)
    return x


class ActorCritic(nn.Module):
    """Policy and value networks for one :class:`SpaceSpec`.

    The policy head starts with a tiny gain (0.01) so the initial policy is close to uniform / zero-mean,
    and the value head with gain 1.
    """

    def __init__(
        self,
        spec: SpaceSpec,
        hidden_sizes: tuple[int, ...] = (64, 64),
        activation: Activation = "tanh",
        log_std_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.spec = spec
        last = hidden_sizes[-1] if hidden_sizes else spec.obs_dim
        self.actor = nn.Sequential(_body(spec.obs_dim, hidden_sizes, activation), _linear(last, spec.head_size, 0.01))
        self.critic = nn.Sequential(_body(spec.obs_dim, hidden_sizes, activation), _linear(last, 1, 1.0))
        self.log_std = nn.Parameter(torch.full((spec.action_dim,), float(log_std_init)))
        if not spec.is_continuous:
            self.log_std.requires_grad_(False)
        # Plain lists (not registered submodules): the same layers, in order, for closed-form gradients.
        self.actor_layers = mlp_layers(self.actor)
        self.critic_layers = mlp_layers(self.critic)

    def value(self, obs: Tensor) -> Tensor:
        return run_mlp(self.critic_layers, obs).squeeze(-1)

    def distribution(self, obs: Tensor) -> ActionDistribution:
        head = run_mlp(self.actor_layers, obs)
        if self.spec.is_discrete:
            return Categorical(head)
        if self.spec.action_kind == "multi_discrete":
            return MultiCategorical(head, self.spec.action_nvec)
        return DiagGaussian(head, self.log_std)

    def sample_actions(self, obs: Tensor, generator: torch.Generator | None, deterministic: bool = False) -> Tensor:
        """Actions only (no value): what acting without learning needs."""
        dist = self.distribution(obs)
        return dist.mode() if deterministic else dist.sample(generator)

    def step(self, obs: Tensor, generator: torch.Generator | None, deterministic: bool = False) -> PolicyStep:
        """Pick actions for a batch of (normalized) observations."""
        dist = self.distribution(obs)
        actions = dist.mode() if deterministic else dist.sample(generator)
        return PolicyStep(actions, dist.log_prob(actions), self.value(obs))

    def evaluate(self, obs: Tensor, actions: Tensor) -> Evaluation:
        """Log-probabilities, entropy and values of stored actions under the current parameters."""
        dist = self.distribution(obs)
        return Evaluation(dist.log_prob(actions), dist.entropy(), self.value(obs))
