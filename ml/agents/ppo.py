"""Proximal Policy Optimization (clipped surrogate) on a batched environment.

Thin on top of the shared core: :class:`ActorCritic`, :class:`RolloutBuffer` with GAE, running observation
normalization, the learning-rate schedule and the checkpoint format. All randomness after network
initialization (action sampling, minibatch order) comes from one ``torch.Generator`` that checkpoints save,
and environments are pickled into the checkpoint, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import pickle
import time
from collections import deque
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ml.agents.checkpoint import Checkpoint, save_checkpoint
from ml.agents.config import PPOConfig
from ml.agents.device import configure_torch, resolve_device
from ml.agents.env_sources import EnvSource, contract_of
from ml.agents.evaluation import evaluate
from ml.agents.networks import ActorCritic, Evaluation
from ml.agents.normalization import RunningMeanStd
from ml.agents.policy import Policy
from ml.agents.ppo_grad import (
    LossSettings,
    PPOLoss,
    clip_grad_norm,
    fused_adam_step,
    ppo_loss_and_grads,
    ratio_diagnostics,
)
from ml.agents.result import TrainResult
from ml.agents.rollout_policy import RolloutPolicy
from ml.agents.run_logger import RunLogger
from ml.agents.schedules import learning_rate_at
from ml.agents.storage import Batch, RolloutBuffer, minibatches
from ml.agents.vec_env import FloatArray, VecEnvAdapter
from rlops_core.errors import RlopsError

RETURN_WINDOW = 100


class PPOMetrics(NamedTuple):
    """One row of ``metrics.csv`` per iteration (rollout + update)."""

    global_step: int
    iteration: int
    mean_return: float
    episodes: int
    policy_loss: float
    value_loss: float
    entropy: float
    approx_kl: float
    clip_fraction: float
    learning_rate: float
    updates: int
    steps_per_s: float


def ppo_loss(
    evaluation: Evaluation,
    batch: Batch,
    advantages: Tensor,
    settings: LossSettings,
) -> PPOLoss:
    """Clipped surrogate + (optionally clipped) value loss - entropy bonus, on one minibatch, for autograd.

    The definition of the loss; training uses `ppo_loss_and_grads`, its closed-form gradient (tested equal).
    """
    clip_param, clip_value_loss, value_loss_coef, entropy_coef = settings
    log_ratio = evaluation.log_probs - batch.log_probs
    ratio = log_ratio.exp()
    surrogate = torch.min(ratio * advantages, ratio.clamp(1.0 - clip_param, 1.0 + clip_param) * advantages)
    policy_loss = -surrogate.mean()
    value_error = (evaluation.values - batch.returns).square()
    if clip_value_loss:
        clipped = batch.values + (evaluation.values - batch.values).clamp(-clip_param, clip_param)
        value_error = torch.max(value_error, (clipped - batch.returns).square())
    value_loss = 0.5 * value_error.mean()
    entropy = evaluation.entropy.mean()
    total = policy_loss + value_loss_coef * value_loss - entropy_coef * entropy
    return PPOLoss(total, policy_loss, value_loss, entropy, *ratio_diagnostics(ratio, log_ratio, clip_param))


class PPOTrainer:
    """The state of a PPO run and its two phases, :meth:`collect` and :meth:`update`."""

    def __init__(self, config: PPOConfig, env: VecEnvAdapter, resume: Checkpoint | None = None) -> None:
        if env.num_envs != config.num_envs:
            raise RlopsError(f"PPO config wants num_envs={config.num_envs}, the environment has {env.num_envs}")
        self.config = config
        self.device = resolve_device(config.device)
        configure_torch(config.seed, config.torch_threads)
        self.env = env
        self.spec = env.spec
        self.model = ActorCritic(self.spec, config.hidden_sizes, config.activation, config.log_std_init).to(self.device)
        # eps=1e-5 rather than Adam's 1e-8: the value used by the reference PPO implementations.
        # fused: one kernel for all parameters, which matters with many small tensors and tiny batches.
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate, eps=1e-5, fused=True)
        self._trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.loss_settings = LossSettings(
            config.clip_param, config.clip_value_loss, config.value_loss_coef, config.entropy_coef
        )
        self.obs_norm = RunningMeanStd(self.spec.obs_dim) if config.normalize_obs else None
        # On the CPU whatever the device: it draws the rollout's random numbers and the minibatch order there.
        self.generator = torch.Generator().manual_seed(config.seed)
        self.buffer = RolloutBuffer(self.spec, config.rollout_steps, config.num_envs, self.device)
        self.recent_returns: deque[float] = deque(maxlen=RETURN_WINDOW)
        self.episodes = 0
        self.global_step = 0
        self.iteration = 0
        self._low = np.asarray(self.spec.action_low, dtype=np.float32)
        self._high = np.asarray(self.spec.action_high, dtype=np.float32)
        if resume is None:
            env.reset(seed=config.seed)
        else:
            self._restore(resume)

    def policy(self) -> Policy:
        """An inference view sharing this trainer's network and statistics."""
        return Policy(self.model, self.obs_norm, self.device)

    def _observe(self, obs: FloatArray, update_stats: bool) -> FloatArray:
        if self.obs_norm is None:
            return obs
        if update_stats:
            self.obs_norm.update(obs)
        return self.obs_norm.normalize_array(obs)

    @torch.no_grad()
    def collect(self) -> Batch:
        """Run ``rollout_steps`` batched steps and return the flattened rollout with GAE advantages.

        Acting uses a NumPy snapshot of the network (:class:`RolloutPolicy`) on the CPU whatever the training
        device: a few rows per step are cheaper there than a round trip to an accelerator.
        """
        cfg = self.config
        acting = RolloutPolicy(self.model)
        draws = acting.draw(self.generator, cfg.rollout_steps, cfg.num_envs)
        reward_scale = np.float32(cfg.reward_scale)
        for t in range(cfg.rollout_steps):
            obs = self._observe(self.env.obs, update_stats=True)
            step = acting.step(obs, draws[t])
            env_actions = np.clip(step.actions, self._low, self._high) if self.spec.is_continuous else step.actions
            result = self.env.step(env_actions)
            self.buffer.add(
                obs,
                step.actions,
                step.log_probs,
                step.values,
                result.rewards * reward_scale,
                result.terminated,
                result.truncated,
            )
            if result.truncated.any():
                index = np.flatnonzero(result.truncated)
                final = self._observe(result.final_obs[index], update_stats=False)
                self.buffer.set_final_values(index, acting.values(final))
            self.recent_returns.extend(result.episode_returns)
            self.episodes += len(result.episode_returns)
        self.global_step += cfg.rollout_size
        last_values = acting.values(self._observe(self.env.obs, update_stats=False))
        return self.buffer.compute(last_values, cfg.gamma, cfg.gae_lambda)

    @torch.no_grad()
    def update(self, batch: Batch) -> tuple[list[PPOLoss], int]:
        """``num_epochs`` passes of minibatch gradient steps; returns the losses and the number of steps."""
        cfg = self.config
        losses: list[PPOLoss] = []
        whole_batch: Tensor | None = None  # normalized once when the one minibatch is the whole batch
        for _ in range(cfg.num_epochs):
            for mb in minibatches(batch, cfg.batch_size, self.generator):
                advantages = mb.advantages
                if cfg.normalize_advantages and mb is batch and whole_batch is not None:
                    advantages = whole_batch
                elif cfg.normalize_advantages:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
                    whole_batch = advantages if mb is batch else None
                # No zero_grad: the closed-form pass assigns every trainable parameter's .grad afresh.
                loss = ppo_loss_and_grads(self.model, mb, advantages, self.loss_settings)
                if cfg.target_kl is not None and float(loss.approx_kl) > cfg.target_kl:
                    return losses, len(losses)  # the policy moved far enough from the one that collected
                clip_grad_norm(self._trainable, cfg.max_grad_norm)
                fused_adam_step(self.optimizer)
                losses.append(loss)
        return losses, len(losses)

    def iterate(self) -> PPOMetrics:
        """One rollout and one update."""
        start = time.perf_counter()
        lr = learning_rate_at(
            self.config.learning_rate, self.config.lr_schedule, self.global_step / self.config.total_timesteps
        )
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = self.collect()
        losses, updates = self.update(batch)
        self.iteration += 1

        def mean(values: list[Tensor]) -> float:
            return float(torch.stack(values).mean()) if values else float("nan")

        return PPOMetrics(
            global_step=self.global_step,
            iteration=self.iteration,
            mean_return=float(np.mean(self.recent_returns)) if self.recent_returns else float("nan"),
            episodes=self.episodes,
            policy_loss=mean([loss.policy for loss in losses]),
            value_loss=mean([loss.value for loss in losses]),
            entropy=mean([loss.entropy for loss in losses]),
            approx_kl=mean([loss.approx_kl for loss in losses]),
            clip_fraction=mean([loss.clip_fraction for loss in losses]),
            learning_rate=lr,
            updates=updates,
            steps_per_s=self.config.rollout_size / max(time.perf_counter() - start, 1e-9),
        )

    @property
    def done(self) -> bool:
        return self.iteration >= self.config.num_iterations

    def checkpoint(self, source: EnvSource, include_env: bool = True) -> Checkpoint:
        env_state: bytes | None = None
        if include_env:
            try:
                env_state = pickle.dumps(self.env)
            except Exception:  # an env that cannot be pickled still gets a (non-exact) resumable checkpoint
                env_state = None
        return Checkpoint(
            algo="ppo",
            config=self.config.to_dict(),
            env_spec=self.spec,
            model_state={k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            optimizer_state=self.optimizer.state_dict(),
            obs_norm=self.obs_norm.state_dict() if self.obs_norm is not None else None,
            env_source=source.describe(),
            dataset_fingerprint=source.fingerprint,
            global_step=self.global_step,
            iteration=self.iteration,
            rng_state=self.generator.get_state(),
            trainer_state={"recent_returns": list(self.recent_returns), "episodes": self.episodes},
            env_state=env_state,
            observation_contract=contract_of(source),
        )

    def _restore(self, ckpt: Checkpoint) -> None:
        if ckpt.algo != "ppo":
            raise RlopsError(f"cannot resume PPO from a checkpoint of algorithm {ckpt.algo!r}")
        if ckpt.env_spec.to_dict() | {"name": ""} != self.spec.to_dict() | {"name": ""}:
            raise RlopsError("checkpoint was trained on a different observation/action space than this environment")
        self.model.load_state_dict(ckpt.model_state)
        if ckpt.optimizer_state is not None:
            self.optimizer.load_state_dict(ckpt.optimizer_state)
        if self.obs_norm is not None and ckpt.obs_norm is not None:
            self.obs_norm.load_state_dict(ckpt.obs_norm)
        if ckpt.rng_state is not None:
            self.generator.set_state(ckpt.rng_state)
        self.global_step = ckpt.global_step
        self.iteration = ckpt.iteration
        self.recent_returns.extend(float(x) for x in ckpt.trainer_state.get("recent_returns", []))
        self.episodes = int(ckpt.trainer_state.get("episodes", 0))
        if ckpt.env_state is not None:
            # Our own run's checkpoint, resumed on request: the pickled envs continue exactly where they were.
            restored: VecEnvAdapter = pickle.loads(ckpt.env_state)  # noqa: S301
            if restored.num_envs != self.config.num_envs:
                raise RlopsError(
                    f"checkpoint holds {restored.num_envs} environments; num_envs={self.config.num_envs} cannot "
                    "resume it exactly (keep num_envs when resuming)"
                )
            self.env.close()
            self.env = restored
        else:
            self.env.reset(seed=self.config.seed + self.iteration)


def train_ppo(
    config: PPOConfig,
    source: EnvSource,
    run_dir: Path | None = None,
    resume: Checkpoint | None = None,
    show_progress: bool = False,
) -> TrainResult:
    """Train until ``total_timesteps``, logging every iteration and writing checkpoints under ``run_dir``."""
    env = VecEnvAdapter(source.make_vec_env(config.num_envs), source.name)
    trainer = PPOTrainer(config, env, resume)
    start_step = trainer.global_step
    last_saved = trainer.global_step
    final_path: Path | None = None
    try:
        with RunLogger(run_dir, config.total_timesteps, show_progress, trainer.global_step) as logger:
            start = time.perf_counter()
            while not trainer.done:
                logger.log(trainer.iterate())
                interval = config.checkpoint_interval
                if run_dir is not None and interval and trainer.global_step - last_saved >= interval:
                    save_checkpoint(
                        trainer.checkpoint(source), run_dir / "checkpoints" / f"step_{trainer.global_step}.pt"
                    )
                    last_saved = trainer.global_step
            wall_time = time.perf_counter() - start
            if run_dir is not None:
                final_path = save_checkpoint(trainer.checkpoint(source), run_dir / "checkpoints" / "final.pt")
    finally:
        trainer.env.close()
    evaluation = None
    if config.eval_episodes > 0:
        evaluation = evaluate(trainer.policy(), source.make_env, config.eval_episodes, seed=config.seed + 10_000)
    return TrainResult(
        algo="ppo",
        global_step=trainer.global_step,
        mean_return=float(np.mean(trainer.recent_returns)) if trainer.recent_returns else float("nan"),
        episodes=trainer.episodes,
        wall_time_s=wall_time,
        checkpoint=final_path,
        evaluation=evaluation,
        steps_trained=trainer.global_step - start_step,
    )
