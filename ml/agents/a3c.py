"""Asynchronous advantage actor-critic (A3C): Hogwild workers updating one shared model.

Each of ``num_workers`` processes (``torch.multiprocessing``, spawn start method) builds its own single
environment from a picklable :class:`EnvSource`, copies the shared weights, collects up to ``update_freq``
steps, computes n-step returns (GAE with lambda = 1, bootstrapped from the value of the last state unless
the episode terminated) and applies its gradients to the shared parameters through a shared-state Adam,
without locks. The parent process only watches: it aggregates worker reports into metrics, evaluates and
checkpoints the shared model, and turns a failed or silent worker into an error after stopping the rest.
"""

from __future__ import annotations

import math
import os
import queue as queue_module
import time
import traceback
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.multiprocessing as mp
from torch import Tensor, nn

from ml.agents.checkpoint import Checkpoint, save_checkpoint
from ml.agents.config import A3CConfig
from ml.agents.device import configure_torch, resolve_device
from ml.agents.env_sources import EnvSource, contract_of
from ml.agents.evaluation import EvalResult, evaluate
from ml.agents.gae import compute_gae, next_state_values
from ml.agents.networks import ActorCritic
from ml.agents.normalization import RunningMeanStd
from ml.agents.policy import Policy
from ml.agents.result import TrainResult
from ml.agents.run_logger import RunLogger
from ml.agents.schedules import learning_rate_at
from ml.agents.shared_adam import AdamSlot, SharedAdam
from ml.agents.spaces import SpaceSpec
from rlops_core.errors import RlopsError

RETURN_WINDOW = 100
REPORT_EVERY_UPDATES = 10
_JOIN_TIMEOUT_S = 10.0


class A3CWorkerError(RlopsError):
    """A worker raised or died; the message carries its last error line, ``details`` the full traceback."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


class EpisodeReport(NamedTuple):
    worker_id: int
    pid: int
    episode_return: float
    length: int


class UpdateReport(NamedTuple):
    """Aggregate of a worker's last few gradient updates to the shared model."""

    worker_id: int
    pid: int
    updates: int
    policy_loss: float
    value_loss: float
    entropy: float


class WorkerFailed(NamedTuple):
    worker_id: int
    pid: int
    error: str
    traceback: str


WorkerMessage = EpisodeReport | UpdateReport | WorkerFailed


class A3CMetrics(NamedTuple):
    global_step: int
    mean_return: float
    episodes: int
    updates: int
    policy_loss: float
    value_loss: float
    entropy: float
    learning_rate: float
    eval_return: float
    steps_per_s: float


@dataclass
class SharedState:
    """What the parent hands to every worker: shared tensors and synchronization primitives."""

    model: ActorCritic
    adam_slots: list[AdamSlot]
    obs_norm: RunningMeanStd | None
    norm_lock: Any
    global_step: Any  # multiprocessing Value('q')
    stop: Any  # multiprocessing Event
    ready: Any  # multiprocessing Barrier: no worker collects before all have started
    messages: Any  # multiprocessing Queue


@dataclass(frozen=True)
class WorkerArgs:
    worker_id: int
    config: A3CConfig
    source: EnvSource
    shared: SharedState


def _worker_main(args: WorkerArgs) -> None:
    """Entry point of a worker process: report any failure to the parent, then exit non-zero."""
    try:
        _run_worker(args)
    except BaseException as exc:
        args.shared.messages.put(
            WorkerFailed(args.worker_id, os.getpid(), f"{type(exc).__name__}: {exc}", traceback.format_exc())
        )
        raise SystemExit(1) from exc


