"""Small environments and sources for the agent tests (importable by spawned A3C workers)."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Any

import gymnasium as gym


class ExplodingEnv(gym.Wrapper[Any, Any, Any, Any]):
    """CartPole that raises after ``fail_after`` steps: a worker that dies mid-run."""

    def __init__(self, fail_after: int) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.fail_after = fail_after
        self.steps = 0

    def step(self, action: Any) -> Any:
        self.steps += 1
        if self.steps > self.fail_after:
            raise ValueError("simulated market data outage")
        return self.env.step(action)


@dataclass(frozen=True)
class ExplodingFactory:
    fail_after: int

    def __call__(self) -> gym.Env[Any, Any]:
        return ExplodingEnv(self.fail_after)


class KilledEnv(gym.Wrapper[Any, Any, Any, Any]):
    """CartPole whose process is killed by SIGKILL after ``kill_after`` steps: no Python error to report."""

    def __init__(self, kill_after: int) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.kill_after = kill_after
        self.steps = 0

    def step(self, action: Any) -> Any:
        self.steps += 1
        if self.steps > self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.env.step(action)


@dataclass(frozen=True)
class KilledFactory:
    kill_after: int

    def __call__(self) -> gym.Env[Any, Any]:
        return KilledEnv(self.kill_after)
