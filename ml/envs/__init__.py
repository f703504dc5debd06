"""The trading environment: one execution kernel behind a single Gymnasium env and a batched vector env."""

from ml.envs.batched import BatchedTradingEnv
from ml.envs.config import EnvConfig
from ml.envs.execution_log import ExecutionLog
from ml.envs.factory import EnvSpec
from ml.envs.market import MarketData, PreparedData, build_market, prepare
from ml.envs.trading_env import TradingEnv

__all__ = [
    "BatchedTradingEnv",
    "EnvConfig",
    "EnvSpec",
    "ExecutionLog",
    "MarketData",
    "PreparedData",
    "TradingEnv",
    "build_market",
    "prepare",
]