def _run_worker(args: WorkerArgs) -> None:
    cfg, shared, wid = args.config, args.shared, args.worker_id
    pid = os.getpid()
    worker_seed = cfg.seed + 1 + wid
    configure_torch(worker_seed, cfg.torch_threads)
    device = resolve_device(cfg.device)
    generator = torch.Generator(device=device).manual_seed(worker_seed)
    env = args.source.make_env()
    local = ActorCritic(shared.model.spec, cfg.hidden_sizes, cfg.activation, cfg.log_std_init).to(device)
    optimizer = SharedAdam(shared.model.parameters(), lr=cfg.learning_rate, slots=shared.adam_slots)
    param_pairs = list(zip(local.parameters(), shared.model.parameters(), strict=True))
    spec = local.spec
    low = torch.tensor(spec.action_low, dtype=torch.float32)
    high = torch.tensor(spec.action_high, dtype=torch.float32)

    def observe(raw: Any, update_stats: bool) -> Tensor:
        tensor = torch.as_tensor(np.asarray(raw, dtype=np.float32)).reshape(1, spec.obs_dim)
        if shared.obs_norm is not None:
            if update_stats:
                with shared.norm_lock:
                    shared.obs_norm.update(tensor)
            tensor = shared.obs_norm.normalize(tensor)
        return tensor.to(device)

    raw_obs, _ = env.reset(seed=cfg.seed + 1000 * (wid + 1))
    # Spawned workers start a second or more apart; without this the first could use up a small step budget
    # alone, and the run would not be the num_workers-process run it was configured as.
    shared.ready.wait(timeout=cfg.worker_timeout_s)
    episode_return, episode_length, updates = 0.0, 0, 0
    pending: list[tuple[float, float, float]] = []
    try:
        while not shared.stop.is_set() and shared.global_step.value < cfg.total_timesteps:
            with torch.no_grad():
                for local_param, shared_param in param_pairs:
                    local_param.copy_(shared_param)
            obs_list: list[Tensor] = []
            actions: list[Tensor] = []
            rewards: list[float] = []
            terminated = truncated = False
            final_obs: Tensor | None = None
            with torch.no_grad():
                for _ in range(cfg.update_freq):
                    obs = observe(raw_obs, update_stats=True)
                    action = local.sample_actions(obs, generator)
                    env_action = action.cpu()[0]
                    if spec.is_continuous:
                        env_action = env_action.clamp(low, high)
                    raw_obs, reward, term, trunc, _ = env.step(
                        int(env_action) if spec.is_discrete else env_action.numpy()
                    )
                    obs_list.append(obs)
                    actions.append(action)
                    rewards.append(float(reward) * cfg.reward_scale)
                    episode_return += float(reward)
                    episode_length += 1
                    terminated, truncated = bool(term), bool(trunc)
                    if terminated or truncated:
                        final_obs = observe(raw_obs, update_stats=False)
                        shared.messages.put(EpisodeReport(wid, pid, episode_return, episode_length))
                        episode_return, episode_length = 0.0, 0
                        raw_obs, _ = env.reset()
                        break
                last_obs = final_obs if final_obs is not None else observe(raw_obs, update_stats=False)
                bootstrap = torch.zeros(1, device=device) if terminated else local.value(last_obs)

            steps = len(rewards)
            batch_obs = torch.cat(obs_list)
            batch_actions = torch.cat(actions)
            evaluation = local.evaluate(batch_obs, batch_actions)
            values = evaluation.values.detach().unsqueeze(1)
            t = torch.zeros((steps, 1), dtype=torch.bool, device=device)
            term_mask, trunc_mask = t.clone(), t.clone()
            term_mask[-1] = terminated
            # Truncation bootstraps from the final state, which is exactly ``bootstrap`` here.
            next_values = next_state_values(values, bootstrap.reshape(1), trunc_mask, torch.zeros_like(values))
            gae = compute_gae(
                torch.tensor(rewards, device=device).unsqueeze(1),
                values,
                next_values,
                term_mask,
                trunc_mask,
                cfg.gamma,
                1.0,
            )
            advantages = gae.advantages.squeeze(1)
            policy_loss = -(evaluation.log_probs * advantages).mean()
            value_loss = 0.5 * (evaluation.values - gae.returns.squeeze(1)).square().mean()
            entropy = evaluation.entropy.mean()
            loss = policy_loss + cfg.value_loss_coef * value_loss - cfg.entropy_coef * entropy

            local.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            nn.utils.clip_grad_norm_(local.parameters(), cfg.max_grad_norm)
            for local_param, shared_param in param_pairs:
                shared_param.grad = None if local_param.grad is None else local_param.grad.cpu()
            progress = shared.global_step.value / cfg.total_timesteps
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(cfg.learning_rate, cfg.lr_schedule, progress)
            optimizer.step()  # Hogwild: no lock around the shared parameters
            with shared.global_step.get_lock():
                shared.global_step.value += steps
            updates += 1
            pending.append((policy_loss.item(), value_loss.item(), entropy.item()))
            if len(pending) >= REPORT_EVERY_UPDATES:
                means = np.mean(np.asarray(pending), axis=0)
                shared.messages.put(UpdateReport(wid, pid, len(pending), *map(float, means)))
                pending.clear()
        if pending:
            means = np.mean(np.asarray(pending), axis=0)
            shared.messages.put(UpdateReport(wid, pid, len(pending), *map(float, means)))
    finally:
        env.close()


