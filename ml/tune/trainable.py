"""The function trainable of both agents: train a chunk, score it out of sample, report, checkpoint.

Training composes the agents' public pieces rather than hooking into their loops: PPO keeps one
``PPOTrainer`` and calls ``iterate()`` for a chunk of rollouts; A3C runs ``train_a3c`` to the next step count,
resuming from the checkpoint of the chunk before. A Tune checkpoint is a folder with the agent's own
checkpoint (``agent.pt``, what ``rlops backtest`` and ``rlops train --resume`` read) and ``tune_state.json``.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ml.agents.checkpoint import Checkpoint as AgentCheckpoint
from ml.agents.checkpoint import load_checkpoint, save_checkpoint
from ml.agents.config import A3CConfig, PPOConfig
from ml.tune.objective import Payload, score
from ml.tune.spaces import agent_config

# Each step of a chunk generator: the policy to score, a maker of its checkpoint, training statistics.
Chunks = Generator[tuple[Any, Callable[[], AgentCheckpoint], dict[str, float]], None, None]
AGENT_FILE = "agent.pt"
STATE_FILE = "tune_state.json"


@dataclass(frozen=True)
class TrialPlan:
    """The fixed part of every trial (the sampled hyperparameters come in Tune's ``config``)."""

    algo: str
    base: dict[str, Any]
    iterations: int
    steps_per_iteration: int
    checkpoint_every: int


def metric_key(metric: str) -> str:
    """The name the objective is reported under: it is a validation number, and says so."""
    return f"val_{metric}"


def _restore() -> tuple[AgentCheckpoint | None, int]:
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None, 0
    with checkpoint.as_directory() as folder:
        state = json.loads((Path(folder) / STATE_FILE).read_text())
        return load_checkpoint(Path(folder) / AGENT_FILE), int(state["iteration"])


def _report(metrics: dict[str, Any], agent: AgentCheckpoint | None, iteration: int) -> None:
    from ray import tune

    if agent is None:
        tune.report(metrics)
        return
    with tempfile.TemporaryDirectory(prefix="rlops-tune-ckpt-") as folder:
        save_checkpoint(agent, Path(folder) / AGENT_FILE)
        (Path(folder) / STATE_FILE).write_text(json.dumps({"iteration": iteration}))
        # report() persists the folder to the experiment's storage before it returns.
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def _ppo_chunks(cfg: PPOConfig, payload: Payload, plan: TrialPlan, resume: AgentCheckpoint | None) -> Chunks:
    from ml.agents.ppo import PPOTrainer
    from ml.agents.vec_env import VecEnvAdapter

    env = VecEnvAdapter(payload.source.make_vec_env(cfg.num_envs), payload.source.name)
    trainer = PPOTrainer(cfg, env, resume)
    rollouts = max(1, round(plan.steps_per_iteration / cfg.rollout_size))
    try:
        while True:
            for _ in range(rollouts):
                row = trainer.iterate()
            stats = {"global_step": float(trainer.global_step), "mean_return": row.mean_return}
            yield trainer.policy(), lambda: trainer.checkpoint(payload.source), stats
    finally:
        trainer.env.close()


def _a3c_chunks(cfg: A3CConfig, payload: Payload, plan: TrialPlan, resume: AgentCheckpoint | None) -> Chunks:
    from ml.agents.a3c import train_a3c
    from ml.agents.policy import policy_from_checkpoint

    step = resume.global_step if resume is not None else 0
    with tempfile.TemporaryDirectory(prefix="rlops-tune-a3c-") as scratch:
        chunk = 0
        while True:
            chunk += 1
            step += plan.steps_per_iteration
            run_dir = Path(scratch) / f"chunk-{chunk}"
            result = train_a3c(replace(cfg, total_timesteps=step), payload.source, run_dir, resume)
            assert result.checkpoint is not None
            resume = load_checkpoint(result.checkpoint)
            step = resume.global_step
            stats = {"global_step": float(step), "mean_return": result.mean_return}
            yield policy_from_checkpoint(resume), _constant(resume), stats


def _constant(checkpoint: AgentCheckpoint) -> Callable[[], AgentCheckpoint]:
    return lambda: checkpoint


def train_fn(config: dict[str, Any], payload: Payload, plan: TrialPlan) -> None:
    """One trial: ``plan.iterations`` reports of the validation score, checkpoints every few of them."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    cfg = agent_config(plan.algo, plan.base, config)
    resume, done = _restore()
    chunks = (
        _ppo_chunks(cfg, payload, plan, resume)
        if isinstance(cfg, PPOConfig)
        else _a3c_chunks(cfg, payload, plan, resume)
    )
    key = metric_key(payload.metric)
    started = time.perf_counter()
    try:
        for iteration in range(done + 1, plan.iterations + 1):
            policy, checkpoint, stats = next(chunks)
            value, details = score(policy, payload)
            metrics: dict[str, Any] = {
                key: value,
                **details,
                **{k: (v if math.isfinite(v) else None) for k, v in stats.items()},
                "resumed_from": done,
                "node_id": node_id,
                "trial_time_s": time.perf_counter() - started,
            }
            last = iteration == plan.iterations
            agent = checkpoint() if last or iteration % plan.checkpoint_every == 0 else None
            _report(metrics, agent, iteration)
    finally:
        chunks.close()  # closes the PPO environments / removes A3C's scratch runs, also when a trial fails
