"""The ML side of rlops: market data, the trading environment, agents, tuning, backtests and serving."""