class _Monitor:
    """Parent-side bookkeeping of worker reports."""

    def __init__(self, recent: list[float], episodes: int) -> None:
        self.recent_returns: deque[float] = deque(recent, maxlen=RETURN_WINDOW)
        self.episodes = episodes
        self.updates_by_pid: dict[int, int] = {}
        self.losses: list[tuple[float, float, float, int]] = []
        self.last_message = time.monotonic()

    def handle(self, message: WorkerMessage) -> None:
        self.last_message = time.monotonic()
        if isinstance(message, WorkerFailed):
            raise A3CWorkerError(
                f"A3C worker {message.worker_id} (pid {message.pid}) failed: {message.error}", message.traceback
            )
        if isinstance(message, EpisodeReport):
            self.recent_returns.append(message.episode_return)
            self.episodes += 1
        else:
            self.updates_by_pid[message.pid] = self.updates_by_pid.get(message.pid, 0) + message.updates
            self.losses.append((message.policy_loss, message.value_loss, message.entropy, message.updates))

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.recent_returns)) if self.recent_returns else float("nan")

    def take_losses(self) -> tuple[float, float, float]:
        if not self.losses:
            return (float("nan"),) * 3
        weights = np.asarray([row[3] for row in self.losses], dtype=np.float64)
        values = np.asarray([row[:3] for row in self.losses], dtype=np.float64)
        self.losses.clear()
        policy, value, entropy = (values * weights[:, None]).sum(axis=0) / weights.sum()
        return float(policy), float(value), float(entropy)


def _snapshot_policy(model: ActorCritic, obs_norm: RunningMeanStd | None, cfg: A3CConfig) -> Policy:
    """A private copy of the shared model, so evaluation sees one consistent set of weights."""
    copy = ActorCritic(model.spec, cfg.hidden_sizes, cfg.activation, cfg.log_std_init)
    copy.load_state_dict(model.state_dict())
    norm = None
    if obs_norm is not None:
        norm = RunningMeanStd(model.spec.obs_dim)
        norm.load_state_dict(obs_norm.state_dict())
    return Policy(copy, norm, torch.device("cpu"))


def _make_checkpoint(
    cfg: A3CConfig,
    source: EnvSource,
    model: ActorCritic,
    optimizer: SharedAdam,
    obs_norm: RunningMeanStd | None,
    step: int,
    monitor: _Monitor,
) -> Checkpoint:
    return Checkpoint(
        algo="a3c",
        config=cfg.to_dict(),
        env_spec=model.spec,
        model_state={k: v.detach().clone() for k, v in model.state_dict().items()},
        optimizer_state=optimizer.state_dict(),
        obs_norm=obs_norm.state_dict() if obs_norm is not None else None,
        env_source=source.describe(),
        dataset_fingerprint=source.fingerprint,
        global_step=step,
        trainer_state={"recent_returns": list(monitor.recent_returns), "episodes": monitor.episodes},
        observation_contract=contract_of(source),
    )


@dataclass
class _SharedModel:
    """The parent's model, optimizer and statistics in shared memory, and where a resumed run starts."""

    model: ActorCritic
    optimizer: SharedAdam
    obs_norm: RunningMeanStd | None
    start_step: int
    monitor: _Monitor


def _shared_model(config: A3CConfig, source: EnvSource, resume: Checkpoint | None) -> _SharedModel:
    """The network (from ``resume`` when given), with Adam's moments and the statistics, in shared memory."""
    probe = source.make_env()
    spec = SpaceSpec.from_spaces(source.name, probe.observation_space, probe.action_space)
    probe.close()
    model = ActorCritic(spec, config.hidden_sizes, config.activation, config.log_std_init)
    obs_norm = RunningMeanStd(spec.obs_dim) if config.normalize_obs else None
    start_step = 0
    recent: list[float] = []
    episodes = 0
    if resume is not None:
        if resume.algo != "a3c":
            raise RlopsError(f"cannot resume A3C from a checkpoint of algorithm {resume.algo!r}")
        model.load_state_dict(resume.model_state)
        if obs_norm is not None and resume.obs_norm is not None:
            obs_norm.load_state_dict(resume.obs_norm)
        start_step = resume.global_step
        recent = [float(x) for x in resume.trainer_state.get("recent_returns", [])]
        episodes = int(resume.trainer_state.get("episodes", 0))
    model.share_memory()
    optimizer = SharedAdam(model.parameters(), lr=config.learning_rate)
    if resume is not None and resume.optimizer_state is not None:
        optimizer.load_into_shared(resume.optimizer_state)
    if obs_norm is not None:
        obs_norm.share_memory()
    return _SharedModel(model, optimizer, obs_norm, start_step, _Monitor(recent, episodes))


