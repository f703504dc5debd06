"""The adapter gives gymnasium's object-array final_obs and a plain float array the same shape."""

from __future__ import annotations

import pickle
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from ml.agents.env_sources import GymEnvFactory
from ml.agents.spaces import SpaceSpec
from ml.agents.sync_vec_env import SameStepSyncVecEnv
from ml.agents.vec_env import VecEnvAdapter


class ArrayFinalObsEnv:
    """A batched env in the trading env's style: info['final_obs'] is one (N, D) float array."""

    num_envs = 2
    single_observation_space = gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
    single_action_space = gym.spaces.Discrete(3)

    def __init__(self) -> None:
        self.t = 0

    def reset(self, *, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        self.t = 0
        return np.zeros((2, 3), dtype=np.float32), {}

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        self.t += 1
        truncated = np.array([self.t == 2, False])
        final = np.full((2, 3), 7.0)
        return (
            np.full((2, 3), self.t, dtype=np.float32),
            np.ones(2),
            np.zeros(2, bool),
            truncated,
            {"final_obs": final, "_final_obs": truncated},
        )

    def close(self) -> None:
        pass


def test_array_final_obs_and_episode_returns() -> None:
    env = VecEnvAdapter(ArrayFinalObsEnv(), "fake")
    env.reset(seed=0)
    first = env.step(np.zeros(2, dtype=np.int64))
    assert first.episode_returns == []
    second = env.step(np.zeros(2, dtype=np.int64))
    assert second.truncated.tolist() == [True, False]
    np.testing.assert_array_equal(second.final_obs[0], [7.0, 7.0, 7.0])
    np.testing.assert_array_equal(second.final_obs[1], [0.0, 0.0, 0.0])
    assert second.episode_returns == [2.0]
    assert second.episode_lengths == [2]


def test_gymnasium_object_final_obs() -> None:
    vec = SyncVectorEnv([GymEnvFactory("CartPole-v1")] * 3, autoreset_mode=AutoresetMode.SAME_STEP)
    env = VecEnvAdapter(vec, "CartPole-v1")
    assert env.spec == SpaceSpec("CartPole-v1", obs_dim=4, action_kind="discrete", num_actions=2)
    env.reset(seed=0)
    ended = 0
    for _ in range(100):
        result = env.step(np.ones(3, dtype=np.int64))  # always push right: episodes end quickly
        done = result.terminated | result.truncated
        ended += int(done.sum())
        assert result.final_obs.dtype == np.float32
        assert np.all(result.final_obs[~done] == 0.0)
        assert np.all(np.abs(result.final_obs[done][:, 2]) > 0.2)  # the pole had fallen in the final state
    assert ended > 0
    env.close()


def test_steps_without_an_ended_episode_share_a_read_only_zero_final_obs() -> None:
    env = VecEnvAdapter(ArrayFinalObsEnv(), "fake")
    env.reset(seed=0)
    first = env.step(np.zeros(2, dtype=np.int64))
    assert not first.final_obs.any() and not first.final_obs.flags.writeable


def test_an_adapter_pickled_before_the_shared_zero_array_still_steps() -> None:
    env = VecEnvAdapter(ArrayFinalObsEnv(), "fake")
    env.reset(seed=0)
    state = dict(env.__dict__)
    del state["_no_final_obs"]  # what a checkpoint of the previous version holds
    old = VecEnvAdapter.__new__(VecEnvAdapter)
    old.__setstate__(state)
    restored = pickle.loads(pickle.dumps(old))  # noqa: S301  # our own object
    assert restored.step(np.zeros(2, dtype=np.int64)).final_obs.shape == (2, 3)
    assert restored.step(np.zeros(2, dtype=np.int64)).episode_returns == [2.0]


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_lean_sync_env_steps_exactly_like_gymnasiums(env_id: str) -> None:
    """Same seeds, same random actions for 600 steps (many CartPole episodes end, Pendulum's truncate at 200):
    the same observations, rewards, flags and final observations as gymnasium's SAME_STEP SyncVectorEnv."""
    ours = SameStepSyncVecEnv([GymEnvFactory(env_id)] * 4)
    theirs = SyncVectorEnv([GymEnvFactory(env_id)] * 4, autoreset_mode=AutoresetMode.SAME_STEP)
    np.testing.assert_array_equal(ours.reset(seed=3)[0], theirs.reset(seed=3)[0])
    theirs.single_action_space.seed(0)
    ended = 0
    for _ in range(600):
        actions = np.stack([theirs.single_action_space.sample() for _ in range(4)])
        mine, reference = ours.step(actions), theirs.step(actions)
        for got, expected in zip(mine[:4], reference[:4], strict=True):
            np.testing.assert_array_equal(got, expected)
        done = reference[2] | reference[3]
        ended += int(done.sum())
        if done.any():
            np.testing.assert_array_equal(mine[4]["_final_obs"], reference[4]["_final_obs"])
            for i in np.flatnonzero(done):
                np.testing.assert_array_equal(mine[4]["final_obs"][i], reference[4]["final_obs"][i])
        else:
            assert "final_obs" not in mine[4]
    assert ended >= 8
    ours.close()
    theirs.close()
