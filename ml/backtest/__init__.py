"""Backtesting: policies run through the environment's own execution code, and the metrics of the result."""