def _worker_processes(config: A3CConfig, source: EnvSource, state: _SharedModel) -> tuple[list[Any], SharedState]:
    """The (not yet started) worker processes and the shared state they receive."""
    ctx = mp.get_context("spawn")  # fork would copy the parent's threads and locks (TensorBoard, rich)
    shared = SharedState(
        model=state.model,
        adam_slots=state.optimizer.slots,
        obs_norm=state.obs_norm,
        norm_lock=ctx.Lock(),
        global_step=ctx.Value("q", state.start_step),
        stop=ctx.Event(),
        ready=ctx.Barrier(config.num_workers),
        messages=ctx.Queue(),
    )
    workers = [
        ctx.Process(
            target=_worker_main,
            args=(WorkerArgs(i, config, source, shared),),
            name=f"a3c-worker-{i}",
            daemon=True,
        )
        for i in range(config.num_workers)
    ]
    return workers, shared


class _Supervisor:
    """The parent's watch loop: drain reports, check workers, and evaluate, log and checkpoint when due."""

    def __init__(
        self,
        config: A3CConfig,
        source: EnvSource,
        state: _SharedModel,
        workers: list[Any],
        shared: SharedState,
        run_dir: Path | None,
        log_interval: int,
    ) -> None:
        self.config, self.source, self.state = config, source, state
        self.workers, self.shared, self.run_dir = workers, shared, run_dir
        self.monitor = state.monitor
        start_step = state.start_step
        self.log_interval = log_interval
        self.next_log = start_step + log_interval
        self.next_eval = start_step + config.eval_interval if config.eval_interval else math.inf
        self.next_ckpt = start_step + config.checkpoint_interval if config.checkpoint_interval else math.inf
        self.last_eval = float("nan")
        self.last_log_time, self.last_log_step = time.perf_counter(), start_step
        self.evaluation: EvalResult | None = None
        self.first_at_target: int | None = None

    def run(self, logger: RunLogger) -> None:
        """Until every worker has exited (the step budget, a target reached, or an error raised here)."""
        while True:
            _drain(self.shared.messages, self.monitor, timeout=0.05)
            _check_workers(self.workers, self.shared, self.monitor, self.config.worker_timeout_s)
            step = int(self.shared.global_step.value)
            finished = all(not w.is_alive() for w in self.workers)
            self._evaluate_if_due(step, finished)
            if step >= self.next_log or finished:
                self._log(logger, step)
            else:
                logger.progress(step, self.monitor.mean_return)
            if self.run_dir is not None and step >= self.next_ckpt:
                self.next_ckpt = step + self.config.checkpoint_interval
                self.save(self.run_dir / "checkpoints" / f"step_{step}.pt", step)
            if finished:
                return

    def _evaluate_if_due(self, step: int, finished: bool) -> None:
        config, target = self.config, self.config.target_return
        # With a target, evaluating before the training mean reaches it cannot stop the run; skipping
        # those evaluations leaves the workers the CPU.
        wanted = target is None or self.monitor.mean_return >= target
        if step < self.next_eval or finished or not wanted:
            return
        self.next_eval = step + config.eval_interval
        result = evaluate(
            _snapshot_policy(self.state.model, self.state.obs_norm, config),
            self.source.make_env,
            config.eval_episodes,
            config.seed + 10_000,
        )
        self.last_eval = result.mean_return
        if target is not None and min(result.mean_return, self.monitor.mean_return) >= target:
            self.first_at_target = step
            self.evaluation = result
            self.shared.stop.set()

    def _log(self, logger: RunLogger, step: int) -> None:
        config, now = self.config, time.perf_counter()
        policy_loss, value_loss, entropy = self.monitor.take_losses()
        logger.log(
            A3CMetrics(
                global_step=step,
                mean_return=self.monitor.mean_return,
                episodes=self.monitor.episodes,
                updates=sum(self.monitor.updates_by_pid.values()),
                policy_loss=policy_loss,
                value_loss=value_loss,
                entropy=entropy,
                learning_rate=learning_rate_at(config.learning_rate, config.lr_schedule, step / config.total_timesteps),
                eval_return=self.last_eval,
                steps_per_s=(step - self.last_log_step) / max(now - self.last_log_time, 1e-9),
            )
        )
        self.last_log_time, self.last_log_step = now, step
        self.next_log = step + self.log_interval

    def save(self, path: Path, step: int) -> Path:
        state = self.state
        return save_checkpoint(
            _make_checkpoint(
                self.config, self.source, state.model, state.optimizer, state.obs_norm, step, self.monitor
            ),
            path,
        )


