"""A model's own backtest: the pipeline run that trained a checkpoint also backtested it on the test split, and
its stage outputs sit next to it (`<run>/train/stage.json`, `<run>/backtest/stage.json`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ml.data import storage
from rlops_core.errors import RlopsError

STAGE_FILE = "stage.json"


@dataclass(frozen=True)
class BacktestEvidence:
    run: str
    policy: str
    test_sharpe: float
    deflated_sharpe: float


def _parents(location: str) -> list[str]:
    head = location.rstrip("/")
    found = []
    while "/" in head.removeprefix("s3://"):
        head = head.rsplit("/", 1)[0]
        found.append(head)
    return found


def _result(location: str) -> dict[str, Any]:
    try:
        stage = json.loads(storage.read_bytes(location))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RlopsError(f"{location}: not a stage file ({exc})") from exc
    result = stage.get("result") if isinstance(stage, dict) else None
    if not isinstance(result, dict):
        raise RlopsError(f"{location}: has no result")
    return result


def find_evidence(model: str) -> BacktestEvidence:
    """The test-split Sharpe and deflated Sharpe of the pipeline run that produced `model`."""
    for run in _parents(model):
        backtest = storage.join(run, "backtest", STAGE_FILE)
        train = storage.join(run, "train", STAGE_FILE)
        if not (storage.exists(backtest) and storage.exists(train)):
            continue
        trained = _result(train)
        algos = [algo for algo, item in trained.items() if isinstance(item, dict) and item.get("checkpoint") == model]
        if not algos:
            raise RlopsError(f"{train} did not train {model}, so {backtest} says nothing about it")
        result = _result(backtest)
        rows = [row for row in result.get("leaderboard", []) if row.get("policy") == algos[0]]
        sharpe = rows[0].get("sharpe") if rows else None
        deflated = result.get("deflated_sharpe")
        if not isinstance(sharpe, int | float) or not isinstance(deflated, int | float):
            raise RlopsError(f"{backtest} has no test Sharpe and deflated Sharpe for {algos[0]}")
        return BacktestEvidence(run, algos[0], float(sharpe), float(deflated))
    raise RlopsError(
        f"no backtest next to {model}: promoting a model needs the pipeline's backtest stage output "
        "(<run>/backtest/stage.json beside <run>/train/stage.json)"
    )
