"""The research pipeline: validate data -> tune -> retrain -> backtest on test -> report -> record.

Each stage is a function with explicit inputs and outputs (folders or s3:// prefixes), so `rlops pipeline run`
chains them locally and an Argo workflow runs one per container with the same contract.
"""