def train_a3c(
    config: A3CConfig,
    source: EnvSource,
    run_dir: Path | None = None,
    resume: Checkpoint | None = None,
    show_progress: bool = False,
    log_interval: int = 5_000,
) -> TrainResult:
    """Run the workers until ``total_timesteps`` global steps (or ``target_return``), then stop and join them."""
    resolve_device(config.device)  # fail here, not in every worker
    configure_torch(config.seed, config.torch_threads)
    state = _shared_model(config, source, resume)
    workers, shared = _worker_processes(config, source, state)
    monitor = state.monitor
    supervisor = _Supervisor(config, source, state, workers, shared, run_dir, log_interval)
    start = time.perf_counter()
    final_path: Path | None = None
    try:
        for worker in workers:
            worker.start()
        monitor.last_message = time.monotonic()
        with RunLogger(run_dir, config.total_timesteps, show_progress, state.start_step) as logger:
            supervisor.last_log_time = time.perf_counter()
            supervisor.run(logger)
            _stop_workers(workers, shared, monitor)
            wall_time = time.perf_counter() - start
            final_step = int(shared.global_step.value)
            if run_dir is not None:
                final_path = supervisor.save(run_dir / "checkpoints" / "final.pt", final_step)
    finally:
        _stop_workers(workers, shared, monitor, raise_errors=False)
        shared.messages.close()
        shared.messages.join_thread()
    evaluation = supervisor.evaluation
    if evaluation is None and config.eval_episodes > 0:
        evaluation = evaluate(
            _snapshot_policy(state.model, state.obs_norm, config),
            source.make_env,
            config.eval_episodes,
            config.seed + 10_000,
        )
    return TrainResult(
        algo="a3c",
        global_step=final_step,
        mean_return=monitor.mean_return,
        episodes=monitor.episodes,
        wall_time_s=wall_time,
        checkpoint=final_path,
        evaluation=evaluation,
        first_step_at_target=supervisor.first_at_target,
        worker_updates=dict(monitor.updates_by_pid),
        steps_trained=final_step - state.start_step,
    )


def _drain(messages: Any, monitor: _Monitor, timeout: float) -> None:
    """Handle every queued report; wait up to ``timeout`` for the first one."""
    try:
        monitor.handle(messages.get(timeout=timeout))
        while True:
            monitor.handle(messages.get_nowait())
    except queue_module.Empty:
        return


def _check_workers(workers: list[Any], shared: SharedState, monitor: _Monitor, timeout_s: float) -> None:
    """Raise when a worker died (with its own error when it managed to report one) or all went silent."""
    for index, worker in enumerate(workers):
        if worker.exitcode not in (None, 0):
            _drain(shared.messages, monitor, timeout=0.5)  # raises the worker's WorkerFailed if it sent one
            raise A3CWorkerError(f"A3C worker {index} (pid {worker.pid}) died with exit code {worker.exitcode}")
    if any(w.is_alive() for w in workers) and time.monotonic() - monitor.last_message > timeout_s:
        raise A3CWorkerError(f"A3C workers sent no report for {timeout_s:.0f} s; stopping the run")


def _stop_workers(workers: list[Any], shared: SharedState, monitor: _Monitor, raise_errors: bool = True) -> None:
    """Ask workers to stop, keep draining their reports (a full queue would block their exit), join them."""
    shared.stop.set()
    shared.ready.abort()  # releases workers still waiting for one that failed to start
    deadline = time.monotonic() + _JOIN_TIMEOUT_S
    while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
        try:
            _drain(shared.messages, monitor, timeout=0.05)
        except A3CWorkerError:
            if raise_errors:
                raise
    for worker in workers:
        if worker.pid is None:  # never started (a start failed): nothing to join; that error stands
            continue
        if worker.is_alive():
            worker.terminate()
        worker.join(timeout=_JOIN_TIMEOUT_S)
    if raise_errors:
        _drain(shared.messages, monitor, timeout=0.0)
        _check_workers(workers, shared, monitor, math.inf)
